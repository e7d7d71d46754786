"""Undoable deletes: deleted photos (or a class with its photos) wait in the trash for a few minutes.

Deleting moves the rows into one TrashEntry in the same transaction; the photo files stay in storage. Restoring
puts the rows back with their own ids (ids are never reused, so nothing else can hold them meanwhile).
Expired entries are purged by the sweeper: rows dropped, then the files. Embeddings are not kept: the next
training computes the few it needs again.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app import crud
from app.db import session_scope
from app.models import ImageClass, Sample, TrashEntry, utcnow
from app.names import name_key
from app.storage import BlobStore

log = logging.getLogger("snapclass.trash")

UNDO_MINUTES = 10  # the server keeps a delete undoable this long; the page offers Undo for its first seconds
SWEEP_SECONDS = 60
SAMPLE_FIELDS = ("id", "class_id", "key", "filename", "original_format", "width", "height", "source",
                 "burst_id", "created_at")
CLASS_FIELDS = ("id", "project_id", "name", "color", "enabled", "created_at")


class Gone(LookupError):
    """The entry exists but can no longer be restored (expired, or its class name was taken)."""


def _row(obj, fields: tuple[str, ...]) -> dict:
    out = {f: getattr(obj, f) for f in fields}
    out["created_at"] = out["created_at"].isoformat() if out["created_at"] else None
    return out


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _entry(session: Session, project_id: int, kind: str, payload: dict, keys: list[str]) -> TrashEntry:
    now = utcnow()
    entry = TrashEntry(project_id=project_id, kind=kind, payload=payload, keys=keys, created_at=now,
                       expires_at=now + timedelta(minutes=UNDO_MINUTES))
    session.add(entry)
    session.flush()
    return entry


def trash_samples(*, session: Session, project_id: int, samples: list[Sample]) -> TrashEntry:
    """Move photos of one project into one trash entry (a bulk delete is one undo)."""
    rows = [_row(s, SAMPLE_FIELDS) for s in samples]
    entry = _entry(session, project_id, "samples", {"samples": rows}, [s.key for s in samples])
    session.execute(delete(Sample).where(Sample.id.in_([s.id for s in samples])))
    return entry


def trash_class(*, session: Session, image_class: ImageClass) -> TrashEntry:
    samples = crud.list_samples(session=session, class_id=image_class.id)
    payload = {"class": _row(image_class, CLASS_FIELDS), "samples": [_row(s, SAMPLE_FIELDS) for s in samples]}
    entry = _entry(session, image_class.project_id, "class", payload, [s.key for s in samples])
    session.delete(image_class)  # its samples and embeddings go with it (ON DELETE CASCADE)
    session.flush()
    return entry


def get_entry(*, session: Session, trash_id: int) -> TrashEntry:
    entry = session.get(TrashEntry, trash_id)
    if entry is None:
        raise crud.NotFound(f"nothing to undo: deleted item {trash_id} not found (undo lasts {UNDO_MINUTES} "
                            "minutes)")
    return entry


def restore(*, session: Session, entry: TrashEntry) -> tuple[list[ImageClass], list[Sample]]:
    """Put the rows back with their own ids; the entry is used up. Raises Gone or crud.Conflict."""
    if "ended" in entry.payload:
        raise Gone(f"this can no longer be undone: {entry.payload['ended']}")
    if entry.expires_at <= utcnow():
        raise Gone(f"this can no longer be undone: deletes can be undone for {UNDO_MINUTES} minutes")
    classes: list[ImageClass] = []
    if entry.kind == "class":
        row = entry.payload["class"]
        crud.check_class_name(session=session, project_id=entry.project_id, name=row["name"])
        image_class = ImageClass(**{**row, "created_at": _when(row["created_at"])})
        session.add(image_class)
        session.flush()
        classes.append(image_class)
    rows = entry.payload["samples"]
    wanted = {r["class_id"] for r in rows}
    alive = set(session.scalars(select(ImageClass.id).where(
        ImageClass.id.in_(wanted), ImageClass.project_id == entry.project_id)))
    if wanted - alive:
        raise crud.Conflict("the class these photos were in has been deleted since; undo that first")
    samples = [Sample(**{**r, "created_at": _when(r["created_at"])}) for r in rows]
    session.add_all(samples)
    session.delete(entry)
    session.flush()
    return classes, samples


def release_class_name(*, session: Session, project_id: int, name: str) -> None:
    """A trashed class does not keep its name from a new class: its undo ends here (files go at the next sweep)."""
    key = name_key(name)
    entries = session.scalars(select(TrashEntry).where(
        TrashEntry.project_id == project_id, TrashEntry.kind == "class"))
    for entry in entries:
        old = entry.payload["class"]["name"]
        if name_key(old) == key and "ended" not in entry.payload:
            entry.payload = {**entry.payload, "ended": f"a new class named “{name}” was made since"}
            entry.expires_at = utcnow()


def purge_expired(factory: sessionmaker[Session], store: BlobStore) -> int:
    """Drop expired entries, then their files (after the commit: a failure leaves files, never a dangling row)."""
    with session_scope(factory) as session:
        entries = session.scalars(select(TrashEntry).where(TrashEntry.expires_at <= utcnow())).all()
        # RETURNING: only the entries this DELETE removed; one another process restored or purged meanwhile keeps
        # its files (or they are that process's to delete).
        gone = set(session.scalars(delete(TrashEntry).where(TrashEntry.id.in_([e.id for e in entries]))
                                   .returning(TrashEntry.id)))
        keys = [k for e in entries if e.id in gone for k in e.keys]
    for key in keys:
        store.delete(key)
    return len(gone)


class TrashSweeper:
    """One named daemon thread that purges expired trash every SWEEP_SECONDS, stopped by an event."""

    def __init__(self, factory: sessionmaker[Session], store: BlobStore, every: float = SWEEP_SECONDS):
        self.factory, self.store, self.every = factory, store, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> None:
        try:
            purged = purge_expired(self.factory, self.store)
        except Exception:  # a locked database now is fine a minute later; the thread must live on
            log.exception("could not purge the trash")
            return
        if purged:
            log.info("purged %d expired deletes from the trash", purged)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sweep()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="snapclass-trash", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
