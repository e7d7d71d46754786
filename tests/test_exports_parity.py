"""Every download is checked against the served model when it is built, and `onnx-int8` is small and agrees:
measured here with onnxruntime / torch alone on real photos prepared as documented, against the server's /predict."""

from __future__ import annotations

import json
import time

import numpy as np
import onnxruntime as ort
import pytest
import torch

from app.db import session_scope
from app.exports import export_path, report_path
from app.models import TrainedModel
from bench.common import documented_input
from tests.conftest import make_client, make_project, photos, train, upload

pytestmark = pytest.mark.slow  # a training, four exports and their checks: about two minutes on 2 cores

FORMATS = ("onnx", "onnx-int8", "torchscript")


@pytest.fixture(scope="module")
def built(tmp_path_factory, cache_dir):
    """A small project trained on real photos, the server's answers for 24 other photos, and three downloads."""
    with make_client(tmp_path_factory.mktemp("parity"), cache_dir) as client:
        pid, (ants, bees) = make_project(client, "Ants & bees", ("ants", "bees"))
        upload(client, ants, photos("hymenoptera", "train", "ants", limit=12))
        upload(client, bees, photos("hymenoptera", "train", "bees", limit=12))
        job = train(client, pid, epochs=5)
        assert job["status"] == "succeeded", job
        model_id = job["model_id"]
        listed = client.get(f"/api/models/{model_id}").json()["exports"]
        assert {e["status"] for e in listed} == {"not_built"} and listed  # nothing is built by a GET
        files, seconds = {}, {}
        for fmt in FORMATS:
            started = time.perf_counter()
            r = client.get(f"/api/projects/{pid}/model/download", params={"format": fmt})
            seconds[fmt] = time.perf_counter() - started
            assert r.status_code == 200, r.text
            files[fmt] = r.content
        path = tmp_path_factory.mktemp("files")
        for fmt, data in files.items():
            (path / fmt).write_bytes(data)
        print(f"\nbuild+check seconds: { {f: round(s, 1) for f, s in seconds.items()} }; sizes MB: "
              f"{ {f: round(len(d) / 1e6, 2) for f, d in files.items()} }")
        yield {"client": client, "pid": pid, "model_id": model_id, "dir": path, "files": files}


def server_answer(client, pid: int, data: bytes, name: str) -> dict:
    r = client.post(f"/api/projects/{pid}/predict", files={"file": (name, data)})
    assert r.status_code == 200, r.text
    return r.json()


