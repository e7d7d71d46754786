from __future__ import annotations

from fastapi import APIRouter

from app import __version__
from app.api.deps import ServicesDep
from app.ml.backbones import list_backbones
from app.schemas import HealthOut

router = APIRouter(prefix="/api", tags=["system"])


@router.get("/health", response_model=HealthOut)
def health(services: ServicesDep) -> HealthOut:
    return HealthOut(status="ok", version=__version__, device=services.device, backbones=list_backbones())
