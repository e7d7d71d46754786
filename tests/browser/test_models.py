"""The models page in a real browser: versions, evaluation, the photos behind the confusion matrix,
making a version current, refusing to delete the current one, and the "none of these" threshold."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
from playwright.sync_api import Page, expect  # noqa: E402

from tests.browser.conftest import DATASETS  # noqa: E402

PER_CLASS = 12
TRAIN_TIMEOUT_S = 180


def created(response: httpx.Response) -> int:
    assert response.status_code == 201, f"{response.status_code} {response.text}"
    return response.json()["id"]


def train(api: httpx.Client, pid: int) -> None:
    r = api.post(f"/api/projects/{pid}/train", json={"mode": "head", "epochs": 5})
    assert r.status_code == 202, r.text
    job_id, deadline = r.json()["job_id"], time.monotonic() + TRAIN_TIMEOUT_S
    while (job := api.get(f"/api/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"job {job_id} did not finish: {job}"
        time.sleep(0.2)
    assert job["status"] == "succeeded", job


@pytest.fixture(scope="module")
def two_versions(api: httpx.Client, hymenoptera: Path) -> dict:
    """A project trained twice (head mode, 5 epochs): v2 is current, v1 the older version."""
    pid = created(api.post("/api/projects", json={"name": "Versions"}))
    for label in ("ants", "bees"):
        cid = created(api.post(f"/api/projects/{pid}/classes", json={"name": label}))
        paths = sorted((hymenoptera / "train" / label).glob("*.jpg"))[:PER_CLASS]
        r = api.post(f"/api/classes/{cid}/samples", files=[("files", (p.name, p.read_bytes())) for p in paths])
        assert r.status_code == 201, r.text
    train(api, pid)
    train(api, pid)
    models = api.get(f"/api/projects/{pid}/models").json()
    assert [m["version"] for m in models] == [2, 1]
    return {"pid": pid, "v2": models[0], "v1": models[1]}


def row(page: Page, version: int):
    return page.locator(f"[data-testid=version-row][data-version='{version}']")


def error_toast(page: Page):
    return page.locator("[data-testid=toast][data-kind=error]")


def open_models(page: Page, pid: int) -> None:
    page.goto(f"/projects/{pid}/models")
    expect(page.get_by_test_id("models-page")).to_have_attribute("data-state", "ready")


def test_versions_evaluation_and_threshold(page: Page, api: httpx.Client, two_versions: dict):
    pid, v1, v2 = two_versions["pid"], two_versions["v1"], two_versions["v2"]

    # The project page links here.
    page.goto(f"/projects/{pid}")
    page.get_by_test_id("result-models-link").click()
    page.wait_for_url(re.compile(rf"/projects/{pid}/models"))
    expect(page.get_by_test_id("models-page")).to_have_attribute("data-state", "ready")

    # Both versions, newest first, with their accuracies; v2 is current.
    rows = page.get_by_test_id("version-row")
    expect(rows).to_have_count(2)
    assert [r.get_attribute("data-version") for r in rows.all()] == ["2", "1"]
    for model in (v1, v2):
        r = row(page, model["version"])
        # The headline figure: balanced accuracy, as the Train panel and the API give it.
        expect(r.get_by_test_id("row-val-accuracy")).to_have_text(
            f"{model['metrics']['balanced_accuracy'] * 100:.1f}%")
        expect(r.get_by_test_id("row-weakest")).to_contain_text(model["metrics"]["weakest_class"]["label"])
    expect(row(page, 2).get_by_test_id("current-badge")).to_be_visible()
    expect(row(page, 1).get_by_test_id("current-badge")).to_be_hidden()
    expect(row(page, 2).get_by_test_id("make-current")).to_be_hidden()

    # The current version's evaluation is shown first.
    report = page.get_by_test_id("evaluation")
    expect(report).to_have_attribute("data-model-id", str(v2["id"]))
    expect(page.get_by_test_id("eval-version")).to_have_text("v2")
    expect(page.get_by_test_id("mode-reason")).to_contain_text(re.compile("head mode was asked for", re.I))
    full = api.get(f"/api/models/{v2['id']}", params={"full": True}).json()
    n_val = full["metrics"]["n_val"]
    assert n_val > 0
    expect(page.get_by_test_id("eval-counts")).to_have_text(f"{full['metrics']['n_train']} / {n_val}")
    folds = full["metrics"]["validation"]["folds"]
    expect(page.get_by_test_id("validation-method")).to_contain_text(
        f"Judged by {folds}-fold cross-validation: each of the {n_val} photos was checked by a head trained without it")
    expect(page.get_by_test_id("class-accuracy")).to_have_count(2)

    # Confusion matrix: its cells add up to the validation set; a cell opens its photos.
    cells = page.get_by_test_id("cm-cell")
    expect(cells).to_have_count(4)
    counts = [int(c.get_attribute("data-count")) for c in cells.all()]
    assert sum(counts) == n_val
    expect(page.get_by_test_id("cm-total")).to_have_attribute("data-total", str(n_val))
    cell = page.locator("button[data-testid=cm-cell]").first
    want = int(cell.get_attribute("data-count"))
    assert want > 0
    cell.click()
    expect(cell).to_have_attribute("aria-pressed", "true")
    thumbs = page.get_by_test_id("cell-images").get_by_test_id("eval-thumb")
    expect(thumbs).to_have_count(want)
    t, p = int(cell.get_attribute("data-true")), int(cell.get_attribute("data-predicted"))
    expected_ids = sorted(r["sample_id"] for r in full["metrics"]["val_predictions"]
                          if r["true"] == t and r["predicted"] == p)
    assert sorted(int(x.get_attribute("data-sample-id")) for x in thumbs.all()) == expected_ids
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid=cell-images] img')]
        .every(img => img.complete && img.naturalWidth > 0)""")
    thumbs.first.get_by_role("button").click()
    dialog = page.get_by_test_id("image-dialog")
    expect(dialog).to_be_visible()
    page.wait_for_function("""() => { const img = document.querySelector('#image-dialog img');
        return img.complete && img.naturalWidth > 0; }""")
    page.get_by_test_id("image-dialog-close").click()
    expect(dialog).to_be_hidden()

    # Loss and accuracy per epoch are drawn, with training and validation lines; learning curves too.
    for chart in ("loss-chart", "accuracy-chart"):
        svg = page.get_by_test_id(chart).locator("svg")
        expect(svg).to_have_attribute("role", "img")
        expect(svg.locator("path.chart-line")).to_have_count(2)
        assert len(svg.locator("circle.chart-dot").all()) == 2 * len(full["metrics"]["history"])
    expect(page.get_by_test_id("curves-chart").locator("path.chart-line")).to_have_count(3)  # 2 classes + all
    # Each class's line is drawn in the class's own colour, as on its card and in its bars.
    colours = {c["name"]: c["color"] for c in api.get(f"/api/projects/{pid}").json()["classes"]}
    strokes = page.get_by_test_id("curves-chart").evaluate("""(chart) => Object.fromEntries(
        [...chart.querySelectorAll("g.chart-series")].map((g) =>
            [g.dataset.series, getComputedStyle(g.querySelector("path.chart-line")).stroke]))""")
    for name, hex_colour in colours.items():
        r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
        assert strokes[name] == f"rgb({r}, {g}, {b})", (name, strokes)
    expect(page.get_by_test_id("advice").locator("li")).to_have_count(2)

    # Two versions side by side.
    row(page, 2).get_by_test_id("compare-check").check()
    row(page, 1).get_by_test_id("compare-check").check()
    compare = page.get_by_test_id("compare-panel")
    expect(compare).to_be_visible()
    expect(compare.locator("thead")).to_contain_text("v2")
    expect(compare.locator("thead")).to_contain_text("v1")
    expect(compare.get_by_role("row", name=re.compile("^ants"))).to_have_count(1)

    # Make v1 current through the page; the API agrees.
    row(page, 1).get_by_test_id("make-current").click()
    expect(row(page, 1).get_by_test_id("current-badge")).to_be_visible()
    expect(row(page, 2).get_by_test_id("current-badge")).to_be_hidden()
    assert api.get(f"/api/projects/{pid}").json()["model"]["id"] == v1["id"]

    # Deleting the current version is refused, in words; nothing is deleted.
    row(page, 1).get_by_test_id("delete-version").click()
    expect(page.get_by_test_id("confirm-dialog")).to_contain_text("Delete model v1?")
    page.get_by_test_id("confirm-ok").click()
    expect(error_toast(page).last).to_contain_text("current model; make another version current first")
    expect(page.get_by_test_id("version-row")).to_have_count(2)
    assert len(api.get(f"/api/projects/{pid}/models").json()) == 2

    # "None of these": moving the slider saves the threshold of the version shown (v2).
    slider = page.get_by_test_id("threshold-slider")
    before = float(slider.input_value())
    slider.focus()
    for _ in range(3):
        slider.press("ArrowRight")
    moved = float(slider.input_value())
    assert moved == pytest.approx(before + 0.03, abs=1e-6)
    expect(page.get_by_test_id("threshold-value")).to_have_text(f"{moved:.2f}")
    expect(page.get_by_test_id("threshold-status")).to_contain_text(f"Saved: v2 answers “unknown” below {moved:.2f}")
    assert api.get(f"/api/models/{v2['id']}").json()["unknown_threshold"] == pytest.approx(moved, abs=1e-6)
    page.reload()
    expect(page.get_by_test_id("evaluation")).to_have_attribute("data-model-id", str(v2["id"]))
    expect(page.get_by_test_id("threshold-value")).to_have_text(f"{moved:.2f}")
    page.get_by_test_id("threshold-reset").click()
    expect(page.get_by_test_id("threshold-status")).to_contain_text("Saved")
    back = api.get(f"/api/models/{v2['id']}").json()
    assert back["unknown_threshold"] == pytest.approx(back["unknown_threshold_calibrated"])
    expect(page.get_by_test_id("threshold-reset")).to_be_disabled()

    # An older version that is not current can be deleted; the page then shows the current one.
    row(page, 2).get_by_test_id("delete-version").click()
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("version-row")).to_have_count(1)
    expect(page.get_by_test_id("evaluation")).to_have_attribute("data-model-id", str(v1["id"]))
    assert [m["id"] for m in api.get(f"/api/projects/{pid}/models").json()] == [v1["id"]]
    expect(error_toast(page)).to_have_count(0)


