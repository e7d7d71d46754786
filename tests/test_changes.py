"""The change feed (app.changes) and its Server-Sent Events stream (GET /api/events), on the real app: rows
written in the transaction of the change they announce, the stream over real HTTP (uvicorn in a thread: a
TestClient buffers whole bodies, and this one never ends), access, Last-Event-ID, pruning."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select, update

from app import changes
from app.config import Settings
from app.db import session_scope
from app.main import create_app
from app.models import Change, Project, utcnow
from tests.conftest import jpeg_bytes, make_project, photos, upload, wait_job

PASSWORD = "correct horse battery"


@dataclass
class Live:
    url: str
    app: object

    @property
    def factory(self):
        return self.app.state.services.session_factory


@contextmanager
def live_server(tmp_path, cache_dir, **settings) -> Iterator[Live]:
    """The app served by uvicorn on a free loopback port, in a thread; stopped at the end."""
    app = create_app(Settings(data_dir=tmp_path / "data", cache_path=cache_dir, **settings))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Live(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


class Stream:
    """An open GET /api/events: parsed events, read as they come (each read bounded by `timeout`)."""

    def __init__(self, client: httpx.Client, params: dict | None = None, headers: dict | None = None):
        self._cm = client.stream("GET", "/api/events", params=params or {}, headers=headers or {},
                                 timeout=httpx.Timeout(10, read=20))
        self.response = self._cm.__enter__()
        self._lines = self.response.iter_lines()

    def next(self, timeout: float = 5) -> dict:
        """The next `change` event's fields (id, event, data parsed); fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        fields: dict = {}
        for line in self._lines:
            if line == "":
                if fields.get("event") == "change":
                    fields["data"] = json.loads(fields["data"])
                    return fields
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
            assert time.monotonic() < deadline, f"no change event within {timeout} s"
        raise AssertionError("the stream ended")

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


@contextmanager
def stream(client: httpx.Client, **kwargs) -> Iterator[Stream]:
    s = Stream(client, **kwargs)
    try:
        yield s
    finally:
        s.close()


def topics(factory, after: int = 0) -> list[tuple[int | None, str]]:
    with session_scope(factory) as s:
        return [(c.project_id, c.topic) for c in changes.since(s, after)]


# --- rows ---


def test_every_kind_of_change_to_a_project_is_recorded(client):
    factory = client.app.state.services.session_factory
    pid, (ants, bees) = make_project(client, "feed", ("ants", "bees"))
    assert topics(factory) == [(pid, "project"), (pid, "classes"), (pid, "classes")]

    def after(action) -> set[tuple[int | None, str]]:
        with session_scope(factory) as s:
            last = changes.latest_id(s)
        action()
        return set(topics(factory, last))

    assert after(lambda: client.patch(f"/api/projects/{pid}", json={"name": "renamed"})) == {(pid, "project")}
    assert after(lambda: client.patch(f"/api/classes/{ants}", json={"name": "Ants"})) == {(pid, "classes")}
    # Many photos in one request: one row (one flush), found through their class in one query.
    ant_photos, bee_photos = photos("hymenoptera", "train", "ants", limit=4), photos("hymenoptera", "train", "bees",
                                                                                      limit=4)
    assert after(lambda: upload(client, ants, ant_photos)) == {(pid, "samples")}
    upload(client, bees, bee_photos)
    sample = client.get(f"/api/classes/{bees}/samples").json()[0]["id"]
    assert after(lambda: client.delete(f"/api/samples/{sample}")) == {(pid, "samples")}
    job_rows = after(lambda: wait_job(client, client.post(f"/api/projects/{pid}/train", json={
        "mode": "head", "epochs": 3, "folds": 1}).json()["job_id"]))
    # queued, running, progress, finished: the job's rows; the new model and its becoming current: the models'.
    assert {(pid, "jobs"), (pid, "models"), (pid, "project")} <= job_rows, job_rows
    model = client.get(f"/api/projects/{pid}").json()["model"]["id"]
    assert after(lambda: client.patch(f"/api/models/{model}", json={"unknown_threshold": 0.5})) == {(pid, "models")}
    other = make_project(client, "other", ())[0]
    assert after(lambda: client.delete(f"/api/classes/{bees}")) == {(pid, "classes")}
    assert after(lambda: client.delete(f"/api/projects/{other}")) == {(other, "project")}
    # Reading changes nothing, and records nothing.
    assert after(lambda: (client.get(f"/api/projects/{pid}"), client.get("/api/projects"))) == set()


