"""Error answers: their body shapes, the standard `responses=` entries routes document them with, and
the handlers that turn our exceptions (and the database's, under concurrent requests) into them."""

from __future__ import annotations

import logging
import re
from html import escape
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from app import accounts, crud
from app.inference import NoModel
from app.ml.backbones import BackboneUnavailable
from app.ml.checkpoint import CheckpointError
from app.security import Forbidden, NotAuthenticated

log = logging.getLogger("snapclass")


class ErrorOut(BaseModel):
    """Every error the API answers itself: one sentence for a person to read."""

    detail: str


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where: body, query or path, then the field")
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class InvalidRequestOut(BaseModel):
    """A request that does not match the schema (FastAPI's own 422): one entry per wrong field."""

    detail: list[FieldError]


# The standard descriptions; routes pick the codes they really answer. 401/403 belong to accounts.
DESCRIPTIONS: dict[int, str] = {
    400: "the request cannot be used as it is",
    401: "not signed in (no valid session or token)",
    403: "signed in, but not allowed to do this",
    404: "no such resource (or it was deleted while the request ran)",
    409: "the resource's current state does not allow it",
    413: "the upload is too large",
    422: "the request does not match the schema (`detail` is a list of field errors), or its values are "
         "understood but refused (`detail` is a sentence)",
}


def error(code: int, description: str | None = None, model: Any = ErrorOut) -> dict[int, dict[str, Any]]:
    """One `responses=` entry: `{**error(404), **error(409, "why")}`."""
    if code == 422 and model is ErrorOut:
        model = ErrorOut | InvalidRequestOut
    return {code: {"model": model, "description": description or DESCRIPTIONS[code]}}


def responses(*codes: int) -> dict[int, dict[str, Any]]:
    """Several standard entries at once, e.g. for a whole router: `responses(404, 422)`."""
    return {code: entry for c in codes for code, entry in error(c).items()}


def _encodable(value: Any) -> Any:
    """Lone surrogates (a JSON "\\ud800" in the request) cannot be written as UTF-8: echoed back in an error,
    they turned a 422 into a 500. Written as their escape instead."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_encodable(v) for v in value]
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    return value


def _handler(code: int, message: str | None = None):
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=code, content={"detail": _encodable(message or str(exc))})

    return handle


async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422, with the rejected input made encodable."""
    return JSONResponse(status_code=422, content={"detail": _encodable(jsonable_encoder(exc.errors()))})


GONE = "it was deleted while this request ran"

# "class 5 not found" read like a broken page; with several tabs and several people the usual cause is a delete
# elsewhere; someone else's is answered alike (ids reveal nothing, app.access). The pages
# put it in plain words of their own (static/js/api.js).
_MISSING = re.compile(r"^(project|class|sample|job|model) (\d+) not found$")


async def _not_found(_request: Request, exc: crud.NotFound) -> JSONResponse:
    message = _MISSING.sub(r"\1 \2 was deleted, never existed, or is not shared with you", str(exc))
    return JSONResponse(status_code=404, content={"detail": _encodable(message)})


async def _integrity(_request: Request, exc: IntegrityError) -> JSONResponse:
    """The database refused a write that our checks let through: another request changed things meanwhile.
    A foreign key means the parent is gone (404, as a moment later); anything else (a unique name) is 409."""
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    gone = sqlstate == "23503" or "FOREIGN KEY" in str(exc.orig).upper()
    log.info("concurrent change refused by the database: %s", exc.orig)
    if gone:
        return JSONResponse(status_code=404, content={"detail": GONE})
    return JSONResponse(status_code=409, content={"detail": "a request made at the same moment changed this; "
                                                            "reload and try again"})


ID_PARTS = ("{project_id}", "{class_id}", "{sample_id}", "{job_id}", "{model_id}")