def test_int8_is_small_carries_its_metadata_and_agrees_on_real_photos(built, tmp_path):
    client, pid = built["client"], built["pid"]
    int8, float_ = built["files"]["onnx-int8"], built["files"]["onnx"]
    assert len(int8) <= 0.35 * len(float_), (len(int8), len(float_))
    session = ort.InferenceSession(str(built["dir"] / "onnx-int8"), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    labels, size = json.loads(meta["labels"]), int(meta["input_size"])
    assert labels == ["ants", "bees"] and size > 0 and "int8" in meta["quantization"]
    threshold = json.loads(meta["unknown_threshold"])
    assert isinstance(threshold, float)
    assert any(n.op_type == "QuantizeLinear" for n in __import__("onnx").load(built["dir"] / "onnx-int8").graph.node)

    val = photos("hymenoptera", "val", "ants", limit=15) + photos("hymenoptera", "val", "bees", limit=15)
    agree, float_sims, int8_sims = 0, [], []
    for p in val:
        answer = server_answer(client, pid, p.read_bytes(), p.name)
        probs, sim = session.run(["probabilities", "similarity"], {"input": documented_input(p, size)})
        agree += labels[int(probs[0].argmax())] == answer["predictions"][0]["label"]
        float_sims.append(answer["similarity"])
        int8_sims.append(float(sim[0]))
    print(f"\nint8: {len(int8) / 1e6:.2f} MB = {len(int8) / len(float_):.1%} of float; "
          f"agrees on {agree}/{len(val)} val photos")
    assert agree / len(val) >= 0.97
    # Its own threshold is the served one moved by the similarity's quantization bias, which these photos show too.
    served_threshold = answer["unknown_threshold"]
    measured_shift = float(np.mean(np.subtract(int8_sims, float_sims)))
    assert threshold - served_threshold == pytest.approx(measured_shift, abs=0.02)


def test_model_lists_each_built_format_with_the_parity_the_test_measures(built):
    client, pid = built["client"], built["pid"]
    model = client.get(f"/api/models/{built['model_id']}", params={"full": True}).json()
    exports = {e["format"]: e for e in model["exports"] if e["status"] == "built"}
    assert set(exports) == set(FORMATS)
    held_out = [row["sample_id"] for row in model["metrics"]["val_predictions"]]
    assert len(held_out) >= 4
    # The same held-out photos, fetched from the server and prepared as documented, in each file's own runtime.
    images = [client.get(f"/api/samples/{sid}/image").content for sid in held_out]
    served = []
    for i, data in enumerate(images):
        answer = server_answer(client, pid, data, f"held-out-{i}.jpg")
        served.append([{p["label"]: p["score"] for p in answer["predictions"]}[label] for label in model["labels"]])
    served = np.array(served)
    size = int(ort.InferenceSession(str(built["dir"] / "onnx")).get_modelmeta().custom_metadata_map["input_size"])
    src = built["dir"] / "photo"
    xs = []
    for data in images:
        src.write_bytes(data)
        xs.append(documented_input(src, size))
    x = np.concatenate(xs)
    for fmt in FORMATS:
        report = exports[fmt]
        assert report["size_bytes"] == len(built["files"][fmt])
        assert report["photos"] == len(held_out) and report["offered"] and report["reason"] is None
        path = built["dir"] / fmt
        if fmt == "torchscript":
            with torch.no_grad():
                probs = torch.jit.load(str(path))(torch.from_numpy(x)).numpy()
        else:
            probs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
                ["probabilities"], {"input": x})[0]
        agreement = float(np.mean(probs.argmax(1) == served.argmax(1)))
        diff = float(np.abs(probs - served).max())
        assert report["agreement"] == pytest.approx(agreement, abs=1 / len(held_out) + 1e-9), fmt
        assert report["max_prob_diff"] == pytest.approx(diff, abs=0.02), fmt
        if fmt != "onnx-int8":
            assert report["agreement"] == 1.0 and report["max_prob_diff"] < 1e-4, fmt
        assert report["agreement"] >= 0.97, fmt


def test_a_format_that_disagrees_is_not_offered_and_says_why(built):
    """The cached report decides: one that recorded a disagreement turns the download into a 409 in words."""
    client, pid, model_id = built["client"], built["pid"], built["model_id"]
    services = client.app.state.services
    with session_scope(services.session_factory) as s:  # not a glob: other tests' models are also number 1
        sidecar = report_path(export_path(services.settings.cache_dir, s.get(TrainedModel, model_id), "onnx-int8"))
    kept = sidecar.read_text()
    report = json.loads(kept)
    try:
        report.update(agreement=0.5, offered=False, reason="the onnx-int8 file agrees on only 3 of 6 held-out photos")
        sidecar.write_text(json.dumps(report))
        r = client.get(f"/api/projects/{pid}/model/download", params={"format": "onnx-int8"})
        assert r.status_code == 409 and "agrees on only 3 of 6" in r.json()["detail"]
        listed = {e["format"]: e for e in client.get(f"/api/models/{model_id}").json()["exports"]}
        assert listed["onnx-int8"]["offered"] is False
    finally:
        sidecar.write_text(kept)
    assert client.get(f"/api/projects/{pid}/model/download", params={"format": "onnx-int8"}).status_code == 200
