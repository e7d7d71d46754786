"""HTML routes: server-rendered pages; the JSON API does the work behind them."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app import __version__, crud
from app.api.deps import ServicesDep, SessionDep
from app.api.views import project_detail, project_out
from app.ml.backbones import list_backbones

templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
templates.env.globals["version"] = __version__

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index(request: Request, session: SessionDep, services: ServicesDep):
    projects = [project_out(session, p) for p in crud.list_projects(session=session)]
    return templates.TemplateResponse(request, "index.html", {
        "projects": projects, "backbones": list_backbones(), "device": services.device,
        "default_backbone": services.settings.default_backbone})


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(project_id: int, request: Request, session: SessionDep):
    project = crud.get_project(session=session, project_id=project_id)
    return templates.TemplateResponse(request, "project.html", {"project": project_detail(session, project)})
