"""Issue 11, numbers that don't mislead: on a real uneven project (40 ants, 6 bees) the headline is the
balanced accuracy, the weakest class is named, a warning says what to do, classes are weighted by
default, and the job, the model, the models list and the project page all give the same figures."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest

from app.db import session_scope
from app.ml.evaluate import class_weights
from app.models import ImageClass
from tests.conftest import make_client, make_project, photos, train, upload, wait_job

ANTS, BEES = 40, 6


class ByTestId(HTMLParser):
    """The text inside the element with one data-testid, as the page was served."""

    def __init__(self, testid: str):
        super().__init__()
        self.testid, self.depth, self.text = testid, 0, ""

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("data-testid") == self.testid:
            self.depth = 1

    def handle_endtag(self, tag):
        self.depth = max(0, self.depth - 1) if self.depth else 0

    def handle_data(self, data):
        if self.depth:
            self.text += data


def served_text(html: str, testid: str) -> str:
    parser = ByTestId(testid)
    parser.feed(html)
    return parser.text.strip()


@pytest.fixture(scope="module")
def uneven(tmp_path_factory, cache_dir):
    with make_client(tmp_path_factory.mktemp("uneven"), cache_dir) as client:
        pid, (ants, bees) = make_project(client, "uneven", ("ants", "bees"))
        upload(client, ants, photos("hymenoptera", "train", "ants", limit=ANTS))
        upload(client, bees, photos("hymenoptera", "train", "bees", limit=BEES))
        job = train(client, pid, epochs=15)
        assert job["status"] == "succeeded", job
        yield client, pid, job


def test_headline_is_balanced_accuracy_with_the_weakest_class(uneven):
    client, _, job = uneven
    m = client.get(f"/api/models/{job['model_id']}").json()["metrics"]
    per_class = {c["label"]: c for c in m["per_class"]}
    assert per_class["ants"]["photos"] == ANTS and per_class["bees"]["photos"] == BEES
    assert m["class_photos"] == {"ants": ANTS, "bees": BEES}
    # Mean of the per-class accuracies, from the confusion matrix itself.
    cm = np.array(m["confusion"])
    recalls = np.diag(cm) / cm.sum(1)
    assert m["balanced_accuracy"] == pytest.approx(recalls.mean())
    assert [per_class[k]["accuracy"] for k in ("ants", "bees")] == pytest.approx(list(recalls))
    assert m["val_accuracy"] == pytest.approx(np.trace(cm) / cm.sum())  # the plain figure is still there
    weakest = min(m["per_class"], key=lambda c: (c["accuracy"], c["photos"]))
    assert m["weakest_class"] == {"label": weakest["label"], "accuracy": weakest["accuracy"],
                                  "photos": weakest["photos"]}
    # The job's summary says the same in words.
    assert f"right on {m['balanced_accuracy']:.0%}" in job["message"] and "job" not in job["message"]
    assert f"weakest class {weakest['label']}" in job["message"]


def test_a_class_with_far_fewer_photos_gets_a_warning_that_says_what_to_do(uneven):
    _, _, job = uneven
    warnings = job["metrics"]["warnings"]
    bees = [w for w in warnings if w["label"] == "bees"]
    assert len(bees) == 1 and bees[0]["few_photos"] is True
    assert bees[0]["text"].startswith(f"Add more photos of bees: it has {BEES}, the other class has {ANTS}.")
    assert not [w for w in warnings if w["label"] == "ants" and w["few_photos"]]


def test_classes_are_weighted_by_default_and_it_moves_the_answers(uneven):
    client, pid, job = uneven
    m = job["metrics"]
    assert m["class_weights"] is True and m["config"]["head"]["class_weights"] is True
    w = class_weights(np.array([0] * ANTS + [1] * BEES), 2)
    assert w == pytest.approx([(ANTS + BEES) / (2 * ANTS), (ANTS + BEES) / (2 * BEES)])
    assert class_weights(np.array([0, 0, 1, 1, 2, 2]), 3) == pytest.approx([1, 1, 1])  # even classes: no change

    # The same project, same seed, unweighted: the small class gets less of the model's belief.
    plain = train(client, pid, epochs=15, class_weights=False)
    assert plain["status"] == "succeeded" and plain["metrics"]["config"]["head"]["class_weights"] is False

    def bee_belief(model_id: int) -> float:
        rows = client.get(f"/api/models/{model_id}", params={"full": True}).json()["metrics"]["val_predictions"]
        return float(np.mean([r["score"] if r["predicted"] == 1 else 1 - r["score"] for r in rows]))
    assert bee_belief(job["model_id"]) > bee_belief(plain["model_id"])

    # Back to the weighted model as the current one for the other tests' page checks.
    r = client.post(f"/api/projects/{pid}/models/{job['model_id']}/activate")
    assert r.status_code == 200


def test_job_model_list_and_page_give_the_same_figures(uneven):
    client, pid, job = uneven
    model = client.get(f"/api/models/{job['model_id']}").json()
    listed = next(m for m in client.get(f"/api/projects/{pid}/models").json() if m["id"] == job["model_id"])
    for key in ("balanced_accuracy", "weakest_class", "warnings", "val_accuracy", "outcome", "class_photos"):
        assert job["metrics"][key] == model["metrics"][key] == listed["metrics"][key], key
    client.post(f"/api/projects/{pid}/models/{job['model_id']}/activate")
    shown = served_text(client.get(f"/projects/{pid}").text, "val-accuracy")
    assert shown == f"{model['metrics']['balanced_accuracy'] * 100:.1f}%"


def test_outcome_words_say_what_the_stored_model_is(uneven):
    _, _, job = uneven
    outcome = job["metrics"]["outcome"]
    assert outcome["badge"] == "Quick" and job["metrics"]["mode"] == "head"
    assert "as asked" in outcome["text"] and not re.search(r"\b(head|frozen|cached|job)\b", outcome["text"])


def test_the_estimate_is_a_range_from_this_server(uneven):
    client, _, job = uneven
    est = job["metrics"]["estimate"]
    assert 0 <= est["low_s"] < est["high_s"] and set(est["stages"]) >= {"extract", "head", "evaluate"}
    assert job["metrics"]["extract_images_per_second"] > 0  # what the next job's estimate is made of


def test_auto_fallback_says_it_kept_the_simpler_model(tmp_path, cache_dir):
    """auto on few photos: fine-tuning is tried and, not better, dropped; the words say so, never
    'Auto chose fine-tuning' beside a model that is not fine-tuned."""
    with make_client(tmp_path / "data", cache_dir) as client:
        pid, (ants, bees) = make_project(client, "auto", ("ants", "bees"))
        upload(client, ants, photos("hymenoptera", "train", "ants", limit=10))
        upload(client, bees, photos("hymenoptera", "train", "bees", limit=10))
        r = client.post(f"/api/projects/{pid}/train", json={"mode": "auto", "finetune_epochs": 1, "epochs": 5})
        job = wait_job(client, r.json()["job_id"])
        assert job["status"] == "succeeded", job
        m = job["metrics"]
        if m["mode"] == "finetune":
            assert m["outcome"] == {"badge": "Fine-tuned", "text": m["outcome"]["text"]}
            assert m["outcome"]["text"].startswith("Auto chose fine-tuning")
        else:
            assert m["outcome"]["badge"] == "Quick"
            assert not m["outcome"]["text"].startswith("Auto chose fine-tuning")
            if "finetune_seconds" in m:
                assert m["outcome"]["text"] == ("Auto tried fine-tuning; it did not beat the quicker model, so it "
                                                "kept that.")


def test_classes_switched_off_are_left_out_and_one_left_is_refused(tmp_path, cache_dir):
    with make_client(tmp_path / "data", cache_dir) as client:
        pid, (ants, bees, wasps) = make_project(client, "switched", ("ants", "bees", "wasps"))
        upload(client, ants, photos("hymenoptera", "train", "ants", limit=6))
        upload(client, bees, photos("hymenoptera", "train", "bees", limit=6))
        upload(client, wasps, photos("hymenoptera", "val", "bees", limit=3))

        def switch(class_id: int, on: bool) -> None:
            with session_scope(client.app.state.services.session_factory) as s:
                s.get(ImageClass, class_id).enabled = on

        switch(wasps, False)
        job = train(client, pid, epochs=3)
        assert job["status"] == "succeeded", job
        assert job["metrics"]["labels"] == ["ants", "bees"]
        assert job["metrics"]["class_photos"] == {"ants": 6, "bees": 6}
        assert job["metrics"]["n_train"] == 12  # the wasps' 3 photos were not used

        switch(bees, False)
        r = client.post(f"/api/projects/{pid}/train", json={"mode": "head"})
        assert r.status_code == 409
        detail = r.json()["detail"]
        assert detail.startswith("add a second class before training") and "switched off" in detail

        # An empty class that is switched off does not block training either.
        switch(bees, True)
        empty = client.post(f"/api/projects/{pid}/classes", json={"name": "moths"}).json()["id"]
        switch(empty, False)
        r = client.post(f"/api/projects/{pid}/train", json={"mode": "head", "epochs": 2})
        assert r.status_code == 202
        assert wait_job(client, r.json()["job_id"])["metrics"]["labels"] == ["ants", "bees"]


def test_too_few_photos_to_judge_still_counts_them(tmp_path, cache_dir):
    """One photo per class: nothing can be set aside, so no accuracy, but the counts and their warning stay."""
    with make_client(tmp_path / "data", cache_dir) as client:
        pid, (ants, bees) = make_project(client, "tiny", ("ants", "bees"))
        upload(client, ants, photos("hymenoptera", "train", "ants", limit=4))
        upload(client, bees, photos("hymenoptera", "train", "bees", limit=1))
        job = train(client, pid, epochs=2, folds=1, val_fraction=0.0)
        assert job["status"] == "succeeded", job
        m = job["metrics"]
        assert m["n_val"] == 0 and m["balanced_accuracy"] is None and m["weakest_class"] is None
        assert m["class_photos"] == {"ants": 4, "bees": 1} and m["per_class"] == []
        assert [w["label"] for w in m["warnings"]] == ["bees"]
        assert "too few photos" in job["message"]


def test_time_left_follows_the_job_as_it_goes():
    """The estimate is a range; a stage running slower than this server's rates said stretches what is left,
    the stages after it included, and the range closes in as the job nears its end."""
    from app.ml.eta import Eta, total

    expected = {"extract": 10.0, "head": 5.0, "evaluate": 5.0}
    low, high = total(expected)
    assert low < 20 < high
    eta = Eta(dict(expected))
    assert eta.remaining("extract", 0.0, 0.0) == pytest.approx(total(expected))
    # Half of the extraction took 10 s, not 5: about 10 s more of it, and the rest 2x slower too.
    slow_low, slow_high = eta.remaining("extract", 0.5, 10.0)
    assert slow_low == pytest.approx(0.8 * (10 + 10)) and slow_high > 20
    after = eta.remaining("head", 0.0, 20.0)  # extraction took 20 s against 10: twice as slow
    assert after[0] == pytest.approx(0.8 * 2 * 10)
    eta.remaining("evaluate", 0.0, 25.0)  # the head took its planned 5 s
    near_end = eta.remaining("evaluate", 0.9, 30.0)
    assert near_end[1] < 5 and near_end[1] - near_end[0] < after[1] - after[0]


def test_fine_tuning_the_usual_way_weighs_classes_too(tmp_path, cache_dir):
    """The online fine-tuning (a GPU's path, here on the CPU with the torch runtime) trains with the
    class weights and judges epochs on balanced accuracy, as the head does."""
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app

    settings = Settings(data_dir=tmp_path / "data", cache_path=cache_dir, worker_runtime="torch")
    with TestClient(create_app(settings)) as client:
        pid, (ants, bees) = make_project(client, "online", ("ants", "bees"))
        upload(client, ants, photos("hymenoptera", "train", "ants", limit=9))
        upload(client, bees, photos("hymenoptera", "train", "bees", limit=3))
        job = train(client, pid, mode="finetune", epochs=3, finetune_epochs=1, augment=False, val_fraction=0.3)
        assert job["status"] == "succeeded", job
        m = job["metrics"]
        assert m["mode"] == "finetune" and m["finetune_engine"] == "online"
        assert m["config"]["finetune"]["class_weights"] is True
        tuned = [r for r in m["history"] if r["phase"] == "finetune"]
        assert tuned and "val_balanced_accuracy" in tuned[0]
        assert m["outcome"]["badge"] == "Fine-tuned"
        assert m["outcome"]["text"].startswith("Fine-tuned, as asked: the last layers of the network")
