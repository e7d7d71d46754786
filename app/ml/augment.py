"""Image augmentation for fine-tuning and for extra embedding views (torchvision transforms)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from app.ml.preprocess import prepare


def train_transform(size: int, strong: bool = True) -> v2.Compose:
    """Random resized crop, horizontal flip and colour jitter; output float [0, 1] CHW."""
    steps = [v2.RandomResizedCrop(size, scale=(0.5 if strong else 0.7, 1.0), antialias=True),
             v2.RandomHorizontalFlip()]
    if strong:
        steps.append(v2.ColorJitter(0.25, 0.25, 0.25, 0.02))
    return v2.Compose([v2.PILToTensor(), *steps, v2.ToDtype(torch.float32, scale=True)])


def eval_tensor(img: Image.Image, size: int) -> torch.Tensor:
    """The documented preprocessing as a CHW float tensor."""
    return torch.from_numpy(np.ascontiguousarray(prepare(img, size).transpose(2, 0, 1))).float().div_(255)


def augmented_view(img: Image.Image, size: int, view: int, seed: int) -> np.ndarray:
    """Deterministic augmented view number `view` (>= 1) of one image, as uint8 (S, S, 3).

    View 1 is the mirror image of the documented crop; later views are random resized crops,
    mirrored on odd numbers. The same (seed, view) always gives the same pixels, so the embedding
    of a view can be cached like that of the plain image.
    """
    if view == 1:
        return np.ascontiguousarray(prepare(img, size)[:, ::-1])
    gen = torch.Generator().manual_seed(seed * 1009 + view)
    t = v2.functional.pil_to_tensor(img)
    i, j, h, w = _params(t, (0.6, 1.0), (3 / 4, 4 / 3), gen)
    t = v2.functional.resized_crop(t, i, j, h, w, [size, size], antialias=True)
    if view % 2 == 1:
        t = t.flip(-1)
    return t.permute(1, 2, 0).numpy()


def _params(t: torch.Tensor, scale, ratio, gen: torch.Generator) -> tuple[int, int, int, int]:
    """RandomResizedCrop's parameter draw, but from our own generator, so views are reproducible."""
    _, height, width = t.shape
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target = area * torch.empty(1).uniform_(scale[0], scale[1], generator=gen).item()
        aspect = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=gen)).item()
        w = round((target * aspect) ** 0.5)
        h = round((target / aspect) ** 0.5)
        if 0 < w <= width and 0 < h <= height:
            i = int(torch.randint(0, height - h + 1, (1,), generator=gen))
            j = int(torch.randint(0, width - w + 1, (1,), generator=gen))
            return i, j, h, w
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side