def test_phone_layout(phone_page: Page, two_versions: dict):
    page = phone_page
    open_models(page, two_versions["pid"])
    expect(page.get_by_test_id("evaluation")).to_be_visible()
    expect(page.get_by_test_id("cm-cell").first).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px wide)"
    # One column: the panels stack.
    per_class = page.get_by_role("heading", name="Accuracy per class").bounding_box()
    matrix = page.get_by_role("heading", name="Confusion matrix").bounding_box()
    assert matrix["y"] > per_class["y"] and abs(matrix["x"] - per_class["x"]) < 2
    svg = page.get_by_test_id("loss-chart").locator("svg")
    assert float(svg.get_attribute("width")) <= 390


def test_empty_state(page: Page, api: httpx.Client):
    pid = created(api.post("/api/projects", json={"name": "Untrained"}))
    page.goto(f"/projects/{pid}/models")
    expect(page.get_by_test_id("models-page")).to_have_attribute("data-state", "empty")
    expect(page.get_by_test_id("models-empty")).to_be_visible()
    expect(page.get_by_test_id("versions")).to_be_hidden()
    expect(page.get_by_test_id("evaluation")).to_be_hidden()
    page.get_by_test_id("empty-back").click()
    page.wait_for_url(re.compile(rf"/projects/{pid}$"))


