"""Where bytes live: sample images, their working copies and thumbnails, under server-made names.

Every write goes to a `.part` file that is renamed into place, so a crash never leaves half a file; files a
crash left without a sample row (they are written before the row commits) are swept at start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ORIGINAL, WORK, THUMB = "orig", "work", "thumb"


def input_kind(size: int) -> str:
    """The sample already cropped to a backbone's input size, as raw uint8 pixels (.npy): extraction
    then neither decodes nor resizes (bench/speed.py: 0.75x -> 0.83x the bare backbone). Lossless on
    purpose: a JPEG of the crop made training see other pixels than prediction (-3 points on CIFAR)."""
    return f"s{size}"


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
    """Files per sample: the original bytes, a right-sized RGB JPEG for training and augmentation,
    a thumbnail, and the crop at the backbone's input size."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, key: str, kind: str) -> Path:
        if not key.isalnum():  # keys are ours; refuse anything that could walk the tree
            raise ValueError("bad storage key")
        ext = "bin" if kind == ORIGINAL else "npy" if kind.startswith("s") else "jpg"
        return self.root / key[:2] / f"{key}.{kind}.{ext}"

    def put(self, key: str, files: dict[str, bytes]) -> None:
        for kind, data in files.items():
            atomic_write(self.path(key, kind), data)

    def read(self, key: str, kind: str) -> bytes:
        return self.path(key, kind).read_bytes()

    def delete(self, key: str) -> None:
        for path in self.path(key, ORIGINAL).parent.glob(f"{key}.*"):
            path.unlink(missing_ok=True)

    def remove_orphans(self, keep: set[str]) -> int:
        """Delete files whose key is not in `keep`, and every `.part` file; returns how many went.
        Only for start-up, when no upload is half-way: one walk of the two-level tree, no per-file query."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for folder in os.scandir(self.root):
            if not folder.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(folder.path):
                if entry.is_file(follow_symlinks=False) and (
                        entry.name.endswith(".part") or entry.name.split(".", 1)[0] not in keep):
                    os.unlink(entry.path)
                    removed += 1
        return removed
