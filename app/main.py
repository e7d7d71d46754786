"""create_app(settings): the lifespan starts and stops the worker; routers and static files mounted."""

from __future__ import annotations

import logging
import secrets
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__, accounts, assets, crud, docs, trash
from app.api import (
    auth,
    classes,
    errors,
    events,
    live,
    members,
    models,
    predict,
    projectfile,
    projects,
    samples,
    share,
    system,
    tokens,
    training,
    users,
)
from app.api import trash as trash_api
from app.config import Settings, is_loopback
from app.crosssite import CrossSiteGuard
from app.db import init_db, make_engine, make_session_factory, require_current_schema, session_scope
from app.embedders import EmbedderPool
from app.export_builder import ExportBuilder
from app.headers import SecurityHeaders
from app.inference import ModelCache
from app.jobs import Worker
from app.ml import checkpoint
from app.pages import install_not_found_pages
from app.pages import router as pages_router
from app.queue import QueueRunner
from app.services import Services, resolve_device
from app.storage import BlobStore, ImageStore, make_store
from app.throttle import LoginThrottle
from app.training import make_train_handler, make_warm_up

log = logging.getLogger("snapclass")

API_DESCRIPTION = f"""Self-hosted, no-code image-classifier trainer.

Everything the web page does goes through this API, so a script can do it too.

## Live predictions (WebSocket)

{live.__doc__.split(chr(10), 2)[2]}
"""


def _load_state(factory):
    def load_state(digest: str) -> dict:
        with session_scope(factory) as s:
            return checkpoint.load_state(crud.backbone_state(session=s, digest=digest))

    return load_state


def build_worker_services(settings: Settings, device_setting: str | None = None) -> Services:
    """What `snapclass worker` needs: the database (already at this release's schema: the worker never migrates),
    the photo store, the device's backbones and the training handler. No sweeps: those are serve's."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    require_current_schema(engine)
    device = resolve_device(device_setting or settings.device)
    factory = make_session_factory(engine)
    services = Services(settings=settings, engine=engine, session_factory=factory,
                        store=make_store(settings),
                        embedders=EmbedderPool(settings.cache_dir, device, _load_state(factory),
                                               settings.worker_runtime),
                        device=device)
    services.models = ModelCache(factory, services.embedders)
    return services


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    init_db(engine)
    device = resolve_device(settings.device)
    factory = make_session_factory(engine)
    load_state = _load_state(factory)

    store = make_store(settings)
    trash.purge_expired(factory, store)
    _sweep_orphans(factory, store)
    services = Services(settings=settings, engine=engine, session_factory=factory, store=store,
                        embedders=EmbedderPool(settings.cache_dir, device, load_state, settings.worker_runtime),
                        device=device)
    services.models = ModelCache(services.session_factory, services.embedders)
    if settings.queue_url:  # `snapclass worker` processes train (app.queue); this process only enqueues
        services.worker = QueueRunner(settings.queue_url, factory)
    else:
        services.worker = Worker(services.session_factory, {"train": make_train_handler(services)},
                                 warm_up=make_warm_up(services))
        with session_scope(factory) as s:  # the only worker: pending learning curves died with the last process
            crud.recover_follow_ups(session=s)
    services.exports = ExportBuilder(services)
    services.trash = trash.TrashSweeper(factory, store)
    services.throttle = LoginThrottle(settings.login_free_failures)
    with session_scope(factory) as s:
        accounts.claim_unowned_projects(session=s)
        if accounts.count_users(session=s) == 0:
            services.setup_code = "-".join(f"{secrets.randbelow(10**4):04d}" for _ in range(3))
    return services


def _sweep_orphans(factory, store: BlobStore) -> None:
    """Remove photo files that an upload stopped by a crash wrote before its rows committed."""
    with session_scope(factory) as s:
        shared = s.get_bind().dialect.name != "sqlite"
        keys = crud.all_sample_keys(session=s)
    if shared and isinstance(store, ImageStore):
        # A shared database may have other processes uploading into the same folder right now (their files are
        # written before their rows commit): nothing is swept that could be theirs. (The S3 store sweeps only
        # objects older than an hour.)
        return
    if not keys:
        # No sample at all beside photos on disk looks more like a database pointed elsewhere (DATABASE_URL) than
        # a crash: deleting every photo could not be undone, so leave them.
        if store.has_any():
            log.warning("the database has no samples but %s holds photo files: left alone", store.describe())
        return
    removed = store.remove_orphans(keys)
    if removed:
        log.info("removed %d files under %s left by interrupted uploads", removed, store.describe())


def announce_access(settings: Settings, services: Services) -> None:
    """Say in the log who can reach the server, and how the first account is made."""
    if settings.auth == "off" and not is_loopback(settings.listen_host):
        log.warning("!!! LOGIN IS OFF on %s, a non-loopback address: anyone who can reach this server can see, "
                    "change and delete every project. Use --auth auto or required unless that is really meant.",
                    settings.listen_host)
    if services.setup_code:
        where = f"http://{settings.listen_host}:{settings.listen_port}/setup"
        need = "required" if settings.login_required else "optional on this loopback address"
        log.warning("No accounts yet (login %s). Make the first admin account at %s with the one-time code %s "
                    "(or run: snapclass users add NAME --admin)", need, where, services.setup_code)

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
        services.exports.start()
        services.trash.start()
        log.info("snapclass %s: data in %s, device %s, login %s", __version__, settings.data_dir.resolve(),
                 services.device, "required" if settings.login_required else "off")
        announce_access(settings, services)
        try:
            yield
        finally:
            services.trash.stop()
            services.exports.stop()
            services.worker.stop()
            services.engine.dispose()

    # FastAPI's /docs and /redoc load their scripts from a CDN: app.docs serves them (and the schema) instead.
    app = SnapclassAPI(title="snapclass", version=__version__, lifespan=lifespan, description=API_DESCRIPTION,
                       docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None,
                       openapi_url=None)  # app.docs serves the schema, behind the login like /docs
    for router in (system.router, auth.router, tokens.router, users.router, projectfile.router, projects.router,
                   members.router, classes.router, samples.router, trash_api.router, training.router, predict.router,
                   share.router, live.router, models.router, events.router, pages_router, docs.router):
        app.include_router(router)
    app.mount(docs.ASSETS_URL, docs.assets, name="docs-assets")
    app.mount("/static", StaticFiles(directory=assets.STATIC), name="static")
    # Whatever the login mode: a page on another site must not act through the user's browser.
    app.add_middleware(CrossSiteGuard, allowed_origins=settings.allowed_origins)
    errors.install(app)
    install_not_found_pages(app)  # HTML "not found" for pages, around errors' JSON answers
    return app
