"""Nothing a page loads grows with the number of photos beyond what it shows (issue 12): a class's photos come a
page at a time (keyset: `limit`, `before`, the Link header), a model's validation photos too (GET
/api/models/{id}/predictions), and the project and model answers carry no per-photo rows unless asked.

Two projects, through the real app over HTTP on real SQLite: a small one (50 CIFAR photos, trained), and a big
one of 1,200 photos opened from a project file. That file is the small project's own export with 1,200 real
CIFAR photos in place of its 50 and a model evaluated on all of them (rows written here, so every page of the
answer has a known right answer); its weights are the small model's.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import sqlite3
import zipfile

import pytest
from sqlalchemy import event

from tests.conftest import dataset, make_client, make_project, photos, train, upload

BIG = {"airplane": 1100, "cat": 100}
BURST = ("rec-1", 6)  # six webcam frames of cats, all answered airplane: one tile in the mistakes
LINK = re.compile(r'^<(?P<path>[^>]+)>; rel="next"$')


def _loss(i: int) -> float:
    return round(0.0005 + ((i * 7919) % 1200) / 1000, 5)  # distinct for every photo: one right order


def _row(i: int, true: int, burst_id: str | None) -> dict:
    predicted = 1 - true if burst_id or i % 10 == 3 else true
    loss = _loss(i) + (1.0 if predicted != true else 0.0)
    return {"photo": i, "true": true, "predicted": predicted, "loss": round(loss, 5),
            "score": round(1 - math.exp(-loss) if predicted != true else math.exp(-loss), 5), "burst_id": burst_id}


def big_project_file(exported: bytes) -> tuple[bytes, list[dict]]:
    """The small project's file with BIG's photos, and its model's evaluation rows for them (by photo index)."""
    src = zipfile.ZipFile(io.BytesIO(exported))
    manifest = json.loads(src.read("manifest.json"))
    (model,) = manifest["models"]
    assert model["labels"] == list(BIG)
    out, entries, rows = io.BytesIO(), [], []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for entry in manifest["backbones"] + manifest["models"]:
            zf.writestr(entry["path"], src.read(entry["path"]))
        for true, (name, n) in enumerate(BIG.items()):
            for k, path in enumerate(sorted(dataset("cifar10-scale", name).iterdir())[:n]):
                data = path.read_bytes()
                burst = BURST[0] if name == "cat" and k < BURST[1] else None
                entries.append({"path": f"photos/{true}/{k}.jpg", "class": name, "burst_id": burst,
                                "source": "webcam" if burst else "upload", "original_name": path.name,
                                "sha256": hashlib.sha256(data).hexdigest(), "created_at": manifest["exported_at"]})
                zf.writestr(entries[-1]["path"], data)
                rows.append(_row(len(rows), true, burst))
        confusion = [[sum(r["true"] == t and r["predicted"] == p for r in rows) for p in range(2)] for t in range(2)]
        model["metrics"].update(
            val_predictions=rows, misclassified=sorted((r for r in rows if r["true"] != r["predicted"]),
                                                       key=lambda r: -r["loss"]),
            n_val=len(rows), confusion=confusion)
        manifest["photos"] = entries
        zf.writestr("manifest.json", json.dumps(manifest))
    return out.getvalue(), rows


@pytest.fixture(scope="module")
def world(tmp_path_factory, cache_dir):
    data_dir = tmp_path_factory.mktemp("scale") / "data"
    with make_client(data_dir, cache_dir) as client:
        small, (plane, cat) = make_project(client, "scale", tuple(BIG))
        for cid, name in ((plane, "airplane"), (cat, "cat")):
            assert upload(client, cid, photos("cifar10-mini", "train", name, limit=25)).status_code == 201
        job = train(client, small, epochs=4)
        assert job["status"] == "succeeded", job
        data, rows = big_project_file(client.get(f"/api/projects/{small}/export").content)
        r = client.post("/api/projects/import", files={"file": ("big.snapclass.zip", data, "application/zip")})
        assert r.status_code == 201, r.text
        big = r.json()
        # Photo index -> sample id: the import keeps the file's order, class by class.
        ids = [s["id"] for c in big["classes"] for s in client.get(f"/api/classes/{c['id']}/samples").json()]
        assert len(ids) == len(rows) == sum(BIG.values())
        expected = [{**{k: v for k, v in r.items() if k != "photo"}, "sample_id": ids[r["photo"]]} for r in rows]
        yield {"client": client, "small": small, "job": job, "big": big, "rows": expected, "data_dir": data_dir}


