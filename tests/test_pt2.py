"""The `pt2` download (torch.export): loaded with torch alone, it answers real photos exactly as the server does."""

from __future__ import annotations

import json
import time
import zipfile

import numpy as np
import pytest
import torch

from app.ml.backbones import get_spec
from bench.common import documented_input
from tests.conftest import make_client, make_project, photos, train, upload

pytestmark = pytest.mark.slow  # a training and a torch.export: about a minute on 2 cores

EXTRA = ("labels", "input_size", "preprocessing", "unknown_threshold")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A small project trained on real photos, the server's answer for 24 held-out ones, and the pt2 download."""
    # A cache of its own: another test's identical model (same photos, seed and id) would have left this file built.
    with make_client(tmp_path_factory.mktemp("pt2"), tmp_path_factory.mktemp("pt2-cache")) as client:
        pid, (ants, bees) = make_project(client, "Ants & bees", ("ants", "bees"))
        upload(client, ants, photos("hymenoptera", "train", "ants", limit=10))
        upload(client, bees, photos("hymenoptera", "train", "bees", limit=10))
        job = train(client, pid, epochs=5)
        assert job["status"] == "succeeded", job
        val = photos("hymenoptera", "val", "ants", limit=12) + photos("hymenoptera", "val", "bees", limit=12)
        answers = {}
        for path in val:
            r = client.post(f"/api/projects/{pid}/predict", files={"file": (path.name, path.read_bytes())})
            assert r.status_code == 200, r.text
            answers[path] = r.json()
        started = time.perf_counter()
        r = client.get(f"/api/projects/{pid}/model/download", params={"format": "pt2"})
        build_s = time.perf_counter() - started
        assert r.status_code == 200, r.text
        project = client.get(f"/api/projects/{pid}").json()
        print(f"\npt2 export: {build_s:.1f} s, {len(r.content) / 1e6:.1f} MB")
        yield {"client": client, "pid": pid, "answers": answers, "response": r, "build_s": build_s,
               "project": project}


@pytest.fixture(scope="module")
def downloaded(served, tmp_path_factory):
    path = tmp_path_factory.mktemp("download") / "model.pt2"
    path.write_bytes(served["response"].content)
    extra = dict.fromkeys(EXTRA, "")
    program = torch.export.load(path, extra_files=extra)
    return path, program, extra


def test_pt2_is_offered_named_and_cached(served):
    r = served["response"]
    assert r.headers["content-type"] == "application/octet-stream"
    assert 'filename="ants-bees-v1.pt2"' in r.headers["content-disposition"]
    client, pid = served["client"], served["pid"]
    schema = client.get("/openapi.json").json()
    fmt = next(p for p in schema["paths"]["/api/projects/{project_id}/model/download"]["get"]["parameters"]
               if p["name"] == "format")
    enum = fmt["schema"].get("enum") or schema["components"]["schemas"][fmt["schema"]["$ref"].split("/")[-1]]["enum"]
    assert enum == ["onnx", "onnx-int8", "pt2", "torchscript", "webapp"]
    started = time.perf_counter()
    again = client.get(f"/api/projects/{pid}/model/download", params={"format": "pt2"})
    assert again.content == r.content and time.perf_counter() - started < served["build_s"] / 3
    page = client.get(f"/projects/{pid}").text
    assert f'href="/api/projects/{pid}/model/download?format=pt2"' in page and "PyTorch .pt2" in page


def test_pt2_metadata_round_trips(served, downloaded):
    _, _, extra = downloaded
    model = served["project"]["model"]
    spec = get_spec(model["backbone"])
    assert json.loads(extra["labels"]) == ["ants", "bees"]
    assert json.loads(extra["input_size"]) == spec.preprocessing.input_size
    assert json.loads(extra["preprocessing"]) == spec.preprocessing.as_dict()
    threshold = next(iter(served["answers"].values()))["unknown_threshold"]
    assert threshold is not None and json.loads(extra["unknown_threshold"]) == pytest.approx(threshold, abs=1e-12)


def test_pt2_agrees_with_the_server_on_every_photo(served, downloaded):
    path, program, extra = downloaded
    labels, size = json.loads(extra["labels"]), int(extra["input_size"])
    module = program.module()
    answers = served["answers"]
    batch = torch.from_numpy(np.concatenate([documented_input(p, size) for p in answers]))
    with torch.inference_mode():
        one_by_one = torch.cat([module(x[None]) for x in batch])
        all_at_once = module(batch)  # the batch dimension is dynamic
    assert all_at_once.shape == (len(answers), len(labels))
    assert torch.allclose(all_at_once, one_by_one, atol=1e-5)
    worst = 0.0
    for probs, (photo, answer) in zip(one_by_one.numpy(), answers.items(), strict=True):
        served_probs = {p["label"]: p["score"] for p in answer["predictions"]}
        assert labels[int(probs.argmax())] == answer["predictions"][0]["label"], photo.name
        for label, p in zip(labels, probs, strict=True):
            worst = max(worst, abs(float(p) - served_probs[label]))
    assert worst < 1e-4, worst

    # The archive's second program gives the similarity too, as the server computes it for "none of these".
    from torch.export.pt2_archive._package import load_pt2

    both = load_pt2(path).exported_programs["with_similarity"].module()
    with torch.inference_mode():
        probs, similarity = both(batch)
    assert torch.allclose(probs, all_at_once, atol=1e-5)
    served_similarity = torch.tensor([a["similarity"] for a in answers.values()])
    assert (similarity - served_similarity).abs().max() < 1e-4
    threshold = json.loads(extra["unknown_threshold"])
    assert [bool(s < threshold) for s in similarity] == [a["unknown"] for a in answers.values()]


def test_pt2_archive_holds_the_two_programs_without_the_unused_imagenet_classifier(downloaded):
    path, program, _ = downloaded
    names = zipfile.ZipFile(path).namelist()
    assert any(n.endswith("models/model.json") for n in names)
    assert any(n.endswith("models/with_similarity.json") for n in names)
    assert not [k for k in program.state_dict if "imagenet_head" in k]
    weights = set(program.state_dict) | set(program.constants)
    assert "prototypes" in weights and any(k.startswith("head.") for k in weights)
