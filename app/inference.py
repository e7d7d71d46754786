"""The current model of each project, loaded once and kept until a newer one replaces it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker
from torch import nn

from app import crud
from app.db import session_scope
from app.embedders import EmbedderPool
from app.ml import checkpoint, ood
from app.ml.head import head_from_arch
from app.ml.preprocess import prepare
from app.ml.runtime import Embedder
from app.ml.train import head_probabilities
from app.models import TrainedModel

UNKNOWN = "unknown"
# How stale this process's idea of a project's current model may be: a newer model trained anywhere (or a threshold
# moved in another web process) answers predictions here within this time. One small query per project per period.
CURRENT_SECONDS = 0.5


class NoModel(LookupError):
    pass


@dataclass
class Prediction:
    probabilities: np.ndarray
    similarity: float | None


@dataclass
class LoadedModel:
    model_id: int
    version: int
    labels: list[str]
    input_size: int
    embedder: Embedder
    head: nn.Module  # a Head, or a HeadEnsemble
    prototypes: np.ndarray | None
    unknown_threshold: float | None

    def predict(self, images: list[Image.Image]) -> list[Prediction]:
        return self.predict_pixels(np.stack([prepare(img, self.input_size) for img in images]))

    def predict_pixels(self, pixels: np.ndarray) -> list[Prediction]:
        """The answers for uint8 (N, S, S, 3) crops, prepared as documented."""
        feats = self.embedder(pixels)
        probs = head_probabilities(self.head, feats)
        sims = ood.similarity(feats, self.prototypes) if self.prototypes is not None else [None] * len(pixels)
        return [Prediction(p, None if s is None else float(s)) for p, s in zip(probs, sims, strict=True)]

    def answer(self, pred: Prediction, threshold: float | None = None) -> dict:
        """The API's prediction body: classes by score, and "unknown" below the similarity threshold."""
        threshold = self.unknown_threshold if threshold is None else threshold
        order = np.argsort(-pred.probabilities)
        ranked = [{"label": self.labels[i], "score": float(pred.probabilities[i])} for i in order]
        unknown = pred.similarity is not None and threshold is not None and pred.similarity < threshold
        return {"model_id": self.model_id, "model_version": self.version, "predictions": ranked,
                "label": UNKNOWN if unknown else ranked[0]["label"], "unknown": unknown,
                "similarity": pred.similarity, "unknown_threshold": threshold}


def load(row: TrainedModel, embedders: EmbedderPool) -> LoadedModel:
    """A stored model as the server answers with it (also what downloads are checked against)."""
    ckpt = checkpoint.unpack(row.weights)
    head = head_from_arch(ckpt["head_arch"])
    head.load_state_dict(ckpt["head_state"])
    head.eval()
    protos = ckpt.get("prototypes")
    return LoadedModel(row.id, row.version, list(row.labels), embedders.spec(row.features).preprocessing.input_size,
                       embedders.cpu(row.features), head, None if protos is None else protos.numpy(),
                       row.unknown_threshold)


class ModelCache:
    def __init__(self, session_factory: sessionmaker[Session], embedders: EmbedderPool):
        self.session_factory, self.embedders = session_factory, embedders
        self._lock = threading.Lock()
        self._loaded: dict[int, LoadedModel] = {}
        # project -> (when read, current model id, its threshold), so most predictions cost no query. Code in
        # this process that changes either calls invalidate; a change made by another process (a worker on
        # another machine, a second web process) is seen once the entry is CURRENT_SECONDS old.
        self._current: dict[int, tuple[float, int | None, float | None]] = {}

    def invalidate(self, project_id: int) -> None:
        self._current.pop(project_id, None)

    def _current_of(self, project_id: int) -> tuple[int | None, float | None]:
        cached = self._current.get(project_id)
        now = time.monotonic()
        if cached is None or now - cached[0] > CURRENT_SECONDS:
            with session_scope(self.session_factory) as s:
                project = crud.get_project(session=s, project_id=project_id)
                model = project.current_model
                cached = (now, project.current_model_id, model.unknown_threshold if model else None)
            self._current[project_id] = cached
        return cached[1], cached[2]

    def current(self, project_id: int) -> LoadedModel:
        model_id, threshold = self._current_of(project_id)
        if model_id is None:
            raise NoModel("this project has no trained model yet: train it first")
        loaded = self._loaded.get(project_id)
        if loaded is None or loaded.model_id != model_id:
            with self._lock:
                loaded = self._loaded.get(project_id)
                if loaded is None or loaded.model_id != model_id:
                    loaded = self._load(model_id)
                    self._loaded[project_id] = loaded
        loaded.unknown_threshold = threshold  # adjustable while the model stays loaded
        return loaded

    def _load(self, model_id: int) -> LoadedModel:
        with session_scope(self.session_factory) as s:
            return load(crud.get_model(session=s, model_id=model_id), self.embedders)

    def forget(self, project_id: int) -> None:
        self._loaded.pop(project_id, None)
        self.invalidate(project_id)