def walk(client, first: str) -> tuple[list[int], list[int]]:
    """Every id the pages from `first` on give, and each page's length."""
    ids, sizes, path = [], [], first
    while path:
        r = client.get(path)
        assert r.status_code == 200, r.text
        ids += [s["id"] for s in r.json()]
        sizes.append(len(r.json()))
        link = r.headers.get("link")
        path = LINK.match(link)["path"] if link else None
    return ids, sizes


def test_a_class_comes_a_page_at_a_time_newest_first_each_photo_once(world):
    client, big = world["client"], world["big"]
    plane = big["classes"][0]["id"]
    everything = [s["id"] for s in client.get(f"/api/classes/{plane}/samples").json()]
    assert len(everything) == BIG["airplane"] and everything == sorted(everything)  # without limit: as before

    first = client.get(f"/api/classes/{plane}/samples", params={"limit": 48})
    assert [s["id"] for s in first.json()] == everything[::-1][:48]
    next_page = f"/api/classes/{plane}/samples?limit=48&before={everything[-48]}"
    assert LINK.match(first.headers["link"])["path"] == next_page

    ids, sizes = walk(client, f"/api/classes/{plane}/samples?limit=37")
    assert ids == everything[::-1]  # no repeat, no gap, newest first
    assert sizes == [37] * (len(everything) // 37) + [len(everything) % 37]
    ids, sizes = walk(client, f"/api/classes/{plane}/samples?limit=500")
    assert ids == everything[::-1] and sizes == [500, 500, 100]
    # The last page says so (no Link), also when it is full.
    exact = client.get(f"/api/classes/{plane}/samples", params={"limit": 100, "before": everything[100]})
    assert len(exact.json()) == 100 and "link" not in exact.headers


def test_a_walk_survives_deletes_and_new_photos_meanwhile(world):
    """The cursor is an id: a photo deleted under it, or one added at the top, shifts no later page."""
    client, small = world["client"], world["small"]
    cat = client.get(f"/api/projects/{small}").json()["classes"][1]["id"]
    before = [s["id"] for s in client.get(f"/api/classes/{cat}/samples").json()][::-1]
    first = client.get(f"/api/classes/{cat}/samples", params={"limit": 10})
    cursor = first.json()[-1]["id"]
    r = client.delete(f"/api/samples/{cursor}")  # the page's last photo, the cursor itself
    assert r.status_code == 204
    added = upload(client, cat, photos("cifar10-mini", "train", "cat", limit=1)).json()["added"][0]["id"]
    rest, _ = walk(client, LINK.match(first.headers["link"])["path"])
    assert rest == before[10:]
    # The other tests see the project as it was.
    assert client.post(r.headers["x-undo"]).status_code == 200
    assert client.delete(f"/api/samples/{added}").status_code == 204


@pytest.mark.parametrize("query, words", [
    ({"limit": 0}, "greater than or equal to 1"), ({"limit": 501}, "less than or equal to 500"),
    ({"limit": "ten"}, "valid integer"), ({"limit": 5, "before": 0}, "greater than or equal to 1"),
    ({"limit": 5, "before": "x"}, "valid integer"), ({"before": 9}, "before= needs limit="),
])
def test_a_bad_page_is_a_clear_422(world, query, words):
    plane = world["big"]["classes"][0]["id"]
    r = world["client"].get(f"/api/classes/{plane}/samples", params=query)
    assert r.status_code == 422 and words in json.dumps(r.json()["detail"]), r.text


def test_what_the_pages_load_is_the_same_size_at_50_and_1200_photos(world):
    client, small, big = world["client"], world["small"], world["big"]
    sizes = {}
    for name, pid in (("small", small), ("big", big["id"])):
        project = client.get(f"/api/projects/{pid}").json()
        model_id = project["model"]["id"]
        sizes[name] = {
            "project page": len(client.get(f"/projects/{pid}").content),
            "models page": len(client.get(f"/projects/{pid}/models").content),
            "live page": len(client.get(f"/projects/{pid}/live").content),
            "project": len(client.get(f"/api/projects/{pid}").content),
            "versions": len(client.get(f"/api/projects/{pid}/models").content),
            "model": len(client.get(f"/api/models/{model_id}").content),
        }
        # The mistakes list the models page opens with: a page, at most 48 tiles, whatever their number.
        mistakes = client.get(f"/api/models/{model_id}/predictions", params={"wrong": True, "group": "burst",
                                                                             "limit": 48})
        assert len(mistakes.json()["rows"]) == min(48, mistakes.json()["total"]) and len(mistakes.content) < 48 * 200
        # What a card loads on open: one page, however big the class.
        for c in project["classes"]:
            page = client.get(f"/api/classes/{c['id']}/samples", params={"limit": 48}).json()
            assert len(page) == min(48, c["sample_count"])
        assert "val_predictions" not in client.get(f"/api/models/{model_id}").json()["metrics"]
    for what, n in sizes["big"].items():
        # A few more digits (counts, ids, a name made unique); not a byte per photo.
        assert n < sizes["small"][what] + 1500, (what, sizes)
    # The rows are still there for whoever asks (the test would see them if the answers carried them).
    full = client.get(f"/api/models/{big['model']['id']}", params={"full": True}).content
    assert len(full) > sizes["big"]["model"] + 1200 * 50


def test_the_job_and_the_model_carry_the_rows_only_when_asked(world):
    client, job = world["client"], world["job"]
    fresh = client.get(f"/api/jobs/{job['id']}").json()
    assert fresh["metrics"]["n_val"] == 50 and "val_predictions" not in fresh["metrics"]
    assert "misclassified" not in fresh["metrics"]
    listed = client.get(f"/api/projects/{world['small']}/models").json()[0]["metrics"]
    assert "val_predictions" not in listed and listed["confusion"]
    full = client.get(f"/api/models/{job['model_id']}", params={"full": True}).json()["metrics"]
    assert len(full["val_predictions"]) == 50


def ordered(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (-r["loss"], r["sample_id"]))


def all_pages(client, model_id: int, limit: int, **query) -> tuple[list[dict], set[int], set[int]]:
    rows, totals, photo_counts, offset = [], set(), set(), 0
    while True:
        r = client.get(f"/api/models/{model_id}/predictions", params={**query, "limit": limit, "offset": offset})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["rows"]) <= limit
        rows += body["rows"]
        totals.add(body["total"])
        photo_counts.add(body["photos"])
        offset += limit
        if offset >= body["total"]:
            return rows, totals, photo_counts


