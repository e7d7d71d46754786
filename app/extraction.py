"""What the train job computes from the stored photos: embeddings (kept in the database, so a
retrain only embeds what is new) and, for fine-tuning on the CPU, the frozen front's activations."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from app import crud
from app.db import session_scope
from app.jobs import JobContext
from app.ml.augment import augmented_view
from app.ml.backbones import BackboneSpec
from app.ml.features import iter_embeddings
from app.ml.preprocess import prepare
from app.ml.runtime import Embedder
from app.ml.train import TrainingCancelled
from app.services import Services
from app.storage import WORK, input_kind

Item = tuple[int, str]  # (sample id, storage key)
Report = Callable[[float, str], None]


def loader(services: Services) -> Callable[[str], Image.Image]:
    def load(key: str) -> Image.Image:
        return Image.open(io.BytesIO(services.store.read(key, WORK))).convert("RGB")

    return load


def pixels(services: Services, spec: BackboneSpec, view: int) -> Callable[[Item], np.ndarray]:
    """Sample -> uint8 (S, S, 3): the crop stored at upload for view 0, else augmented view `view`."""
    load, size = loader(services), spec.preprocessing.input_size

    def get(item: Item) -> np.ndarray:
        if view == 0:
            try:
                crop = np.load(io.BytesIO(services.store.read(item[1], input_kind(size))), allow_pickle=False)
                if crop.shape == (size, size, 3):
                    return crop
            except FileNotFoundError:
                pass
            return prepare(load(item[1]), size)
        return augmented_view(load(item[1]), size, view, item[0])

    return get


def embed(services: Services, ctx: JobContext, features: str, spec: BackboneSpec, ids: list[int], keys: list[str],
          view: int, report: Report) -> tuple[np.ndarray, dict]:
    """Embeddings of `ids` (plain images for view 0, else an augmented view), computing only the missing."""
    version = spec.feature_version + (f"-v{view}" if view else "")
    with session_scope(services.session_factory) as s:
        have = crud.embeddings_for(session=s, sample_ids=ids, backbone=features, version=version)
    missing = [(i, k) for i, k in zip(ids, keys, strict=True) if i not in have]
    notes: dict = {}
    if missing:
        embedder = services.embedders.for_worker(features)
        start, done = time.perf_counter(), 0
        what = "reading images" if view == 0 else f"augmented view {view}"
        for batch, feats in iter_embeddings(missing, pixels(services, spec, view), embedder):
            if ctx.should_stop():
                raise TrainingCancelled()
            vectors = {item[0]: f for item, f in zip(batch, feats, strict=True)}
            with session_scope(services.session_factory) as s:
                crud.store_embeddings(session=s, vectors=vectors, backbone=features, version=version)
            have.update(vectors)
            done += len(batch)
            report(done / len(missing), f"{what}: {done}/{len(missing)}")
        seconds = time.perf_counter() - start
        notes = {"seconds": round(seconds, 3), "images_per_second": round(done / seconds, 1),
                 "runtime": getattr(embedder, "name", "?")}
    notes.update(new=len(missing), cached=len(ids) - len(missing))
    return np.stack([have[i] for i in ids]), notes


def activations(services: Services, ctx: JobContext, front: Embedder, spec: BackboneSpec, items: list[Item],
                view: int, report: Report) -> np.ndarray:
    """The front's output for `items` in float16 (half the memory; the blocks that train upcast it).
    Not kept: it is only worth having for the job that fine-tunes."""
    out, done = [], 0
    for batch, acts in iter_embeddings(items, pixels(services, spec, view), front):
        if ctx.should_stop():
            raise TrainingCancelled()
        out.append(acts.astype(np.float16))
        done += len(batch)
        report(done / len(items), f"{'photos' if view == 0 else f'augmented view {view}'} through the frozen "
               f"front: {done}/{len(items)}")
    return np.concatenate(out)


def embed_with(embedder: Embedder, services: Services, spec: BackboneSpec, items: list[Item],
               report: Report) -> np.ndarray:
    """Embeddings by a network outside the cache (a fine-tuned one, before it is stored)."""
    out, done = [], 0
    for batch, feats in iter_embeddings(items, pixels(services, spec, 0), embedder):
        out.append(feats)
        done += len(batch)
        report(done / len(items), "embedding with the fine-tuned network")
    return np.concatenate(out)
