"""create_app(settings): the lifespan starts and stops the worker; routers and static files mounted."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from app import __version__, crud, docs
from app.api import classes, live, models, predict, projects, samples, system, training
from app.config import Settings
from app.crosssite import CrossSiteGuard
from app.db import init_db, make_engine, make_session_factory, session_scope
from app.embedders import EmbedderPool
from app.headers import SecurityHeaders
from app.inference import ModelCache, NoModel
from app.jobs import Worker
from app.ml import checkpoint
from app.ml.backbones import BackboneUnavailable
from app.ml.checkpoint import CheckpointError
from app.pages import router as pages_router
from app.services import Services, resolve_device
from app.storage import ImageStore
from app.training import make_train_handler

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("snapclass")

API_DESCRIPTION = f"""Self-hosted, no-code image-classifier trainer.

Everything the web page does goes through this API, so a script can do it too.

## Live predictions (WebSocket)

{live.__doc__.split(chr(10), 2)[2]}
"""


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    init_db(engine)
    device = resolve_device(settings.device)
    factory = make_session_factory(engine)

    def load_state(digest: str) -> dict:
        with session_scope(factory) as s:
            return checkpoint.load_state(crud.backbone_state(session=s, digest=digest))

    services = Services(settings=settings, engine=engine, session_factory=factory,
                        store=ImageStore(settings.images_dir),
                        embedders=EmbedderPool(settings.cache_dir, device, load_state, settings.worker_runtime),
                        device=device)
    services.models = ModelCache(services.session_factory, services.embedders)
    services.worker = Worker(services.session_factory, {"train": make_train_handler(services)})
    return services


class SnapclassAPI(FastAPI):
    """FastAPI whose every response carries the security headers: the middleware wraps the whole stack, so
    also the 500 page that Starlette's outermost ServerErrorMiddleware writes."""

    def build_middleware_stack(self):
        return SecurityHeaders(super().build_middleware_stack())


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services = build_services(settings)
        app.state.services = services
        services.worker.start()
        log.info("snapclass %s: data in %s, device %s", __version__, settings.data_dir.resolve(), services.device)
        try:
            yield
        finally:
            services.worker.stop()
            services.engine.dispose()

    # FastAPI's /docs and /redoc load their scripts from a CDN: app.docs serves them from here instead.
    app = SnapclassAPI(title="snapclass", version=__version__, lifespan=lifespan, description=API_DESCRIPTION,
                       docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    for router in (system.router, projects.router, classes.router, samples.router, training.router,
                   predict.router, live.router, models.router, pages_router, docs.router):
        app.include_router(router)
    app.mount(docs.ASSETS_URL, docs.assets, name="docs-assets")
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    # Whatever the login mode: a page on another site must not act through the user's browser.
    app.add_middleware(CrossSiteGuard, allowed_origins=settings.allowed_origins)
    _error_handlers(app)
    return app


def _error_handlers(app: FastAPI) -> None:
    def handler(code: int):
        async def handle(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse(status_code=code, content={"detail": str(exc)})

        return handle

    app.add_exception_handler(crud.NotFound, handler(404))
    app.add_exception_handler(crud.Conflict, handler(409))
    app.add_exception_handler(NoModel, handler(409))
    app.add_exception_handler(BackboneUnavailable, handler(422))
    app.add_exception_handler(CheckpointError, handler(500))