def test_the_photos_behind_each_cell_page_by_page_worst_first(world):
    client, big, expected = world["client"], world["big"], world["rows"]
    model_id = big["model"]["id"]
    for t in range(2):
        for p in range(2):
            want = ordered([r for r in expected if (r["true"], r["predicted"]) == (t, p)])
            got, totals, _ = all_pages(client, model_id, 97, true=t, predicted=p)
            assert totals == {len(want)} and len(want) > 0
            assert [(r["sample_id"], r["loss"]) for r in got] == [(r["sample_id"], r["loss"]) for r in want]
            assert all(r["similar"] == 1 for r in got)
    cats, totals, _ = all_pages(client, model_id, 500, true=1)
    assert totals == {BIG["cat"]} and {r["true"] for r in cats} == {1}


def test_the_mistakes_worst_first_one_tile_per_recording(world):
    client, big, expected = world["client"], world["big"], world["rows"]
    model_id = big["model"]["id"]
    wrong = ordered([r for r in expected if r["true"] != r["predicted"]])
    rows, totals, photo_counts = all_pages(client, model_id, 50, wrong=True)
    assert [r["sample_id"] for r in rows] == [r["sample_id"] for r in wrong] and totals == photo_counts == {len(wrong)}
    tiles, totals, photo_counts = all_pages(client, model_id, 50, wrong=True, group="burst")
    burst = [r for r in wrong if r["burst_id"] == BURST[0]]
    assert len(burst) == BURST[1] and photo_counts == {len(wrong)} and totals == {len(wrong) - BURST[1] + 1}
    (tile,) = [r for r in tiles if r["burst_id"] == BURST[0]]
    assert tile["similar"] == BURST[1] and tile["sample_id"] == burst[0]["sample_id"]  # the worst frame
    assert [r["sample_id"] for r in tiles] == [r["sample_id"] for r in wrong if r not in burst[1:]]


def test_a_trained_models_pages_match_its_own_rows(world):
    """The small project's real evaluation: the pages give what the model stored, in loss order."""
    client, job = world["client"], world["job"]
    stored = client.get(f"/api/models/{job['model_id']}", params={"full": True}).json()["metrics"]["val_predictions"]
    for t in range(2):
        for p in range(2):
            want = ordered([r for r in stored if (r["true"], r["predicted"]) == (t, p)])
            got, totals, _ = all_pages(client, job["model_id"], 7, true=t, predicted=p)
            assert totals == {len(want)}
            assert [r["sample_id"] for r in got] == [r["sample_id"] for r in want]
            assert [r["score"] for r in got] == [r["score"] for r in want]


