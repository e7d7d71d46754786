"""The one preprocessing, shared by extraction, prediction and the documentation of downloads.

Resize so the shorter side is S (bilinear), center-crop S x S, RGB in [0, 1]. Mean/std
normalisation happens inside the networks (see `Normalize`), so every runtime sees the same input.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

# Part of the embedding cache key: change it when the preprocessing changes.
PREPROCESS_VERSION = "p1"


def resize_center_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def prepare(img: Image.Image, size: int) -> np.ndarray:
    """One RGB image -> uint8 array (S, S, 3)."""
    return np.asarray(resize_center_crop(img, size), dtype=np.uint8)


def to_input(batch: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S, 3) -> float32 (N, 3, S, S) in [0, 1], the documented model input."""
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32) * np.float32(1 / 255)


class Normalize(nn.Module):
    """(x - mean) / std inside the graph, so downloads need only [0, 1] input."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
