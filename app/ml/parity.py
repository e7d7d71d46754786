"""Does a built download answer as the served model does? Each file is run in its own runtime, as a user would
run it (onnxruntime, torch.jit, torch.export), on photos prepared as documented."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.ml.preprocess import to_input

# The least top-1 agreement with the served model at which a download is offered.
MIN_AGREEMENT = 0.97
BATCH = 16


@dataclass
class Parity:
    agreement: float | None  # share of photos with the served model's top-1 (None: no photo to check)
    max_prob_diff: float | None  # the largest |p_file - p_served| over every photo and class
    photos: int


def run_file(fmt: str, path: Path, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities, similarity or None) of the file at `path` for uint8 (N, S, S, 3) crops."""
    probs, sims = [], []
    if fmt in ("onnx", "onnx-int8"):
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for at in range(0, len(crops), BATCH):
            p, s = session.run(["probabilities", "similarity"], {"input": to_input(crops[at:at + BATCH])})
            probs.append(p)
            sims.append(s)
    elif fmt == "torchscript":
        module = torch.jit.load(str(path), map_location="cpu")
        with torch.no_grad():
            for at in range(0, len(crops), BATCH):
                x = torch.from_numpy(to_input(crops[at:at + BATCH]))
                probs.append(module(x).numpy())
                sims.append(module.similarity(x).numpy())
    elif fmt == "pt2":
        module = torch.export.load(str(path)).module()
        with torch.no_grad():
            for at in range(0, len(crops), BATCH):
                probs.append(module(torch.from_numpy(to_input(crops[at:at + BATCH]))).numpy())
    else:
        raise ValueError(f"no runtime for {fmt!r}")
    return np.concatenate(probs), np.concatenate(sims) if sims else None


def compare(served: np.ndarray, file: np.ndarray) -> Parity:
    """Top-1 agreement and the largest probability difference between two (N, K) probability arrays."""
    if not len(served):
        return Parity(None, None, 0)
    agreement = float(np.mean(served.argmax(1) == file.argmax(1)))
    return Parity(agreement, float(np.max(np.abs(served - file))), len(served))
