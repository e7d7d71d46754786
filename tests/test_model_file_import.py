"""A downloaded model file (onnx, pt2) opened as a project over HTTP: it answers as the original did at once
(predict, live, share, download) and trains on; a hostile or unusable model file is refused with nothing kept."""

from __future__ import annotations

import io
import json
import zipfile

import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import numpy_helper

from app.config import Settings
from app.main import create_app
from tests.conftest import upload
from tests.test_projectfile import ANTS, BEES, PROBES, import_file, predictions, stored, train


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("modelfile") / "data"


@pytest.fixture(scope="module")
def client(data_dir, cache_dir):
    with TestClient(create_app(Settings(data_dir=data_dir, cache_path=cache_dir))) as c:
        yield c


def _ants_and_bees(client, name: str, **training) -> int:
    pid = client.post("/api/projects", json={"name": name}).json()["id"]
    for label, paths in (("ants", ANTS), ("bees", BEES)):
        cid = client.post(f"/api/projects/{pid}/classes", json={"name": label}).json()["id"]
        assert upload(client, cid, paths).status_code == 201
    train(client, pid, **training)
    return pid


@pytest.fixture(scope="module")
def head_project(client) -> int:
    """Two classes of real photos and a cross-validated ensemble of heads on the pretrained backbone."""
    return _ants_and_bees(client, "Ants & bees", folds=3)


@pytest.fixture(scope="module")
def tuned_project(client) -> int:
    pid = _ants_and_bees(client, "Tuned bugs", mode="finetune", finetune_epochs=1, epochs=5, augment=False,
                         val_fraction=0.3)
    assert "@" in client.get(f"/api/projects/{pid}").json()["model"]["features"]
    return pid


def download(client, pid: int, fmt: str) -> bytes:
    r = client.get(f"/api/projects/{pid}/model/download", params={"format": fmt})
    assert r.status_code == 200, r.text
    return r.content


def close(a: list[dict], b: list[dict], tol: float) -> bool:
    return all(x["label"] == y["label"] and len(x["predictions"]) == len(y["predictions"]) and all(
        p["label"] == q["label"] and abs(p["score"] - q["score"]) <= tol
        for p, q in zip(x["predictions"], y["predictions"], strict=True)) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_a_downloaded_model_opens_as_a_project_that_answers_exactly_as_the_original(client, head_project, fmt):
    original = client.get(f"/api/projects/{head_project}").json()
    r = import_file(client, download(client, head_project, fmt), f"ants-bees-v1.{fmt}")
    assert r.status_code == 201, r.text
    project = r.json()
    assert project["name"].startswith("Ants & bees (")  # named after the model's project, numbered on a clash
    assert [c["name"] for c in project["classes"]] == original["model"]["labels"] == ["ants", "bees"]
    assert all(c["sample_count"] == 0 for c in project["classes"])
    model = project["model"]
    assert model["mode"] == "imported" and model["version"] == 1 and model["features"] == "efficientnet_lite0"
    assert model["unknown_threshold"] == pytest.approx(original["model"]["unknown_threshold"])
    assert f"ants-bees-v1.{fmt}" in model["metrics"]["mode_reason"]
    # The pretrained backbone and the file's own head and training embeddings: the same numbers, exactly.
    assert predictions(client, project["id"]) == predictions(client, head_project)


def test_an_opened_model_goes_live_shares_downloads_and_trains_on(client, head_project):
    pid = import_file(client, download(client, head_project, "pt2"), "m.pt2").json()["id"]
    frame = PROBES[0].read_bytes()
    with client.websocket_connect(f"/api/projects/{pid}/live") as ws:
        ws.send_bytes(frame)
        live = ws.receive_json()
    own = client.post(f"/api/projects/{pid}/predict", files={"file": ("p.jpg", frame)}).json()
    assert live["predictions"] == own["predictions"] and live["model_version"] == 1
    url = client.post(f"/api/projects/{pid}/share").json()["url"]
    shared = client.post(f"{url.removeprefix('http://testserver')}/predict", files={"file": ("p.jpg", frame)})
    assert shared.status_code == 200 and shared.json() == own
    again = onnx.load_model_from_string(download(client, pid, "onnx"))
    assert json.loads({p.key: p.value for p in again.metadata_props}["labels"]) == ["ants", "bees"]
    exports = [e for e in client.get(f"/api/models/{own['model_id']}").json()["exports"] if e["status"] == "built"]
    assert [e["format"] for e in exports] == ["onnx"] and exports[0]["offered"]

    project = client.get(f"/api/projects/{pid}").json()
    for c, paths in zip(project["classes"], (ANTS[:4], BEES[:4]), strict=True):
        assert upload(client, c["id"], paths).status_code == 201
    job = train(client, pid)
    retrained = client.get(f"/api/models/{job['model_id']}").json()
    assert retrained["version"] == 2 and retrained["labels"] == ["ants", "bees"] and retrained["is_current"]


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_a_fine_tuned_model_brings_its_backbone_and_training_continues_from_it(client, data_dir, tuned_project, fmt):
    features = client.get(f"/api/projects/{tuned_project}").json()["model"]["features"]
    r = import_file(client, download(client, tuned_project, fmt), f"tuned.{fmt}")
    assert r.status_code == 201, r.text
    pid, model = r.json()["id"], r.json()["model"]
    assert "@" in model["features"]
    if fmt == "pt2":  # the very same weights; ONNX folded BatchNorm into the convolutions (same function)
        assert model["features"] == features
    # ONNX's folded weights rebuild the network to within float rounding.
    assert close(predictions(client, pid), predictions(client, tuned_project), 1e-4 if fmt == "onnx" else 0)

    project = client.get(f"/api/projects/{pid}").json()
    for c, paths in zip(project["classes"], (ANTS[:3], BEES[:3]), strict=True):
        assert upload(client, c["id"], paths).status_code == 201
    job = train(client, pid)
    assert client.get(f"/api/models/{job['model_id']}").json()["features"] == model["features"]


def _onnx_with(data: bytes, change) -> bytes:
    model = onnx.load_model_from_string(data)
    change(model)
    return model.SerializeToString()


def _set_meta(model, key: str, value: str) -> None:
    for p in model.metadata_props:
        if p.key == key:
            p.value = value


def _relu_to_sigmoid(model) -> None:
    next(n for n in model.graph.node if n.op_type == "Relu").op_type = "Sigmoid"


def _external_weight(model) -> None:
    init = next(i for i in model.graph.initializer if i.name.startswith("classifier.head."))
    init.ClearField("raw_data")
    init.ClearField("float_data")
    init.data_location = onnx.TensorProto.EXTERNAL
    entry = init.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"


def _scale_head(model) -> None:  # still a valid network: it opens, answering as the altered file does
    init = next(i for i in model.graph.initializer if i.name.endswith("net.3.weight"))
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 3, init.name))


