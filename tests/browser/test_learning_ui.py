"""Issue 4 in a real browser: training settings and what training chose, "None of these" with its
adjustable threshold, and a new project that starts from another project's model."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
from playwright.sync_api import Page, expect  # noqa: E402

from app.training import head_config  # noqa: E402

PER_CLASS = 8
TRAIN_TIMEOUT_S = 120


def make_project(api: httpx.Client, hymenoptera: Path, name: str) -> int:
    """A project with ants and bees, PER_CLASS hymenoptera/train photos each, uploaded through the API."""
    r = api.post("/api/projects", json={"name": name})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    for label in ("ants", "bees"):
        r = api.post(f"/api/projects/{pid}/classes", json={"name": label})
        assert r.status_code == 201, r.text
        paths = sorted((hymenoptera / "train" / label).glob("*.jpg"))[:PER_CLASS]
        r = api.post(f"/api/classes/{r.json()['id']}/samples",
                     files=[("files", (p.name, p.read_bytes(), "image/jpeg")) for p in paths])
        assert r.status_code == 201, r.text
    return pid


def wait_job(api: httpx.Client, job_id: int) -> dict:
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    while (job := api.get(f"/api/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"job {job_id} did not finish: {job}"
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    return job


@pytest.fixture(scope="module")
def trained(api: httpx.Client, hymenoptera: Path) -> dict:
    """A project trained through the API (head mode, 5 epochs): {"pid", "mid", "name"}."""
    name = "Ants vs bees"
    pid = make_project(api, hymenoptera, name)
    r = api.post(f"/api/projects/{pid}/train", json={"mode": "head", "epochs": 5})
    assert r.status_code == 202, r.text
    return {"pid": pid, "mid": wait_job(api, r.json()["job_id"])["model_id"], "name": name}


def until(read, ok, timeout: float = 10.0):
    """What `read` gives once `ok` holds (the slider saves after a short pause)."""
    deadline = time.monotonic() + timeout
    while not ok(value := read()):
        assert time.monotonic() < deadline, f"still {value!r}"
        time.sleep(0.1)
    return value


def predict(api: httpx.Client, pid: int, name: str, data: bytes) -> dict:
    r = api.post(f"/api/projects/{pid}/predict", files={"file": (name, data, "image/jpeg")})
    assert r.status_code == 200, r.text
    return r.json()


def test_advanced_settings_train_head_with_the_teachable_machine_recipe(page: Page, api: httpx.Client,
                                                                       hymenoptera: Path):
    pid = make_project(api, hymenoptera, "Settings")
    page.goto(f"/projects/{pid}")
    expect(page.get_by_test_id("train-readiness")).to_contain_text("Ready")
    page.get_by_test_id("train-advanced-toggle").click()
    mode = page.get_by_test_id("train-mode")
    expect(mode).to_have_value("auto")
    expect(page.get_by_test_id("train-recipe")).to_be_hidden()  # a head setting
    mode.select_option("finetune")
    expect(page.get_by_test_id("train-unfreeze")).to_be_visible()
    expect(page.get_by_test_id("train-augment")).to_be_checked()
    expect(page.get_by_test_id("train-augment-views")).to_be_hidden()
    mode.select_option("head")
    expect(page.get_by_test_id("train-unfreeze")).to_be_hidden()
    expect(page.get_by_test_id("train-augment-views")).to_be_visible()
    # The grey defaults are the server's own.
    for recipe in ("snapclass", "teachable-machine"):
        page.get_by_test_id("train-recipe").select_option(recipe)
        cfg = head_config({}, recipe)
        expect(page.get_by_test_id("train-epochs")).to_have_attribute("placeholder", str(cfg.epochs))
        expect(page.get_by_test_id("train-batch-size")).to_have_attribute("placeholder", str(cfg.batch_size))

    # Out of the schema's bounds: said next to the field, and nothing is sent.
    sent: list[str] = []
    page.on("request", lambda req: sent.append(req.url) if req.url.endswith("/train") else None)
    epochs = page.get_by_test_id("train-epochs")
    epochs.fill("0")
    page.get_by_test_id("train-button").click()
    expect(page.locator("[data-error-for=epochs]")).to_have_text("Epochs must be a whole number from 1 to 500.")
    expect(epochs).to_have_attribute("aria-invalid", "true")
    expect(epochs).to_be_focused()
    assert sent == []

    epochs.fill("5")
    expect(page.locator("[data-error-for=epochs]")).to_be_hidden()

    # Should the server still refuse (its bounds moved on), its 422 reads as words next to the field.
    detail = {"detail": [{"type": "less_than_equal", "loc": ["body", "epochs"],
                          "msg": "Input should be less than or equal to 4", "input": 5}]}
    page.route(f"**/api/projects/{pid}/train", lambda route: route.fulfill(status=422, json=detail), times=1)
    page.get_by_test_id("train-button").click()
    expect(page.locator("[data-error-for=epochs]")).to_have_text("Epochs: input should be less than or equal to 4.")
    expect(page.locator("[data-testid=toast][data-kind=error]")).to_contain_text(
        "Cannot train with these settings: Epochs: input should be less than or equal to 4")
    page.locator("[data-testid=toast][data-kind=error]").get_by_role("button", name="Dismiss message").click()

    with page.expect_response(lambda r: r.url.endswith(f"/api/projects/{pid}/train")) as info:
        page.get_by_test_id("train-button").click()
    assert info.value.request.post_data_json == {"mode": "head", "recipe": "teachable-machine", "epochs": 5}
    job_id = info.value.json()["job_id"]

    panel = page.get_by_test_id("train-panel")
    expect(panel).to_have_attribute("data-job-status", "succeeded", timeout=TRAIN_TIMEOUT_S * 1000)
    expect(page.get_by_test_id("train-result-mode-name")).to_have_text("Quick model")
    expect(page.get_by_test_id("train-mode-reason")).to_contain_text("Teachable Machine")
    expect(page.get_by_test_id("val-accuracy")).to_have_text(re.compile(r"^\d{1,3}\.\d%$"))
    expect(page.get_by_test_id("model-version")).to_have_text("v1")
    link = page.get_by_test_id("result-models-link")
    expect(link).to_have_attribute("href", f"/projects/{pid}/models")

    job = api.get(f"/api/jobs/{job_id}").json()
    assert job["params"]["recipe"] == "teachable-machine" and job["params"]["epochs"] == 5
    assert job["params"]["mode"] == "head"
    assert job["metrics"]["mode"] == "head" and "Teachable Machine" in job["metrics"]["mode_reason"]

    # After a reload the result still says what training chose, from the model's metrics.
    page.reload()
    expect(page.get_by_test_id("train-mode-reason")).to_contain_text("Teachable Machine")


def test_none_of_these_and_its_threshold(page: Page, api: httpx.Client, trained: dict, hymenoptera: Path,
                                         tmp_path: Path):
    pid, mid = trained["pid"], trained["mid"]
    grey = tmp_path / "grey.jpg"
    Image.new("RGB", (640, 480), (128, 128, 128)).save(grey, quality=92)
    assert predict(api, pid, grey.name, grey.read_bytes())["unknown"], "a flat grey photo should be unknown"
    # The val bee the model finds most familiar, at the calibrated threshold.
    bees = sorted((hymenoptera / "val" / "bees").glob("*.jpg"))[:8]
    answers = {p: predict(api, pid, p.name, p.read_bytes()) for p in bees}
    bee, known = max(answers.items(), key=lambda kv: kv[1]["similarity"])
    assert not known["unknown"], f"every val bee is unknown: {[a['similarity'] for a in answers.values()]}"
    calibrated = api.get(f"/api/models/{mid}").json()["unknown_threshold_calibrated"]

    page.goto(f"/projects/{pid}")
    top = page.get_by_test_id("predict-top")
    page.get_by_test_id("predict-input").set_input_files(grey)
    expect(top).to_have_attribute("data-unknown", "true")
    expect(top).to_contain_text("None of these")
    expect(page.get_by_test_id("predict-closest")).to_have_text(re.compile(r"^closest: (ants|bees) \d{1,3}%$"))
    expect(page.get_by_test_id("confidence-bar")).to_have_count(2)
    expect(page.get_by_test_id("predict-similarity")).to_contain_text(f"below {calibrated:.2f}")
    expect(page.get_by_test_id("unknown-threshold-value")).to_have_text(f"{calibrated:.2f}")

    page.get_by_test_id("predict-input").set_input_files(bee)
    expect(top).to_have_attribute("data-unknown", "false")
    expect(top).not_to_contain_text("None of these")
    expect(top).to_have_attribute("data-label", known["label"])

    # Stricter than this bee: the slider saves the threshold and the photo is asked about again.
    strict = min(0.99, round(known["similarity"] + 0.05, 2))
    page.get_by_test_id("unknown-threshold-slider").fill(str(strict))
    expect(top).to_contain_text("None of these")
    until(lambda: api.get(f"/api/models/{mid}").json()["unknown_threshold"], lambda t: t == pytest.approx(strict))
    expect(page.get_by_test_id("unknown-threshold-status")).to_have_text("Saved.")
    assert predict(api, pid, bee.name, bee.read_bytes())["unknown"]
    page.reload()  # the page starts from the saved value
    expect(page.get_by_test_id("unknown-threshold-value")).to_have_text(f"{strict:.2f}")

    page.get_by_test_id("predict-input").set_input_files(bee)
    expect(top).to_contain_text("None of these")
    page.get_by_test_id("unknown-threshold-reset").click()
    expect(top).to_have_attribute("data-unknown", "false")
    expect(page.get_by_test_id("unknown-threshold-value")).to_have_text(f"{calibrated:.2f}")
    assert api.get(f"/api/models/{mid}").json()["unknown_threshold"] == pytest.approx(calibrated)


def test_new_project_from_another_projects_model(page: Page, api: httpx.Client, trained: dict):
    mid = trained["mid"]
    page.goto("/")
    start = page.get_by_test_id("new-project-start")
    option = start.locator(f"option[value='model:{mid}']")
    expect(option).to_have_count(1)
    expect(option).to_have_text(re.compile(rf"^{re.escape(trained['name'])} · v1 \(head only, \d{{1,3}}%\)$"))
    group = start.locator("optgroup", has=page.locator(f"option[value='model:{mid}']"))
    expect(group).to_have_attribute("label", "Another project's model")
    expect(start).to_have_value("backbone:efficientnet_lite0")  # the default stays selected

    start.select_option(f"model:{mid}")
    page.get_by_test_id("new-project-name").fill("Wasps")
    with page.expect_response(lambda r: r.url.endswith("/api/projects") and r.request.method == "POST") as info:
        page.get_by_test_id("create-project").click()
    assert info.value.request.post_data_json == {"name": "Wasps", "base_model_id": mid,
                                                 "classes": ["Class 1", "Class 2"]}
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    pid = int(page.url.rsplit("/", 1)[1])
    assert api.get(f"/api/projects/{pid}").json()["base_model_id"] == mid
    expect(page.get_by_test_id("based-on-model")).to_have_text(f"Based on model #{mid}")


def test_phone_settings_and_threshold_fit(phone_page: Page, trained: dict):
    page = phone_page
    page.goto(f"/projects/{trained['pid']}")
    page.get_by_test_id("train-advanced-toggle").click()
    page.get_by_test_id("train-mode").select_option("finetune")
    expect(page.get_by_test_id("train-unfreeze")).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px wide)"
    # How it was trained is the technical account: behind Details, and it fits when opened.
    expect(page.get_by_test_id("train-mode-reason")).to_be_hidden()
    page.get_by_test_id("train-details").locator("summary").click()
    expect(page.get_by_test_id("train-mode-reason")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    slider = page.get_by_test_id("unknown-threshold-slider")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] >= 24