@pytest.fixture(scope="module")
def big_model(api: httpx.Client) -> dict:
    """A project of 1,200 CIFAR photos with a model evaluated on all of them, opened from a project file
    (tests/test_scale_pages.py makes it from a small trained project's own file)."""
    from tests.test_scale_pages import BIG, big_project_file

    pid = created(api.post("/api/projects", json={"name": "Thousands"}))
    for label in BIG:
        cid = created(api.post(f"/api/projects/{pid}/classes", json={"name": label}))
        folder = DATASETS / "cifar10-mini" / "train" / label
        if not folder.is_dir():
            pytest.skip(f"the CIFAR photos are missing: {folder}")
        paths = sorted(folder.glob("*.jpg"))[:PER_CLASS]
        assert api.post(f"/api/classes/{cid}/samples", files=[("files", (p.name, p.read_bytes())) for p in paths]
                        ).status_code == 201
    train(api, pid)
    data, _ = big_project_file(api.get(f"/api/projects/{pid}/export").content)
    r = api.post("/api/projects/import", files={"file": ("big.snapclass.zip", data, "application/zip")})
    assert r.status_code == 201, r.text
    return r.json()


def predictions(api: httpx.Client, model_id: int, **query) -> list[int]:
    body = api.get(f"/api/models/{model_id}/predictions", params={**query, "limit": 500}).json()
    rows = body["rows"]
    while len(rows) < body["total"]:
        rows += api.get(f"/api/models/{model_id}/predictions",
                        params={**query, "limit": 500, "offset": len(rows)}).json()["rows"]
    return [r["sample_id"] for r in rows]


