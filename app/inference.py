"""The current model of each project, loaded once and kept until a newer one replaces it."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from app import crud
from app.db import session_scope
from app.embedders import EmbedderPool
from app.ml import checkpoint
from app.ml.backbones import get_spec
from app.ml.head import Head
from app.ml.preprocess import prepare, to_input
from app.ml.runtime import Embedder
from app.ml.train import head_probabilities


class NoModel(LookupError):
    pass


@dataclass
class LoadedModel:
    model_id: int
    version: int
    labels: list[str]
    input_size: int
    embedder: Embedder
    head: Head

    def predict(self, images: list[Image.Image]) -> np.ndarray:
        pixels = np.stack([prepare(img, self.input_size) for img in images])
        return head_probabilities(self.head, self.embedder(to_input(pixels)))


class ModelCache:
    def __init__(self, session_factory: sessionmaker[Session], embedders: EmbedderPool):
        self.session_factory, self.embedders = session_factory, embedders
        self._lock = threading.Lock()
        self._loaded: dict[int, LoadedModel] = {}

    def current(self, project_id: int) -> LoadedModel:
        with session_scope(self.session_factory) as s:
            project = crud.get_project(session=s, project_id=project_id)
            model_id = project.current_model_id
        if model_id is None:
            raise NoModel("this project has no trained model yet: train it first")
        loaded = self._loaded.get(project_id)
        if loaded is not None and loaded.model_id == model_id:
            return loaded
        with self._lock:
            loaded = self._loaded.get(project_id)
            if loaded is None or loaded.model_id != model_id:
                loaded = self._load(model_id)
                self._loaded[project_id] = loaded
            return loaded

    def _load(self, model_id: int) -> LoadedModel:
        with session_scope(self.session_factory) as s:
            row = crud.get_model(session=s, model_id=model_id)
            ckpt = checkpoint.unpack(row.weights)
            backbone, labels, version = row.backbone, list(row.labels), row.version
        head = Head.from_arch(ckpt["head_arch"])
        head.load_state_dict(ckpt["head_state"])
        head.eval()
        spec = get_spec(backbone)
        return LoadedModel(model_id, version, labels, spec.preprocessing.input_size,
                           self.embedders.cpu(backbone), head)

    def forget(self, project_id: int) -> None:
        self._loaded.pop(project_id, None)


def ranked(labels: list[str], probs: np.ndarray) -> list[dict]:
    order = np.argsort(-probs)
    return [{"label": labels[i], "score": float(probs[i])} for i in order]
