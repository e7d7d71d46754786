"""Save a project to a file and open it again, through the pages, in a real browser."""

from __future__ import annotations

import json
import re
import time
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
from playwright.sync_api import Page, expect  # noqa: E402


def created(response: httpx.Response) -> int:
    assert response.status_code == 201, f"{response.status_code} {response.text}"
    return response.json()["id"]


def trained_project(api: httpx.Client, hymenoptera: Path) -> int:
    pid = created(api.post("/api/projects", json={"name": "Saved and opened"}))
    for label in ("ants", "bees"):
        cid = created(api.post(f"/api/projects/{pid}/classes", json={"name": label}))
        paths = sorted((hymenoptera / "train" / label).glob("*.jpg"))[:4]
        assert api.post(f"/api/classes/{cid}/samples",
                        files=[("files", (p.name, p.read_bytes())) for p in paths]).status_code == 201
    r = api.post(f"/api/projects/{pid}/train", json={"mode": "head", "epochs": 5, "folds": 1})
    job_id, deadline = r.json()["job_id"], time.monotonic() + 180
    while (job := api.get(f"/api/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    return pid


def test_save_project_to_a_file_then_open_it(page: Page, api: httpx.Client, hymenoptera: Path, tmp_path: Path):
    pid = trained_project(api, hymenoptera)
    page.goto(f"/projects/{pid}")
    page.get_by_test_id("project-file-models").select_option("all")
    with page.expect_download() as download_info:
        page.get_by_test_id("save-project-file").click()
    download = download_info.value
    assert download.suggested_filename == "saved-and-opened.snapclass.zip"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    manifest = json.loads(zipfile.ZipFile(saved).read("manifest.json"))
    assert [m["version"] for m in manifest["models"]] == [1] and len(manifest["photos"]) == 8

    # A file that is not a project file: refused in words, and the page stays.
    page.goto("/")
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("open-project-file").click()
    chooser.value.set_files(str(next((hymenoptera / "val" / "ants").glob("*.jpg"))))
    toast = page.locator("[data-testid=toast][data-kind=error]")
    expect(toast).to_contain_text("not a readable zip archive")
    assert urlparse(page.url).path == "/"

    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("open-project-file").click()
    chooser.value.set_files(str(saved))
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    new_id = int(page.url.rsplit("/", 1)[1])
    assert new_id != pid
    expect(page.get_by_test_id("project-name")).to_have_text("Saved and opened (2)")
    expect(page.get_by_test_id("class-list")).to_contain_text("ants")
    expect(page.get_by_test_id("predict-choose")).to_be_enabled()  # it has its model: it predicts at once
