"""HTML routes: server-rendered pages; the JSON API does the work behind them."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app import __version__, crud
from app.api.deps import ServicesDep, SessionDep
from app.api.views import project_detail, project_out
from app.ml.backbones import BackboneUnavailable, get_spec, list_backbones

templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
templates.env.globals["version"] = __version__

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index(request: Request, session: SessionDep, services: ServicesDep):
    projects = [project_out(session, p) for p in crud.list_projects(session=session)]
    return templates.TemplateResponse(request, "index.html", {
        "projects": projects, "backbones": list_backbones(), "device": services.device,
        "default_backbone": services.settings.default_backbone})


def _backbone(name: str) -> dict:
    try:
        spec = get_spec(name)
        return {"name": spec.name, "title": spec.title, "input_size": spec.preprocessing.input_size}
    except BackboneUnavailable:  # a project imported from a server with other backbones
        return {"name": name, "title": name, "input_size": None}


def _project_page(template: str, project_id: int, request: Request, session, services) -> HTMLResponse:
    """Every project page gets the same context: the project, as the API shows it, and its backbone."""
    project = project_detail(session, crud.get_project(session=session, project_id=project_id))
    backbone = _backbone(project.backbone)
    project_json = {**project.model_dump(mode="json"), "input_size": backbone["input_size"]}
    return templates.TemplateResponse(request, template, {
        "project": project, "project_json": project_json, "backbone": backbone,
        "device": services.device})


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(project_id: int, request: Request, session: SessionDep, services: ServicesDep):
    return _project_page("project.html", project_id, request, session, services)


@router.get("/projects/{project_id}/models", response_class=HTMLResponse)
def models_page(project_id: int, request: Request, session: SessionDep, services: ServicesDep):
    """Model versions and the evaluation of each; the data comes from /api/projects/{id}/models."""
    return _project_page("models.html", project_id, request, session, services)


@router.get("/projects/{project_id}/live", response_class=HTMLResponse)
def live_page(project_id: int, request: Request, session: SessionDep, services: ServicesDep):
    """The webcam live test: frames go over the WebSocket at /api/projects/{id}/live."""
    return _project_page("live.html", project_id, request, session, services)
