"""Which training mode `auto` picks, and why, in words a user can read."""

from __future__ import annotations

from dataclasses import dataclass

# Measured on this project's 2-core CPU with Lite0 at 288 px (bench/accuracy.py: 245 hymenoptera
# photos, 8 epochs, 187 s for the whole job under load): forward and backward through the last
# blocks, including the frozen forward before them.
CPU_FINETUNE_IMAGES_PER_SECOND = 12.0
GPU_FINETUNE_IMAGES_PER_SECOND = 400.0


@dataclass
class Plan:
    mode: str  # "head" or "finetune"
    views: int  # augmented views per training image embedded besides the plain one
    reason: str
    recipe: str  # "teachable-machine" or "snapclass"


def choose(requested: str, *, device: str, n_images: int, finetune_epochs: int, budget_s: float,
           views: int | None = None, recipe: str | None = None) -> Plan:
    on_gpu = device.startswith("cuda")
    if requested == "head":
        recipe = recipe or "snapclass"
        what = "Teachable Machine's head recipe" if recipe == "teachable-machine" else "snapclass's head recipe"
        return Plan("head", views or 0, f"head mode was asked for: {what} on the frozen backbone's cached "
                    "embeddings", recipe)
    if requested == "finetune":
        return Plan("finetune", 0, "fine-tuning was asked for: head first, then the last blocks unfrozen "
                    "at a lower learning rate, with augmentation", "snapclass")
    rate = GPU_FINETUNE_IMAGES_PER_SECOND if on_gpu else CPU_FINETUNE_IMAGES_PER_SECOND
    estimate = n_images * finetune_epochs / rate
    if estimate <= budget_s:
        return Plan("finetune", 0, f"auto chose fine-tuning: {device} does {finetune_epochs} epochs on "
                    f"{n_images} images in about {estimate:.0f} s, within the {budget_s:.0f} s budget",
                    "snapclass")
    where = "on this CPU" if not on_gpu else f"even on {device}"
    return Plan("head", views or 0, f"auto chose the frozen backbone with snapclass's head (large batches, "
                f"dropout, label smoothing, best epoch kept), which trains in seconds: fine-tuning {n_images} "
                f"images for {finetune_epochs} epochs would take about {estimate / 60:.1f} min {where}, beyond "
                f"the {budget_s / 60:.0f} min that auto allows itself", "snapclass")
