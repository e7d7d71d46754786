"""Undoable deletes over HTTP on a real SQLite file: photos and classes go to the trash and come back with their
ids and bytes; expired entries are purged with their files; start-up keeps trashed files; access is checked."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta, timezone

from app import trash
from app.models import TrashEntry
from app.storage import ORIGINAL
from tests.conftest import make_client, make_project, photos, sqlite_only, upload
from tests.test_accounts import PASSWORD, required_app

ANTS = photos("hymenoptera", "train", "ants", limit=4)
BEES = photos("hymenoptera", "train", "bees", limit=3)


def undo_path(response) -> str:
    assert response.status_code == 204, response.text
    path = response.headers["X-Undo"]
    assert path.startswith("/api/trash/") and path.endswith("/restore"), path
    return path


def sample_files(client, samples) -> dict[int, bytes]:
    return {s["id"]: client.get(s["url"]).content for s in samples}


def store_of(client):
    return client.app.state.services.store


def expire_all(data_dir) -> None:
    """Move every trash entry's end into the past, as time passing would."""
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(data_dir / "snapclass.db") as db:
        db.execute("UPDATE trash SET expires_at = ?", (past,))


def test_photo_delete_is_undone_with_the_same_ids_and_bytes(client):
    _, (cid, _) = make_project(client)
    added = upload(client, cid, ANTS).json()["added"]
    before = sample_files(client, added)
    path = undo_path(client.delete(f"/api/samples/{added[1]['id']}"))
    assert client.get(added[1]["url"]).status_code == 404
    left = [s["id"] for s in client.get(f"/api/classes/{cid}/samples").json()]
    assert left == [s["id"] for s in added if s["id"] != added[1]["id"]]
    r = client.post(path)
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "samples" and [s["id"] for s in r.json()["samples"]] == [added[1]["id"]]
    after = client.get(f"/api/classes/{cid}/samples").json()
    assert [s["id"] for s in after] == [s["id"] for s in added]
    assert sample_files(client, after) == before == {s["id"]: p.read_bytes() for s, p in zip(added, ANTS, strict=True)}
    assert after[1]["filename"] == added[1]["filename"] and after[1]["created_at"] == added[1]["created_at"]
    # Once only.
    again = client.post(path)
    assert again.status_code == 404 and "nothing to undo" in again.json()["detail"]


def test_bulk_delete_is_one_undo(client):
    _, (cid, _) = make_project(client)
    added = upload(client, cid, ANTS).json()["added"]
    ids = [s["id"] for s in added[:3]]
    path = undo_path(client.delete("/api/samples", params={"id": ids}))
    assert [s["id"] for s in client.get(f"/api/classes/{cid}/samples").json()] == [added[3]["id"]]
    assert sorted(s["id"] for s in client.post(path).json()["samples"]) == ids
    assert len(client.get(f"/api/classes/{cid}/samples").json()) == 4
    # One id that names nothing refuses the whole request, deleting nothing.
    assert client.delete("/api/samples", params={"id": [ids[0], 10**9]}).status_code == 404
    assert len(client.get(f"/api/classes/{cid}/samples").json()) == 4


def test_bulk_delete_across_projects_is_refused(client):
    _, (a, _) = make_project(client, "one")
    _, (b, _) = make_project(client, "two")
    one, two = upload(client, a, ANTS[:1]).json()["added"][0], upload(client, b, BEES[:1]).json()["added"][0]
    r = client.delete("/api/samples", params={"id": [one["id"], two["id"]]})
    assert r.status_code == 422 and "different projects" in r.json()["detail"]


