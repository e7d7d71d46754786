"""Which training mode `auto` picks, and why, in words a user can read."""

from __future__ import annotations

from dataclasses import dataclass

# Fine-tuning the usual way ("online": every epoch runs the whole network on freshly augmented
# images) on a GPU; measured rates are images per second through forward and backward.
GPU_FINETUNE_IMAGES_PER_SECOND = 400.0
# On the CPU, fine-tuning caches the frozen front's output for a few views per image ("cached",
# ml/finetune_cached.py). Measured on this project's 2-core CPU with Lite0 at 288 px and the last 2
# blocks trained: the front runs at about 75 images/s in ONNX Runtime, training at about 150.
CPU_FRONT_IMAGES_PER_SECOND = 75.0
CPU_TAIL_IMAGES_PER_SECOND = 150.0
TRAIN_SHARE = 0.85  # of the images, the rest validate


@dataclass
class Plan:
    mode: str  # "head" or "finetune"
    views: int  # augmented views per training image embedded besides the plain one
    reason: str
    recipe: str  # "teachable-machine" or "snapclass"
    engine: str | None = None  # fine-tuning: "online" or "cached"
    # auto's fine-tuning must beat the frozen backbone's head on the validation photos to be kept.
    keep_if_better: bool = False


def finetune_seconds(*, engine: str, n_images: int, epochs: int, views: int) -> float:
    """Estimated wall time of fine-tuning `n_images` for `epochs` epochs with this engine."""
    n_train = TRAIN_SHARE * n_images
    if engine == "online":
        return n_train * epochs / GPU_FINETUNE_IMAGES_PER_SECOND
    return (n_images + views * n_train) / CPU_FRONT_IMAGES_PER_SECOND + n_train * epochs / CPU_TAIL_IMAGES_PER_SECOND


def choose(requested: str, *, device: str, online: bool, n_images: int, finetune_epochs: int, budget_s: float,
           cached_views: int, views: int | None = None, recipe: str | None = None) -> Plan:
    """`online`: the worker fine-tunes the usual way (on a GPU); otherwise from cached activations."""
    engine = "online" if online else "cached"
    how = ("head first, then the last blocks unfrozen at a lower learning rate on augmented images" if online else
           f"head first, then the last blocks unfrozen at a lower learning rate, trained on the cached output of "
           f"the frozen front for the plain photo and {cached_views} augmented views of each")
    if requested == "head":
        recipe = recipe or "snapclass"
        what = "Teachable Machine's head recipe" if recipe == "teachable-machine" else "snapclass's head recipe"
        return Plan("head", views or 0, f"head mode was asked for: {what} on the frozen backbone's cached "
                    "embeddings", recipe)
    if requested == "finetune":
        return Plan("finetune", 0, f"fine-tuning was asked for: {how}", "snapclass", engine)
    estimate = finetune_seconds(engine=engine, n_images=n_images, epochs=finetune_epochs, views=cached_views)
    if estimate <= budget_s:
        return Plan("finetune", 0, f"auto chose fine-tuning ({how}): {device} does {finetune_epochs} epochs on "
                    f"{n_images} images in about {estimate:.0f} s, within the {budget_s:.0f} s budget; it is kept "
                    "only if it beats the frozen backbone's head on the validation photos", "snapclass", engine,
                    keep_if_better=True)
    where = "on this CPU" if device == "cpu" else f"even on {device}"
    return Plan("head", views or 0, f"auto chose the frozen backbone with snapclass's cross-validated heads, "
                f"which train in seconds: fine-tuning {n_images} images for {finetune_epochs} epochs would take "
                f"about {estimate / 60:.1f} min {where}, beyond the {budget_s / 60:.0f} min that auto allows itself",
                "snapclass")
