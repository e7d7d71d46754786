"""The change feed: one row in `changes` per flush that touches a project, written in that flush's transaction.

Open pages follow it (app.api.events): a row commits exactly when the change it announces commits, and rolls back
with it, so a page never hears of a change that did not happen. It lives in the database, not in this process's
memory, so that a page served by one server process hears of a change made in another (or by the worker).

One session listener records every ORM change (no route has to remember to); bulk `update()`/`delete()`
statements bypass ORM events, so the few that touch projects call `record` themselves.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, event, func, insert, inspect, or_, select
from sqlalchemy.orm import Session

from app.models import Change, ImageClass, Job, Project, ProjectMember, Sample, TrainedModel, TrashEntry, utcnow

# Coarse on purpose: a page re-reads what it shows; the topic only says which part.
PROJECT, CLASSES, SAMPLES, JOBS, MODELS = "project", "classes", "samples", "jobs", "models"
# A page away longer than this (its Last-Event-ID older than the oldest row) reloads everything instead.
KEEP = timedelta(minutes=10)
PRUNE_EVERY = 200  # recording flushes per process between prunes: a prune scans the (small) table
_flushes = itertools.count(1)


def record(session: Session, project_ids: Iterable[int | None], topic: str) -> None:
    """Add change rows for a bulk statement the listener cannot see (in the session's transaction)."""
    rows = [{"project_id": pid, "topic": topic} for pid in sorted(set(project_ids))]
    if rows:
        session.connection().execute(insert(Change), rows)


def prune(session: Session, keep: timedelta = KEEP) -> int:
    """Drop rows older than `keep`; the number dropped. (Also run every PRUNE_EVERY recording flushes.)"""
    return session.connection().execute(delete(Change).where(Change.created_at < utcnow() - keep)).rowcount


def latest_id(session: Session) -> int:
    return session.scalar(select(func.max(Change.id))) or 0


def oldest_id(session: Session) -> int | None:
    return session.scalar(select(func.min(Change.id)))


# PostgreSQL hands out ids when rows are inserted, and two transactions may commit in the other order: a row with a
# smaller id can appear after a reader has moved past it. Readers there also look at rows this recent, and skip
# the ones they already sent. (SQLite has one writer at a time: ids commit in order.)
LATE = timedelta(seconds=10)


def may_commit_late(session: Session) -> bool:
    return session.get_bind().dialect.name != "sqlite"


def since(session: Session, after: int, project_id: int | None = None, limit: int = 500,
          late: timedelta | None = None) -> list[Change]:
    """Rows after id `after` (and, with `late`, any row that recent), oldest first: one query on the primary key
    (and the project_id index)."""
    newer = Change.id > after
    if late is not None:
        newer = or_(newer, Change.created_at >= utcnow() - late)
    query = select(Change).where(newer).order_by(Change.id).limit(limit)
    if project_id is not None:
        query = query.where(Change.project_id == project_id)
    return list(session.scalars(query))


def _touched(session: Session) -> set[tuple[int | None, str]]:
    """(project id, topic) of everything this flush writes. Called after the flush: new rows have ids, and
    new/dirty/deleted still list what was flushed."""
    found: set[tuple[int | None, str]] = set()
    sample_classes: set[int] = set()
    for obj, deleted in [(o, False) for o in session.new] + [(o, False) for o in session.dirty] + \
            [(o, True) for o in session.deleted]:
        if not deleted and obj not in session.new and not session.is_modified(obj, include_collections=False):
            continue  # touched in Python, nothing written
        if isinstance(obj, Project):
            found.add((obj.id, PROJECT))
            if obj in session.dirty and _changed(obj, "current_model_id"):
                found.add((obj.id, MODELS))
        elif isinstance(obj, ImageClass):
            found.add((obj.project_id, CLASSES))
        elif isinstance(obj, Sample):
            sample_classes.add(obj.class_id)
        elif isinstance(obj, Job):
            found.add((obj.project_id, JOBS))
        elif isinstance(obj, TrainedModel):
            found.add((obj.project_id, MODELS))
        elif isinstance(obj, ProjectMember):
            found.add((obj.project_id, PROJECT))
        elif isinstance(obj, TrashEntry):
            found.add((obj.project_id, CLASSES if obj.kind == "class" else SAMPLES))
    if sample_classes:
        # One query for all the photos of the flush (an upload adds many); a class deleted in this same flush
        # is gone already, and its own row announces it.
        owners = session.connection().execute(
            select(ImageClass.project_id).where(ImageClass.id.in_(sample_classes)).distinct())
        found.update((pid, SAMPLES) for (pid,) in owners)
    return found


def _changed(obj, attr: str) -> bool:
    return inspect(obj).attrs[attr].history.has_changes()


@event.listens_for(Session, "after_flush")
def _record_flush(session: Session, _context) -> None:
    touched = _touched(session)
    if not touched:
        return
    session.connection().execute(insert(Change), [{"project_id": pid, "topic": topic}
                                                  for pid, topic in sorted(touched, key=str)])
    if next(_flushes) % PRUNE_EVERY == 0:
        prune(session)
