"""Where bytes live: sample images, their working copies and thumbnails, under server-made names.

Every write goes to a `.part` file that is renamed into place, so a crash never leaves half a file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ORIGINAL, WORK, THUMB = "orig", "work", "thumb"


def new_key() -> str:
    return secrets.token_hex(16)


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.part")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ImageStore:
    """Three files per sample: the original bytes, a right-sized RGB JPEG for training, a thumbnail."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, key: str, kind: str) -> Path:
        if not key.isalnum():  # keys are ours; refuse anything that could walk the tree
            raise ValueError("bad storage key")
        ext = "bin" if kind == ORIGINAL else "jpg"
        return self.root / key[:2] / f"{key}.{kind}.{ext}"

    def put(self, key: str, *, original: bytes, work: bytes, thumb: bytes) -> None:
        for kind, data in ((ORIGINAL, original), (WORK, work), (THUMB, thumb)):
            atomic_write(self.path(key, kind), data)

    def read(self, key: str, kind: str) -> bytes:
        return self.path(key, kind).read_bytes()

    def delete(self, key: str) -> None:
        for kind in (ORIGINAL, WORK, THUMB):
            self.path(key, kind).unlink(missing_ok=True)
