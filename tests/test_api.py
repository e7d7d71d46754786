"""The JSON API over HTTP, on a real SQLite file: resources, errors, and nothing left behind."""

from __future__ import annotations

import sqlite3

from tests.conftest import jpeg_bytes, make_project, photos, sqlite_only, train, upload


def count_files(client) -> int:
    root = client.app.state.services.settings.images_dir
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def db_path(client):
    return client.app.state.services.settings.data_dir / "snapclass.db"


def test_health_reports_device_and_backbones(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["device"] == "cpu"
    assert {"name": "efficientnet_lite0", "available": True}.items() <= body["backbones"][0].items()


@sqlite_only  # reads or writes the SQLite file directly
def test_database_is_sqlite_in_wal_mode_with_foreign_keys(client):
    client.post("/api/projects", json={"name": "p"})
    with sqlite3.connect(db_path(client)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"projects", "classes", "samples", "embeddings", "jobs", "trained_models"} <= tables


def test_project_lifecycle(client):
    r = client.post("/api/projects", json={"name": "  Fruit  "})
    assert r.status_code == 201
    project = r.json()
    assert project["name"] == "Fruit" and project["backbone"] == "efficientnet_lite0"
    assert project["classes"] == [] and project["model"] is None
    pid = project["id"]
    assert client.patch(f"/api/projects/{pid}", json={"name": "Fruits"}).json()["name"] == "Fruits"
    assert [p["name"] for p in client.get("/api/projects").json()] == ["Fruits"]
    assert client.delete(f"/api/projects/{pid}").status_code == 204
    assert client.get(f"/api/projects/{pid}").status_code == 404
    assert client.get("/api/projects").json() == []


def test_bad_project_input_is_a_clear_4xx(client):
    assert client.post("/api/projects", json={"name": ""}).status_code == 422
    assert client.post("/api/projects", json={"name": "   "}).status_code == 422
    r = client.post("/api/projects", json={"name": "x", "backbone": "nope"})
    assert r.status_code == 422 and "nope" in r.json()["detail"]
    assert client.patch("/api/projects/999", json={"name": "x"}).status_code == 404


def test_classes_create_rename_delete_and_duplicates(client):
    pid, (a, b) = make_project(client, classes=("cat", "dog"))
    r = client.post(f"/api/projects/{pid}/classes", json={"name": "cat"})
    assert r.status_code == 409 and "cat" in r.json()["detail"]
    assert client.patch(f"/api/classes/{b}", json={"name": "cat"}).status_code == 409
    assert client.patch(f"/api/classes/{b}", json={"name": "wolf"}).json() == {
        "id": b, "name": "wolf", "sample_count": 0, "color": "#B34E00", "enabled": True}  # dog's colour, kept
    assert client.delete(f"/api/classes/{a}").status_code == 204
    assert [c["name"] for c in client.get(f"/api/projects/{pid}").json()["classes"]] == ["wolf"]
    assert client.post("/api/projects/999/classes", json={"name": "x"}).status_code == 404


def test_upload_many_real_photos_and_list_them(client):
    pid, (ants, _) = make_project(client)
    files = photos("hymenoptera", "train", "ants", limit=6)
    r = upload(client, ants, files)
    assert r.status_code == 201, r.text
    added = r.json()["added"]
    assert len(added) == 6 and r.json()["rejected"] == []
    listed = client.get(f"/api/classes/{ants}/samples").json()
    assert [s["filename"] for s in listed] == [p.name for p in files]
    original = client.get(listed[0]["url"])
    assert original.content == files[0].read_bytes()
    thumb = client.get(listed[0]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert client.get(f"/api/projects/{pid}").json()["classes"][0]["sample_count"] == 6


def test_mixed_batch_keeps_the_good_and_names_the_bad(client):
    _, (a, _) = make_project(client)
    files = [("files", ("good.jpg", jpeg_bytes())), ("files", ("notes.jpg", b"not an image at all")),
             ("files", ("empty.png", b""))]
    r = client.post(f"/api/classes/{a}/samples", files=files)
    assert r.status_code == 201
    body = r.json()
    assert [s["filename"] for s in body["added"]] == ["good.jpg"]
    assert {x["filename"]: x["error"] for x in body["rejected"]}.keys() == {"notes.jpg", "empty.png"}
    assert "not an image" in body["rejected"][0]["error"]


@sqlite_only  # reads or writes the SQLite file directly
def test_batch_with_no_valid_image_is_422_and_stores_nothing(client):
    _, (a, _) = make_project(client)
    r = client.post(f"/api/classes/{a}/samples", files=[("files", ("x.jpg", b"GIF89a broken")),
                                                         ("files", ("y.png", b"\x89PNG\r\n"))])
    assert r.status_code == 422
    assert "no valid image" in r.json()["detail"] and len(r.json()["rejected"]) == 2
    assert client.get(f"/api/classes/{a}/samples").json() == []
    assert count_files(client) == 0
    with sqlite3.connect(db_path(client)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 0
    assert client.get("/api/health").status_code == 200  # and the server goes on serving


def test_upload_to_a_missing_class_is_404(client):
    r = client.post("/api/classes/4242/samples", files=[("files", ("a.jpg", jpeg_bytes()))])
    assert r.status_code == 404


def test_deleting_samples_classes_and_projects_removes_their_files(client):
    pid, (a, b) = make_project(client)
    upload(client, a, photos("hymenoptera", "train", "ants", limit=3))
    upload(client, b, photos("hymenoptera", "train", "bees", limit=2))
    assert count_files(client) == 20  # original, working copy, thumbnail, crop at the input size
    first = client.get(f"/api/classes/{a}/samples").json()[0]
    assert client.delete(f"/api/samples/{first['id']}").status_code == 204
    assert client.get(first["url"]).status_code == 404
    # Deleted photos and classes wait in the trash (undo) with their files; tests/test_trash.py sees them purged.
    assert count_files(client) == 20
    assert client.delete(f"/api/classes/{a}").status_code == 204
    assert count_files(client) == 20
    assert client.delete(f"/api/projects/{pid}").status_code == 204
    assert count_files(client) == 0
    assert client.delete(f"/api/samples/{first['id']}").status_code == 404


def test_training_needs_two_classes_with_images(client):
    pid, (a, b) = make_project(client)
    r = client.post(f"/api/projects/{pid}/train", json={"mode": "head"})
    assert r.status_code == 409 and "every class needs at least one image" in r.json()["detail"]
    upload(client, a, photos("hymenoptera", "train", "ants", limit=2))
    client.delete(f"/api/classes/{b}")
    r = client.post(f"/api/projects/{pid}/train", json={"mode": "head"})
    assert r.status_code == 409 and "two classes" in r.json()["detail"]
    assert client.post(f"/api/projects/{pid}/train", json={"mode": "bogus"}).status_code == 422
    assert client.post(f"/api/projects/{pid}/train", json={"epochs": 0}).status_code == 422


def test_predict_and_download_are_409_without_a_model(client):
    pid, _ = make_project(client)
    r = client.post(f"/api/projects/{pid}/predict", files={"file": ("a.jpg", jpeg_bytes())})
    assert r.status_code == 409 and "train" in r.json()["detail"]
    assert client.get(f"/api/projects/{pid}/model/download?format=onnx").status_code == 409
    assert client.get("/api/jobs/12345").status_code == 404


def test_small_training_run_then_predict_rejects_bad_images(client):
    pid, (a, b) = make_project(client, classes=("ants", "bees"))
    upload(client, a, photos("hymenoptera", "train", "ants", limit=8))
    upload(client, b, photos("hymenoptera", "train", "bees", limit=8))
    job = train(client, pid, epochs=5)
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["model_id"] is not None
    assert job["metrics"]["embedded_new"] == 16
    r = client.post(f"/api/projects/{pid}/predict", files={"file": ("x.jpg", b"nope")})
    assert r.status_code == 422 and "x.jpg" in r.json()["detail"]
    ok = client.post(f"/api/projects/{pid}/predict", files={"file": ("a.jpg", jpeg_bytes())}).json()
    assert {p["label"] for p in ok["predictions"]} == {"ants", "bees"}
    assert abs(sum(p["score"] for p in ok["predictions"]) - 1) < 1e-5
    assert ok["predictions"][0]["score"] >= ok["predictions"][1]["score"]
    assert client.get(f"/api/projects/{pid}/model/download?format=pdf").status_code == 422

    # Adding two photos embeds exactly two photos.
    upload(client, a, photos("hymenoptera", "train", "ants", limit=10)[8:])
    job = train(client, pid, epochs=5)
    assert (job["metrics"]["embedded_new"], job["metrics"]["embedded_cached"]) == (2, 16)
    models = client.get(f"/api/projects/{pid}/models").json()
    assert [m["version"] for m in models] == [2, 1] and models[0]["is_current"]
    project = client.get(f"/api/projects/{pid}").json()
    assert project["model"]["id"] == models[0]["id"]
