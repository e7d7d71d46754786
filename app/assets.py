"""Where the web UI's templates/ and static/ folders are, found once.

In the repository they sit beside app/ (a fixed part of the layout); a built wheel carries them inside the
package, as app/templates and app/static (see setup.py). Looking inside the package first means an installed
wheel always serves its own copy, whatever directory the server is started from.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _folder(name: str) -> Path:
    for candidate in (PACKAGE / name, PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"the web UI's {name}/ folder is missing: neither {PACKAGE / name} (an installed wheel) "
                       f"nor {PACKAGE.parent / name} (a source checkout) exists; reinstall snapclass")


TEMPLATES = _folder("templates")
STATIC = _folder("static")
