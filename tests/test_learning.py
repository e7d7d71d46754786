"""Issue 4 through the API: modes, evaluation, versions, base-model reuse and "none of these"."""

from __future__ import annotations

import json
import sqlite3
import time

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from bench.common import documented_input
from tests.conftest import jpeg_bytes, make_client, make_project, photos, train, upload, wait_job


@pytest.fixture(scope="module")
def ants_bees(tmp_path_factory, cache_dir):
    """A small ants/bees project trained once in head mode, shared by the read-only tests here."""
    with make_client(tmp_path_factory.mktemp("learning"), cache_dir) as client:
        pid, (ants, bees) = make_project(client, "small", ("ants", "bees"))
        upload(client, ants, photos("hymenoptera", "train", "ants", limit=30))
        upload(client, bees, photos("hymenoptera", "train", "bees", limit=30))
        job = client.post(f"/api/projects/{pid}/train", json={"mode": "head"}).json()
        job = wait_job(client, job["job_id"])
        assert job["status"] == "succeeded", job
        yield client, pid, job


def test_the_job_says_what_it_ran_and_why(ants_bees):
    _, _, job = ants_bees
    m = job["metrics"]
    assert m["mode"] == "head" and m["device"] == "cpu" and m["recipe"] == "snapclass"
    assert m["mode_reason"].startswith("head mode was asked for: snapclass's head recipe")


def test_evaluation_a_person_can_read(ants_bees):
    client, pid, job = ants_bees
    model = client.get(f"/api/models/{job['model_id']}", params={"full": True}).json()
    m = model["metrics"]
    assert m["labels"] == ["ants", "bees"]
    assert m["n_val"] == len(m["val_predictions"]) > 0
    cm = np.array(m["confusion"])
    assert cm.sum() == m["n_val"] and np.trace(cm) / cm.sum() == pytest.approx(m["val_accuracy"])
    # Each confusion cell can open its images: the rows behind cell (t, p) are exactly cm[t, p] many.
    for t in range(2):
        for p in range(2):
            rows = [r for r in m["val_predictions"] if (r["true"], r["predicted"]) == (t, p)]
            assert len(rows) == cm[t, p]
            for r in rows[:2]:
                assert client.get(f"/api/samples/{r['sample_id']}/thumbnail").status_code == 200
    assert [c["label"] for c in m["per_class"]] == ["ants", "bees"]
    losses = [r["loss"] for r in m["misclassified"]]
    assert losses == sorted(losses, reverse=True) and all(r["true"] != r["predicted"] for r in m["misclassified"])
    history = m["history"]
    assert len(history) >= 10 and {"train_loss", "val_loss", "train_accuracy", "val_accuracy"} <= history[0].keys()
    assert 1 <= m["best_epoch"] <= len(history)
    curves = wait_curves(client, job["model_id"])
    assert [p["fraction"] for p in curves["points"]] == [0.25, 0.5, 0.75, 1.0]
    assert {a["label"] for a in curves["advice"]} == {"ants", "bees"}
    assert all(a["text"].startswith(a["label"] + ":") for a in curves["advice"])
    # The list endpoint stays light; `full=true` carries the rows.
    listed = client.get(f"/api/projects/{pid}/models").json()[0]
    assert "val_predictions" not in listed["metrics"] and "confusion" in listed["metrics"]
    assert "val_predictions" in client.get(f"/api/projects/{pid}/models?full=true").json()[0]["metrics"]