def _document_access(route: str, method: str, operation: dict[str, Any]) -> None:
    """Every operation that needs a signed-in user may answer 401; those that need a role or admin rights, 403.
    (Reading anything you may see never needs more than being a viewer: GETs on a project's things are 404 or 200.)"""
    if "{" in route:  # whatever the path names (an id, a user name, a share token) may not exist, or not for you
        operation["responses"].setdefault("404", {
            "description": DESCRIPTIONS[404],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}})
    if "security" not in operation:
        return
    needs_role = (method != "get" and any(part in route for part in ID_PARTS)) or route.startswith("/api/users") \
        or route == "/api/projects/{project_id}/share"
    codes = (401, 403) if needs_role else (401,)
    for code in codes:
        operation["responses"].setdefault(str(code), {
            "description": DESCRIPTIONS[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}})


def _document_refusals(operation: dict[str, Any], components: dict[str, Any]) -> None:
    """FastAPI documents its own 422 (a list of field errors) on every operation with parameters; ours also
    answer 422 with a sentence (a name that normalizes to nothing, an unknown backbone): say both."""
    entry = operation.get("responses", {}).get("422")
    if not entry or not {"ErrorOut", "InvalidRequestOut"} <= components.keys():
        return
    content = entry.setdefault("content", {}).setdefault("application/json", {})
    if content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
        content["schema"] = {"anyOf": [{"$ref": "#/components/schemas/ErrorOut"},
                                       {"$ref": "#/components/schemas/InvalidRequestOut"}]}
        entry["description"] = DESCRIPTIONS[422]


def _document_unparsable_bodies(app: FastAPI) -> None:
    """FastAPI answers 400 to any route whose body cannot be parsed at all (bytes that are not UTF-8 JSON,
    broken multipart) before the route runs; say so on every operation that takes a body."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = generate()
        if fresh:
            for route, path in schema.get("paths", {}).items():
                for method, operation in path.items():
                    if isinstance(operation, dict):
                        _document_access(route, method, operation)
                        _document_refusals(operation, schema.get("components", {}).get("schemas", {}))
                    if isinstance(operation, dict) and "requestBody" in operation:
                        operation["responses"].setdefault("400", {
                            "description": "the body cannot be parsed (not JSON, broken multipart)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}})
        return schema

    app.openapi = openapi


def _for_a_person(request: Request) -> bool:
    """A page asked for by a browser (not the JSON API, not a share link's API)."""
    return not request.url.path.startswith(("/api/", "/s/")) and request.url.path != "/openapi.json"


async def _not_authenticated(request: Request, exc: NotAuthenticated):
    if _for_a_person(request) and request.method in ("GET", "HEAD"):
        from app.pages import login_redirect  # pages import the API's dependencies, which import this module

        return login_redirect(request)
    return JSONResponse(status_code=401, content={"detail": str(exc)}, headers={"WWW-Authenticate": "Bearer"})


async def _forbidden(request: Request, exc: Forbidden):
    if _for_a_person(request):
        return HTMLResponse(f"<!doctype html><title>Not allowed</title><h1>Not allowed</h1><p>{escape(str(exc))}"
                            "</p><p><a href='/'>All projects</a></p>", status_code=403)
    return JSONResponse(status_code=403, content={"detail": str(exc)})


def install(app: FastAPI) -> None:
    _document_unparsable_bodies(app)
    app.add_exception_handler(NotAuthenticated, _not_authenticated)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(accounts.InvalidInput, _handler(422))
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(crud.NotFound, _not_found)
    app.add_exception_handler(crud.Conflict, _handler(409))
    app.add_exception_handler(NoModel, _handler(409))
    app.add_exception_handler(BackboneUnavailable, _handler(422))
    app.add_exception_handler(CheckpointError, _handler(500))
    # A row read at the start of a request can be deleted by another one before this one writes it.
    app.add_exception_handler(StaleDataError, _handler(404, GONE))
    app.add_exception_handler(ObjectDeletedError, _handler(404, GONE))
    app.add_exception_handler(IntegrityError, _integrity)
