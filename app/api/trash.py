"""Undo of deletes: POST the path a DELETE answered in its X-Undo header."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from app import access, crud, trash
from app.access import Level
from app.api import errors
from app.api.deps import ActorDep, Id, SessionDep
from app.api.views import class_out, sample_out
from app.schemas import RestoredOut

router = APIRouter(prefix="/api/trash", tags=["trash"])


@router.post("/{trash_id}/restore", response_model=RestoredOut, responses={
    **errors.responses(403, 404, 422),
    **errors.error(409, "what it would restore clashes with a change made since (the detail says which)"),
    **errors.error(410, "too late: the undo time is over, or a new class took the name")})
def restore(trash_id: Id, session: SessionDep, actor: ActorDep):
    """Put back what a delete removed, with the ids it had; once only."""
    entry = trash.get_entry(session=session, trash_id=trash_id)
    try:
        access.project(session, actor, entry.project_id, Level.EDIT)
    except crud.NotFound:  # as if it did not exist: the entry's project id is not for others to learn
        raise crud.NotFound(f"deleted item {trash_id} not found") from None
    try:
        classes, samples = trash.restore(session=session, entry=entry)
    except trash.Gone as exc:
        raise HTTPException(410, str(exc)) from None
    counts = crud.sample_counts(session=session, project_id=entry.project_id)
    return RestoredOut(kind=entry.kind, project_id=entry.project_id,
                       classes=[class_out(c, counts.get(c.id, 0)) for c in classes],
                       samples=[sample_out(s) for s in samples])
