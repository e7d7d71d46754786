"""Live updates: a Server-Sent Events stream of the change feed (app.changes) for one project or the home page.

Why SSE: the updates go one way (server to page), and SSE is plain HTTP: the same cookie or token sign-in, the
same CSP `connect-src 'self'`, no upgrade for a proxy to refuse, and the browser's EventSource reconnects by
itself and says where it left off (Last-Event-ID). Polling each API every second from every open tab would cost
a request per resource per tab even when nothing changes; a WebSocket would need its own sign-in, reconnection
and keep-alive code for a channel whose other direction stays unused.

Each stream polls the `changes` table (one primary-key range query every POLL_S) in the database, not in this
process's memory, so a change made by another server process, or by the worker, reaches every page.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from app import access, changes, crud
from app.api import errors
from app.api.deps import MAX_ID, ActorDep, ServicesDep, SessionDep
from app.db import session_scope
from app.models import Project
from app.security import Actor

router = APIRouter(prefix="/api", tags=["events"])

POLL_S = 0.5
KEEPALIVE_S = 15  # a comment line now and then: proxies and browsers drop a silent connection
# A stream ends after this long and the browser reconnects at once (retry), signing in again: a session that
# was signed out or a membership that was removed meanwhile stops being served within this bound.
LIFETIME_S = 300
RETRY_MS = 1000
RESET = "all"  # the topic of an event that says "changes were missed: reload everything"

DESCRIPTION = """`text/event-stream` of changes, for pages that stay current while open.

With `project`: changes to that project (404 if you may not see it). Without: changes to every project you may
see, and to projects that you could see and no longer can (deleted, or your membership removed) - the home page;
a project deleted that the stream cannot tell you saw comes as `project_id: null` (some project went).

