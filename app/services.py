"""The long-lived objects of one running server, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.embedders import EmbedderPool
from app.storage import BlobStore
from app.throttle import LoginThrottle


@dataclass
class Services:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    store: BlobStore
    embedders: EmbedderPool
    device: str
    # Set in main.py once built (they need the services themselves).
    worker: object = None
    models: object = None
    exports: object = None  # the ExportBuilder
    trash: object = None  # the TrashSweeper
    throttle: LoginThrottle | None = None
    # The one-time code for making the first account in the browser; None once an account exists.
    setup_code: str | None = None


def resolve_device(setting: str) -> str:
    if setting != "auto":
        return setting
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"