def test_a_change_row_commits_and_rolls_back_with_its_change(client):
    factory = client.app.state.services.session_factory
    pid, _ = make_project(client, "atomic", ())
    with session_scope(factory) as s:
        before = changes.latest_id(s)
    with pytest.raises(RuntimeError), session_scope(factory) as s:
        s.get(Project, pid).name = "never"
        s.flush()  # the row is written with the change...
        with session_scope(factory) as other:  # ...and no other connection sees it before the commit
            assert changes.latest_id(other) == before
        raise RuntimeError("the request failed after its write")
    assert topics(factory, before) == []  # rolled back with the rename
    assert client.get(f"/api/projects/{pid}").json()["name"] == "atomic"
    with session_scope(factory) as s:
        s.get(Project, pid).name = "kept"
    assert topics(factory, before) == [(pid, "project")]


def test_bulk_updates_record_their_projects_too(client):
    """recover_jobs() at start-up marks jobs of a dead process with one UPDATE: no ORM event sees it."""
    from app import crud
    from app.models import Job

    factory = client.app.state.services.session_factory
    pid, _ = make_project(client, "bulk", ())
    with session_scope(factory) as s:
        s.add(Job(project_id=pid, kind="train", status="running", params={}))
    with session_scope(factory) as s:
        last = changes.latest_id(s)
        crud.recover_jobs(session=s)
    assert topics(factory, last) == [(pid, "jobs")]
    assert client.get(f"/api/projects/{pid}/jobs/latest").json()["status"] == "failed"


def test_old_rows_are_pruned_and_recent_ones_kept(client):
    factory = client.app.state.services.session_factory
    pid, _ = make_project(client, "prune", ())
    with session_scope(factory) as s:
        s.add(Change(project_id=pid, topic="project", created_at=utcnow() - changes.KEEP - timedelta(seconds=5)))
    with session_scope(factory) as s:
        recent = s.scalar(select(func.count(Change.id)).where(Change.created_at > utcnow() - changes.KEEP))
    # Every PRUNE_EVERY-th recording flush of a process prunes: no timer, no route has to ask.
    for i in range(changes.PRUNE_EVERY):
        with session_scope(factory) as s:
            s.execute(select(Project).where(Project.id == pid)).scalar_one().name = f"n{i}"
    with session_scope(factory) as s:
        old = s.scalar(select(func.count(Change.id)).where(Change.created_at < utcnow() - changes.KEEP))
        kept = s.scalar(select(func.count(Change.id)))
    assert old == 0
    assert kept == recent + changes.PRUNE_EVERY
    with session_scope(factory) as s:
        assert changes.prune(s, keep=timedelta(0)) == kept
        assert changes.latest_id(s) == 0


# --- the stream ---


@pytest.fixture
def live(tmp_path, cache_dir):
    with live_server(tmp_path, cache_dir) as server:
        yield server


def test_a_project_stream_hears_changes_within_a_second(live):
    with httpx.Client(base_url=live.url, timeout=30) as c:
        pid, (cid,) = make_project(c, "heard", ("ants",))
        other, _ = make_project(c, "not this one", ())
        with stream(c, params={"project": pid}) as events:
            assert events.response.headers["content-type"].startswith("text/event-stream")
            assert events.response.headers["cache-control"] == "no-store, no-transform"
            c.patch(f"/api/projects/{other}", json={"name": "ignored"})  # another project: not on this stream
            start = time.monotonic()
            c.patch(f"/api/classes/{cid}", json={"name": "Ants"})
            event = events.next()
            took = time.monotonic() - start
            assert event["data"]["project_id"] == pid and event["data"]["topic"] == "classes"
            assert event["id"] == str(event["data"]["id"])
            assert took < 1.5, took
            c.post(f"/api/classes/{cid}/samples", files=[("files", ("a.jpg", jpeg_bytes()))])
            assert events.next()["data"]["topic"] == "samples"
            c.delete(f"/api/projects/{pid}")
            # The page hears its project went; the stream then ends, and a reconnect is refused.
            assert events.next()["data"]["topic"] == "project"
            with pytest.raises(AssertionError, match="the stream ended"):
                events.next()
        assert c.get("/api/events", params={"project": pid}).status_code == 404


