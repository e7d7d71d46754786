"""A whole project as one zip file ("Save project to a file" / "Open a project file"), with no HTTP in it.

manifest.py says what the file holds; write.py makes one; safezip.py opens an untrusted zip; read.py checks
everything in it and turns it into a new project, all or nothing.
"""

from __future__ import annotations


class ProjectFileError(ValueError):
    """The file cannot be imported; `status` is the HTTP status that fits (400, 413 or 422), the message says
    why in words."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status
