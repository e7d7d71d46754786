"""Project files over HTTP with real photos: export and import round trips, and hostile files refused whole."""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
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


def test_export_leaves_no_temp_file_and_needs_a_valid_choice(client, original):
    export(client, original["pid"], "all")
    # The background task deleted the temp file once it was sent.
    assert not any((client.app.state.services.settings.cache_dir / "tmp").iterdir())
    assert client.get(f"/api/projects/{original['pid']}/export", params={"models": "best"}).status_code == 422
    assert client.get("/api/projects/999999/export").status_code == 404


# --- hostile files: each refused with the right status and words, and nothing stored ---


def unpack(data: bytes) -> tuple[dict, dict[str, bytes]]:
    zf = zipfile.ZipFile(io.BytesIO(data))
    return json.loads(zf.read("manifest.json")), {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}


def pack(manifest: dict | bytes, files: dict[str, bytes], extra=()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if manifest is not None:
            zf.writestr("manifest.json", manifest if isinstance(manifest, bytes) else json.dumps(manifest))
        for name, data in files.items():
            zf.writestr(name, data)
        for info, data in extra:
            zf.writestr(info, data)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def last_photo(manifest: dict) -> dict:
    # The last one: the photos before it are already stored when it fails, and must go again.
    return manifest["photos"][-1]


def replace_photo(manifest, files, data: bytes, *, keep_sha: bool = False):
    photo = last_photo(manifest)
    files[photo["path"]] = data
    if not keep_sha:
        photo["sha256"] = sha(data)
    return pack(manifest, files)


def half(data: bytes) -> bytes:
    return data[:len(data) // 2]


def symlink_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("photos/0/link.jpg")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def bad_weights(manifest, files):
    """A real checkpoint, with a matching sha256, whose head gives 5 scores for the model's 3 labels."""
    model = manifest["models"][0]
    weights = checkpoint.pack(head_arch=Head(1280, 5).arch(), head_state=Head(1280, 5).state_dict())
    files[model["path"]], model["sha256"] = weights, sha(weights)
    return pack(manifest, files)


class RunsCode:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch /tmp/snapclass-pwned')",))


def code_in_weights(manifest, files):
    """A pickle that would run a command if unpickled freely: torch.load(weights_only=True) refuses it."""
    model = manifest["models"][0]
    weights = pickle.dumps(RunsCode())
    files[model["path"]], model["sha256"] = weights, sha(weights)
    return pack(manifest, files)


def foreign_backbone(manifest, files):
    """A "fine-tuned backbone" (matching sha256) that is not a state of the project's network."""
    buf = io.BytesIO()
    torch.save({"conv.weight": torch.zeros(3, 3)}, buf)
    state = buf.getvalue()
    path = f"backbones/{sha(state)}.pt"
    files[path] = state
    manifest["backbones"] = [{"backbone": manifest["project"]["backbone"], "path": path, "sha256": sha(state)}]
    manifest["models"][0]["features"] = f"{manifest['project']['backbone']}@{sha(state)}"
    return pack(manifest, files)


def duplicate(manifest, files):
    buf = io.BytesIO()
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(last_photo(manifest)["path"], b"a second copy")
    return buf.getvalue()


def edit(change):
    def apply(manifest, files):
        change(manifest)
        return pack(manifest, files)
    return apply


HOSTILE = {
    "zip-slip": (lambda m, f: pack(m, f, [("../../evil.txt", b"x")]), 422, "outside the project file"),
    "absolute path": (lambda m, f: pack(m, f, [("/tmp/evil.txt", b"x")]), 422, "absolute path"),
    "backslash": (lambda m, f: pack(m, f, [("photos\\0\\evil.jpg", b"x")]), 422, "backslash"),
    "symlink": (lambda m, f: pack(m, f, [(symlink_entry(), b"/etc/passwd")]), 422, "symbolic link"),
    "duplicate entry": (duplicate, 422, "more than once"),
    "unlisted entry": (lambda m, f: pack(m, f, [("notes.txt", b"hello")]), 422, "not listed in manifest.json"),
    "missing photo": (lambda m, f: pack(m, {k: v for k, v in f.items() if k != last_photo(m)["path"]}), 422,
                      "which is not in the file"),
    "sha mismatch": (lambda m, f: replace_photo(m, f, f[last_photo(m)["path"]][:-8] + b"tampered", keep_sha=True),
                     422, "does not match its sha256"),
    "photo not an image": (lambda m, f: replace_photo(m, f, b"GIF89a but not really a picture" * 10), 422,
                           "is not a usable image"),
    "truncated photo": (lambda m, f: replace_photo(m, f, half(f[last_photo(m)["path"]])), 422,
                        "is not a usable image"),
    "zip bomb (ratio)": (lambda m, f: replace_photo(m, f, bytes(8 * 1024**2)), 413, "zip bomb"),
    "too many entries": (lambda m, f: pack(m, f, [(f"extra/{i}.txt", b"x") for i in range(100)]), 413,
                         "entries; at most 100"),
    "too large unpacked": (lambda m, f: pack(m, f, [(f"big/{i}.bin", torch.randint(0, 256, (15 * 1024**2,),
                                                     dtype=torch.uint8).numpy().tobytes()) for i in range(3)]),
                           413, "unpacks to"),
    "newer format": (edit(lambda m: m.update(format_version=2)), 422,
                     "made by a newer snapclass (format 2); this server reads format 1: upgrade snapclass"),
    "wrong type in manifest": (edit(lambda m: m["classes"][0].update(order="0")), 422, "classes.0.order"),
    "extra key in manifest": (edit(lambda m: m["project"].update(owner="mallory")), 422, "project.owner"),
    "manifest not JSON": (lambda m, f: pack(b"{not json", f), 422, "not valid JSON"),
    "manifest missing": (lambda m, f: pack(None, f), 422, "not a snapclass project file: it has no manifest.json"),
    "photo of an unlisted class": (edit(lambda m: last_photo(m).update({"class": "dogs"})), 422, "'dogs'"),
    "current model not in the file": (edit(lambda m: m.update(current_model=7)), 422, "v7 is not in the file"),
    "weights that do not fit the labels": (bad_weights, 422, "the weights cannot be used"),
    "weights that would run code": (code_in_weights, 422, "the weights cannot be used"),
    "foreign backbone state": (foreign_backbone, 422, "is not a state of the backbone"),
    "not a zip": (lambda m, f: ANTS[0].read_bytes(), 400, "not a readable zip archive"),
}


def stored(client: TestClient, data_dir: Path) -> tuple:
    """Everything an import could leave behind: rows seen by the API and in the database, and image files."""
    projects = client.get("/api/projects").json()
    with sqlite3.connect(data_dir / "snapclass.db") as conn:
        rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608
    files = sorted(str(p.relative_to(data_dir)) for p in (data_dir / "images").rglob("*") if p.is_file())
    return [(p["id"], p["sample_count"]) for p in projects], rows, files


@pytest.fixture(scope="module")
def good_file(client, original) -> bytes:
    return export(client, original["pid"])


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file_is_refused_whole(client, data_dir, good_file, case):
    make, status, words = HOSTILE[case]
    manifest, files = unpack(good_file)
    data = make(manifest, files)
    before = stored(client, data_dir)
    r = import_file(client, data)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"], r.json()
    assert stored(client, data_dir) == before
    assert not Path("/tmp/snapclass-pwned").exists()


def test_the_good_file_itself_imports(client, good_file):
    """The hostile files are this one with one thing wrong: it passes, so each refusal is for that thing."""
    manifest, files = unpack(good_file)
    r = import_file(client, pack(manifest, files))
    assert r.status_code == 201, r.text
    assert r.json()["model"]["version"] == 1 and len(r.json()["classes"]) == 3


@pytest.mark.parametrize("fmt", ["torchscript"])  # onnx and pt2 open: tests/test_model_file_import.py
def test_a_torchscript_model_file_is_recognised_and_refused(client, data_dir, original, fmt):
    model_file = client.get(f"/api/projects/{original['pid']}/model/download", params={"format": fmt})
    assert model_file.status_code == 200
    before = stored(client, data_dir)
    r = import_file(client, model_file.content, f"model.{fmt}")
    assert r.status_code == 422
    assert r.json()["detail"].startswith("not a snapclass project file: this is a TorchScript model file")
    assert stored(client, data_dir) == before


def test_name_clash_gets_a_number(client):
    pid = client.post("/api/projects", json={"name": "Clash"}).json()["id"]
    client.post(f"/api/projects/{pid}/classes", json={"name": "only"})
    data = client.get(f"/api/projects/{pid}/export", params={"models": "none"}).content
    names = [import_file(client, data).json()["name"] for _ in range(3)]
    assert names == ["Clash (2)", "Clash (3)", "Clash (4)"]


def test_nan_in_metrics_survives_and_nan_elsewhere_is_refused(client, good_file):
    manifest, files = unpack(good_file)
    manifest["models"][0]["metrics"]["val_loss"] = math.nan
    r = import_file(client, pack(manifest, files))
    assert r.status_code == 201, r.text
    model = client.get(f"/api/projects/{r.json()['id']}/models").json()[0]
    assert model["metrics"]["val_loss"] is None or math.isnan(model["metrics"]["val_loss"])
    manifest["models"][0]["unknown_threshold"] = math.nan
    assert import_file(client, pack(manifest, files)).status_code == 422


# --- accounts ---


@pytest.fixture
def team(tmp_path, cache_dir):
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", cache_path=cache_dir, auth="required"))) as main:
        yield Team(main)


def test_only_those_who_see_a_project_export_it_and_an_import_is_the_importers(team):
    alice, bob = team["alice"], team["bob"]
    ids = make_trained_project(alice)
    pid = ids["project_id"]
    r = bob.get(f"/api/projects/{pid}/export")
    assert r.status_code == 404
    assert r.json()["detail"] == f"project {pid} was deleted, never existed, or is not shared with you"
    assert TestClient(team.app).get(f"/api/projects/{pid}/export").status_code == 401
    assert TestClient(team.app).post("/api/projects/import", files={"file": ("x.zip", b"PK")}).status_code == 401
    data = alice.get(f"/api/projects/{pid}/export").content
    r = bob.post("/api/projects/import", files={"file": ("alice.snapclass.zip", data)})
    assert r.status_code == 201, r.text
    assert r.json()["owner"] == "bob" and r.json()["name"] == "alice's"  # no clash: bob has no such project
    assert [p["id"] for p in bob.get("/api/projects").json()] == [r.json()["id"]]
    assert [p["id"] for p in alice.get("/api/projects").json()] == [pid]


def test_fine_tuned_backbone_travels_with_its_model_and_with_a_project_based_on_it(client, data_dir):
    pid = client.post("/api/projects", json={"name": "Tuned"}).json()["id"]
    for name, paths in (("ants", ANTS), ("bees", BEES)):
        cid = client.post(f"/api/projects/{pid}/classes", json={"name": name}).json()["id"]
        assert upload(client, cid, paths).status_code == 201
    job = train(client, pid, mode="finetune", finetune_epochs=1, epochs=5, augment=False, val_fraction=0.3)
    model = client.get(f"/api/models/{job['model_id']}").json()
    assert model["mode"] == "finetune" and "@" in model["features"], model
    r = import_file(client, client.get(f"/api/projects/{pid}/export").content)
    assert r.status_code == 201, r.text
    assert r.json()["model"]["features"] == model["features"]
    assert predictions(client, r.json()["id"]) == predictions(client, pid)

    based = client.post("/api/projects", json={"name": "Based", "base_model_id": model["id"]}).json()
    cid = client.post(f"/api/projects/{based['id']}/classes", json={"name": "bees"}).json()["id"]
    assert upload(client, cid, BEES[:2]).status_code == 201
    data = client.get(f"/api/projects/{based['id']}/export", params={"models": "none"}).content
    manifest, _ = unpack(data)
    digest = model["features"].partition("@")[2]
    assert manifest["project"]["base_digest"] == digest and [b["sha256"] for b in manifest["backbones"]] == [digest]
    r = import_file(client, data)
    assert r.status_code == 201, r.text
    with sqlite3.connect(data_dir / "snapclass.db") as conn:
        row = conn.execute("SELECT base_digest, base_model_id FROM projects WHERE id = ?", (r.json()["id"],)).fetchone()
    assert row == (digest, None)  # the fine-tuned network came along; the other project's model did not