def test_a_burst_of_changes_arrives_as_one_event_per_topic(live):
    with httpx.Client(base_url=live.url, timeout=30) as c:
        pid, (cid,) = make_project(c, "burst", ("ants",))
        with session_scope(live.factory) as s:
            start = changes.latest_id(s)
        for i in range(5):
            c.patch(f"/api/classes/{cid}", json={"name": f"ants {i}"})
        with stream(c, params={"project": pid}, headers={"Last-Event-ID": str(start)}) as events:
            first = events.next()
            assert first["data"]["topic"] == "classes" and int(first["id"]) == start + 5  # the latest of the five
            c.patch(f"/api/projects/{pid}", json={"name": "next"})
            assert events.next()["data"]["topic"] == "project"  # nothing else came in between


def test_last_event_id_resumes_where_the_page_left_off(live):
    with httpx.Client(base_url=live.url, timeout=30) as c:
        pid, (cid,) = make_project(c, "resume", ("ants",))
        with stream(c, params={"project": pid}) as events:
            c.patch(f"/api/classes/{cid}", json={"name": "one"})
            seen = events.next()["id"]
        # While away: two changes. Back with Last-Event-ID (EventSource sends it by itself on reconnecting).
        c.post(f"/api/projects/{pid}/classes", json={"name": "two"})
        c.patch(f"/api/projects/{pid}", json={"name": "three"})
        with stream(c, params={"project": pid}, headers={"Last-Event-ID": seen}) as events:
            assert [events.next()["data"]["topic"], events.next()["data"]["topic"]] == ["classes", "project"]
        # ?after=N, as a page passes the feed's position when it was rendered: the same, for a first connection.
        with stream(c, params={"project": pid, "after": seen}) as events:
            assert [events.next()["data"]["topic"], events.next()["data"]["topic"]] == ["classes", "project"]
        # Without either, a stream starts from now.
        with stream(c, params={"project": pid}) as events:
            c.patch(f"/api/classes/{cid}", json={"name": "four"})
            assert int(events.next()["id"]) > int(seen) + 2


def test_a_page_away_longer_than_the_feed_keeps_is_told_to_reload_everything(live):
    with httpx.Client(base_url=live.url, timeout=30) as c:
        pid, (cid,) = make_project(c, "away", ("ants",))
        with stream(c, params={"project": pid}) as events:
            c.patch(f"/api/classes/{cid}", json={"name": "one"})
            seen = events.next()["id"]
        c.patch(f"/api/classes/{cid}", json={"name": "missed"})
        with session_scope(live.factory) as s:  # ten minutes pass: the rows the page missed are pruned
            s.execute(update(Change).values(created_at=utcnow() - changes.KEEP - timedelta(seconds=1)))
            changes.prune(s)
        c.patch(f"/api/projects/{pid}", json={"name": "later"})
        with stream(c, params={"project": pid}, headers={"Last-Event-ID": seen}) as events:
            assert events.next()["data"] == {"id": int(seen), "project_id": pid, "topic": "all"}
            assert events.next()["data"]["topic"] == "project"


def test_a_stream_ends_after_its_lifetime_so_the_browser_reconnects_and_signs_in_again(live, monkeypatch):
    from app.api import events as events_api

    monkeypatch.setattr(events_api, "LIFETIME_S", 1)  # 300 s in service; the same code path
    with httpx.Client(base_url=live.url, timeout=30) as c:
        pid, _ = make_project(c, "lifetime", ())
        start = time.monotonic()
        with c.stream("GET", "/api/events", params={"project": pid}, timeout=httpx.Timeout(10, read=5)) as r:
            body = "".join(r.iter_text())
        assert time.monotonic() - start < 3
        assert body.startswith("retry: 1000\n\n")  # how soon EventSource reconnects


def test_the_stream_answers_as_its_schema_says(live):
    """Excluded from the generated schemathesis run (a stream that never ends would hang it); checked here."""
    with httpx.Client(base_url=live.url, timeout=30) as c:
        doc = c.get("/openapi.json").json()["paths"]["/api/events"]["get"]
        assert set(doc["responses"]) >= {"200", "404", "422", "401"}
        assert "text/event-stream" in doc["responses"]["200"]["content"]
        r = c.get("/api/events", params={"project": 999})
        assert r.status_code == 404 and r.json() == {
            "detail": "project 999 was deleted, never existed, or is not shared with you"}
        assert c.get("/api/events", params={"project": 0}).status_code == 422
        assert c.get("/api/events", params={"project": "x"}).status_code == 422


