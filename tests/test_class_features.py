"""Teachable Machine's conveniences over HTTP: classes made with a project, the "use in training" switch, a
class's photos as a zip."""

from __future__ import annotations

import io
import os
import zipfile

from tests.conftest import make_project, photos, upload

ANTS = photos("hymenoptera", "train", "ants", limit=3)


def test_a_project_can_start_with_empty_classes(client):
    r = client.post("/api/projects", json={"name": "new", "classes": ["Class 1", "Class 2"]})
    assert r.status_code == 201, r.text
    classes = r.json()["classes"]
    assert [(c["name"], c["sample_count"], c["enabled"]) for c in classes] == [("Class 1", 0, True),
                                                                                ("Class 2", 0, True)]
    assert classes[0]["color"] != classes[1]["color"]
    assert client.get(f"/api/projects/{r.json()['id']}").json()["classes"] == classes
    # Scripts that never name classes get none, as before.
    assert client.post("/api/projects", json={"name": "plain"}).json()["classes"] == []
    for bad in (["a", "A"], [""], ["x" * 101], "Class 1", [1]):
        r = client.post("/api/projects", json={"name": "bad", "classes": bad})
        assert r.status_code == 422, (bad, r.text)
    assert len(client.get("/api/projects").json()) == 2  # nothing made by the refused requests


def test_use_in_training_switch(client):
    pid, (cid, _) = make_project(client)
    r = client.patch(f"/api/classes/{cid}", json={"enabled": False})
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False and r.json()["name"] == "a"
    assert client.get(f"/api/projects/{pid}").json()["classes"][0]["enabled"] is False
    # Renaming keeps it off; both at once; the old rename body still works.
    assert client.patch(f"/api/classes/{cid}", json={"name": "ants"}).json() | {"sample_count": 0} == {
        "id": cid, "name": "ants", "sample_count": 0, "color": r.json()["color"], "enabled": False}
    both = client.patch(f"/api/classes/{cid}", json={"name": "Ants", "enabled": True}).json()
    assert (both["name"], both["enabled"]) == ("Ants", True)
    assert client.patch(f"/api/classes/{cid}", json={}).json()["name"] == "Ants"
    for bad in ({"enabled": "no"}, {"enabled": 0}, {"enabled": None, "name": ""}):
        assert client.patch(f"/api/classes/{cid}", json=bad).status_code == 422, bad
    assert client.patch(f"/api/classes/{cid}", json={"name": "b"}).status_code == 409


def test_photos_zip_holds_the_originals_under_unique_names(client, tmp_path):
    _, (cid, _) = make_project(client)
    files = [("files", ("same.jpg", ANTS[0].read_bytes())), ("files", ("same.jpg", ANTS[1].read_bytes())),
             ("files", ("../../evil/SAME.jpg", ANTS[2].read_bytes())), ("files", (ANTS[0].name, ANTS[0].read_bytes()))]
    assert client.post(f"/api/classes/{cid}/samples", files=files).status_code == 201
    tmp_before = set(os.listdir(tmp_path))
    r = client.get(f"/api/classes/{cid}/photos.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"].startswith('attachment; filename="a.zip"')
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert names == ["same.jpg", "same (2).jpg", "SAME (3).jpg", ANTS[0].name]
        assert [archive.read(n) for n in names] == [ANTS[0].read_bytes(), ANTS[1].read_bytes(),
                                                     ANTS[2].read_bytes(), ANTS[0].read_bytes()]
    assert set(os.listdir(tmp_path)) == tmp_before  # nothing written beside the data dir
    cache_tmp = client.app.state.services.settings.cache_dir / "tmp"
    assert not cache_tmp.exists() or not list(cache_tmp.iterdir())


def test_an_empty_class_zips_to_an_empty_zip_and_names_are_kept_in_unicode(client):
    pid = client.post("/api/projects", json={"name": "p", "classes": ["Bienen 🐝"]}).json()["id"]
    cid = client.get(f"/api/projects/{pid}").json()["classes"][0]["id"]
    r = client.get(f"/api/classes/{cid}/photos.zip")
    assert r.status_code == 200
    assert "filename*=UTF-8''Bienen%20%F0%9F%90%9D.zip" in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        assert archive.namelist() == []
    upload(client, cid, ANTS[:1])
    assert client.get(f"/api/classes/{10**9}/photos.zip").status_code == 404
