"""HTML routes: server-rendered pages; the JSON API does the work behind them."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from starlette.exceptions import HTTPException

from app import __version__, access, accounts, assets, changes, crud, export_help, sharing
from app.api.deps import ActorDep, ServicesDep, SessionDep
from app.api.views import project_detail, project_out
from app.db import session_scope
from app.exports import ALL_FORMATS, download_name
from app.ml.backbones import BackboneUnavailable, get_spec, list_backbones
from app.models import ImageClass
from app.security import Actor, Forbidden, identify

templates = Jinja2Templates(directory=assets.TEMPLATES)
templates.env.globals["version"] = __version__

def _mark_change(request: Request, services: ServicesDep) -> None:
    """The change feed's position before the page reads its data: the page's live updates start there, so a change
    made while it loads is not lost (static/js/feed.js)."""
    with session_scope(services.session_factory) as s:
        request.state.change_id = changes.latest_id(s)


router = APIRouter(include_in_schema=False, dependencies=[Depends(_mark_change)])


def _render(request: Request, template: str, context: dict, status_code: int = 200) -> HTMLResponse:
    services = request.app.state.services
    actor = context.get("actor")
    accounts_exist = True
    if actor is not None and actor.is_local:
        # With login off the account menu offers "Sign in" only where there is an account to sign in to.
        with session_scope(services.session_factory) as s:
            accounts_exist = accounts.count_users(session=s) > 0
    response = templates.TemplateResponse(request, template, {
        "device": services.device, "login_required": services.settings.login_required,
        "accounts_exist": accounts_exist, "change_id": getattr(request.state, "change_id", 0), **context},
        status_code=status_code)
    # A page is a snapshot of the database: Back must fetch it again (a project made meanwhile is listed), not
    # show the browser's stored copy; no-store also keeps the page out of the back/forward cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def safe_next(raw: str | None) -> str:
    """Only a path on this server: an open redirect to another site would make the login page a phishing aid."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


@router.get("/", response_class=HTMLResponse)
def index(request: Request, session: SessionDep, services: ServicesDep, actor: ActorDep):
    visible = access.visible_projects(session, actor)
    projects = [project_out(session, p) for p in visible]
    # Each card offers only what the actor may do: a member's card has no delete button, and says whose it is.
    roles = {p.id: {"role": access.level(session, actor, p).role, "owner": p.owner.username if p.owner else None}
             for p in visible}
    return _render(request, "index.html", {
        "actor": actor, "projects": projects, "roles": roles, "backbones": list_backbones(),
        "default_backbone": services.settings.default_backbone})


def _backbone(name: str) -> dict:
    try:
        spec = get_spec(name)
        return {"name": spec.name, "title": spec.title, "input_size": spec.preprocessing.input_size}
    except BackboneUnavailable:  # a project imported from a server with other backbones
        return {"name": name, "title": name, "input_size": None}


def _project_context(project_id: int, session, actor: Actor) -> dict:
    """Every project page gets the same context: the project, as the API shows it, and its backbone."""
    project = project_detail(session, access.project(session, actor, project_id), actor)
    backbone = _backbone(project.backbone)
    project_json = {**project.model_dump(mode="json"), "input_size": backbone["input_size"]}
    return {"actor": actor, "project": project, "project_json": project_json, "backbone": backbone}


def _project_page(template: str, project_id: int, request: Request, session, actor: Actor) -> HTMLResponse:
    return _render(request, template, _project_context(project_id, session, actor))


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(project_id: int, request: Request, session: SessionDep, services: ServicesDep, actor: ActorDep):
    """The project, with the Export dialog's tabs: one per download format, its code made for this model."""
    context = _project_context(project_id, session, actor)
    project, model = context["project"], context["project"].model
    file_names = {fmt: download_name(project.name, model.version if model else 1, fmt) for fmt in ALL_FORMATS}
    context["export_tabs"] = export_help.dialog_tabs(
        formats=list(ALL_FORMATS), file_names=file_names, labels=model.labels if model else [],
        input_size=context["backbone"]["input_size"], origin=str(request.base_url).rstrip("/"),
        project_id=project.id, login_required=services.settings.login_required)
    return _render(request, "project.html", context)


@router.get("/projects/{project_id}/models", response_class=HTMLResponse)
def models_page(project_id: int, request: Request, session: SessionDep, actor: ActorDep):
    """Model versions and the evaluation of each; the data comes from /api/projects/{id}/models."""
    return _project_page("models.html", project_id, request, session, actor)


@router.get("/projects/{project_id}/live", response_class=HTMLResponse)
def live_page(project_id: int, request: Request, session: SessionDep, actor: ActorDep):
    """The webcam live test: frames go over the WebSocket at /api/projects/{id}/live."""
    return _project_page("live.html", project_id, request, session, actor)


