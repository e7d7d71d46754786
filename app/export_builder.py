"""One named thread per process builds and checks a model's download formats in the background, one file at a
time, so that the page can show every format's size and agreement before anyone picks one.

It is fed by a `queue.Queue` and stopped by a sentinel. What is built lies in the cache (the parity sidecars of
app.exports); what waits, what is being built and what failed is this process's memory, keyed by the file's
cache path (which changes with the model's content, e.g. its threshold). A failed build is recorded with its
reason and not retried until someone asks again: no loop.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from pathlib import Path

from app.db import session_scope
from app.exports import ALL_FORMATS, NotOffered, download_name, export_model, export_path, report_path
from app.models import TrainedModel
from app.services import Services

log = logging.getLogger("snapclass.exports")

_STOP = object()


class ExportBuilder:
    def __init__(self, services: Services):
        self.services = services
        self.queue: queue.Queue = queue.Queue()
        self.stopping = threading.Event()
        self._guard = threading.Lock()
        self._waiting: set[Path] = set()
        self._building: Path | None = None
        self._failed: dict[Path, str] = {}
        self.thread = threading.Thread(target=self._loop, name="snapclass-exports", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 30) -> None:
        """After the file being built, if any: a trace cannot be interrupted."""
        self.stopping.set()
        self.queue.put(_STOP)
        if self.thread.is_alive():
            self.thread.join(timeout)

    def request(self, model: TrainedModel) -> None:
        """Queue every format of `model` that is neither built, nor waiting, nor being built (idempotent)."""
        for fmt in ALL_FORMATS:
            path = self._path(model, fmt)
            if report_path(path).is_file():
                continue
            with self._guard:
                if path in self._waiting or path == self._building:
                    continue
                self._failed.pop(path, None)  # asked again: try again, once
                self._waiting.add(path)
            self.queue.put((model.id, fmt, path))

    def status(self, model: TrainedModel, project_name: str) -> list[dict]:
        """Every format of `model`, in format order: its parity report once built, else where it stands."""
        out = []
        for fmt in ALL_FORMATS:
            path = self._path(model, fmt)
            entry = {"format": fmt, "file_name": download_name(project_name, model.version, fmt)}
            sidecar = report_path(path)
            with self._guard:
                building, waiting, failed = path == self._building, path in self._waiting, self._failed.get(path)
            if sidecar.is_file():
                entry.update(json.loads(sidecar.read_text()), status="built")
            elif building or waiting:
                entry["status"] = "building" if building else "queued"
            elif failed is not None:
                entry.update(status="failed", offered=False, reason=failed)
            else:
                entry["status"] = "not_built"
            out.append(entry)
        return out

    def _path(self, model: TrainedModel, fmt: str) -> Path:
        return export_path(self.services.settings.cache_dir, model, fmt)

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP or self.stopping.is_set():
                return
            model_id, fmt, path = item
            with self._guard:
                self._waiting.discard(path)
                self._building = path
            try:
                failure = self._build(model_id, fmt)
            except Exception as exc:  # never let one file kill the thread that builds all others
                log.exception("building the %s file of model %s failed", fmt, model_id)
                failure = f"building the {fmt} file failed ({type(exc).__name__}: {exc}); ask again to retry"
            with self._guard:
                self._building = None
                if failure is not None:
                    self._failed[path] = failure

    def _build(self, model_id: int, fmt: str) -> str | None:
        """None once built (offered or not: its sidecar says which), else why nothing was built."""
        with session_scope(self.services.session_factory) as s:
            model = s.get(TrainedModel, model_id)
            if model is None:
                return None  # deleted while it waited
            name = model.project.name  # the session closes; expire_on_commit=False keeps what was loaded
        try:
            export_model(model, name, fmt, services=self.services)
        except NotOffered as exc:
            if not report_path(self._path(model, fmt)).is_file():  # refused before there was a file to check
                return str(exc)
        return None
