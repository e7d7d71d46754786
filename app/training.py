"""The train job: embed what is new, train (head, or head then fine-tuning), evaluate, store the model."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import func, select
from torch import nn

from app import crud
from app.db import session_scope
from app.extraction import activations, embed, embed_with, loader
from app.jobs import JobContext, JobOutcome
from app.ml import checkpoint, ood, plan
from app.ml.backbones import BackboneSpec
from app.ml.crossval import FOLDS, fold_splits, train_cross_validated
from app.ml.curves import learning_curves
from app.ml.eta import Eta
from app.ml.eta import total as eta_total
from app.ml.evaluate import classification_report
from app.ml.finetune import FinetuneConfig, finetune
from app.ml.finetune_cached import VIEWS as CACHED_VIEWS
from app.ml.finetune_cached import finetune_cached
from app.ml.runtime import FeatureNet, TorchEmbedder
from app.ml.split import kfold_by_group, split_by_group
from app.ml.train import HeadConfig, TrainingCancelled, epoch_key, head_probabilities, train_head
from app.ml.train import warm_up as warm_up_autograd
from app.models import Embedding, Job, TrainedModel
from app.services import Services

# snapclass's heads take at most about this many steps: 40 epochs up to ~1,000 photos (the sets of
# bench/accuracy.py), fewer epochs on thousands (train.epochs_for).
HEAD_MAX_STEPS = 320
# Wall-clock budget `auto` plans within.
AUTO_BUDGET_S = 240.0
# Fine-tuning epochs: a GPU runs the whole network each epoch; the CPU's cached activations make
# epochs cheap, and its one-cycle schedule needs them all (stopping early in the hot middle of the
# schedule cost cifar10-mini 3 points), so it keeps the best epoch without stopping early.
ONLINE_EPOCHS = 8
CACHED_EPOCHS = 12


class NotTrainable(ValueError):
    """The project lacks what training needs; the message says what, in words."""


def check_trainable(class_counts: dict[str, int], switched_off: int = 0) -> None:
    """`class_counts`: photos per class used in training (switched on); `switched_off`: how many are not."""
    empty = [name for name, n in class_counts.items() if n == 0]
    if len(class_counts) < 2:
        off = (f" ({switched_off} {'is' if switched_off == 1 else 'are'} switched off: turn on "
               "“use in training” to count them)") if switched_off else ""
        raise NotTrainable(("add at least two classes before training" if not class_counts else
                            "add a second class before training: it takes at least two classes") + off)
    if empty:
        raise NotTrainable("every class needs at least one image: add photos to " + ", ".join(sorted(empty))
                           + " (or switch it off for training)")


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
        hidden=64, dropout=0.3, label_smoothing=0.1, epochs=40, batch_size=128, learning_rate=3e-3,
        max_steps=HEAD_MAX_STEPS)
    if params.get("epochs") is not None:
        cfg.max_steps = 0  # epochs asked for are epochs run
    return _override(cfg, params, ("epochs", "batch_size", "learning_rate", "hidden", "dropout", "weight_decay",
                                   "label_smoothing", "class_weights", "seed"))


def finetune_config(params: dict, online: bool) -> FinetuneConfig:
    default = FinetuneConfig(epochs=ONLINE_EPOCHS) if online else FinetuneConfig(
        epochs=CACHED_EPOCHS, batch_size=32, patience=0)
    cfg = _override(default, params, ("batch_size", "unfreeze", "augment", "seed", "weight_decay", "label_smoothing",
                                      "class_weights"))
    if params.get("finetune_epochs") is not None:
        cfg.epochs = int(params["finetune_epochs"])
    if params.get("finetune_learning_rate") is not None:
        cfg.learning_rate = float(params["finetune_learning_rate"])
    return cfg


__all__ = ["make_train_handler", "make_warm_up"]


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
    bursts: list[str | None]  # webcam burst of each sample, None for a single photo


class Stages:
    """Maps each stage's own 0..1 onto its share of the job's progress bar, and keeps the time left
    (`ctx.live["eta"]`, seconds low-high) current as each stage goes."""

    def __init__(self, ctx: JobContext, shares: dict[str, float], eta: Eta | None = None):
        self.ctx, self.bounds, self.eta, lo = ctx, {}, eta, 0.0
        self.start = time.perf_counter()
        total = sum(shares.values())
        for name, share in shares.items():
            self.bounds[name] = (lo, lo + 0.98 * share / total)
            lo += 0.98 * share / total

    def report(self, stage: str):
        lo, hi = self.bounds[stage]

        def progress(f: float, msg: str) -> None:
            if self.eta is not None:
                low, high = self.eta.remaining(stage, f, time.perf_counter() - self.start)
                self.ctx.live["eta"] = {"low_s": round(low, 1), "high_s": round(high, 1)}
            self.ctx.progress(lo + (hi - lo) * f, msg)

        return progress


def _load_dataset(services: Services, project_id: int) -> tuple[str, str, Dataset]:
    with session_scope(services.session_factory) as s:
        project = crud.get_project(session=s, project_id=project_id)
        features, name = project.features, project.name
        samples = crud.training_samples(session=s, project_id=project_id)
        counts = crud.sample_counts(session=s, project_id=project_id)
        # Classes switched off for training ("use in training") are left out with their photos.
        classes = [(c.id, c.name) for c in project.classes if counts.get(c.id) and c.enabled]
    if len(classes) < 2:
        raise NotTrainable("training needs at least two classes with photos, switched on for training")
    index = {cid: i for i, (cid, _) in enumerate(classes)}
    rows = [x for x in samples if x[1] in index]
    return features, name, Dataset(
        ids=[x[0] for x in rows], keys=[x[2] for x in rows], y=np.array([index[x[1]] for x in rows]),
        groups=[x[3] or f"sample-{x[0]}" for x in rows], labels=[n for _, n in classes],
        class_ids=[c for c, _ in classes], bursts=[x[3] for x in rows])


@dataclass
class Fitted:
    """A trained head (and, fine-tuned, the backbone's new weights), with what evaluation needs."""

    head: nn.Module
    X: np.ndarray  # every sample's embedding by the network the model uses
    train_idx: np.ndarray  # the samples the answering model learned from
    val_idx: np.ndarray  # the samples judged by a model that did not learn from them
    splits: list[tuple[np.ndarray, np.ndarray]]  # (train, held-out) rows of each such model
    history: list[dict]
    best_epoch: int
    head_seconds: float
    validation: dict
    val_probs: np.ndarray | None = None  # held-out probabilities, when they are not the answering model's
    backbone_state: dict | None = None
    notes: dict = field(default_factory=dict)


def run_training(services: Services, ctx: JobContext) -> JobOutcome:
    t0 = time.perf_counter()
    features, project_name, data = _load_dataset(services, ctx.project_id)
    spec = services.embedders.spec(features)
    params = ctx.params
    online = services.embedders.worker_torch
    ft_cfg = finetune_config(params, online)
    choice = plan.choose(params.get("mode", "auto"), device=services.device, online=online, n_images=len(data.ids),
                         finetune_epochs=ft_cfg.epochs, budget_s=AUTO_BUDGET_S, cached_views=CACHED_VIEWS,
                         views=params.get("augment_views"), recipe=params.get("recipe"))
    ctx.notes.update(mode=choice.mode, mode_reason=choice.reason, recipe=choice.recipe, device=services.device,
                     requested_mode=params.get("mode", "auto"), backbone=spec.name,
                     class_weights=bool(params.get("class_weights", True)))
    expected = expected_seconds(services, features, spec, data, choice, ft_cfg)
    low, high = eta_total(expected)
    ctx.notes["estimate"] = {"low_s": round(low, 1), "high_s": round(high, 1),
                             "stages": {k: round(v, 2) for k, v in expected.items()}}
    ctx.live["eta"] = {"low_s": round(low, 1), "high_s": round(high, 1)}
    ctx.progress(0.0, "preparing", force=True)
    stages = Stages(ctx, {"extract": 3.0, "views": 1.5 * choice.views, "head": 0.7,
                          "finetune": 8.0 if choice.mode == "finetune" else 0.0,
                          "fallback": 0.7 if choice.keep_if_better else 0.0, "evaluate": 0.5}, Eta(expected))

    X, notes = embed(services, ctx, features, spec, data.ids, data.keys, 0, stages.report("extract"))
    ctx.notes.update(embedded_new=notes["new"], embedded_cached=notes["cached"],
                     **{f"extract_{k}": v for k, v in notes.items() if k not in ("new", "cached")})
    head_cfg = head_config(params, choice.recipe)
    fitted = None
    if choice.mode == "finetune":
        fitted = _fine_tune(services, ctx, spec, features, data, X, head_cfg, ft_cfg, choice, stages)
        if fitted is None:  # auto's fine-tuning was no better than the frozen backbone's head
            choice = dataclasses.replace(choice, mode="head")
            ctx.notes["mode"] = "head"
            fitted = _head_only(services, ctx, spec, features, data, X, head_cfg, choice, params, stages,
                                stages.report("fallback"))
    if fitted is None:
        fitted = _head_only(services, ctx, spec, features, data, X, head_cfg, choice, params, stages,
                            stages.report("head"))
    ctx.notes.update(fitted.notes)

    stages.report("evaluate")(0.5, "evaluating")
    labels, X = data.labels, fitted.X
    probs = head_probabilities(fitted.head, X)
    metrics = evaluation(probs if fitted.val_probs is None else fitted.val_probs, probs, data, fitted.train_idx,
                         fitted.val_idx)
    metrics["validation"] = fitted.validation
    metrics.update(judgement(metrics, data))
    protos = ood.prototypes(X[fitted.train_idx], data.y[fitted.train_idx], len(labels), head_cfg.seed)
    threshold = ood.calibrate(np.concatenate([
        ood.held_out_scores(X, data.y, fitted.splits, len(labels), head_cfg.seed), ood.leave_one_out(protos)]))
    curves = choice.mode == "head" and bool(fitted.splits)
    if curves:  # worked out once the model is ready (follow_up below); the page shows them arriving
        metrics["learning_curves"] = {"status": CURVES_PENDING}
    ctx.notes["outcome"] = outcome_words(ctx.notes, choice.mode)
    metrics.update(ctx.notes, history=fitted.history, best_epoch=fitted.best_epoch,
                   head_seconds=round(fitted.head_seconds, 3), augment_views=choice.views,
                   unknown_threshold=threshold, total_seconds=round(time.perf_counter() - t0, 3),
                   config={"head": vars(head_cfg), "views": choice.views,
                           **({"finetune": vars(ft_cfg)} if choice.mode == "finetune" else {})})
    digest, model_features = None, features
    if fitted.backbone_state is not None:
        with session_scope(services.session_factory) as s:
            digest = crud.store_backbone_weights(session=s, backbone=spec.name,
                                                 state=checkpoint.state_bytes(fitted.backbone_state))
        model_features = f"{spec.name}@{digest}"
    weights = checkpoint.pack(head_arch=fitted.head.arch(), head_state=fitted.head.state_dict(), prototypes=protos)
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
        ctx.confirm(s, model.id)  # a worker whose job was taken up by another writes no model (app.jobs)
        project.current_model_id = model.id
        model_id, version = model.id, model.version
    services.models.invalidate(ctx.project_id)
    if digest:
        services.embedders.cpu(model_features)  # build the prediction graph now, not on the first request
    metrics["total_seconds"] = round(time.perf_counter() - t0, 3)
    acc = metrics.get("balanced_accuracy")
    weakest = metrics.get("weakest_class")
    summary = f"model v{version} is ready" + (
        f": right on {acc:.0%} of photos it had not seen (each class counted equally)" if acc is not None
        else "; too few photos to set some aside and check it")
    if weakest and len(data.labels) > 1 and acc is not None:
        summary += f"; weakest class {weakest['label']}, {weakest['accuracy']:.0%}"
    follow_up = None
    if curves:
        full = {"accuracy": metrics["val_accuracy"], "per_class": metrics["per_class"]}

        def follow_up(should_stop):
            add_learning_curves(services, ctx.job_id, model_id, X, data, fitted.splits,
                                head_config(params, "snapclass"), full, head_cfg.seed, should_stop)

    return JobOutcome(model_id=model_id, metrics=metrics, message=summary, follow_up=follow_up)


CURVES_PENDING = "pending"


def make_warm_up(services: Services) -> Callable[[], None]:
    """What the worker does at start, before any job, so that the first training costs what later ones
    do: autograd's one-off set-up, and the default backbone's network built (exported to ONNX the first
    time a cache dir sees it, ~1.3 s here) and run once. Prediction shares that network on the CPU."""

    def warm() -> None:
        warm_up_autograd()
        features = services.settings.default_backbone
        size = services.embedders.spec(features).preprocessing.input_size
        services.embedders.for_worker(features)(np.zeros((1, size, size, 3), dtype=np.uint8))

    return warm


def add_learning_curves(services: Services, job_id: int, model_id: int, X: np.ndarray, data: Dataset,
                        splits: list, cfg: HeadConfig, full: dict, seed: int, should_stop) -> None:
    """The model's learning curves, after it is ready: written into its metrics (and its job's, which the
    training panel reads), which the change feed announces to open pages. Another job waiting goes first:
    the curves then say they gave way, rather than holding that training up."""
    try:
        result = learning_curves(X, data.y, splits, data.labels, cfg, full, seed, should_stop=should_stop)
    except TrainingCancelled:
        result = {"status": "skipped",
                  "reason": "another training started before they were worked out; they come with the next model"}
    with session_scope(services.session_factory) as s:
        for row in (s.get(TrainedModel, model_id), s.get(Job, job_id)):
            if row is not None and row.metrics is not None:
                row.metrics = {**row.metrics, "learning_curves": result}


# A class with under a third of the photos of the biggest is "far fewer" (24 against 194 is an eighth);
# a class right less than 70 % of the time is worth a warning of its own.
FEW_PHOTOS_RATIO = 1 / 3
LOW_ACCURACY = 0.7


def judgement(metrics: dict, data: Dataset) -> dict:
    """The headline and what to do about it, in the same figures for the panel, the models page and the
    API: balanced accuracy (the mean of the per-class accuracies, which for even classes is the plain
    accuracy), the weakest class, and a warning in words per class that has far fewer photos or is
    often wrong."""
    photos = np.bincount(data.y, minlength=len(data.labels))
    # Without validation photos per_class is empty; photo counts still deserve their warning.
    classes = metrics["per_class"] or [{"label": label, "count": 0, "accuracy": None} for label in data.labels]
    for c, n in zip(classes, photos, strict=True):
        c["photos"] = int(n)
    judged = [c for c in classes if c["accuracy"] is not None]
    weakest = min(judged, key=lambda c: (c["accuracy"], c["photos"]), default=None)
    warnings = []
    for c in classes:
        others = [int(n) for label, n in zip(data.labels, photos, strict=True) if label != c["label"]]
        few = bool(others) and c["photos"] < FEW_PHOTOS_RATIO * max(others)
        low = c["accuracy"] is not None and c["accuracy"] < LOW_ACCURACY
        if not (few or low):
            continue
        if len(others) == 1:
            compared = f"the other class has {others[0]}"
        elif min(others) == max(others):
            compared = f"the others have {others[0]} each"
        else:
            compared = f"the others have {min(others)}-{max(others)}"
        has = f"it has {c['photos']}, {compared}"
        right = f"{c['label']} is right only {c['accuracy']:.0%} of the time" if low else ""
        if few:
            text = f"Add more photos of {c['label']}: {has}." + (f" {right[0].upper()}{right[1:]}." if low else "")
        else:
            text = (f"{right[0].upper()}{right[1:]}. Add more photos of {c['label']}, with other backgrounds, "
                    "angles and lighting, and check that its photos are in the right class.")
        warnings.append({"label": c["label"], "kind": "few_photos" if few else "low_accuracy",
                         "few_photos": few, "low_accuracy": low, "text": text})
    return {"balanced_accuracy": metrics.pop("_balanced", None),
            "weakest_class": {"label": weakest["label"], "accuracy": weakest["accuracy"],
                              "photos": weakest["photos"]} if weakest else None,
            "class_photos": {label: int(n) for label, n in zip(data.labels, photos, strict=True)},
            "warnings": warnings}


def outcome_words(notes: dict, mode: str) -> dict:
    """What the stored model is, and what auto did, in plain words (mode_reason is the technical account)."""
    badge = "Fine-tuned" if mode == "finetune" else "Quick"
    asked = notes.get("requested_mode", "auto")
    if asked != "auto":
        text = ("Fine-tuned, as asked: the last layers of the network were adjusted to your photos too."
                if mode == "finetune" else
                "Quick training, as asked: only the last step of the network learned your classes.")
    elif mode == "finetune":
        text = "Auto chose fine-tuning: it beat the quicker model on the photos set aside to check it."
    elif "finetune_verdict" in notes or "finetune_seconds" in notes:
        text = "Auto tried fine-tuning; it did not beat the quicker model, so it kept that."
    elif "Too few photos" in notes.get("mode_reason", ""):
        text = "Auto kept the quick model: too few photos to check whether fine-tuning would do better."
    else:
        text = "Auto chose the quick model: fine-tuning would take too long on this server."
    return {"badge": badge, "text": text}


def expected_seconds(services: Services, features: str, spec: BackboneSpec, data: Dataset, choice: plan.Plan,
                     ft_cfg: FinetuneConfig) -> dict[str, float]:
    """Each stage's expected seconds, from this server's recent jobs (photos read per second, training
    seconds per photo); the plan's rates only where no job has measured them yet."""
    n = len(data.ids)
    with session_scope(services.session_factory) as s:
        cached = 0
        for lo in range(0, n, 900):  # stay under SQLite's bound-parameter limit
            cached += s.scalar(select(func.count()).select_from(Embedding).where(
                Embedding.sample_id.in_(data.ids[lo:lo + 900]), Embedding.backbone == features,
                Embedding.version == spec.feature_version))
        recent = [m or {} for m in s.scalars(select(Job.metrics).where(
            Job.kind == "train", Job.status == "succeeded").order_by(Job.id.desc()).limit(20))]
    same = [m for m in recent if m.get("backbone") in (None, spec.name)]
    rates = [m["extract_images_per_second"] for m in same if m.get("extract_images_per_second")]
    rate = float(np.median(rates)) if rates else 15.0  # a cold 2-core CPU under load, until measured
    per_photo = [(m["total_seconds"] - m.get("extract_seconds", 0) - m.get("finetune_seconds", 0))
                 / max(1, m.get("n_train", 0)) for m in same if m.get("total_seconds") and m.get("n_train")]
    rest = float(np.median(per_photo)) if per_photo else 0.06
    tuned = [m["finetune_seconds"] / max(1, m.get("n_train", 1)) for m in same if m.get("finetune_seconds")]
    finetune_s = (float(np.median(tuned)) * n if tuned else plan.finetune_seconds(
        engine=choice.engine or "cached", n_images=n, epochs=ft_cfg.epochs, views=CACHED_VIEWS))
    new = n - cached
    return {"extract": new / rate, "views": choice.views * new * plan.TRAIN_SHARE / rate,
            "head": 0.6 * rest * n, "finetune": finetune_s if choice.mode == "finetune" else 0.0,
            "fallback": 0.6 * rest * n if choice.keep_if_better else 0.0, "evaluate": 0.4 * rest * n}


def _split(data: Dataset, params: dict, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    # 0 means no validation split (asked for), not the default.
    fraction = 0.15 if params.get("val_fraction") is None else float(params["val_fraction"])
    train_idx, val_idx = split_by_group(data.y, data.groups, fraction, seed)
    return train_idx, val_idx, ({"method": "split", "fraction": fraction} if len(val_idx) else {"method": "none"})


def _head_only(services: Services, ctx: JobContext, spec: BackboneSpec, features: str, data: Dataset,
               X: np.ndarray, cfg: HeadConfig, choice: plan.Plan, params: dict, stages: Stages,
               report: Callable[[float, str], None]) -> Fitted:
    """snapclass's cross-validated heads, or one head on one validation split (the Teachable-Machine
    recipe, or folds=1), on the frozen backbone's embeddings and any augmented views'."""
    n_folds = int(params.get("folds") or FOLDS)
    cross_validate = choice.recipe == "snapclass" and n_folds > 1
    if cross_validate:
        folds = kfold_by_group(data.y, data.groups, n_folds, cfg.seed)
        splits = fold_splits(folds)
        train_idx, val_idx = np.arange(len(data.y)), np.flatnonzero(folds >= 0)
        validation = {"method": "cross-validation", "folds": len(splits)} if splits else {"method": "none"}
    else:
        train_idx, val_idx, validation = _split(data, params, cfg.seed)
        splits = [(train_idx, val_idx)] if len(val_idx) else []

    # Augmented views of training images only: validation judges plain images, as users send.
    views, views_report = [], stages.report("views")
    for view in range(1, choice.views + 1):
        Xv, _ = embed(services, ctx, features, spec, [data.ids[i] for i in train_idx],
                      [data.keys[i] for i in train_idx], view,
                      lambda f, msg, v=view: views_report((v - 1 + f) / choice.views, msg))
        views.append(Xv)

    if cross_validate:
        cv = train_cross_validated(X, data.y, folds, len(data.labels), cfg, views, on_progress=report,
                                   should_stop=ctx.should_stop)
        return Fitted(cv.head, X, train_idx, val_idx, splits, _phase(cv.history, "head"),
                      int(np.median(cv.best_epochs)), cv.seconds, validation, val_probs=cv.held_out_probs,
                      notes={"best_epochs": cv.best_epochs})
    result = _head_on_split(X, data, train_idx, val_idx, cfg, views, report, ctx)
    return Fitted(result.head, X, train_idx, val_idx, splits, _phase(result.history, "head"), result.best_epoch,
                  result.seconds, validation)


def _head_on_split(X, data: Dataset, train_idx, val_idx, cfg: HeadConfig, views: list[np.ndarray], report,
                   ctx: JobContext):
    n_train = len(train_idx) * (1 + len(views))
    Xall = np.concatenate([X[train_idx], *views, X[val_idx]])
    yall = np.concatenate([data.y[train_idx]] * (1 + len(views)) + [data.y[val_idx]])
    return train_head(Xall, yall, np.arange(n_train), np.arange(n_train, len(Xall)), len(data.labels), cfg,
                      on_progress=report, should_stop=ctx.should_stop)


def _fine_tune(services: Services, ctx: JobContext, spec: BackboneSpec, features: str, data: Dataset,
               X: np.ndarray, head_cfg: HeadConfig, cfg: FinetuneConfig, choice: plan.Plan,
               stages: Stages) -> Fitted | None:
    """Phase one, the head on frozen embeddings; phase two, the last blocks unfrozen with it. None when
    auto's fine-tuning does not beat phase one on the validation photos (ctx.notes say why)."""
    train_idx, val_idx, validation = _split(data, ctx.params, head_cfg.seed)
    if choice.keep_if_better and not len(val_idx):
        ctx.notes["mode_reason"] = (f"{choice.reason}. Too few photos to set some aside and check that, so auto "
                                    "kept the frozen backbone with snapclass's heads")
        return None
    phase_one = _head_on_split(X, data, train_idx, val_idx, head_cfg, [], stages.report("head"), ctx)
    report = stages.report("finetune")
    items = list(zip(data.ids, data.keys, strict=True))
    start = time.perf_counter()
    if choice.engine == "cached":
        front = services.embedders.front(features, cfg.unfreeze)
        n_passes = len(items) + (CACHED_VIEWS * len(train_idx) if cfg.augment else 0)
        done = [0]

        def part(n: int):  # the front's share of the stage: a third, split by images pushed through it
            lo = done[0]
            done[0] += n
            return lambda f, msg: report(0.35 * (lo + f * n) / n_passes, msg)

        plain = activations(services, ctx, front, spec, items, 0, part(len(items)))
        train_items = [items[i] for i in train_idx]
        views = np.zeros((0, len(train_idx), *plain.shape[1:]), np.float16)
        if cfg.augment:
            views = np.stack([activations(services, ctx, front, spec, train_items, v, part(len(train_items)))
                              for v in range(1, CACHED_VIEWS + 1)])
        result, X_ft = finetune_cached(services.embedders.backbone(features), phase_one.head, plain, views, data.y,
                                       train_idx, val_idx, cfg, on_progress=lambda f, m: report(0.35 + 0.65 * f, m),
                                       should_stop=ctx.should_stop)
        del plain, views
    else:
        load = loader(services)
        result = finetune(services.embedders.backbone(features), phase_one.head, spec.preprocessing,
                          lambda i: load(data.keys[i]), [int(i) for i in train_idx], data.y[train_idx],
                          [int(i) for i in val_idx], data.y[val_idx], cfg, device=services.device,
                          on_progress=lambda f, m: report(0.9 * f, m), should_stop=ctx.should_stop)
        embedder = TorchEmbedder(FeatureNet(result.backbone, spec.preprocessing), services.device)
        X_ft = embed_with(embedder, services, spec, items, lambda f, m: report(0.9 + 0.1 * f, m))
    # In ctx.notes, not the result: they stay when auto falls back to the heads.
    ctx.notes.update(finetune_engine=choice.engine, finetune_seconds=round(time.perf_counter() - start, 3),
                     finetune_training_seconds=round(result.seconds, 3), finetune_stopped=result.stopped_early,
                     unfreeze=cfg.unfreeze)
    if choice.keep_if_better:
        # Balanced, as the headline: on uneven classes plain accuracy rewards ignoring the small class.
        before = max(epoch_key(r) for r in phase_one.history)[0]
        after = epoch_key(result.history[result.best_epoch - 1])[0]
        verdict = (f"fine-tuning reached {after:.1%} balanced accuracy on the {len(val_idx)} validation photos of "
                   f"one split, against {before:.1%} for the frozen backbone's head")
        ctx.notes["finetune_verdict"] = verdict
        if after <= before:
            ctx.notes["mode_reason"] = (f"{choice.reason}. It was not: {verdict}, so auto kept the frozen backbone "
                                        "with snapclass's cross-validated heads")
            return None
        ctx.notes["mode_reason"] = f"{choice.reason}. It did: {verdict}"
    head_epochs = len(phase_one.history)
    history = _phase(phase_one.history, "head") + [
        {**row, "phase": "finetune", "epoch": head_epochs + row["epoch"]} for row in result.history]
    return Fitted(result.head, X_ft, train_idx, val_idx, [(train_idx, val_idx)] if len(val_idx) else [], history,
                  head_epochs + result.best_epoch, phase_one.seconds, validation,
                  backbone_state=result.backbone.state_dict())


def _phase(history: list[dict], phase: str) -> list[dict]:
    return [{**row, "phase": phase} for row in history]


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
               "score": round(float(probs[i, pred]), 5), "burst_id": data.bursts[i]}
        predictions.append(row)
        if pred != y[i]:
            mistakes.append(row)
    mistakes.sort(key=lambda m: -m["loss"])
    return {
        "labels": labels, "val_accuracy": val["accuracy"], "_balanced": val["balanced_accuracy"],
        "train_accuracy": train["accuracy"], "train_balanced_accuracy": train["balanced_accuracy"],
        "val_loss": val["loss"], "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
        "per_class": val["per_class"], "confusion": val["confusion"],
        # Rows behind the confusion matrix, so each cell can open its images.
        "val_predictions": predictions, "misclassified": mistakes,
    }
