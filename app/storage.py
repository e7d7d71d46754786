"""Where bytes live: sample images, their working copies and thumbnails, under server-made names.

`BlobStore` is all the rest of the app knows of it. `ImageStore` keeps the files under the data dir (the
default); `app.s3store.S3Store` keeps them as objects in an S3-compatible bucket (settings.blob_url). Both name a
sample's files `<key[:2]>/<key>.<kind>.<ext>`.

Every file write goes to a `.part` file that is renamed into place, so a crash never leaves half a file; files a
crash left without a sample row (they are written before the row commits) are swept at start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from app.config import Settings

ORIGINAL, WORK, THUMB = "orig", "work", "thumb"


def input_kind(size: int) -> str:
    """The sample already cropped to a backbone's input size, as raw uint8 pixels (.npy): extraction
    then neither decodes nor resizes (bench/speed.py: 0.75x -> 0.83x the bare backbone). Lossless on
    purpose: a JPEG of the crop made training see other pixels than prediction (-3 points on CIFAR)."""
    return f"s{size}"


def new_key() -> str:
    return secrets.token_hex(16)


def blob_name(key: str, kind: str) -> str:
    """`<key[:2]>/<key>.<kind>.<ext>`, the name of one file of a sample in either store."""
    if not key.isalnum() or not kind.isalnum():  # keys are ours; refuse anything that could walk the tree
        raise ValueError("bad storage key")
    ext = "bin" if kind == ORIGINAL else "npy" if kind.startswith("s") else "jpg"
    return f"{key[:2]}/{key}.{kind}.{ext}"


class BlobStore(Protocol):
    """A sample's files by (key, kind). Keys are never reused, so a file never changes once put."""

    def put(self, key: str, files: dict[str, bytes]) -> None:
        """Store every kind of `files` for `key`, each whole or not at all."""

    def read(self, key: str, kind: str) -> bytes:
        """The bytes; FileNotFoundError when there are none."""

    def delete(self, key: str) -> None:
        """Every kind of `key`; nothing there is fine."""

    def remove_orphans(self, keep: set[str]) -> int:
        """Delete what an interrupted upload left (keys not in `keep`); returns how many files went."""

    def has_any(self) -> bool:
        """Whether any file is stored at all."""

    def describe(self) -> str:
        """Where the files are, for the log."""


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
        return self.root / blob_name(key, kind)

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

    def has_any(self) -> bool:
        return self.root.is_dir() and next(self.root.glob("*/*"), None) is not None

    def describe(self) -> str:
        return str(self.root)


def make_store(settings: Settings) -> BlobStore:
    """The S3 store when settings.blob_url is set (a bad URL raises ValueError here, at start), else the files."""
    if settings.blob_url:
        from app.s3store import S3Store  # boto3 is imported only by servers that use it

        return S3Store.from_url(settings.blob_url)
    return ImageStore(settings.images_dir)