Each event is `event: change`, `id: N`, `data: {"id": N, "project_id": P, "topic": T}` with topic one of
`project`, `classes`, `samples`, `jobs`, `models`, or `all` (changes were missed: reload everything). A burst of
changes to one thing arrives as one event. A reconnect with `Last-Event-ID: N` (or `?after=N`) resumes after
change N; without either the stream starts from now. Lines
starting with `:` are keep-alives. The stream ends after a few minutes; EventSource reconnects by itself."""

AFTER = ("resume after this change (a page passes the feed's position when it was rendered: the "
         "`snapclass-change-id` meta tag); Last-Event-ID, when sent, wins")

STREAM = {200: {"description": "the stream (it ends after a few minutes; reconnect with Last-Event-ID)",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}},
          **errors.error(404, "no such project, or not one you may see")}


def _event(change_id: int, project_id: int | None, topic: str) -> str:
    data = json.dumps({"id": change_id, "project_id": project_id, "topic": topic})
    return f"id: {change_id}\nevent: change\ndata: {data}\n\n"


def _resume_point(session, last_event_id: str | None) -> tuple[int, bool]:
    """(the id to stream after, whether changes were missed since the client's Last-Event-ID)."""
    latest = changes.latest_id(session)
    if last_event_id is None or not last_event_id.strip().isdigit():
        return latest, False  # a new page: it has just read everything
    after = min(int(last_event_id), latest)
    oldest = changes.oldest_id(session)
    return after, oldest is not None and after < oldest - 1 and after < latest  # pruned away since


class Follower:
    """What one stream may see and has sent; its database reads run in a worker thread, one short session each."""

    def __init__(self, factory, actor: Actor, project_id: int | None, after: int):
        self.factory, self.actor, self.project_id, self.after = factory, actor, project_id, after
        self.visible: set[int] = set()
        self.allowed = True
        self.sent: dict[int, float] = {}  # recent change ids already sent -> when (see changes.LATE)

    def _visible_ids(self, session) -> set[int]:
        return {p.id for p in access.visible_projects(session, self.actor)}

    @staticmethod
    def _existing(session, ids: set[int]) -> set[int]:
        return set(session.scalars(select(Project.id).where(Project.id.in_(ids))))

    def start(self) -> None:
        with session_scope(self.factory) as s:
            if self.project_id is None:
                self.visible = self._visible_ids(s)
            if changes.may_commit_late(s):  # the recent rows the page already knows of are not news
                now = time.monotonic()
                self.sent = {r.id: now for r in changes.since(s, self.after, self.project_id, late=changes.LATE)
                             if r.id <= self.after}

    def poll(self) -> list[tuple[int, int | None, str]]:
        """New changes for this stream, a burst to one (project, topic) folded into its latest row."""
        with session_scope(self.factory) as s:
            late = changes.LATE if changes.may_commit_late(s) else None
            rows = changes.since(s, self.after, self.project_id, late=late)
            if late is not None:
                now = time.monotonic()
                rows = [r for r in rows if r.id not in self.sent]
                self.sent = {i: t for i, t in self.sent.items() if now - t < 2 * late.total_seconds()}
                self.sent.update((r.id, now) for r in rows)
            if not rows:
                return []
            self.after = max(self.after, rows[-1].id)
            if self.project_id is not None:
                # Checked again whenever something changed: the project may be gone or no longer shared with us.
                try:
                    access.project(s, self.actor, self.project_id)
                except crud.NotFound:
                    self.allowed = False
                seen = [(r.id, r.project_id, r.topic) for r in rows]
            else:
                before, self.visible = self.visible, self._visible_ids(s)
                seen = [(r.id, r.project_id, r.topic) for r in rows
                        if r.project_id in before or r.project_id in self.visible]
                # A project deleted before this stream knew it (while the page loaded) may still be on the page:
                # say that some project went, without saying which (someone else's id is not ours to tell).
                others = {r.project_id for r in rows} - before - self.visible - {None}
                if others and len(self._existing(s, others)) < len(others):
                    seen.append((rows[-1].id, None, changes.PROJECT))
        latest: dict[tuple[int | None, str], int] = {}
        for change_id, project_id, topic in seen:
            latest[(project_id, topic)] = max(change_id, latest.get((project_id, topic), 0))
        return sorted(((i, pid, topic) for (pid, topic), i in latest.items()))


async def _stream(request: Request, follower: Follower, missed: bool) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    if missed:
        yield _event(follower.after, follower.project_id, RESET)
    started = quiet_since = time.monotonic()
    while time.monotonic() - started < LIFETIME_S:
        if await request.is_disconnected():
            return
        sent = await anyio.to_thread.run_sync(follower.poll)
        for change_id, project_id, topic in sent:
            yield _event(change_id, project_id, topic)
        if not follower.allowed:
            return  # the last event told the page; a reconnect is refused with 404
        now = time.monotonic()
        if sent:
            quiet_since = now
        elif now - quiet_since >= KEEPALIVE_S:
            quiet_since = now
            yield ": keep-alive\n\n"
        await asyncio.sleep(POLL_S)


@router.get("/events", response_class=StreamingResponse, responses=STREAM, description=DESCRIPTION,
            summary="Follow changes (Server-Sent Events)")
async def follow_changes(request: Request, session: SessionDep, services: ServicesDep, actor: ActorDep,
                         project: Annotated[int | None, Query(ge=1, le=MAX_ID, description="a project's id")] = None,
                         after: Annotated[int | None, Query(ge=0, le=MAX_ID, description=AFTER)] = None,
                         last_event_id: Annotated[str | None, Header(description="resume after this change")] = None):
    def prepare() -> tuple[int, bool]:  # in a worker thread, like every read of this route: not on the event loop
        if project is not None:
            access.project(session, actor, project)  # 404 before the stream starts
        # Last-Event-ID first: EventSource sends it on reconnecting, and it is newer than the URL's `after`.
        return _resume_point(session, last_event_id if last_event_id is not None else
                             None if after is None else str(after))

    # The request's session closes when this function returns (SessionDep's scope): the stream holds no
    # connection for minutes, it reads with short sessions of its own.
    start, missed = await anyio.to_thread.run_sync(prepare)
    follower = Follower(services.session_factory, actor, project, start)
    await anyio.to_thread.run_sync(follower.start)
    # no-store: a proxy must not keep a stream; no-transform/X-Accel-Buffering: nor hold it back in a buffer.
    headers = {"Cache-Control": "no-store, no-transform", "X-Accel-Buffering": "no"}
    return StreamingResponse(_stream(request, follower, missed), media_type="text/event-stream", headers=headers)