def test_class_delete_with_photos_is_undone(client):
    pid, (cid, other) = make_project(client)
    added = upload(client, cid, BEES).json()["added"]
    before = sample_files(client, added)
    detail = client.get(f"/api/projects/{pid}").json()
    path = undo_path(client.delete(f"/api/classes/{cid}"))
    assert [c["id"] for c in client.get(f"/api/projects/{pid}").json()["classes"]] == [other]
    store = store_of(client)
    with client.app.state.services.session_factory() as s:
        keys = s.get(TrashEntry, int(path.split("/")[3])).keys
    assert len(keys) == 3 and all(store.path(k, ORIGINAL).is_file() for k in keys)  # files stay meanwhile
    third = client.post(f"/api/projects/{pid}/classes", json={"name": "c"}).json()  # made meanwhile
    r = client.post(path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "class" and body["classes"][0] == detail["classes"][0]  # id, name, colour, count
    assert client.get(f"/api/projects/{pid}").json()["classes"] == [*detail["classes"], third]
    assert sample_files(client, client.get(f"/api/classes/{cid}/samples").json()) == before


def test_photo_undo_after_its_class_was_deleted_says_so(client):
    _, (cid, _) = make_project(client)
    sample = upload(client, cid, ANTS[:2]).json()["added"][0]
    photo_undo = undo_path(client.delete(f"/api/samples/{sample['id']}"))
    class_undo = undo_path(client.delete(f"/api/classes/{cid}"))
    r = client.post(photo_undo)
    assert r.status_code == 409 and "undo that first" in r.json()["detail"]
    assert client.post(class_undo).status_code == 200
    assert client.post(photo_undo).status_code == 200
    assert len(client.get(f"/api/classes/{cid}/samples").json()) == 2


def test_a_trashed_class_does_not_keep_its_name(client):
    pid, (cid, other) = make_project(client, classes=("Cats", "dogs"))
    upload(client, cid, ANTS[:2])
    path = undo_path(client.delete(f"/api/classes/{cid}"))
    r = client.post(f"/api/projects/{pid}/classes", json={"name": "cats"})
    assert r.status_code == 201, r.text
    late = client.post(path)
    assert late.status_code == 410 and "a new class named “cats” was made" in late.json()["detail"]
    # Renaming into a trashed class's name releases it too.
    path = undo_path(client.delete(f"/api/classes/{r.json()['id']}"))
    assert client.patch(f"/api/classes/{other}", json={"name": "CATS"}).status_code == 200
    assert client.post(path).status_code == 410


@sqlite_only  # reads or writes the SQLite file directly
def test_expired_entries_are_purged_with_their_files(tmp_path, cache_dir):
    data = tmp_path / "data"
    with make_client(data, cache_dir) as client:
        pid, (cid, _) = make_project(client)
        added = upload(client, cid, ANTS[:3]).json()["added"]
        gone, kept = added[0], added[1]
        path = undo_path(client.delete(f"/api/samples/{gone['id']}"))
        undo_path(client.delete(f"/api/samples/{kept['id']}"))  # this one stays undoable
        store = store_of(client)
        with client.app.state.services.session_factory() as s:
                keys = {e.id: e.keys[0] for e in s.query(TrashEntry)}
    first, second = sorted(keys)
    assert int(path.split("/")[3]) == first
    with sqlite3.connect(data / "snapclass.db") as db:
        db.execute("UPDATE trash SET expires_at = '2000-01-01 00:00:00.000000' WHERE id = ?", (first,))
    # Start-up purges what expired (files and rows) and keeps what can still be undone.
    with make_client(data, cache_dir) as client:
        assert not list(store.root.glob(f"*/{keys[first]}.*"))
        assert store.path(keys[second], ORIGINAL).is_file()
        r = client.post(path)
        assert r.status_code == 404 and "nothing to undo" in r.json()["detail"]
        assert client.post(f"/api/trash/{second}/restore").status_code == 200
        assert client.get(kept["url"]).content == ANTS[1].read_bytes()
        # The periodic sweep does the same while the server runs.
        undo = undo_path(client.delete(f"/api/samples/{kept['id']}"))
        expire_all(data)
        client.app.state.services.trash.sweep()
        assert not list(store.root.glob(f"*/{keys[second]}.*"))
        assert client.post(undo).status_code == 404
        assert len(client.get(f"/api/projects/{pid}").json()["classes"]) == 2


@sqlite_only  # reads or writes the SQLite file directly
def test_undo_after_expiry_but_before_the_sweep_is_gone(client, tmp_path):
    _, (cid, _) = make_project(client)
    sample = upload(client, cid, ANTS[:1]).json()["added"][0]
    path = undo_path(client.delete(f"/api/samples/{sample['id']}"))
    expire_all(tmp_path / "data")
    r = client.post(path)
    assert r.status_code == 410 and "can no longer be undone" in r.json()["detail"]


@sqlite_only  # on a shared database serve leaves the local photo folder alone: others may be uploading
def test_start_up_orphan_sweep_keeps_trashed_files(tmp_path, cache_dir):
    data = tmp_path / "data"
    with make_client(data, cache_dir) as client:
        _, (cid, other) = make_project(client)
        added = upload(client, cid, ANTS[:2]).json()["added"]
        upload(client, other, BEES[:1])
        undo_photo = undo_path(client.delete(f"/api/samples/{added[0]['id']}"))
        undo_class = undo_path(client.delete(f"/api/classes/{other}"))
        store = store_of(client)
        orphan = store.root / "ab" / ("ab" + "0" * 30 + ".orig.bin")
        orphan.parent.mkdir(parents=True, exist_ok=True)
        orphan.write_bytes(b"left by a crash")
    with make_client(data, cache_dir) as client:
        assert not orphan.exists()  # the sweep ran
        assert client.post(undo_photo).status_code == 200
        assert client.post(undo_class).status_code == 200
        assert client.get(added[0]["url"]).content == ANTS[0].read_bytes()
        restored = client.get(f"/api/classes/{other}/samples").json()
        assert client.get(restored[0]["url"]).content == BEES[0].read_bytes()


def test_project_delete_removes_its_trashed_files(client):
    pid, (cid, other) = make_project(client)
    added = upload(client, cid, ANTS[:2]).json()["added"]
    upload(client, other, BEES[:2])
    undo_path(client.delete(f"/api/samples/{added[0]['id']}"))
    class_undo = undo_path(client.delete(f"/api/classes/{other}"))
    root = store_of(client).root
    assert len([p for p in root.glob("*/*.orig.bin")]) == 4
    assert client.delete(f"/api/projects/{pid}").status_code == 204
    assert not list(root.glob("*/*.*"))
    assert client.post(class_undo).status_code == 404


def test_undo_needs_edit_rights_on_the_project(tmp_path, cache_dir):
    with required_app(tmp_path, cache_dir) as admin:
        code = admin.app.state.services.setup_code
        assert admin.post("/api/auth/setup", json={"code": code, "username": "admin",
                                                   "password": PASSWORD}).status_code == 201
        users = {}
        for name in ("alice", "bob", "carol"):
            assert admin.post("/api/users", json={"username": name, "password": PASSWORD}).status_code == 201
            users[name] = type(admin)(admin.app)
            assert users[name].post("/api/auth/login", json={"username": name, "password": PASSWORD}).is_success
        alice, bob, carol = users["alice"], users["bob"], users["carol"]
        pid, (cid, _) = make_project(alice)
        sample = upload(alice, cid, ANTS[:1]).json()["added"][0]
        alice.post(f"/api/projects/{pid}/members", json={"username": "carol", "role": "viewer"})
        path = undo_path(alice.delete(f"/api/samples/{sample['id']}"))
        r = bob.post(path)  # not a member: as if there were nothing
        assert r.status_code == 404 and r.json()["detail"] == f"deleted item {path.split('/')[3]} not found"
        r = carol.post(path)
        assert r.status_code == 403 and "viewer" in r.json()["detail"]
        assert carol.delete("/api/samples", params={"id": [sample["id"]]}).status_code == 404  # trashed now
        assert type(admin)(admin.app).post(path).status_code == 401
        alice.post(f"/api/projects/{pid}/members", json={"username": "carol", "role": "editor"})
        assert carol.post(path).status_code == 200
        # Bulk delete checks every photo.
        assert bob.delete("/api/samples", params={"id": [sample["id"]]}).status_code == 404
        alice.post(f"/api/projects/{pid}/members", json={"username": "carol", "role": "viewer"})
        assert carol.delete("/api/samples", params={"id": [sample["id"]]}).status_code == 403
        assert carol.delete(f"/api/classes/{cid}").status_code == 403
        assert carol.patch(f"/api/classes/{cid}", json={"enabled": False}).status_code == 403
        # A viewer may download a class's photos; someone outside the project may not.
        assert carol.get(f"/api/classes/{cid}/photos.zip").status_code == 200
        assert bob.get(f"/api/classes/{cid}/photos.zip").status_code == 404


@sqlite_only  # reads or writes the SQLite file directly
def test_the_sweeper_thread_purges_while_the_server_runs(client, tmp_path):
    _, (cid, _) = make_project(client)
    sample = upload(client, cid, ANTS[:1]).json()["added"][0]
    path = undo_path(client.delete(f"/api/samples/{sample['id']}"))
    services = client.app.state.services
    with services.session_factory() as s:
        key = s.get(TrashEntry, int(path.split("/")[3])).keys[0]
    expire_all(tmp_path / "data")
    sweeper = trash.TrashSweeper(services.session_factory, services.store, every=0.05)
    sweeper.start()
    try:
        deadline = time.monotonic() + 10
        while list(services.store.root.glob(f"*/{key}.*")):
            assert time.monotonic() < deadline, "the sweeper did not purge the expired entry in 10 s"
            time.sleep(0.05)
    finally:
        sweeper.stop()
    assert client.post(path).status_code == 404
