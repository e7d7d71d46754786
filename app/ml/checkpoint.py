"""A trained model as bytes: a plain dict saved with torch.save, with a format version."""

from __future__ import annotations

import io
from typing import Any

import torch

FORMAT_VERSION = 2  # 2: the head's dropout moved after the hidden layer


class CheckpointError(ValueError):
    """The stored weights are corrupt or of a format this version cannot read."""


def pack(*, head_arch: dict, head_state: dict, prototypes=None) -> bytes:
    """The head, and the training embeddings that "none of these" compares new ones with."""
    buf = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, "head_arch": head_arch, "head_state": head_state,
                "prototypes": None if prototypes is None else torch.as_tensor(prototypes)}, buf)
    return buf.getvalue()


def state_bytes(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, buf)
    return buf.getvalue()


def load_state(data: bytes) -> dict:
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"backbone weights cannot be read: {exc}") from exc


def unpack(data: bytes) -> dict[str, Any]:
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise CheckpointError(f"model weights cannot be read: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"model weights have format {ckpt.get('format_version')!r}, "
                              f"this server reads {FORMAT_VERSION}")
    return ckpt