def wait_curves(client, model_id: int, timeout: float = 60) -> dict:
    """The model's learning curves, once the worker has worked them out after the model was ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        curves = client.get(f"/api/models/{model_id}").json()["metrics"]["learning_curves"]
        if curves.get("status") != "pending":
            return curves
        time.sleep(0.1)
    raise AssertionError(f"the learning curves of model {model_id} still pending after {timeout} s")


def test_the_model_is_ready_before_its_learning_curves(tmp_path, cache_dir):
    """The job succeeds, and the model answers, as soon as it is trained; the curves (15 more heads) come
    after, into the model's and the job's metrics. A training waiting in the queue goes first: the curves of
    the model before it then say they gave way."""
    with make_client(tmp_path / "data", cache_dir) as client:
        pids = []
        for name in ("first", "second"):
            pid, (a, b) = make_project(client, name, ("ants", "bees"))
            upload(client, a, photos("hymenoptera", "train", "ants", limit=40))
            upload(client, b, photos("hymenoptera", "train", "bees", limit=40))
            pids.append(pid)
        first = client.post(f"/api/projects/{pids[0]}/train", json={"mode": "head"}).json()["job_id"]
        second = client.post(f"/api/projects/{pids[1]}/train", json={"mode": "head"}).json()["job_id"]
        job = wait_job(client, first, follow_ups=False)
        assert job["status"] == "succeeded"
        assert wait_curves(client, job["model_id"])["status"] == "skipped"
        assert "another training started" in client.get(f"/api/jobs/{first}").json()["metrics"]["learning_curves"][
            "reason"]

        job = wait_job(client, second, follow_ups=False)
        # Nothing waits behind the second: right when it is ready, its curves are still being worked out.
        ready = client.get(f"/api/models/{job['model_id']}").json()["metrics"]
        assert job["status"] == "succeeded" and ready["learning_curves"] == {"status": "pending"}
        bee = photos("hymenoptera", "val", "bees", limit=1)[0]
        assert client.post(f"/api/projects/{pids[1]}/predict",
                           files={"file": (bee.name, bee.read_bytes())}).status_code == 200
        curves = wait_curves(client, job["model_id"])
        assert [p["fraction"] for p in curves["points"]] == [0.25, 0.5, 0.75, 1.0]
        assert client.get(f"/api/jobs/{second}").json()["metrics"]["learning_curves"] == curves

    # A server stopped while curves were pending: on the next start they say so, not "pending" for ever.
    db = sqlite3.connect(tmp_path / "data" / "snapclass.db")
    row = db.execute("SELECT id, metrics FROM trained_models ORDER BY id DESC LIMIT 1").fetchone()
    db.execute("UPDATE trained_models SET metrics = ? WHERE id = ?",
               (json.dumps({**json.loads(row[1]), "learning_curves": {"status": "pending"}}), row[0]))
    db.commit()
    db.close()
    with make_client(tmp_path / "data", cache_dir) as client:
        curves = client.get(f"/api/models/{row[0]}").json()["metrics"]["learning_curves"]
        assert curves["status"] == "interrupted" and "server stopped" in curves["reason"]


def test_cross_validation_judges_each_photo_by_a_head_that_never_saw_it(client):
    """A bee filed under ants: the heads that trained on it may learn the wrong label, but the fold
    head that held it out calls it a bee, so it is listed among the mistakes. Every photo is judged."""
    pid, (ants, bees) = make_project(client, classes=("ants", "bees"))
    ids = [x["id"] for cid, name in ((ants, "ants"), (bees, "bees"))
           for x in upload(client, cid, photos("hymenoptera", "train", name, limit=20)).json()["added"]]
    stray_id = upload(client, ants, photos("hymenoptera", "val", "bees", limit=1)).json()["added"][0]["id"]
    job = train(client, pid)
    m = client.get(f"/api/models/{job['model_id']}", params={"full": True}).json()["metrics"]
    assert m["validation"] == {"method": "cross-validation", "folds": 5} and len(m["best_epochs"]) == 5
    assert m["n_train"] == m["n_val"] == 41 and len(m["val_predictions"]) == 41
    assert {r["sample_id"] for r in m["val_predictions"]} == {*ids, stray_id}
    wrong = {r["sample_id"]: r for r in m["misclassified"]}
    assert stray_id in wrong and (wrong[stray_id]["true"], wrong[stray_id]["predicted"]) == (0, 1)
    assert m["val_accuracy"] == pytest.approx(1 - len(wrong) / 41)
    # The mean of the fold heads answers: all 41 photos behind it, the stray too.
    assert m["train_accuracy"] >= m["val_accuracy"]

    # One validation split on request, as fine-tuning and the Teachable-Machine recipe use.
    single = train(client, pid, folds=1)["metrics"]
    assert single["validation"] == {"method": "split", "fraction": 0.15}
    assert single["n_train"] + single["n_val"] == 41 and 4 <= single["n_val"] <= 8
    tm = train(client, pid, recipe="teachable-machine", epochs=5)["metrics"]
    assert tm["validation"]["method"] == "split" and tm["n_train"] + tm["n_val"] == 41


def assert_download_agrees(client, pid, tmp_path, abs):
    """The fine-tuned network in the downloaded ONNX file scores a photo as the server does."""
    bee = photos("hymenoptera", "val", "bees", limit=1)[0]
    served = client.post(f"/api/projects/{pid}/predict", files={"file": (bee.name, bee.read_bytes())}).json()
    path = tmp_path / f"project-{pid}.onnx"
    path.write_bytes(client.get(f"/api/projects/{pid}/model/download?format=onnx").content)
    probs = ort.InferenceSession(str(path)).run(None, {"input": documented_input(bee, 288)})[0][0]
    assert float(probs.max()) == pytest.approx(served["predictions"][0]["score"], abs=abs)
    return bee


def test_auto_keeps_its_fine_tuning_only_when_it_beats_the_head(tmp_path, cache_dir):
    """On the CPU auto fine-tunes from cached front activations, then keeps the result only if it is
    better on the validation photos than the frozen backbone's head. A head crippled on purpose (one
    epoch at a learning rate of 1e-6: chance) loses to it; a proper head on ants/bees ties it (both
    get every validation photo right), and auto falls back to the cross-validated heads."""
    with make_client(tmp_path / "data", cache_dir) as client:
        pid, (a, b) = make_project(client, "auto", ("ants", "bees"))
        upload(client, a, photos("hymenoptera", "train", "ants", limit=20))
        upload(client, b, photos("hymenoptera", "train", "bees", limit=20))

        kept = train(client, pid, mode="auto", epochs=1, learning_rate=1e-6)
        m = kept["metrics"]
        assert kept["status"] == "succeeded" and m["mode"] == "finetune" and m["finetune_engine"] == "cached"
        assert "auto chose fine-tuning" in m["mode_reason"] and ". It did: fine-tuning reached" in m["mode_reason"]
        assert m["validation"]["method"] == "split" and m["val_accuracy"] > m["history"][0]["val_accuracy"]
        assert [h["phase"] for h in m["history"]] == ["head"] + ["finetune"] * 12
        model = client.get(f"/api/models/{kept['model_id']}").json()
        assert model["mode"] == "finetune" and model["features"].startswith("efficientnet_lite0@")
        assert_download_agrees(client, pid, tmp_path, abs=0.02)

        fallback = train(client, pid, mode="auto")["metrics"]
        assert fallback["mode"] == "head" and fallback["finetune_engine"] == "cached"
        assert ". It was not: fine-tuning reached" in fallback["mode_reason"]
        assert fallback["mode_reason"].endswith("auto kept the frozen backbone with snapclass's cross-validated heads")
        assert fallback["validation"] == {"method": "cross-validation", "folds": 5}
        current = client.get(f"/api/projects/{pid}").json()["model"]
        assert current["mode"] == "head"
        assert client.get(f"/api/models/{current['id']}").json()["features"] == "efficientnet_lite0"


def _predict(client, pid, path, **params):
    r = client.post(f"/api/projects/{pid}/predict", params=params, files={"file": (path.name, path.read_bytes())})
    assert r.status_code == 200, r.text
    return r.json()


def test_none_of_these_threshold(ants_bees, tmp_path):
    client, pid, job = ants_bees
    model = client.get(f"/api/models/{job['model_id']}").json()
    threshold = model["unknown_threshold"]
    assert threshold == model["unknown_threshold_calibrated"] and 0 < threshold < 1
    known = [_predict(client, pid, p) for c in ("ants", "bees") for p in photos("hymenoptera", "val", c)[::4]]
    # Calibrated to let ~98 % of known images through; a 60-photo project's estimate is rougher.
    assert np.mean([k["unknown"] for k in known]) <= 0.2
    assert all(k["label"] == ("unknown" if k["unknown"] else k["predictions"][0]["label"]) for k in known)
    # Photos of other things: the ImageNet sample, whose classes are nearly all neither ants nor bees.
    others = [_predict(client, pid, p) for p in photos("imagenet-sample-200")[::5] if p.suffix == ".JPEG"]
    assert np.mean([o["unknown"] for o in others]) >= 0.8
    grey = client.post(f"/api/projects/{pid}/predict", files={"file": ("g.jpg", jpeg_bytes((128, 128, 128)))}).json()
    assert grey["unknown"] is True and grey["label"] == "unknown" and grey["similarity"] < threshold
    assert len(grey["predictions"]) == 2  # the scores are still there

    # Adjustable: per request, and stored on the model (then carried into downloads).
    bee = next(p for p, k in zip(photos("hymenoptera", "val", "bees")[::4], known[-10:], strict=False)
               if not k["unknown"])
    assert _predict(client, pid, bee, unknown_threshold=0.999)["unknown"] is True
    r = client.patch(f"/api/models/{job['model_id']}", json={"unknown_threshold": -1})
    assert r.json()["unknown_threshold"] == -1
    grey = client.post(f"/api/projects/{pid}/predict", files={"file": ("g.jpg", jpeg_bytes((128, 128, 128)))}).json()
    assert grey["unknown"] is False
    assert client.patch(f"/api/models/{job['model_id']}", json={"unknown_threshold": 2}).status_code == 422
    client.patch(f"/api/models/{job['model_id']}", json={"reset_unknown_threshold": True})

    served = _predict(client, pid, bee)
    path = tmp_path / "m.onnx"
    path.write_bytes(client.get(f"/api/projects/{pid}/model/download?format=onnx").content)
    session = ort.InferenceSession(str(path))
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["unknown_threshold"]) == pytest.approx(threshold)
    assert [o.name for o in session.get_outputs()] == ["probabilities", "similarity"]
    probs, sim = session.run(None, {"input": documented_input(bee, int(meta["input_size"]))})
    assert sim[0] == pytest.approx(served["similarity"], abs=0.02)
    assert json.loads(meta["labels"])[int(probs[0].argmax())] == served["predictions"][0]["label"]


def test_versions_compare_and_make_an_older_one_current(client):
    pid, (a, b) = make_project(client, classes=("ants", "bees"))
    upload(client, a, photos("hymenoptera", "train", "ants", limit=6))
    upload(client, b, photos("hymenoptera", "train", "bees", limit=6))
    v1 = train(client, pid, epochs=3)["model_id"]
    v2 = train(client, pid, epochs=3)["model_id"]
    models = client.get(f"/api/projects/{pid}/models").json()
    assert [(m["id"], m["version"], m["is_current"]) for m in models] == [(v2, 2, True), (v1, 1, False)]
    assert all("val_accuracy" in m["metrics"] for m in models)
    assert client.delete(f"/api/models/{v2}").status_code == 409  # the current one
    r = client.post(f"/api/projects/{pid}/models/{v1}/activate")
    assert r.status_code == 200 and r.json()["is_current"]
    assert client.get(f"/api/projects/{pid}").json()["model"]["id"] == v1
    frame = photos("hymenoptera", "val", "ants", limit=1)[0]
    assert client.post(f"/api/projects/{pid}/predict", files={"file": (frame.name, frame.read_bytes())}
                       ).json()["model_id"] == v1
    assert client.delete(f"/api/models/{v2}").status_code == 204
    assert [m["id"] for m in client.get(f"/api/projects/{pid}/models").json()] == [v1]
    other, _ = make_project(client, "other")
    assert client.post(f"/api/projects/{other}/models/{v1}/activate").status_code == 404


def test_finetune_then_start_another_project_from_it(tmp_path, cache_dir):
    with make_client(tmp_path / "data", cache_dir) as client:
        pid, (a, b) = make_project(client, "model A", ("ants", "bees"))
        upload(client, a, photos("hymenoptera", "train", "ants", limit=8))
        upload(client, b, photos("hymenoptera", "train", "bees", limit=8))
        job = train(client, pid, mode="finetune", epochs=3, finetune_epochs=1, unfreeze=1)
        assert job["status"] == "succeeded", job
        m = job["metrics"]
        assert m["mode"] == "finetune" and "fine-tuning was asked for" in m["mode_reason"]
        assert m["finetune_engine"] == "cached" and "finetune_verdict" not in m  # asked for: kept as it is
        assert [h["phase"] for h in m["history"]] == ["head"] * 3 + ["finetune"]
        model = client.get(f"/api/models/{job['model_id']}").json()
        assert model["mode"] == "finetune" and model["features"].startswith("efficientnet_lite0@")
        bee = assert_download_agrees(client, pid, tmp_path, abs=0.05)

        # Model A -> model B: the new project embeds with A's fine-tuned backbone.
        r = client.post("/api/projects", json={"name": "model B", "base_model_id": job["model_id"]})
        assert r.status_code == 201 and r.json()["base_model_id"] == job["model_id"]
        pid_b = r.json()["id"]
        c1 = client.post(f"/api/projects/{pid_b}/classes", json={"name": "bee"}).json()["id"]
        c2 = client.post(f"/api/projects/{pid_b}/classes", json={"name": "ant"}).json()["id"]
        upload(client, c1, photos("hymenoptera", "val", "bees", limit=5))
        upload(client, c2, photos("hymenoptera", "val", "ants", limit=5))
        job_b = train(client, pid_b, epochs=3)
        assert job_b["status"] == "succeeded", job_b
        model_b = client.get(f"/api/models/{job_b['model_id']}").json()
        assert model_b["features"] == model["features"]
        assert client.post("/api/projects", json={"name": "x", "base_model_id": 999}).status_code == 422
        # Deleting project A keeps B working: the backbone is still referenced by B.
        assert client.delete(f"/api/projects/{pid}").status_code == 204
    with make_client(tmp_path / "data", cache_dir / "fresh") as client:  # no cached graph: from SQLite
        r = client.post(f"/api/projects/{pid_b}/predict", files={"file": (bee.name, bee.read_bytes())})
        assert r.status_code == 200 and r.json()["model_id"] == job_b["model_id"]


def test_grey_card_helper_is_really_grey():
    img = Image.open(__import__("io").BytesIO(jpeg_bytes((128, 128, 128))))
    assert img.getpixel((5, 5))[0] in range(120, 136)
