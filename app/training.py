"""The train job: embed what is new, train (head, or head then fine-tuning), evaluate, store the model."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from app import crud
from app.db import session_scope
from app.jobs import JobContext, JobOutcome
from app.ml import checkpoint, ood, plan
from app.ml.augment import augmented_view
from app.ml.backbones import BackboneSpec
from app.ml.crossval import FOLDS, fold_splits, train_cross_validated
from app.ml.curves import learning_curves
from app.ml.evaluate import classification_report
from app.ml.features import iter_embeddings
from app.ml.finetune import FinetuneConfig, finetune
from app.ml.preprocess import prepare
from app.ml.runtime import FeatureNet, TorchEmbedder
from app.ml.split import kfold_by_group, split_by_group
from app.ml.train import HeadConfig, TrainingCancelled, head_probabilities, train_head
from app.models import TrainedModel
from app.services import Services
from app.storage import WORK, input_kind

# Wall-clock budget `auto` plans within, and the epochs fine-tuning would need.
AUTO_BUDGET_S = 240.0
FINETUNE_EPOCHS = 8


class NotTrainable(ValueError):
    """The project lacks what training needs; the message says what, in words."""


def check_trainable(class_counts: dict[str, int]) -> None:
    empty = [name for name, n in class_counts.items() if n == 0]
    if len(class_counts) < 2:
        raise NotTrainable("add at least two classes before training")
    if empty:
        raise NotTrainable("every class needs at least one image; empty: " + ", ".join(sorted(empty)))


def _override(cfg, params: dict, names: tuple[str, ...]):
    for name in names:
        if params.get(name) is not None:
            setattr(cfg, name, type(getattr(cfg, name))(params[name]))
    return cfg


def head_config(params: dict, recipe: str) -> HeadConfig:
    """Teachable Machine's recipe, or ours: large batches (a retrain of 720 embeddings takes well under
    a second, where batches of 16 take several), dropout and label smoothing. Measured on hymenoptera
    and cifar10-mini it matches or beats the Teachable-Machine recipe (bench/accuracy.py)."""
    cfg = HeadConfig() if recipe == "teachable-machine" else HeadConfig(
        hidden=64, dropout=0.3, label_smoothing=0.1, epochs=40, batch_size=128, learning_rate=3e-3)
    return _override(cfg, params, ("epochs", "batch_size", "learning_rate", "hidden", "dropout", "weight_decay",
                                   "label_smoothing", "seed"))


def finetune_config(params: dict) -> FinetuneConfig:
    cfg = _override(FinetuneConfig(epochs=FINETUNE_EPOCHS), params,
                    ("batch_size", "unfreeze", "augment", "seed", "weight_decay", "label_smoothing"))
    if params.get("finetune_epochs") is not None:
        cfg.epochs = int(params["finetune_epochs"])
    if params.get("finetune_learning_rate") is not None:
        cfg.learning_rate = float(params["finetune_learning_rate"])
    return cfg


def make_train_handler(services: Services):
    def handle(ctx: JobContext) -> JobOutcome:
        return run_training(services, ctx)

    return handle


@dataclass
class Dataset:
    ids: list[int]  # sample ids
    keys: list[str]
    y: np.ndarray
    groups: list[str]
    labels: list[str]
    class_ids: list[int]


class Stages:
    """Maps each stage's own 0..1 onto its share of the job's progress bar."""

    def __init__(self, ctx: JobContext, shares: dict[str, float]):
        self.ctx, self.bounds, lo = ctx, {}, 0.0
        total = sum(shares.values())
        for name, share in shares.items():
            self.bounds[name] = (lo, lo + 0.98 * share / total)
            lo += 0.98 * share / total

    def report(self, stage: str):
        lo, hi = self.bounds[stage]
        return lambda f, msg: self.ctx.progress(lo + (hi - lo) * f, msg)


def _load_dataset(services: Services, project_id: int) -> tuple[str, str, Dataset]:
    with session_scope(services.session_factory) as s:
        project = crud.get_project(session=s, project_id=project_id)
        features, name = project.features, project.name
        samples = crud.training_samples(session=s, project_id=project_id)
        counts = crud.sample_counts(session=s, project_id=project_id)
        classes = [(c.id, c.name) for c in project.classes if counts.get(c.id)]
    if len(classes) < 2:
        raise NotTrainable("at least two classes with images are needed")
    index = {cid: i for i, (cid, _) in enumerate(classes)}
    rows = [x for x in samples if x[1] in index]
    return features, name, Dataset(
        ids=[x[0] for x in rows], keys=[x[2] for x in rows], y=np.array([index[x[1]] for x in rows]),
        groups=[x[3] or f"sample-{x[0]}" for x in rows], labels=[n for _, n in classes],
        class_ids=[c for c, _ in classes])


def _loader(services: Services):
    def load(key: str) -> Image.Image:
        return Image.open(io.BytesIO(services.store.read(key, WORK))).convert("RGB")

    return load


def embed(services: Services, ctx: JobContext, features: str, spec: BackboneSpec, ids: list[int], keys: list[str],
          view: int, report) -> tuple[np.ndarray, dict]:
    """Embeddings of `ids` (plain images for view 0, else an augmented view), computing only the missing."""
    version = spec.feature_version + (f"-v{view}" if view else "")
    with session_scope(services.session_factory) as s:
        have = crud.embeddings_for(session=s, sample_ids=ids, backbone=features, version=version)
    missing = [(i, k) for i, k in zip(ids, keys, strict=True) if i not in have]
    notes: dict = {}
    if missing:
        load, size = _loader(services), spec.preprocessing.input_size

        def pixels(item):
            if view == 0:
                try:  # the crop stored at upload, when it is there and of this size
                    crop = np.load(services.store.path(item[1], input_kind(size)), allow_pickle=False)
                    if crop.shape == (size, size, 3):
                        return crop
                except FileNotFoundError:
                    pass
                return prepare(load(item[1]), size)
            return augmented_view(load(item[1]), size, view, item[0])

        embedder = services.embedders.for_worker(features)
        start, done = time.perf_counter(), 0
        what = "reading images" if view == 0 else f"augmented view {view}"
        for batch, feats in iter_embeddings(missing, pixels, embedder):
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


def run_training(services: Services, ctx: JobContext) -> JobOutcome:
    t0 = time.perf_counter()
    features, project_name, data = _load_dataset(services, ctx.project_id)
    spec = services.embedders.spec(features)
    params = ctx.params
    choice = plan.choose(params.get("mode", "auto"), device=services.device, n_images=len(data.ids),
                         finetune_epochs=finetune_config(params).epochs, budget_s=AUTO_BUDGET_S,
                         views=params.get("augment_views"), recipe=params.get("recipe"))
    ctx.notes.update(mode=choice.mode, mode_reason=choice.reason, recipe=choice.recipe, device=services.device)
    ctx.progress(0.0, choice.reason, force=True)
    stages = Stages(ctx, {"extract": 3.0, "views": 1.5 * choice.views, "head": 0.7,
                          "finetune": 8.0 if choice.mode == "finetune" else 0.0, "evaluate": 0.5})

    X, notes = embed(services, ctx, features, spec, data.ids, data.keys, 0, stages.report("extract"))
    ctx.notes.update(embedded_new=notes["new"], embedded_cached=notes["cached"],
                     **{f"extract_{k}": v for k, v in notes.items() if k not in ("new", "cached")})
    head_cfg = head_config(params, choice.recipe)
    n_folds = int(params.get("folds") or FOLDS)
    cross_validate = choice.mode == "head" and choice.recipe == "snapclass" and n_folds > 1
    if cross_validate:
        folds = kfold_by_group(data.y, data.groups, n_folds, head_cfg.seed)
        splits = fold_splits(folds)
        train_idx = np.arange(len(data.y))  # the answering heads, together, learned from every photo
        val_idx = np.flatnonzero(folds >= 0)
    else:
        train_idx, val_idx = split_by_group(data.y, data.groups, float(params.get("val_fraction") or 0.15),
                                            head_cfg.seed)
        splits = [(train_idx, val_idx)] if len(val_idx) else []

    # Augmented views of training images only: validation judges plain images, as users send.
    views, views_report = [], stages.report("views")
    for view in range(1, choice.views + 1):
        Xv, _ = embed(services, ctx, features, spec, [data.ids[i] for i in train_idx],
                      [data.keys[i] for i in train_idx], view,
                      lambda f, msg, v=view: views_report((v - 1 + f) / choice.views, msg))
        views.append(Xv)

    # Phase one: the head on cached embeddings.
    if cross_validate:
        cv = train_cross_validated(X, data.y, folds, len(data.labels), head_cfg, views,
                                   on_progress=stages.report("head"), should_stop=ctx.should_stop)
        head, history, head_seconds = cv.head, cv.history, cv.seconds
        best_epoch = int(np.median(cv.best_epochs))
        ctx.notes.update(best_epochs=cv.best_epochs)
        val_probs = cv.held_out_probs
    else:
        n_train = len(train_idx) * (1 + len(views))
        Xall = np.concatenate([X[train_idx], *views, X[val_idx]])
        yall = np.concatenate([data.y[train_idx]] * (1 + len(views)) + [data.y[val_idx]])
        head_result = train_head(Xall, yall, np.arange(n_train), np.arange(n_train, len(Xall)), len(data.labels),
                                 head_cfg, on_progress=stages.report("head"), should_stop=ctx.should_stop)
        head, history, best_epoch = head_result.head, list(head_result.history), head_result.best_epoch
        head_seconds, val_probs = head_result.seconds, None
    for row in history:
        row["phase"] = "head"
    digest, model_features = None, features

    if choice.mode == "finetune":
        ft_cfg = finetune_config(params)
        load = _loader(services)
        result = finetune(services.embedders.backbone(features), head, spec.preprocessing,
                          lambda i: load(data.keys[i]), [int(i) for i in train_idx], data.y[train_idx],
                          [int(i) for i in val_idx], data.y[val_idx], ft_cfg,
                          device=services.device, on_progress=stages.report("finetune"),
                          should_stop=ctx.should_stop)
        head_epochs = len(history)
        head, best_epoch = result.head, head_epochs + result.best_epoch
        history += [{**row, "phase": "finetune", "epoch": head_epochs + row["epoch"]} for row in result.history]
        ctx.notes.update(finetune_seconds=round(result.seconds, 3), finetune_stopped=result.stopped_early,
                         unfreeze=ft_cfg.unfreeze)
        with session_scope(services.session_factory) as s:
            digest = crud.store_backbone_weights(session=s, backbone=spec.name,
                                                 state=checkpoint.state_bytes(result.backbone.state_dict()))
        model_features = f"{spec.name}@{digest}"
        # Evaluation and "none of these" need embeddings of the fine-tuned network.
        report = stages.report("evaluate")
        embedder = TorchEmbedder(FeatureNet(result.backbone, spec.preprocessing), services.device)
        X, _ = _embed_uncached(data.keys, load, spec, embedder, report)

    stages.report("evaluate")(0.5, "evaluating")
    labels = data.labels
    probs = head_probabilities(head, X)
    metrics = evaluation(probs if val_probs is None else val_probs, probs, data, train_idx, val_idx)
    metrics["validation"] = (
        {"method": "none"} if not splits else {"method": "cross-validation", "folds": len(splits)}
        if cross_validate else {"method": "split", "fraction": float(params.get("val_fraction") or 0.15)})
    protos = ood.prototypes(X[train_idx], data.y[train_idx], len(labels), head_cfg.seed)
    threshold = ood.calibrate(np.concatenate([ood.held_out_scores(X, data.y, splits, len(labels), head_cfg.seed),
                                              ood.leave_one_out(protos)]))
    if choice.mode == "head" and splits:
        full = {"accuracy": metrics["val_accuracy"], "per_class": metrics["per_class"]}
        metrics["learning_curves"] = learning_curves(X, data.y, splits, labels, head_config(params, "snapclass"),
                                                     full, head_cfg.seed)
    metrics.update(ctx.notes, history=history, best_epoch=best_epoch, head_seconds=round(head_seconds, 3),
                   augment_views=choice.views, unknown_threshold=threshold,
                   total_seconds=round(time.perf_counter() - t0, 3),
                   config={"head": vars(head_cfg), "views": choice.views,
                           **({"folds": len(splits)} if cross_validate else {})})
    weights = checkpoint.pack(head_arch=head.arch(), head_state=head.state_dict(), prototypes=protos)
    with session_scope(services.session_factory) as s:
        project = crud.get_project(session=s, project_id=ctx.project_id)
        model = TrainedModel(
            project_id=ctx.project_id, version=crud.next_model_version(session=s, project_id=ctx.project_id),
            backbone=spec.name, features=model_features, mode=choice.mode, labels=labels,
            class_ids=data.class_ids, format_version=checkpoint.FORMAT_VERSION, weights=weights, metrics=metrics,
            unknown_threshold=threshold, unknown_threshold_calibrated=threshold,
        )
        s.add(model)
        s.flush()
        project.current_model_id = model.id
        model_id, version = model.id, model.version
    services.models.invalidate(ctx.project_id)
    if digest:
        services.embedders.cpu(model_features)  # build the prediction graph now, not on the first request
    metrics["total_seconds"] = round(time.perf_counter() - t0, 3)
    acc = metrics.get("val_accuracy")
    judged = "cross-validated" if cross_validate else "validation"
    summary = f"model v{version} of {project_name!r} ready ({choice.mode})" + (
        f", {judged} accuracy {acc:.1%}" if acc is not None else " (too few images for a validation set)")
    return JobOutcome(model_id=model_id, metrics=metrics, message=summary)


def _embed_uncached(keys: list[str], load, spec: BackboneSpec, embedder, report) -> tuple[np.ndarray, None]:
    size, out = spec.preprocessing.input_size, []
    for _, feats in iter_embeddings(keys, lambda k: prepare(load(k), size), embedder):
        out.append(feats)
        report(sum(map(len, out)) / len(keys), "embedding with the fine-tuned network")
    return np.concatenate(out), None


def evaluation(val_probs: np.ndarray, train_probs: np.ndarray, data: Dataset, train_idx: np.ndarray,
               val_idx: np.ndarray) -> dict:
    """Everything the evaluation view shows. `val_probs` rows of `val_idx` come from a model that did
    not train on them (the validation split's, or each photo's cross-validation fold's)."""
    labels, y = data.labels, data.y
    probs = val_probs
    val = classification_report(y[val_idx], probs[val_idx], labels)
    train = classification_report(y[train_idx], train_probs[train_idx], labels)
    predictions, mistakes = [], []
    for i in val_idx:
        pred = int(probs[i].argmax())
        loss = float(-np.log(max(probs[i, y[i]], 1e-7)))
        row = {"sample_id": data.ids[i], "true": int(y[i]), "predicted": pred, "loss": round(loss, 5),
               "score": round(float(probs[i, pred]), 5)}
        predictions.append(row)
        if pred != y[i]:
            mistakes.append(row)
    mistakes.sort(key=lambda m: -m["loss"])
    return {
        "labels": labels, "val_accuracy": val["accuracy"], "train_accuracy": train["accuracy"],
        "val_loss": val["loss"], "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
        "per_class": val["per_class"], "confusion": val["confusion"],
        # Rows behind the confusion matrix, so each cell can open its images.
        "val_predictions": predictions, "misclassified": mistakes,
    }
