"""Project files over HTTP with real photos: export and import round trips, and hostile files refused whole."""

from __future__ import annotations

import hashlib
import io
import json
import math
import sqlite3
import stat
import zipfile
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.ml import checkpoint
from app.ml.head import Head
from tests.conftest import photos, upload, wait_job
from tests.test_accounts import Team, make_trained_project

ANTS = photos("hymenoptera", "train", "ants", limit=5)
BEES = photos("hymenoptera", "train", "bees", limit=5)
CATS = photos("cifar10-mini", "train", "cat", limit=6)
PROBES = (photos("hymenoptera", "val", "ants", limit=3) + photos("hymenoptera", "val", "bees", limit=3)
          + photos("cifar10-mini", "test", "cat", limit=2) + photos("cifar10-mini", "test", "ship", limit=2))
# Small enough that a hostile file can go over them quickly; the real project fits well inside.
LIMITS = {"project_file_max_entries": 100, "project_file_max_unpacked_bytes": 40 * 1024**2}
TABLES = ("projects", "classes", "samples", "trained_models", "backbone_weights", "embeddings")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("projectfile") / "data"


@pytest.fixture(scope="module")
def client(data_dir, cache_dir):
    with TestClient(create_app(Settings(data_dir=data_dir, cache_path=cache_dir, **LIMITS))) as c:
        yield c


def train(client: TestClient, pid: int, **body) -> dict:
    r = client.post(f"/api/projects/{pid}/train", json={"mode": "head", "folds": 1, "epochs": 10, **body})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    return job


@pytest.fixture(scope="module")
def original(client) -> dict:
    """Three classes of real photos (one recorded from a "webcam" in a burst), two trained versions, the older
    one current, and a class renamed after training (the models keep the old label)."""
    pid = client.post("/api/projects", json={"name": "Bugs & cats"}).json()["id"]
    cids = [client.post(f"/api/projects/{pid}/classes", json={"name": n}).json()["id"] for n in ("ants", "bees", "cat")]
    assert upload(client, cids[0], ANTS).status_code == 201
    assert upload(client, cids[1], BEES[:3]).status_code == 201
    assert upload(client, cids[1], BEES[3:], source="webcam", burst_id="burst-1").status_code == 201
    assert upload(client, cids[2], CATS).status_code == 201
    v1 = train(client, pid)
    train(client, pid, folds=3)  # v2: a cross-validated ensemble of heads
    assert client.post(f"/api/projects/{pid}/models/{v1['model_id']}/activate").status_code == 200
    assert client.patch(f"/api/models/{v1['model_id']}", json={"unknown_threshold": 0.31}).status_code == 200
    assert client.patch(f"/api/classes/{cids[2]}", json={"name": "kitten"}).status_code == 200
    return {"pid": pid}


def export(client: TestClient, pid: int, models: str | None = None) -> bytes:
    r = client.get(f"/api/projects/{pid}/export", params={"models": models} if models else None)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert 'filename="bugs-cats.snapclass.zip"' in r.headers["content-disposition"]
    return r.content


def import_file(client: TestClient, data: bytes, name: str = "project.snapclass.zip"):
    return client.post("/api/projects/import", files={"file": (name, data, "application/zip")})


def samples_of(client: TestClient, pid: int) -> list[tuple[str, list[dict]]]:
    project = client.get(f"/api/projects/{pid}").json()
    return [(c["name"], client.get(f"/api/classes/{c['id']}/samples").json()) for c in project["classes"]]


def predictions(client: TestClient, pid: int) -> list[dict]:
    out = []
    for path in PROBES:
        r = client.post(f"/api/projects/{pid}/predict", files={"file": (path.name, path.read_bytes())})
        assert r.status_code == 200, r.text
        body = r.json()
        out.append({k: v for k, v in body.items() if k != "model_id"})
    return out


def same_metrics(original: dict, imported: dict, sample_map: dict[int, int]) -> None:
    """Equal, NaN included, but for evaluation rows that name the imported project's own samples."""
    def norm(value):
        return json.dumps(value, sort_keys=True)
    assert original.keys() == imported.keys()
    for key, value in original.items():
        if key in ("val_predictions", "misclassified"):
            value = [{**row, "sample_id": sample_map.get(row["sample_id"])} for row in value]
        assert norm(value) == norm(imported[key]), key


@pytest.mark.parametrize("which", ["current", "all", "none"])
def test_round_trip(client, original, which):
    pid = original["pid"]
    data = export(client, pid, which if which != "current" else None)
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("manifest.json"))
    assert manifest["format_version"] == 1 and manifest["project"]["name"] == "Bugs & cats"
    r = import_file(client, data)
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["id"] != pid and new["name"].startswith("Bugs & cats")
    before, after = samples_of(client, pid), samples_of(client, new["id"])
    assert [name for name, _ in after] == ["ants", "bees", "kitten"]
    sample_map = {}
    for (_, old_rows), (_, new_rows) in zip(before, after, strict=True):
        assert len(old_rows) == len(new_rows)
        for old, fresh in zip(old_rows, new_rows, strict=True):
            assert fresh["id"] != old["id"]
            sample_map[old["id"]] = fresh["id"]
            for key in ("filename", "source", "burst_id", "width", "height", "created_at"):
                assert fresh[key] == old[key], key
            assert client.get(fresh["url"]).content == client.get(old["url"]).content  # byte-identical
    assert {s["burst_id"] for _, rows in after for s in rows} == {None, "burst-1"}

    old_models = client.get(f"/api/projects/{pid}/models", params={"full": True}).json()
    new_models = client.get(f"/api/projects/{new['id']}/models", params={"full": True}).json()
    expected = {"current": [m for m in old_models if m["is_current"]], "all": old_models, "none": []}[which]
    assert [m["version"] for m in new_models] == [m["version"] for m in expected]
    for old, fresh in zip(expected, new_models, strict=True):
        for key in ("labels", "mode", "features", "backbone", "unknown_threshold", "unknown_threshold_calibrated",
                    "is_current", "created_at"):
            assert fresh[key] == old[key], key
        same_metrics(old["metrics"], fresh["metrics"], sample_map)
    if which == "none":
        assert new["model"] is None
        assert client.post(f"/api/projects/{new['id']}/predict",
                           files={"file": (PROBES[0].name, PROBES[0].read_bytes())}).status_code == 409
    else:
        assert new["model"]["version"] == 1 and new["model"]["unknown_threshold"] == 0.31
        assert predictions(client, new["id"]) == predictions(client, pid)  # exactly, without retraining