def shown_ids(gallery) -> list[int]:
    thumbs = gallery.get_by_test_id("eval-thumb")
    return [int(x) for x in thumbs.evaluate_all("els => els.map(e => e.dataset.sampleId)")]


def test_a_big_models_photos_come_a_page_at_a_time(page: Page, api: httpx.Client, big_model: dict):
    """1,200 validation photos: the mistakes open with 48, a cell's photos with 24 (its column is narrow), and
    "Show more" adds the next page, in the server's order (worst first); the page never asks for every row."""
    model_id = big_model["model"]["id"]
    asked: list[str] = []
    page.on("request", lambda r: "/api/models/" in r.url and asked.append(r.url.split("/api/")[1]))
    open_models(page, big_model["id"])
    wrong = predictions(api, model_id, wrong=True, group="burst")
    assert 96 < len(wrong) <= 144
    mistakes = page.get_by_test_id("mistakes")
    more = page.get_by_test_id("mistakes-more")
    expect(mistakes.get_by_test_id("eval-thumb")).to_have_count(48)
    expect(page.get_by_test_id("mistakes-count")).to_contain_text("of 1200 photos; similar frames of one recording")
    expect(more).to_have_text(f"Show more (48 of {len(wrong)} shown)")
    assert shown_ids(mistakes) == wrong[:48]
    more.click()
    expect(mistakes.get_by_test_id("eval-thumb")).to_have_count(96)
    expect(more).to_have_text(f"Show more (96 of {len(wrong)} shown)")
    more.focus()
    page.keyboard.press("Enter")
    expect(mistakes.get_by_test_id("eval-thumb")).to_have_count(len(wrong))
    expect(more).to_be_hidden()
    # Once all are shown the button goes, and focus goes to the first photo its last press brought.
    expect(mistakes.get_by_test_id("eval-thumb").nth(96).get_by_role("button")).to_be_focused()
    assert shown_ids(mistakes) == wrong
    expect(mistakes.locator("[data-similar='6']")).to_have_count(1)  # the webcam recording, once

    # The biggest cell: planes answered planes, least sure first, a page at a time.
    cell = page.locator("button[data-testid=cm-cell][data-true='0'][data-predicted='0']")
    count = int(cell.get_attribute("data-count"))
    assert count > 48
    cell.click()
    images = page.get_by_test_id("cell-images")
    expect(images.get_by_test_id("eval-thumb")).to_have_count(24)
    expect(page.get_by_test_id("cell-panel")).to_contain_text(f"{count} validation photos, least sure first")
    cell_more = page.get_by_test_id("cell-more")
    cell_more.click()
    expect(images.get_by_test_id("eval-thumb")).to_have_count(48)
    expect(cell_more).to_have_text(f"Show more (48 of {count} shown)")
    assert shown_ids(images) == predictions(api, model_id, true=0, predicted=0)[:48]
    # A photo of the second page opens larger.
    images.get_by_test_id("eval-thumb").nth(30).get_by_role("button").click()
    dialog = page.get_by_test_id("image-dialog")
    expect(dialog).to_be_visible()
    page.wait_for_function("""() => { const img = document.querySelector('#image-dialog img');
        return img.complete && img.naturalWidth > 0; }""")
    page.get_by_test_id("image-dialog-close").click()
    # Another cell replaces the photos, and its pages start again.
    other = page.locator("button[data-testid=cm-cell][data-true='1'][data-predicted='0']")
    other.click()
    expect(images.get_by_test_id("eval-thumb")).to_have_count(min(24, int(other.get_attribute("data-count"))))
    assert shown_ids(images) == predictions(api, model_id, true=1, predicted=0)[:24]
    assert not any("full=" in u for u in asked)
    assert {re.search(r"limit=(\d+)", u)[1] for u in asked if "/predictions" in u} == {"24", "48"}
