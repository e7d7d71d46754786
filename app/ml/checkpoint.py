"""A trained model as bytes: a plain dict saved with torch.save, with a format version."""

from __future__ import annotations

import io
from typing import Any

import torch

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """The stored weights are corrupt or of a format this version cannot read."""


def pack(*, head_arch: dict, head_state: dict, backbone_state: dict | None = None) -> bytes:
    buf = io.BytesIO()
    torch.save(
        {"format_version": FORMAT_VERSION, "head_arch": head_arch, "head_state": head_state,
         "backbone_state": backbone_state},
        buf,
    )
    return buf.getvalue()


def unpack(data: bytes) -> dict[str, Any]:
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise CheckpointError(f"model weights cannot be read: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"model weights have format {ckpt.get('format_version')!r}, "
                              f"this server reads {FORMAT_VERSION}")
    return ckpt