@pytest.mark.parametrize("query, words", [
    ({"true": 2}, "true=2: this model has 2 classes"), ({"predicted": 5}, "predicted=5"),
    ({"true": -1}, "greater than or equal to 0"), ({"limit": 0}, "greater than or equal to 1"),
    ({"limit": 501}, "less than or equal to 500"), ({"offset": -1}, "greater than or equal to 0"),
    ({"group": "class"}, "'burst'"), ({"wrong": "maybe"}, "valid boolean"),
])
def test_bad_prediction_queries_are_a_clear_422(world, query, words):
    r = world["client"].get(f"/api/models/{world['job']['model_id']}/predictions", params=query)
    assert r.status_code == 422 and words in json.dumps(r.json()["detail"]), r.text


def test_no_model_no_predictions(world):
    r = world["client"].get("/api/models/999999/predictions")
    assert r.status_code == 404 and "model 999999" in r.json()["detail"]


def test_a_model_whose_metrics_sqlite_cannot_read_still_answers(world):
    """Python writes NaN for a figure with nothing to measure, and SQLite's JSON refuses it: such a model (here
    from a project file that has one) is read whole instead, with the same answers."""
    client = world["client"]
    src = zipfile.ZipFile(io.BytesIO(client.get(f"/api/projects/{world['small']}/export").content))
    manifest = json.loads(src.read("manifest.json"))
    manifest["models"][0]["metrics"]["val_loss"] = float("nan")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in src.namelist():
            zf.writestr(name, json.dumps(manifest) if name == "manifest.json" else src.read(name))
    r = client.post("/api/projects/import", files={"file": ("nan.snapclass.zip", out.getvalue(), "application/zip")})
    assert r.status_code == 201, r.text
    pid, model_id = r.json()["id"], r.json()["model"]["id"]
    with sqlite3.connect(world["data_dir"] / "snapclass.db") as db:
        assert db.execute("SELECT json_valid(metrics) FROM trained_models WHERE id = ?", (model_id,)).fetchone() == (0,)
    assert r.json()["model"]["metrics"]["val_loss"] is None and "val_predictions" not in r.json()["model"]["metrics"]
    listed = client.get(f"/api/projects/{pid}/models").json()[0]["metrics"]
    assert "val_predictions" not in listed and listed["confusion"]
    page = client.get(f"/api/models/{model_id}/predictions", params={"limit": 500}).json()
    mine = client.get(f"/api/models/{world['job']['model_id']}/predictions", params={"limit": 500}).json()
    assert page["total"] == mine["total"] == 50
    assert [r["score"] for r in page["rows"]] == [r["score"] for r in mine["rows"]]


def test_page_loads_run_the_same_queries_at_50_and_1200_photos(world):
    """No query per photo (or per class beyond the few a project has), and none that reads a model's weights or
    its per-photo rows whole: the SQL each page load sends, counted on the app's own engine."""
    client = world["client"]
    engine = client.app.state.services.session_factory.kw["bind"]
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_):
        sent.append(statement)

    def loads(pid: int) -> dict[str, list[str]]:
        project = client.get(f"/api/projects/{pid}").json()
        model, cid = project["model"]["id"], project["classes"][0]["id"]
        out = {}
        for name, path in (("home", "/"), ("project page", f"/projects/{pid}"),
                           ("models page", f"/projects/{pid}/models"), ("live page", f"/projects/{pid}/live"),
                           ("project", f"/api/projects/{pid}"), ("versions", f"/api/projects/{pid}/models"),
                           ("projects", "/api/projects"), ("a card's page", f"/api/classes/{cid}/samples?limit=48"),
                           ("mistakes", f"/api/models/{model}/predictions?wrong=true&group=burst&limit=48")):
            sent.clear()
            assert client.get(path).status_code == 200, path
            out[name] = list(sent)
        return out

    event.listen(engine, "before_cursor_execute", record)
    try:
        small, big = loads(world["small"]), loads(world["big"]["id"])
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert {k: len(v) for k, v in big.items()} == {k: len(v) for k, v in small.items()}
    for path, statements in big.items():
        for statement in statements:
            assert "trained_models.weights" not in statement, (path, statement)
            assert "trained_models.metrics" not in statement or "json_" in statement, (path, statement)
