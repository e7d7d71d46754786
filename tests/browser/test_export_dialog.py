"""The Export dialog in a real browser: opened from the Download panel, it has every format built and shows each
one's size and agreement as it arrives, copies a snippet, downloads a file, refuses a file that disagrees, and
works with the keyboard and on a phone."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
from playwright.sync_api import Page, expect  # noqa: E402

from app.exports import ALL_FORMATS  # noqa: E402

PER_CLASS = 8
TRAIN_TIMEOUT_S = 180
BUILD_TIMEOUT_MS = 420_000  # every format traced and checked on 2 busy cores


def created(response: httpx.Response) -> int:
    assert response.status_code == 201, f"{response.status_code} {response.text}"
    return response.json()["id"]


@pytest.fixture(scope="module")
def trained(api: httpx.Client, hymenoptera: Path) -> dict:
    pid = created(api.post("/api/projects", json={"name": "Export me"}))
    for label in ("ants", "bees"):
        cid = created(api.post(f"/api/projects/{pid}/classes", json={"name": label}))
        paths = sorted((hymenoptera / "train" / label).glob("*.jpg"))[:PER_CLASS]
        r = api.post(f"/api/classes/{cid}/samples", files=[("files", (p.name, p.read_bytes())) for p in paths])
        assert r.status_code == 201, r.text
    r = api.post(f"/api/projects/{pid}/train", json={"mode": "head", "epochs": 5})
    job_id, deadline = r.json()["job_id"], time.monotonic() + TRAIN_TIMEOUT_S
    while (job := api.get(f"/api/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    return {"pid": pid, "model_id": job["model_id"]}


def open_dialog(page: Page, pid: int):
    page.goto(f"/projects/{pid}")
    page.get_by_test_id("open-export").click()
    dialog = page.get_by_test_id("export-dialog")
    expect(dialog).to_be_visible()
    return dialog


def test_export_dialog_builds_checks_copies_and_downloads(page: Page, api: httpx.Client, trained: dict,
                                                          tmp_path: Path, hymenoptera: Path):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    pid, model_id = trained["pid"], trained["model_id"]
    dialog = open_dialog(page, pid)
    # A modal <dialog>: focus is in it, on the selected tab; one tab per format the server has, then the API.
    expect(page.get_by_test_id("export-tab-onnx")).to_be_focused()
    expect(dialog.get_by_role("tab")).to_have_count(len(ALL_FORMATS) + 1)
    assert page.evaluate("() => document.getElementById('export-dialog').matches(':modal')")

    # Each format's size and agreement fill in as its build arrives; "checking…" until then.
    parity = re.compile(r"Agrees with the server on (\d+) of \1 (held-out|training) photos")
    for fmt in ALL_FORMATS:
        page.get_by_test_id(f"export-tab-{fmt}").click()
        panel = page.get_by_test_id(f"export-panel-{fmt}")
        expect(panel).to_be_visible()
        expect(panel).to_have_attribute("data-status", "built", timeout=BUILD_TIMEOUT_MS)
        expect(page.get_by_test_id(f"export-parity-{fmt}")).to_contain_text(parity)
        expect(page.get_by_test_id(f"export-size-{fmt}")).to_have_text(re.compile(r"^\d+(\.\d)? (MB|kB)$"))
        expect(page.get_by_test_id(f"export-download-{fmt}")).to_be_visible()
    reports = {e["format"]: e for e in api.get(f"/api/models/{model_id}").json()["exports"]}
    assert all(r["status"] == "built" and r["offered"] for r in reports.values()), reports
    int8 = reports["onnx-int8"]
    agreed = round(int8["agreement"] * int8["photos"])
    page.get_by_test_id("export-tab-onnx-int8").click()
    expect(page.get_by_test_id("export-parity-onnx-int8")).to_contain_text(
        f"Agrees with the server on {agreed} of {int8['photos']} ")
    expect(page.get_by_test_id("export-size-onnx-int8")).to_have_text(f"{int8['size_bytes'] / 1e6:.1f} MB")
    # The panel behind shows the same, next to its buttons.
    expect(page.get_by_test_id("parity-pt2")).to_contain_text(re.compile(r"MB · agrees on (\d+)/\1 "))
    page.screenshot(path=str(tmp_path / "export-dialog-desktop.png"))

    # Copy the ONNX Python code: the clipboard holds exactly the snippet shown, with this model's file name.
    page.get_by_test_id("export-tab-onnx").click()
    page.get_by_test_id("copy-onnx-python").click()
    expect(page.get_by_test_id("copy-onnx-python")).to_contain_text("Copied")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == page.get_by_test_id("snippet-onnx-python").text_content()
    assert f'ort.InferenceSession("{reports["onnx"]["file_name"]}"' in copied

    # Download the int8 file from the dialog: the file the report describes.
    page.get_by_test_id("export-tab-onnx-int8").click()
    with page.expect_download() as info:
        page.get_by_test_id("export-download-onnx-int8").click()
    download = info.value
    assert download.failure() is None and download.suggested_filename == int8["file_name"]
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.stat().st_size == int8["size_bytes"]

    # The keyboard: arrows move between tabs, Escape closes, focus goes back to the button that opened it.
    page.get_by_test_id("export-tab-onnx-int8").focus()
    page.keyboard.press("ArrowRight")
    next_tab = page.get_by_test_id("export-tab-pt2")
    expect(next_tab).to_be_focused()
    expect(next_tab).to_have_attribute("aria-selected", "true")
    expect(page.get_by_test_id("export-panel-pt2")).to_be_visible()
    expect(page.get_by_test_id("export-panel-onnx-int8")).to_be_hidden()
    page.keyboard.press("End")
    expect(page.get_by_test_id("export-tab-api")).to_be_focused()
    curl = page.get_by_test_id("snippet-api-curl").text_content()
    assert f"{page.evaluate('location.origin')}/api/projects/{pid}/predict" in curl
    # The curl code runs as shown (login is off on this server) and answers as /predict does.
    photo = sorted((hymenoptera / "val" / "bees").glob("*.jpg"))[0]
    (tmp_path / "photo.jpg").write_bytes(photo.read_bytes())
    run = subprocess.run(["bash", "-c", curl], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    answer = api.post(f"/api/projects/{pid}/predict", files={"file": (photo.name, photo.read_bytes())}).json()
    assert json.loads(run.stdout)["label"] == answer["label"]
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("open-export")).to_be_focused()
    expect(page.locator("[data-testid=toast][data-kind=error]")).to_have_count(0)


def test_a_file_that_disagrees_is_shown_with_its_reason_and_no_download(page: Page, api: httpx.Client,
                                                                        trained: dict, tmp_path_factory):
    pid, model_id = trained["pid"], trained["model_id"]
    assert api.post(f"/api/models/{model_id}/exports").status_code == 202
    deadline = time.monotonic() + BUILD_TIMEOUT_MS / 1000
    while any(e["status"] != "built" for e in api.get(f"/api/models/{model_id}").json()["exports"]):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    # The server's cache lies in its data dir, under this session's base temp dir.
    sidecar = next(tmp_path_factory.getbasetemp().glob(
        f"snapclass-data*/cache/exports/model-{model_id}-*.pt.parity.json"))
    kept = sidecar.read_text()
    reason = "the torchscript file agrees with the served model on only 3 of 6 held-out photos"
    try:
        sidecar.write_text(json.dumps({**json.loads(kept), "agreement": 0.5, "offered": False, "reason": reason}))
        open_dialog(page, pid)
        page.get_by_test_id("export-tab-torchscript").click()
        expect(page.get_by_test_id("export-refused-torchscript")).to_have_text(reason)
        expect(page.get_by_test_id("export-download-torchscript")).to_be_hidden()
        expect(page.get_by_test_id("export-tab-torchscript")).to_contain_text("not offered")
        expect(page.get_by_test_id("export-download-onnx")).to_be_attached()
    finally:
        sidecar.write_text(kept)


def test_export_dialog_on_a_phone(phone_page: Page, trained: dict, tmp_path: Path):
    page = phone_page
    dialog = open_dialog(page, trained["pid"])
    expect(page.get_by_test_id("export-panel-onnx")).to_have_attribute("data-status", "built",
                                                                       timeout=BUILD_TIMEOUT_MS)
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    width = page.evaluate("() => document.getElementById('export-dialog').scrollWidth")
    assert width <= 390, f"the dialog scrolls sideways on a phone ({width}px)"
    # The code scrolls inside its own box; the tabs scroll sideways in their row, the page does not.
    code = page.get_by_test_id("snippet-onnx-python").bounding_box()
    assert code["x"] + code["width"] <= 390
    page.screenshot(path=str(tmp_path / "export-dialog-phone.png"))
    page.get_by_test_id("export-tab-pt2").click()
    expect(page.get_by_test_id("export-download-pt2")).to_be_visible()
    page.screenshot(path=str(tmp_path / "export-dialog-phone-pt2.png"))
    page.get_by_test_id("export-close").click()
    expect(dialog).to_be_hidden()