ONNX_CASES = {
    "not from snapclass": (lambda m: _set_meta(m, "producer", "pytorch"), "producer snapclass"),
    "a label too many": (lambda m: _set_meta(m, "labels", '["ants", "bees", "wasps"]'), "head"),
    "a label twice": (lambda m: _set_meta(m, "labels", '["ants", "Ants"]'), "one class twice"),
    "an unknown backbone": (lambda m: _set_meta(m, "backbone", "resnet9000"), "does not know"),
    "other preprocessing": (lambda m: _set_meta(m, "preprocessing", '{"input_size": 224}'), "differently"),
    "a changed graph": (_relu_to_sigmoid, "could not be rebuilt exactly"),
    "external data": (_external_weight, "external data"),
    "no threshold number": (lambda m: _set_meta(m, "unknown_threshold", '"high"'), "unknown_threshold"),
}


@pytest.mark.parametrize("case", list(ONNX_CASES))
def test_an_unusable_onnx_file_is_refused_with_nothing_kept(client, data_dir, head_project, case):
    change, words = ONNX_CASES[case]
    data = _onnx_with(download(client, head_project, "onnx"), change)
    before = stored(client, data_dir)
    r = import_file(client, data, "model.onnx")
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("this onnx file cannot be opened as a project: ")
    assert words in r.json()["detail"]
    assert stored(client, data_dir) == before


def test_an_altered_but_whole_onnx_file_opens_as_what_it_now_is(client, head_project):
    r = import_file(client, _onnx_with(download(client, head_project, "onnx"), _scale_head), "model.onnx")
    assert r.status_code == 201, r.text
    assert predictions(client, r.json()["id"]) != predictions(client, head_project)


def _repack(data: bytes, change) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    files = {i.filename: src.read(i) for i in src.infolist()}
    change(files)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in files.items():
            z.writestr(name, content)
    return out.getvalue()


def _pickled_weight(files: dict) -> None:
    key = "archive/data/weights/model_weights_config.json"
    config = json.loads(files[key])
    entry = next(iter(config["config"].values()))
    entry["use_pickle"] = True
    files[key] = json.dumps(config).encode()
    files["archive/data/weights/" + entry["path_name"]] = b"cos\nsystem\n(S'touch /tmp/pwned'\ntR."


def _stranger(files: dict) -> None:
    key = "archive/data/weights/model_weights_config.json"
    config = json.loads(files[key])
    config["config"]["evil.weight"] = next(iter(config["config"].values()))
    files[key] = json.dumps(config).encode()


def _short_weight(files: dict) -> None:
    name = next(n for n in files if n.startswith("archive/data/weights/weight_"))
    files[name] = files[name][:-4]


PT2_CASES = {
    "a pickled weight": (_pickled_weight, "pickled"),
    "a weight no model has": (_stranger, "'evil.weight'"),
    "a truncated weight": (_short_weight, "not stored as torch.export stores"),
    "no weights at all": (lambda f: f.pop("archive/data/weights/model_weights_config.json"), "weights are not"),
    "not from snapclass": (lambda f: f.update({"archive/extra/producer": b"someone"}), "producer snapclass"),
}


@pytest.mark.parametrize("case", list(PT2_CASES))
def test_an_unusable_pt2_file_is_refused_with_nothing_kept(client, data_dir, head_project, case, tmp_path):
    change, words = PT2_CASES[case]
    data = _repack(download(client, head_project, "pt2"), change)
    before = stored(client, data_dir)
    r = import_file(client, data, "model.pt2")
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("this pt2 file cannot be opened as a project: ")
    assert words in r.json()["detail"]
    assert stored(client, data_dir) == before


@pytest.mark.parametrize("fmt", ["torchscript", "onnx-int8"])
def test_formats_that_cannot_be_opened_say_which_can(client, data_dir, head_project, fmt):
    before = stored(client, data_dir)
    r = import_file(client, download(client, head_project, fmt), f"model.{fmt}")
    assert r.status_code == 422, r.text
    assert ".onnx" in r.json()["detail"] and ".pt2" in r.json()["detail"]
    assert stored(client, data_dir) == before

