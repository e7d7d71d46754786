"""The UI in a real browser against the real server: build, train, try and download a classifier."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
from playwright.sync_api import Locator, Page, expect  # noqa: E402

PER_CLASS = 15
TRAIN_TIMEOUT_MS = 120_000


def photos(hymenoptera: Path, split: str, label: str, n: int) -> list[Path]:
    return sorted((hymenoptera / split / label).glob("*.jpg"))[:n]


def create_project(page: Page, name: str) -> int:
    page.goto("/")
    page.get_by_test_id("new-project-name").fill(name)
    page.get_by_test_id("create-project").click()
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    expect(page.get_by_test_id("project-name")).to_have_text(name)
    pid = int(page.url.rsplit("/", 1)[1])
    # The home page starts a project with two empty classes, as Teachable Machine does; these tests name their
    # own, so the two go (through the API: deleting in the page is tests/browser/test_gallery.py's part).
    expect(page.get_by_test_id("class-name")).to_have_text(["Class 1", "Class 2"])
    for cls in page.request.get(f"/api/projects/{pid}").json()["classes"]:
        assert page.request.delete(f"/api/classes/{cls['id']}").status == 204
    page.reload()
    expect(page.get_by_test_id("class-card")).to_have_count(0)
    return pid


def add_class(page: Page, name: str) -> Locator:
    page.get_by_test_id("new-class-name").fill(name)
    page.get_by_test_id("add-class").click()
    title = page.get_by_test_id("class-name").filter(has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))
    card = page.get_by_test_id("class-card").filter(has=title)
    expect(card).to_have_count(1)
    expect(card.get_by_test_id("class-count")).to_have_text("0 images")
    return card


def upload(card: Locator, files: list[Path], expected_total: int) -> None:
    card.get_by_test_id("file-input").set_input_files(files)
    expect(card.get_by_test_id("thumb")).to_have_count(expected_total, timeout=60_000)
    count = f"{expected_total} image" if expected_total == 1 else f"{expected_total} images"
    expect(card.get_by_test_id("class-count")).to_have_text(count)
    expect(card.get_by_test_id("upload-progress")).to_be_hidden(timeout=30_000)


def wait_thumbnails_loaded(card: Locator) -> None:
    card.scroll_into_view_if_needed()
    card.page.wait_for_function("""el => [...el.querySelectorAll('[data-testid=thumb] img')]
        .every(img => img.complete && img.naturalWidth > 0)""", arg=card.element_handle())


def error_toast(page: Page) -> Locator:
    return page.locator("[data-testid=toast][data-kind=error]")


def test_build_train_try_and_download(page: Page, hymenoptera: Path, tmp_path: Path):
    pid = create_project(page, "Ants or bees")
    cards = {label: add_class(page, label) for label in ("ants", "bees")}
    expect(page.get_by_test_id("train-readiness")).to_contain_text("Add images to")
    for label, card in cards.items():
        upload(card, photos(hymenoptera, "train", label, PER_CLASS), PER_CLASS)
        wait_thumbnails_loaded(card)
    expect(page.get_by_test_id("project-totals")).to_have_text(f"2 classes · {2 * PER_CLASS} images")
    expect(page.get_by_test_id("train-readiness")).to_contain_text("Ready")
    expect(page.get_by_test_id("predict-choose")).to_be_disabled()
    expect(page.get_by_test_id("predict-no-model")).to_be_visible()

    page.get_by_test_id("train-button").click()
    expect(page.get_by_test_id("job-status")).to_be_visible()
    expect(page.get_by_test_id("cancel-training")).to_be_visible()
    # Reloading mid-training picks the running job up again (the page gets active_job_id).
    page.reload()
    expect(page.get_by_test_id("job-status")).to_be_visible()
    expect(page.get_by_test_id("train-button")).to_be_disabled()
    panel = page.get_by_test_id("train-panel")
    expect(panel).to_have_attribute("data-job-status", "succeeded", timeout=TRAIN_TIMEOUT_MS)
    expect(page.get_by_test_id("train-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.get_by_test_id("train-result")).to_be_visible()
    expect(page.get_by_test_id("val-accuracy")).to_have_text(re.compile(r"^\d{1,3}\.\d%$"))
    expect(page.get_by_test_id("model-version")).to_have_text("v1")
    expect(page.get_by_test_id("train-button")).to_be_enabled()
    expect(error_toast(page)).to_have_count(0)

    # Try it with a photo the model has not seen; the page shows what the API answers.
    photo = photos(hymenoptera, "val", "bees", 1)[0]
    expect(page.get_by_test_id("predict-choose")).to_be_enabled()
    page.get_by_test_id("predict-input").set_input_files(photo)
    bars = page.get_by_test_id("confidence-bar")
    expect(bars).to_have_count(2)
    expect(page.get_by_test_id("predict-preview")).to_be_visible()
    api = page.request.post(f"/api/projects/{pid}/predict", multipart={
        "file": {"name": photo.name, "mimeType": "image/jpeg", "buffer": photo.read_bytes()}}).json()
    best = api["predictions"][0]
    top = page.get_by_test_id("predict-top")
    expect(top).to_have_attribute("data-label", best["label"])
    expect(top).to_contain_text(best["label"])
    expect(bars.first).to_have_attribute("data-label", best["label"])
    shown = [float(t.rstrip("%")) for t in page.locator("[data-testid=confidence-bar] .bar-value").all_text_contents()]
    assert shown == sorted(shown, reverse=True)
    assert sum(shown) == pytest.approx(100, abs=0.2)
    assert shown[0] == pytest.approx(best["score"] * 100, abs=0.06)

    # Download the ONNX file; it carries the labels in its metadata.
    with page.expect_download(timeout=TRAIN_TIMEOUT_MS) as info:
        page.get_by_test_id("download-onnx").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename.endswith(".onnx")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert path.stat().st_size > 1_000_000  # the backbone's weights are in it
    onnx = pytest.importorskip("onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["labels"]) == ["ants", "bees"]
    expect(page.get_by_test_id("download-onnx")).to_have_text("ONNX")
    # Built now, and checked: its size and agreement on the held-out photos show next to its button.
    expect(page.get_by_test_id("parity-onnx")).to_contain_text(re.compile(r"\d+\.\d MB · agrees on (\d+)/\1 "))
    # The pt2 (torch.export) file comes the same way; test_pt2.py runs it.
    expect(page.get_by_test_id("download-notes")).to_contain_text("torch.export")
    with page.expect_download(timeout=TRAIN_TIMEOUT_MS) as info:
        page.get_by_test_id("download-pt2").click()
    assert info.value.failure() is None and info.value.suggested_filename.endswith(".pt2")
    expect(page.get_by_test_id("download-pt2")).to_have_text("PyTorch .pt2")
    expect(error_toast(page)).to_have_count(0)
    page.screenshot(path=str(tmp_path / "project-trained.png"), full_page=True)

    # The projects list shows the project as trained.
    page.goto("/")
    card = page.get_by_test_id("project-card").filter(has_text="Ants or bees")
    expect(card.get_by_test_id("project-trained")).to_be_visible()
    expect(card).to_contain_text(f"{2 * PER_CLASS} images")


def test_upload_rejects_non_images_with_reason(page: Page, hymenoptera: Path, tmp_path: Path):
    create_project(page, "Rejections")
    card = add_class(page, "ants")
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is a text file wearing a .jpg name\n")

    # Only bad files: the server stores nothing (422) and the page says why.
    card.get_by_test_id("file-input").set_input_files(fake)
    rejected = card.get_by_test_id("rejected")
    expect(rejected).to_be_visible()
    expect(rejected).to_contain_text("1 file was not added")
    expect(rejected).to_contain_text("holiday.jpg")
    expect(rejected).to_contain_text("not an image file we can read")
    expect(card.get_by_test_id("class-count")).to_have_text("0 images")
    expect(card.get_by_test_id("thumb")).to_have_count(0)

    # A mix: the good photo is added, the bad one is listed with its reason.
    good = photos(hymenoptera, "train", "ants", 1)
    upload(card, [fake, *good], 1)
    expect(rejected).to_be_visible()
    expect(rejected).to_contain_text("holiday.jpg")
    expect(rejected).to_contain_text("not an image file we can read")
    rejected.get_by_role("button", name="Dismiss").click()
    expect(rejected).to_be_hidden()


def test_api_errors_are_shown_in_words(page: Page):
    pid = create_project(page, "Errors")
    # Not trainable yet: Train says why instead of answering a click with an error.
    expect(page.get_by_test_id("train-button")).to_be_disabled()
    expect(page.get_by_test_id("train-why")).to_be_visible()

    add_class(page, "ants")
    page.get_by_test_id("new-class-name").fill("ants")
    page.get_by_test_id("add-class").click()
    expect(error_toast(page).last).to_contain_text("a class named 'ants' already exists")
    expect(page.get_by_test_id("class-card")).to_have_count(1)
    error_toast(page).first.get_by_role("button", name="Dismiss message").click()

    # FastAPI's 422 has a list as its detail: it reads as words too.
    message = page.evaluate("""async (pid) => {
        const { api } = await import('/static/js/api.js');
        try { await api.post(`/api/projects/${pid}/train`, { mode: 'auto', epochs: 0 }); return 'no error'; }
        catch (err) { return err.message; }
    }""", pid)
    assert message.startswith("epochs: ") and "greater than or equal to 1" in message


def test_edit_and_delete(page: Page, hymenoptera: Path):
    create_project(page, "Draft")
    page.get_by_test_id("rename-project").click()
    page.get_by_test_id("project-name-input").fill("Insects")
    page.get_by_test_id("project-name-input").press("Enter")
    expect(page.get_by_test_id("project-name")).to_have_text("Insects")

    add_class(page, "antz")
    card = page.get_by_test_id("class-card")
    card.get_by_test_id("rename-class").click()
    card.get_by_test_id("class-name-input").fill("ants")
    card.get_by_test_id("class-name-input").press("Enter")
    expect(card.get_by_test_id("class-name")).to_have_text("ants")
    upload(card, photos(hymenoptera, "train", "ants", 3), 3)

    thumb = card.get_by_test_id("thumb").first
    thumb.hover()
    thumb.get_by_test_id("delete-sample").click()
    expect(card.get_by_test_id("thumb")).to_have_count(2)
    expect(card.get_by_test_id("class-count")).to_have_text("2 images")

    page.reload()  # the server kept all of it
    expect(page.get_by_test_id("project-name")).to_have_text("Insects")
    card = page.get_by_test_id("class-card")
    expect(card.get_by_test_id("thumb")).to_have_count(2)

    card.get_by_test_id("delete-class").click()
    page.get_by_test_id("confirm-cancel").click()
    expect(card).to_have_count(1)
    card.get_by_test_id("delete-class").click()
    expect(page.get_by_test_id("confirm-dialog")).to_contain_text("2 images are deleted too")
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("class-card")).to_have_count(0)

    page.goto("/")
    project = page.get_by_test_id("project-card").filter(has_text="Insects")
    project.get_by_test_id("delete-project").click()
    page.get_by_test_id("confirm-ok").click()
    expect(project).to_have_count(0)
    page.reload()
    expect(page.get_by_test_id("project-card").filter(has_text="Insects")).to_have_count(0)


def test_drop_files_onto_class_card(page: Page, hymenoptera: Path):
    create_project(page, "Drops")
    card = add_class(page, "bees")
    files = [{"name": f.name, "data": base64.b64encode(f.read_bytes()).decode()}
             for f in photos(hymenoptera, "train", "bees", 4)]
    target = card.element_handle()
    page.evaluate("""([card, files]) => {
        const dt = new DataTransfer();
        for (const f of files) {
            const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
            dt.items.add(new File([bytes], f.name, { type: 'image/jpeg' }));
        }
        window.__drop = dt;
        card.dispatchEvent(new DragEvent('dragenter', { bubbles: true, cancelable: true, dataTransfer: dt }));
        card.dispatchEvent(new DragEvent('dragover', { bubbles: true, cancelable: true, dataTransfer: dt }));
    }""", [target, files])
    expect(card.locator(".drop-overlay")).to_be_visible()
    expect(card.locator(".drop-overlay")).to_contain_text("Drop to add to bees")
    page.evaluate("""card => card.dispatchEvent(
        new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: window.__drop }))""", target)
    expect(card.locator(".drop-overlay")).to_be_hidden()
    expect(card.get_by_test_id("thumb")).to_have_count(4)
    expect(card.get_by_test_id("class-count")).to_have_text("4 images")


def test_cancel_training(page: Page, hymenoptera: Path):
    create_project(page, "Cancel me")
    for label in ("ants", "bees"):
        upload(add_class(page, label), photos(hymenoptera, "train", label, 10), 10)
    page.get_by_test_id("train-button").click()
    page.get_by_test_id("cancel-training").click()
    panel = page.get_by_test_id("train-panel")
    expect(panel).to_have_attribute("data-job-status", "cancelled", timeout=TRAIN_TIMEOUT_MS)
    expect(page.get_by_test_id("job-message")).to_have_text("Training was cancelled.")
    expect(page.get_by_test_id("train-result")).to_be_hidden()
    expect(page.get_by_test_id("train-button")).to_be_enabled()


def test_phone_layout_is_one_column(phone_page: Page, hymenoptera: Path):
    page = phone_page
    create_project(page, "On the go")
    card = add_class(page, "bees")
    upload(card, photos(hymenoptera, "train", "bees", 6), 6)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px wide)"
    classes = page.locator(".classes-col").bounding_box()
    train = page.get_by_test_id("train-panel").bounding_box()
    assert train["y"] >= classes["y"] + classes["height"] - 1, "the panels should stack below the classes"
    assert abs(train["x"] - classes["x"]) < 2
    expect(card.get_by_test_id("upload-button")).to_be_in_viewport()