# --- who hears what ---


def test_streams_only_tell_each_user_about_projects_they_may_see(tmp_path, cache_dir):
    with live_server(tmp_path, cache_dir, auth="required") as server:
        code = server.app.state.services.setup_code
        with httpx.Client(base_url=server.url, timeout=30) as admin, \
                httpx.Client(base_url=server.url, timeout=30) as alice, \
                httpx.Client(base_url=server.url, timeout=30) as bob, \
                httpx.Client(base_url=server.url, timeout=30) as anonymous:
            assert admin.post("/api/auth/setup", json={"code": code, "username": "admin",
                                                       "password": PASSWORD}).status_code == 201
            for name, client in (("alice", alice), ("bob", bob)):
                assert admin.post("/api/users", json={"username": name, "password": PASSWORD}).status_code == 201
                assert client.post("/api/auth/login", json={"username": name, "password": PASSWORD}).is_success
            assert anonymous.get("/api/events").status_code == 401
            secret, (cid,) = make_project(alice, "alice's", ("cats",))
            assert bob.get("/api/events", params={"project": secret}).status_code == 404  # as if it did not exist
            own, _ = make_project(bob, "bob's", ())
            with stream(bob) as home:  # the home page: every project bob may see
                alice.patch(f"/api/classes/{cid}", json={"name": "Cats"})  # not bob's business
                bob.patch(f"/api/projects/{own}", json={"name": "bob's, renamed"})
                assert pair(home.next()) == (own, "project")
                # Shared with bob: his home page hears of it, and of its changes from then on.
                alice.post(f"/api/projects/{secret}/members", json={"username": "bob", "role": "viewer"})
                assert home.next()["data"]["project_id"] == secret
                with stream(bob, params={"project": secret}) as page:
                    alice.patch(f"/api/classes/{cid}", json={"name": "CATS"})
                    assert page.next()["data"]["topic"] == "classes"
                    assert pair(home.next()) == (secret, "classes")
                    # Deleted: both hear it, though bob may see the project no more.
                    assert alice.delete(f"/api/projects/{secret}").status_code == 204
                    assert page.next()["data"]["topic"] == "project"
                    assert home.next()["data"]["project_id"] == secret
                    second, _ = make_project(alice, "alice's second", ())
                    bob.patch(f"/api/projects/{own}", json={"name": "bob's again"})
                    assert home.next()["data"]["project_id"] == own  # alice's new project was not reported
                    # One bob never saw, deleted: that some project went, not which (his page may have shown
                    # it if it was shared with him while the page loaded, before his stream started).
                    alice.delete(f"/api/projects/{second}")
                    assert pair(home.next()) == (None, "project")


def pair(event: dict) -> tuple[int | None, str]:
    return event["data"]["project_id"], event["data"]["topic"]


def test_pages_are_never_stored_so_back_shows_fresh_data(client):
    pid, _ = make_project(client, "fresh", ())
    for path in ("/", f"/projects/{pid}", f"/projects/{pid}/models"):
        assert client.get(path).headers["cache-control"] == "no-store", path


def test_a_page_says_where_the_feed_stood_when_it_was_rendered(client):
    from html.parser import HTMLParser

    class Meta(HTMLParser):
        found: dict = {}

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "meta" and attrs.get("name") == "snapclass-change-id":
                self.found["id"] = attrs["content"]

    pid, _ = make_project(client, "meta", ("a",))
    with session_scope(client.app.state.services.session_factory) as s:
        latest = changes.latest_id(s)
    parser = Meta()
    parser.feed(client.get(f"/projects/{pid}").text)
    assert parser.found["id"] == str(latest)


def test_a_deleted_thing_is_named_in_words_that_do_not_blame_the_page(client):
    pid, (cid,) = make_project(client, "gone", ("ants",))
    client.delete(f"/api/classes/{cid}")
    r = client.patch(f"/api/classes/{cid}", json={"name": "x"})
    assert r.status_code == 404
    assert r.json()["detail"] == f"class {cid} was deleted, never existed, or is not shared with you"
