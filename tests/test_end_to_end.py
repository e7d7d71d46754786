"""Issue 2's bar on real photos: train on all of hymenoptera/train, judge on val through the API,
and check that downloaded models, used with no snapclass code, agree with the server."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from bench.common import documented_input
from tests.conftest import make_client, make_project, photos, train, upload

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache_dir):
    with make_client(tmp_path_factory.mktemp("e2e"), cache_dir) as client:
        pid, (ants, bees) = make_project(client, "ants vs bees", ("ants", "bees"))
        for cid, name in ((ants, "ants"), (bees, "bees")):
            r = upload(client, cid, photos("hymenoptera", "train", name))
            assert r.status_code == 201 and r.json()["rejected"] == []
        job = train(client, pid)
        assert job["status"] == "succeeded", job
        val = [(p, label) for label in ("ants", "bees") for p in photos("hymenoptera", "val", label)]
        served = {}
        for path, _ in val:
            r = client.post(f"/api/projects/{pid}/predict", files={"file": (path.name, path.read_bytes())})
            assert r.status_code == 200, r.text
            served[path] = r.json()["predictions"][0]["label"]
        yield client, pid, job, val, served


def test_all_245_photos_train_and_val_accuracy_through_predict(trained):
    _, _, job, val, served = trained
    # Cross-validated: the answering model learned from all 245, and each was judged by a fold's head
    # that had not seen it.
    assert job["metrics"]["validation"] == {"method": "cross-validation", "folds": 5}
    assert job["metrics"]["n_train"] == job["metrics"]["n_val"] == 245
    assert job["metrics"]["embedded_new"] == 245
    accuracy = np.mean([served[p] == label for p, label in val])
    assert len(val) == 153
    assert accuracy >= 0.93, accuracy


def download(client, pid, fmt, tmp_path):
    r = client.get(f"/api/projects/{pid}/model/download", params={"format": fmt})
    assert r.status_code == 200
    assert "attachment" in r.headers["content-disposition"]
    path = tmp_path / f"model.{fmt}"
    path.write_bytes(r.content)
    return path


def test_onnx_download_agrees_with_the_server(trained, tmp_path):
    client, pid, _, val, served = trained
    session = ort.InferenceSession(str(download(client, pid, "onnx", tmp_path)))
    meta = session.get_modelmeta().custom_metadata_map
    labels, size = json.loads(meta["labels"]), int(meta["input_size"])
    assert labels == ["ants", "bees"] and size == 288
    assert json.loads(meta["preprocessing"])["mean"] == [0.5, 0.5, 0.5]
    inp = session.get_inputs()[0]
    assert inp.type == "tensor(float)" and inp.shape[1:] == [3, size, size]
    agree = []
    for path, _ in val:
        probs = session.run(None, {inp.name: documented_input(path, size)})[0][0]
        assert abs(probs.sum() - 1) < 1e-4
        agree.append(labels[int(probs.argmax())] == served[path])
    assert np.mean(agree) >= 0.97, np.mean(agree)


def test_torchscript_download_agrees_with_the_server(trained, tmp_path):
    client, pid, _, val, served = trained
    extra = {"labels": "", "input_size": "", "preprocessing": ""}
    module = torch.jit.load(str(download(client, pid, "torchscript", tmp_path)), _extra_files=extra)
    labels, size = json.loads(extra["labels"]), int(extra["input_size"])
    assert labels == ["ants", "bees"]
    agree = []
    with torch.inference_mode():
        for path, _ in val[::3]:
            probs = module(torch.from_numpy(documented_input(path, size)))[0]
            agree.append(labels[int(probs.argmax())] == served[path])
    assert np.mean(agree) >= 0.97, np.mean(agree)


def test_the_model_in_the_database_outlives_the_server(trained, tmp_path_factory, cache_dir):
    client, pid, _, val, served = trained
    data_dir = client.app.state.services.settings.data_dir
    path, _ = val[0]
    with make_client(data_dir, cache_dir) as again:  # a second server process on the same SQLite file
        r = again.post(f"/api/projects/{pid}/predict", files={"file": (path.name, path.read_bytes())})
        assert r.json()["predictions"][0]["label"] == served[path]