# --- accounts ---


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, session: SessionDep, services: ServicesDep, next: str | None = None):
    if accounts.count_users(session=session) == 0:
        return RedirectResponse("/setup", status_code=303)
    return _render(request, "login.html", {"actor": None, "next": safe_next(next)})


@router.get("/setup", response_class=HTMLResponse)
def setup_page(request: Request, session: SessionDep):
    """The first account, made once with the code `serve` printed in its log."""
    if accounts.count_users(session=session) > 0:
        return RedirectResponse("/login", status_code=303)
    return _render(request, "setup.html", {"actor": None})


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, actor: ActorDep):
    """Change your password; make and revoke API tokens."""
    return _render(request, "account.html", {"actor": actor})


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, actor: ActorDep):
    """Accounts: create one or many (a class list), reset a password, make admin, remove."""
    if not actor.is_admin:
        raise Forbidden("only an admin may manage accounts")
    return _render(request, "admin.html", {"actor": actor})


# --- the public share page ---


@router.get("/s/{token}", response_class=HTMLResponse)
def share_page(token: str, request: Request, session: SessionDep, services: ServicesDep):
    """A project's current model, tried on a photo or the webcam by anyone with the link; no login.
    A revoked or unknown link is a page that says so (404), not the API's JSON error."""
    try:  # a signed-in visitor still sees the account menu
        actor = identify(request, session, services.settings)
    except Exception:
        actor = None
    try:
        shared = sharing.shared_model(session=session, token=token)
    except crud.NotFound:
        return _render(request, "share.html", {"actor": actor, "share": None}, status_code=404)
    context = {**shared.page_context(token), "colors": _shared_colors(session, shared)}
    return _render(request, "share.html", {"actor": actor, "share": context})


def _shared_colors(session, shared: sharing.SharedProject) -> dict[str, str]:
    """label -> colour for the share page's bars: by the model's class ids, so a class renamed since training
    keeps its colour; a label whose class is gone has none (the page shows it neutral)."""
    model = shared.model
    if model is None:
        return {}
    colors = dict(session.execute(select(ImageClass.id, ImageClass.color)
                                  .where(ImageClass.id.in_(list(model.class_ids)))).all())
    return {label: colors[cid] for label, cid in zip(model.labels, model.class_ids, strict=False)
            if colors.get(cid)}


# --- the site icon, and "page not found" ---

FAVICON = assets.STATIC / "favicon.ico"


@router.get("/favicon.ico")
def favicon():
    """Browsers ask every site for /favicon.ico, before and without reading a page; public, like /static."""
    return FileResponse(FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})


def wants_page(request: Request) -> bool:
    """A browser opening a page (not a script calling the JSON API, whose errors stay JSON: the contract)."""
    return (request.method in ("GET", "HEAD") and not request.url.path.startswith("/api/")
            and "text/html" in request.headers.get("accept", ""))


def _not_found_page(request: Request, project: bool) -> HTMLResponse:
    services = request.app.state.services
    try:  # a signed-in visitor still sees the account menu; anyone else, the page alone
        with session_scope(services.session_factory) as s:
            actor = identify(request, s, services.settings)
    except Exception:
        actor = None
    if project:  # the same words whether it never existed or is someone else's: nothing to learn from it
        heading, text = ("Project not found",
                         "This project does not exist, or it was deleted, or it is not shared with you.")
    else:
        heading, text = ("Page not found",
                         "There is no page at this address. The link may be mistyped, or what it led to was deleted.")
    return _render(request, "404.html", {"actor": actor, "heading": heading, "text": text,
                                         "path": request.url.path}, status_code=404)


def install_not_found_pages(app: FastAPI) -> None:
    """Pages answer "not found" as an HTML page in the site's style; everything else keeps the JSON answer of
    the handler already installed (app.api.errors), which this wraps. Call after errors.install."""

    def wrap(exc_class: type[Exception], is_not_found, project: bool = False) -> None:
        answer_json = app.exception_handlers[exc_class]

        async def handle(request: Request, exc: Exception):
            if wants_page(request) and is_not_found(exc):
                return await run_in_threadpool(_not_found_page, request, project)
            return await answer_json(request, exc)

        app.add_exception_handler(exc_class, handle)

    wrap(crud.NotFound, lambda exc: True, project=True)  # /projects/{id} and its pages
    wrap(HTTPException, lambda exc: exc.status_code == 404)  # no route at all
    # /projects/abc: a path that cannot name anything is no page either (a bad query stays a 422).
    wrap(RequestValidationError, lambda exc: bool(exc.errors()) and all(
        (e.get("loc") or ("",))[0] == "path" for e in exc.errors()))
