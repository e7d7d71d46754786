"""/docs (Swagger UI) and /redoc from our own origin: their scripts ship in fastapi-offline, not a CDN.

FastAPI's own pages load the scripts from a CDN (refused by our CSP, and broken offline) and start them with an
inline <script> (also refused): these pages start them from static/js/swagger-init.js and redoc-init.js.
"""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from app.api.deps import ActorDep
from app.headers import csp
from app.pages import templates

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/static/docs"  # mounted before /static, so it wins for these paths
assets = StaticFiles(directory=ASSETS)
# ReDoc's sidebar always shows Redocly's logo from their CDN: shown from here instead (no third-party request).
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"

router = APIRouter(include_in_schema=False)


def _context(request: Request) -> dict:
    root = request.scope.get("root_path", "")
    return {"title": request.app.title, "openapi_url": root + OPENAPI_URL, "assets": root + ASSETS_URL,
            "static": root + "/static"}


OPENAPI_URL = "/openapi.json"


@router.get(OPENAPI_URL)
def openapi(request: Request, _actor: ActorDep):
    """The schema, for signed-in users when login is on (like every page but the login and share pages)."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request, _actor: ActorDep):
    return templates.TemplateResponse(request, "docs_swagger.html", _context(request))


@cache
def _redoc_bundle() -> bytes:
    return (ASSETS / "redoc.standalone.js").read_text("utf-8").replace(REDOC_LOGO, ASSETS_URL + "/favicon.png").encode()


@router.get(ASSETS_URL + "/redoc.standalone.js")
def redoc_bundle():
    return Response(_redoc_bundle(), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=3600"})


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request, _actor: ActorDep):
    # ReDoc writes <style> elements: allowed by a nonce made for this response alone, which redoc-init.js puts
    # on every <style> the page creates. Its search index runs in a Web Worker made from a blob: URL.
    nonce = secrets.token_urlsafe(18)
    policy = csp(style_src=f"'self' 'nonce-{nonce}'", worker_src="'self' blob:")
    return templates.TemplateResponse(request, "docs_redoc.html", {**_context(request), "nonce": nonce},
                                      headers={"Content-Security-Policy": policy})
