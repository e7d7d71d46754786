"""The train job: embed what is new, train a head on the cached embeddings, store the model."""

from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image

from app import crud
from app.db import session_scope
from app.jobs import JobContext, JobOutcome
from app.ml import checkpoint
from app.ml.backbones import get_spec
from app.ml.evaluate import classification_report
from app.ml.features import iter_embeddings
from app.ml.split import split_by_group
from app.ml.train import HeadConfig, head_probabilities, train_head
from app.models import TrainedModel
from app.services import Services
from app.storage import WORK

EXTRACT_SHARE = 0.7  # of the progress bar, while embeddings are computed


class NotTrainable(ValueError):
    """The project lacks what training needs; the message says what, in words."""


def check_trainable(class_counts: dict[str, int]) -> None:
    empty = [name for name, n in class_counts.items() if n == 0]
    if len(class_counts) < 2:
        raise NotTrainable("add at least two classes before training")
    if empty:
        raise NotTrainable("every class needs at least one image; empty: " + ", ".join(sorted(empty)))


def head_config(params: dict) -> HeadConfig:
    cfg = HeadConfig()
    for name in ("epochs", "batch_size", "learning_rate", "hidden", "dropout", "weight_decay",
                 "label_smoothing", "seed"):
        if params.get(name) is not None:
            setattr(cfg, name, type(getattr(cfg, name))(params[name]))
    return cfg


def make_train_handler(services: Services):
    def handle(ctx: JobContext) -> JobOutcome:
        return run_training(services, ctx)

    return handle


def _load_work_image(services: Services):
    def load(item) -> Image.Image:
        img = Image.open(io.BytesIO(services.store.read(item[2], WORK)))
        return img.convert("RGB")

    return load


def extract_missing(services: Services, ctx: JobContext, backbone: str, samples: list) -> dict:
    """Embed the samples that have no cached embedding yet; returns timing notes."""
    spec = get_spec(backbone)
    with session_scope(services.session_factory) as s:
        have = crud.embeddings_for(session=s, sample_ids=[x[0] for x in samples], backbone=backbone,
                                   version=spec.feature_version)
    missing = [x for x in samples if x[0] not in have]
    notes = {"embedded_new": len(missing), "embedded_cached": len(samples) - len(missing)}
    if not missing:
        return notes
    ctx.progress(0.01, f"preparing {spec.title}", force=True)
    embedder = services.embedders.for_worker(backbone)
    start, done = time.perf_counter(), 0
    for batch, feats in iter_embeddings(missing, _load_work_image(services), embedder,
                                        size=spec.preprocessing.input_size):
        if ctx.should_stop():
            from app.ml.train import TrainingCancelled

            raise TrainingCancelled()
        with session_scope(services.session_factory) as s:
            crud.store_embeddings(session=s, vectors={x[0]: f for x, f in zip(batch, feats, strict=True)},
                                  backbone=backbone, version=spec.feature_version)
        done += len(batch)
        ctx.progress(EXTRACT_SHARE * done / len(missing), f"reading images: {done}/{len(missing)}")
    seconds = time.perf_counter() - start
    notes.update(extract_seconds=round(seconds, 3), extract_images_per_second=round(done / seconds, 1),
                 runtime=getattr(embedder, "name", "?"))
    return notes


def run_training(services: Services, ctx: JobContext) -> JobOutcome:
    t0 = time.perf_counter()
    with session_scope(services.session_factory) as s:
        project = crud.get_project(session=s, project_id=ctx.project_id)
        backbone, project_name = project.backbone, project.name
        samples = crud.training_samples(session=s, project_id=ctx.project_id)
        counts = crud.sample_counts(session=s, project_id=ctx.project_id)
        classes = [(c.id, c.name) for c in project.classes if counts.get(c.id)]
    if len(classes) < 2:
        raise NotTrainable("at least two classes with images are needed")
    spec = get_spec(backbone)
    mode = ctx.params.get("mode", "auto")
    ctx.notes["mode"] = "head"
    ctx.notes["mode_reason"] = ("head: a new head on the frozen backbone's cached embeddings"
                                if mode != "head" else "head mode was asked for")
    ctx.notes.update(extract_missing(services, ctx, backbone, samples))

    with session_scope(services.session_factory) as s:
        vectors = crud.embeddings_for(session=s, sample_ids=[x[0] for x in samples], backbone=backbone,
                                      version=spec.feature_version)
    index = {cid: i for i, (cid, _) in enumerate(classes)}
    rows = [x for x in samples if x[0] in vectors and x[1] in index]
    X = np.stack([vectors[x[0]] for x in rows])
    y = np.array([index[x[1]] for x in rows])
    groups = [x[3] or f"sample-{x[0]}" for x in rows]
    cfg = head_config(ctx.params)
    train_idx, val_idx = split_by_group(y, groups, float(ctx.params.get("val_fraction") or 0.15), cfg.seed)

    ctx.progress(EXTRACT_SHARE, "training the head", force=True)
    result = train_head(
        X, y, train_idx, val_idx, len(classes), cfg,
        on_progress=lambda f, msg: ctx.progress(EXTRACT_SHARE + (0.98 - EXTRACT_SHARE) * f, msg),
        should_stop=ctx.should_stop,
    )
    labels = [name for _, name in classes]
    metrics = evaluate_split(result, X, y, train_idx, val_idx, labels, [x[0] for x in rows])
    metrics.update(ctx.notes, head_seconds=round(result.seconds, 3),
                   total_seconds=round(time.perf_counter() - t0, 3),
                   config={"epochs": cfg.epochs, "batch_size": cfg.batch_size,
                           "learning_rate": cfg.learning_rate, "hidden": cfg.hidden})
    weights = checkpoint.pack(head_arch=result.head.arch(), head_state=result.head.state_dict())
    with session_scope(services.session_factory) as s:
        project = crud.get_project(session=s, project_id=ctx.project_id)
        model = TrainedModel(
            project_id=ctx.project_id, version=crud.next_model_version(session=s, project_id=ctx.project_id),
            backbone=backbone, mode="head", labels=labels, class_ids=[cid for cid, _ in classes],
            format_version=checkpoint.FORMAT_VERSION, weights=weights, metrics=metrics,
        )
        s.add(model)
        s.flush()
        project.current_model_id = model.id
        model_id, version = model.id, model.version
    acc = metrics.get("val_accuracy")
    summary = f"model v{version} of {project_name!r} ready" + (f", validation accuracy {acc:.1%}" if acc is not None
                                                                else " (too few images for a validation set)")
    return JobOutcome(model_id=model_id, metrics=metrics, message=summary)


def evaluate_split(result, X, y, train_idx, val_idx, labels, sample_ids) -> dict:
    probs = head_probabilities(result.head, X)
    val = classification_report(y[val_idx], probs[val_idx], labels)
    train = classification_report(y[train_idx], probs[train_idx], labels)
    mistakes = []
    for i in val_idx:
        pred = int(probs[i].argmax())
        if pred != y[i]:
            mistakes.append({"sample_id": int(sample_ids[i]), "true": labels[y[i]], "predicted": labels[pred],
                             "loss": float(-np.log(max(probs[i, y[i]], 1e-7)))})
    mistakes.sort(key=lambda m: -m["loss"])
    return {
        "val_accuracy": val["accuracy"], "train_accuracy": train["accuracy"],
        "val_loss": val["loss"], "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
        "per_class": val["per_class"], "confusion": val["confusion"], "labels": labels,
        "best_epoch": result.best_epoch, "history": result.history, "misclassified": mistakes,
        "val_sample_ids": [int(sample_ids[i]) for i in val_idx],
    }
