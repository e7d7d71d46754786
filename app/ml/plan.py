"""Which training mode `auto` picks, and why, in words a user can read."""

from __future__ import annotations

from dataclasses import dataclass

# Measured on this project's 2-core CPU with Lite0 at 288 px (see bench/accuracy.py): forward and
# backward through the last blocks, including the frozen forward before them.
CPU_FINETUNE_IMAGES_PER_SECOND = 12.0
GPU_FINETUNE_IMAGES_PER_SECOND = 400.0


@dataclass
class Plan:
    mode: str  # "head" or "finetune"
    views: int  # augmented views per training image embedded besides the plain one
    reason: str
    recipe: str  # "teachable-machine" or "snapclass"


def choose(requested: str, *, device: str, n_images: int, finetune_epochs: int, budget_s: float,
           views: int | None = None) -> Plan:
    on_gpu = device.startswith("cuda")
    if requested == "head":
        return Plan("head", views or 0, "head mode was asked for: a new head on the frozen backbone's "
                    "cached embeddings", "teachable-machine" if not views else "snapclass")
    if requested == "finetune":
        return Plan("finetune", 0, "fine-tuning was asked for: head first, then the last blocks unfrozen "
                    "at a lower learning rate, with augmentation", "snapclass")
    rate = GPU_FINETUNE_IMAGES_PER_SECOND if on_gpu else CPU_FINETUNE_IMAGES_PER_SECOND
    estimate = n_images * finetune_epochs / rate
    if on_gpu and estimate <= budget_s:
        return Plan("finetune", 0, f"auto chose fine-tuning: a GPU ({device}) does {finetune_epochs} epochs "
                    f"on {n_images} images in about {estimate:.0f} s, within the {budget_s:.0f} s budget",
                    "snapclass")
    where = "on this CPU" if not on_gpu else f"even on {device}"
    n_views = 4 if views is None else views
    return Plan("head", n_views, f"auto chose the frozen backbone with {n_views} augmented views per image: "
                f"fine-tuning {n_images} images for {finetune_epochs} epochs would take about "
                f"{estimate / 60:.0f} min {where} (budget {budget_s / 60:.0f} min), while augmented "
                f"embeddings, dropout and label smoothing give most of its gain in seconds", "snapclass")
