"""An untrusted zip, opened safely: every name, link, size and compression ratio is checked from the central
directory before anything is unpacked, and every read is capped again (declared sizes are never trusted)."""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import BinaryIO

from app.projectfile import ProjectFileError

# Below this size an entry cannot hurt, whatever its compression ratio (a small JSON file compresses well).
RATIO_FLOOR = 1 << 20
METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


@dataclass(frozen=True)
class Limits:
    max_entries: int
    max_unpacked: int  # bytes, all entries together
    max_ratio: int


def _mib(n: int) -> str:
    return f"{n / 1024**2:,.0f} MiB"


def check_name(name: str) -> None:
    """A relative path that stays inside the folder it is unpacked into, on any system."""
    if "\\" in name:
        raise ProjectFileError(f"the entry {name!r} has a backslash in its path")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ProjectFileError(f"the entry {name!r} has an absolute path")
    parts = name.split("/")
    if ".." in parts:
        raise ProjectFileError(f"the entry {name!r} points outside the project file (..)")
    if any(part in ("", ".") for part in parts):
        raise ProjectFileError(f"the entry {name!r} is a folder or has an empty or '.' part in its path")
    if any(ord(c) < 32 or c == "\x7f" for c in name) or len(name) > 255:
        raise ProjectFileError(f"the entry {name[:80]!r} has control characters or is too long")


class SafeZip:
    """Opening reads only the central directory; `check` judges it before anything is unpacked."""

    def __init__(self, file: BinaryIO):
        try:
            self.zip = zipfile.ZipFile(file)
            self.infos = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
            raise ProjectFileError(f"not a snapclass project file: not a readable zip archive ({exc})", 400) from None
        self.entries = {i.filename: i for i in self.infos}
        self._budget = 0  # nothing may be read before check()

    @property
    def names(self) -> set[str]:
        return set(self.entries)

    def check(self, limits: Limits) -> None:
        infos = self.infos
        if len(infos) > limits.max_entries:
            raise ProjectFileError(f"the file has {len(infos):,} entries; at most {limits.max_entries:,} are "
                                   "accepted", 413)
        duplicates = [name for name, n in Counter(i.filename for i in infos).items() if n > 1]
        if duplicates:
            raise ProjectFileError(f"the entry {duplicates[0]!r} appears more than once")
        total = 0
        for info in infos:
            self._check_entry(info, limits)
            total += info.file_size
        if total > limits.max_unpacked:
            raise ProjectFileError(f"the file unpacks to {_mib(total)}; at most {_mib(limits.max_unpacked)} are "
                                   "accepted", 413)
        self._budget = limits.max_unpacked

    @staticmethod
    def _check_entry(info: zipfile.ZipInfo, limits: Limits) -> None:
        check_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ProjectFileError(f"the entry {info.filename!r} is a symbolic link")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: no type recorded (Windows, Python's writestr)
            raise ProjectFileError(f"the entry {info.filename!r} is not a plain file")
        if info.flag_bits & 0x1:
            raise ProjectFileError(f"the entry {info.filename!r} is encrypted")
        if info.compress_type not in METHODS:
            raise ProjectFileError(f"the entry {info.filename!r} uses a compression method snapclass does not "
                                   "write (only stored and deflated)")
        if info.file_size > RATIO_FLOOR and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise ProjectFileError(f"the entry {info.filename!r} is compressed {ratio:,.0f} to 1 (more than "
                                   f"{limits.max_ratio} to 1 looks like a zip bomb)", 413)

    def read(self, name: str, cap: int) -> bytes:
        """The entry's bytes, at most `cap` of them; the archive's CRC is checked."""
        info = self.entries[name]
        if info.file_size > cap:
            raise ProjectFileError(f"the entry {name!r} is {_mib(info.file_size)}; at most {_mib(cap)} are "
                                   "accepted", 413)
        if info.file_size > self._budget:
            raise ProjectFileError(f"the file unpacks to more than {_mib(self._budget)}", 413)
        try:
            with self.zip.open(info) as f:
                # One byte more than it says: zipfile stops at the declared size, but should it not, we know.
                data = f.read(info.file_size + 1)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise ProjectFileError(f"the entry {name!r} is damaged ({exc})") from None
        if len(data) != info.file_size:
            raise ProjectFileError(f"the entry {name!r} does not hold the {info.file_size:,} bytes it declares")
        self._budget -= len(data)
        return data
