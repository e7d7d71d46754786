"""The webcam in a real browser: hold-to-record into a class, the live page, a correction, a refused camera.

Chromium's fake camera (--use-fake-device-for-media-stream) plays a moving test pattern at 640x480;
--use-fake-ui-for-media-stream answers the permission prompt with "allow". Rates are only checked
loosely here; bench/live_rate.py measures the live page's predictions per second.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
from playwright.sync_api import Page, expect  # noqa: E402

from tests.browser.conftest import CHROMIUM_ARGS, DESKTOP, _page, launch  # noqa: E402

TRAIN_TIMEOUT_S = 180


def created(response: httpx.Response) -> int:
    assert response.status_code == 201, f"{response.status_code} {response.text}"
    return response.json()["id"]


def make_project(api: httpx.Client, name: str, classes=("ants", "bees")) -> tuple[int, dict[str, int]]:
    pid = created(api.post("/api/projects", json={"name": name}))
    ids = {c: created(api.post(f"/api/projects/{pid}/classes", json={"name": c})) for c in classes}
    return pid, ids


def add_photos(api: httpx.Client, cid: int, paths: list[Path]) -> None:
    r = api.post(f"/api/classes/{cid}/samples", files=[("files", (p.name, p.read_bytes())) for p in paths])
    assert r.status_code == 201, r.text


def samples(api: httpx.Client, cid: int) -> list[dict]:
    r = api.get(f"/api/classes/{cid}/samples")
    assert r.status_code == 200, r.text
    return r.json()


def wait_job(api: httpx.Client, job_id: int) -> dict:
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        job = api.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def trained_project(api: httpx.Client, hymenoptera: Path, name: str, per_class: int = 8) -> tuple[int, dict]:
    pid, ids = make_project(api, name)
    for label, cid in ids.items():
        add_photos(api, cid, sorted((hymenoptera / "train" / label).glob("*.jpg"))[:per_class])
    r = api.post(f"/api/projects/{pid}/train", json={"mode": "head", "epochs": 5})
    assert r.status_code == 202, r.text
    assert wait_job(api, r.json()["job_id"])["status"] == "succeeded"
    return pid, ids


def card(page: Page, name: str):
    title = page.get_by_test_id("class-name").filter(has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))
    return page.get_by_test_id("class-card").filter(has=title)


def open_recorder(page: Page, name: str):
    card(page, name).get_by_test_id("webcam-button").click()
    recorder = page.get_by_test_id("recorder")
    expect(recorder).to_be_visible()
    expect(recorder).to_contain_text(f"Record “{name}”")
    return recorder


def wait_saved(page: Page) -> int:
    """Wait until the recorder has uploaded every frame it captured; returns how many."""
    page.wait_for_function("""() => {
        const r = document.querySelector('[data-testid=recorder]');
        return r.dataset.state === 'ready' && Number(r.dataset.captured) > 0
            && r.dataset.saved === r.dataset.captured;
    }""", timeout=30_000)
    return int(page.get_by_test_id("recorder").get_attribute("data-saved"))


def assert_one_burst(stored: list[dict]) -> str:
    bursts = {s["burst_id"] for s in stored}
    assert len(bursts) == 1, f"one press should be one burst, got {bursts}"
    burst = bursts.pop()
    assert burst and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", burst)
    assert {s["source"] for s in stored} == {"webcam"}
    return burst


def test_hold_to_record_stores_one_burst_per_press(page: Page, api: httpx.Client, tmp_path: Path):
    pid, ids = make_project(api, "Webcam classes")
    page.goto(f"/projects/{pid}")

    recorder = open_recorder(page, "ants")
    expect(recorder).to_have_attribute("data-state", "ready")
    expect(page.get_by_test_id("recorder-video")).to_have_class(re.compile(r"\bmirrored\b"))
    expect(page.get_by_test_id("camera-select")).to_be_hidden()  # one camera: no picker
    expect(page.get_by_test_id("recorder-fps")).to_have_value("10")
    hold = page.get_by_test_id("hold-to-record")

    # Mouse: press for about two seconds at 10 frames per second.
    hold.hover()
    page.mouse.down()
    expect(recorder).to_have_attribute("data-state", "recording")
    expect(hold).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(2000)
    page.screenshot(path=str(tmp_path / "recorder-recording.png"))
    page.mouse.up()
    expect(hold).to_have_attribute("aria-pressed", "false")
    n = wait_saved(page)
    assert 12 <= n <= 30, f"2 s at 10 fps stored {n} frames"
    stored = samples(api, ids["ants"])
    assert len(stored) == n
    ants_burst = assert_one_burst(stored)
    expect(page.get_by_test_id("recorder-frame")).to_have_count(min(n, 24))
    expect(page.get_by_test_id("recorder-status")).to_contain_text(f"{n} frames recorded · all saved")
    page.screenshot(path=str(tmp_path / "recorder-desktop.png"))

    # Closing stops the camera; the class card shows the frames.
    page.get_by_test_id("recorder-close").click()
    expect(recorder).to_be_hidden()
    page.wait_for_function("() => document.querySelector('[data-testid=recorder-video]').srcObject === null",
                           timeout=5000)
    ants = card(page, "ants")
    expect(ants.get_by_test_id("class-count")).to_have_text(f"{n} images")
    expect(ants.get_by_test_id("thumb")).to_have_count(n)

    # Keyboard: hold Space on the focused button, at 5 frames per second this time.
    recorder = open_recorder(page, "bees")
    expect(recorder).to_have_attribute("data-state", "ready")
    expect(recorder).to_have_attribute("data-captured", "0")
    page.get_by_test_id("recorder-fps").select_option("5")
    hold.focus()
    page.keyboard.down(" ")
    expect(recorder).to_have_attribute("data-state", "recording")
    page.wait_for_timeout(2000)
    page.keyboard.up(" ")
    m = wait_saved(page)
    assert 6 <= m <= 15, f"2 s at 5 fps stored {m} frames"
    bees = samples(api, ids["bees"])
    assert len(bees) == m
    assert assert_one_burst(bees) != ants_burst
    page.keyboard.press("Escape")
    expect(recorder).to_be_hidden()
    expect(card(page, "bees").get_by_test_id("class-count")).to_have_text(f"{m} images")
    expect(page.get_by_test_id("project-totals")).to_have_text(f"2 classes · {n + m} images")
    assert len(samples(api, ids["ants"])) == n  # the second press went to its own class only
    expect(page.locator("[data-testid=toast][data-kind=error]")).to_have_count(0)


def test_a_failed_upload_is_shown_in_the_recorder(page: Page, api: httpx.Client):
    pid, ids = make_project(api, "Gone while recording")
    page.goto(f"/projects/{pid}")
    recorder = open_recorder(page, "ants")
    expect(recorder).to_have_attribute("data-state", "ready")
    assert api.delete(f"/api/classes/{ids['ants']}").status_code == 204  # e.g. from another tab
    hold = page.get_by_test_id("hold-to-record")
    hold.hover()
    page.mouse.down()
    page.wait_for_timeout(600)
    page.mouse.up()
    error = page.get_by_test_id("recorder-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("This class was deleted, perhaps in another tab or by someone else.")
    expect(recorder).to_have_attribute("data-state", "ready")  # still usable
    expect(page.get_by_test_id("recorder-status")).to_contain_text("failed")
    page.get_by_test_id("recorder-close").click()
    expect(recorder).to_be_hidden()


def test_touch_hold_on_a_phone(phone_page: Page, api: httpx.Client, tmp_path: Path):
    page = phone_page
    pid, ids = make_project(api, "Webcam on a phone")
    page.goto(f"/projects/{pid}")
    recorder = open_recorder(page, "bees")
    expect(recorder).to_have_attribute("data-state", "ready")
    box = page.get_by_test_id("hold-to-record").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # Real touch input (Playwright's tap has no "hold").
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    expect(recorder).to_have_attribute("data-state", "recording")
    page.wait_for_timeout(1500)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    n = wait_saved(page)
    assert 8 <= n <= 24, f"1.5 s at 10 fps stored {n} frames"
    assert_one_burst(samples(api, ids["bees"]))
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px wide)"
    page.screenshot(path=str(tmp_path / "recorder-phone.png"))


def test_two_cameras_show_a_picker(playwright_sync, server: str, api: httpx.Client, request, tmp_path: Path):
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-device-for-media-stream"]
    pid, _ = make_project(api, "Two cameras")
    browser = launch(playwright_sync, [*args, "--use-fake-device-for-media-stream=device-count=2"])
    try:
        for page in _page(browser, server, request, tmp_path, viewport=DESKTOP):
            page.goto(f"/projects/{pid}")
            recorder = open_recorder(page, "ants")
            expect(recorder).to_have_attribute("data-state", "ready")
            picker = page.get_by_test_id("camera-select")
            expect(picker).to_be_visible()
            expect(picker.locator("option")).to_have_count(2)
            other = picker.locator("option").nth(1).get_attribute("value")
            picker.select_option(other)
            expect(recorder).to_have_attribute("data-state", "ready")
            label = page.evaluate("""() => document.querySelector('[data-testid=recorder-video]')
                .srcObject.getVideoTracks()[0].label""")
            assert label == "fake_device_1"
            # The choice is remembered for the live page and the next visit.
            assert page.evaluate("() => localStorage.getItem('snapclass.camera')") == other
            page.goto(f"/projects/{pid}/live")
            expect(page.get_by_test_id("camera-select")).to_have_value(other)
    finally:
        browser.close()


def test_live_page_predicts_and_a_correction_adds_a_frame(page: Page, api: httpx.Client, hymenoptera: Path,
                                                          tmp_path: Path):
    pid, ids = trained_project(api, hymenoptera, "Live ants or bees")
    page.goto(f"/projects/{pid}")
    link = page.get_by_test_id("live-link")
    expect(link).not_to_have_attribute("aria-disabled", "true")
    link.click()
    page.wait_for_url(re.compile(rf"/projects/{pid}/live$"))

    live = page.get_by_test_id("live")
    expect(live).to_have_attribute("data-state", "running")
    expect(page.get_by_test_id("live-video")).to_have_class(re.compile(r"\bmirrored\b"))
    page.wait_for_function("() => window.__liveStats.frames >= 5", timeout=30_000)
    first = page.evaluate("() => window.__liveStats.frames")
    page.wait_for_function(f"() => window.__liveStats.frames >= {first + 5}", timeout=30_000)
    bars = page.get_by_test_id("live-bar")
    expect(bars).to_have_count(2)
    assert [bars.nth(i).get_attribute("data-label") for i in range(2)] == ["ants", "bees"]  # label order
    expect(page.get_by_test_id("live-top")).to_be_visible()
    expect(page.get_by_test_id("live-top")).to_have_attribute("data-label", re.compile(r"^(ants|bees)$"))
    # The page shows the last answer (its top class, or "None of these" below the similarity threshold).
    top = page.evaluate("""() => {
        const top = document.querySelector('[data-testid=live-top]');
        return { last: window.__liveStats.last, label: top.dataset.label, text: top.textContent };
    }""")
    assert top["label"] == top["last"]["predictions"][0]["label"]
    assert ("None of these" in top["text"]) == bool(top["last"].get("unknown"))
    expect(page.get_by_test_id("live-version")).to_have_text("v1")
    expect(page.get_by_test_id("live-connection")).to_have_attribute("data-conn", "open")
    expect(page.get_by_test_id("live-pps")).to_have_text(re.compile(r"^\d+\.\d$"))
    assert float(page.get_by_test_id("live-pps").text_content()) > 0
    expect(page.get_by_test_id("live-latency")).to_have_text(re.compile(r"^\d+ ms$"))
    expect(page.get_by_test_id("live-frames")).to_contain_text("frames classified")
    shown = [float(t.rstrip("%")) for t in page.locator("[data-testid=live-bar] .bar-value").all_text_contents()]
    assert sum(shown) == pytest.approx(100, abs=1.5)
    stats = page.evaluate("() => window.__liveStats")
    assert stats["errors"] == 0 and stats["modelVersion"] == 1
    page.screenshot(path=str(tmp_path / "live-desktop.png"))

    # "Wrong? It is bees": the frame on show goes to bees, from the webcam, as its own burst.
    before = samples(api, ids["bees"])
    expect(page.get_by_test_id("add-frame")).to_be_disabled()  # no class chosen yet
    page.get_by_test_id("correct-class").select_option(label="bees")
    page.get_by_test_id("add-frame").click()
    status = page.get_by_test_id("correct-status")
    expect(status).to_contain_text("Added 1 frame to “bees”")
    after = samples(api, ids["bees"])
    assert len(after) == len(before) + 1
    new = [s for s in after if s["id"] not in {b["id"] for b in before}]
    assert new[0]["source"] == "webcam" and new[0]["burst_id"]
    assert len(samples(api, ids["ants"])) == 8

    # The last second of frames: several frames, one burst.
    page.get_by_test_id("add-second").click()
    expect(status).to_contain_text(re.compile(r"Added \d+ frames to “bees”"))
    latest = [s for s in samples(api, ids["bees"]) if s["id"] not in {a["id"] for a in after}]
    assert len(latest) >= 2
    assert assert_one_burst(latest) != new[0]["burst_id"]

    # Retrain from the live page: the new model takes over the running page.
    page.get_by_test_id("retrain").click()
    expect(page.get_by_test_id("retrain-job")).to_be_visible()
    expect(page.get_by_test_id("model-flash")).to_have_text("Now running model v2", timeout=TRAIN_TIMEOUT_S * 1000)
    expect(page.get_by_test_id("live-version")).to_have_text("v2")
    expect(page.get_by_test_id("retrain-message")).to_contain_text("New model ready")
    assert page.evaluate("() => window.__liveStats.modelVersion") == 2
    page.screenshot(path=str(tmp_path / "live-retrained.png"))
    expect(page.locator("[data-testid=toast][data-kind=error]")).to_have_count(0)


@pytest.fixture(scope="module")
def small_trained(server: str, hymenoptera: Path) -> int:
    """A small trained project that the tests below only read."""
    with httpx.Client(base_url=server, timeout=120) as client:
        return trained_project(client, hymenoptera, "Live, small", per_class=4)[0]


def test_live_page_reconnects_when_the_socket_closes(page: Page, small_trained: int):
    connections = []

    def route(ws):
        server = ws.connect_to_server()
        connections.append(ws)
        if len(connections) > 1:
            return
        answers = []

        def from_server(message):  # the first connection drops after 5 answers
            answers.append(message)
            ws.send(message)
            if len(answers) == 5:
                ws.close()

        server.on_message(from_server)

    page.route_web_socket(re.compile(r"/api/projects/\d+/live$"), route)
    page.goto(f"/projects/{small_trained}/live")
    page.wait_for_function("() => window.__liveStats.frames >= 12", timeout=30_000)
    assert len(connections) == 2
    expect(page.get_by_test_id("live-connection")).to_have_attribute("data-conn", "open")
    assert page.evaluate("() => window.__liveStats.errors") == 0

    # Pause stops sending frames (the one in flight still gets its answer); Resume goes on.
    pause = page.get_by_test_id("live-pause")
    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "true")
    expect(pause).to_have_text("Resume")
    page.wait_for_timeout(500)
    paused_at = page.evaluate("() => window.__liveStats.frames")
    page.wait_for_timeout(1000)
    assert page.evaluate("() => window.__liveStats.frames") == paused_at
    pause.click()
    expect(pause).to_have_text("Pause")
    page.wait_for_function(f"() => window.__liveStats.frames >= {paused_at + 3}", timeout=30_000)


def test_live_page_on_a_phone(phone_page: Page, small_trained: int, tmp_path: Path):
    page = phone_page
    pid = small_trained
    page.goto(f"/projects/{pid}/live")
    page.wait_for_function("() => window.__liveStats.frames >= 5", timeout=30_000)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the live page scrolls sideways on a phone ({width}px wide)"
    expect(page.get_by_test_id("live-video")).to_be_in_viewport()
    page.screenshot(path=str(tmp_path / "live-phone.png"), full_page=True)


def test_live_page_without_a_model_says_so(page: Page, api: httpx.Client):
    pid, _ = make_project(api, "Live untrained")
    page.goto(f"/projects/{pid}")
    link = page.get_by_test_id("live-link")
    expect(link).to_have_attribute("aria-disabled", "true")
    link.click(force=True)  # aria-disabled: stays on the page and says why
    expect(page.locator("[data-testid=toast]").last).to_contain_text("Train a model first")
    assert page.url.endswith(f"/projects/{pid}")
    page.goto(f"/projects/{pid}/live")
    expect(page.get_by_test_id("live-no-model")).to_be_visible()
    expect(page.get_by_test_id("live-message")).to_contain_text("no trained model")
    expect(page.get_by_test_id("live-version")).to_have_text("–")


@pytest.fixture(scope="module")
def refusing_browser(playwright_sync):
    """Chromium with the fake camera but no fake permission UI: it refuses the camera as a user would."""
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"] + ["--deny-permission-prompts"]
    browser = launch(playwright_sync, args)
    yield browser
    browser.close()


@pytest.fixture
def refused_page(refusing_browser, server, request, tmp_path):
    yield from _page(refusing_browser, server, request, tmp_path, viewport=DESKTOP)


REFUSED = "Camera access was refused. Allow it in the browser's site settings and try again."


def test_refused_camera_shows_a_message_and_nothing_breaks(refused_page: Page, api: httpx.Client,
                                                           hymenoptera: Path, tmp_path: Path):
    page = refused_page
    pid, ids = make_project(api, "No camera for you")
    page.goto(f"/projects/{pid}")
    recorder = open_recorder(page, "ants")
    error = recorder.get_by_test_id("camera-error")  # the Try it panel has its own, hidden until its webcam starts
    expect(error).to_be_visible()
    expect(error).to_contain_text(REFUSED)
    expect(recorder).to_have_attribute("data-state", "error")
    expect(recorder).to_have_attribute("data-error", "refused")
    expect(page.get_by_test_id("hold-to-record")).to_be_disabled()
    recorder.get_by_test_id("camera-retry").click()  # asks again, is refused again
    expect(error).to_contain_text(REFUSED)
    page.screenshot(path=str(tmp_path / "recorder-refused.png"))
    page.get_by_test_id("recorder-close").click()
    expect(recorder).to_be_hidden()

    # The rest of the page works: upload photos, add a class.
    ants = card(page, "ants")
    ants.get_by_test_id("file-input").set_input_files(sorted((hymenoptera / "train" / "ants").glob("*.jpg"))[:2])
    expect(ants.get_by_test_id("class-count")).to_have_text("2 images")
    page.get_by_test_id("new-class-name").fill("wasps")
    page.get_by_test_id("add-class").click()
    expect(card(page, "wasps")).to_have_count(1)
    assert len(samples(api, ids["ants"])) == 2

    # The live page too.
    page.goto(f"/projects/{pid}/live")
    expect(page.get_by_test_id("camera-error")).to_contain_text(REFUSED)
    expect(page.get_by_test_id("live")).to_have_attribute("data-state", "camera-error")
    expect(page.get_by_test_id("add-frame")).to_be_disabled()
    expect(page.get_by_test_id("back-to-project")).to_be_visible()
    page.screenshot(path=str(tmp_path / "live-refused.png"))
    page.get_by_test_id("back-to-project").click()
    expect(page.get_by_test_id("project-name")).to_have_text("No camera for you")


def test_insecure_page_explains_that_the_camera_needs_https(playwright_sync, server: str, api: httpx.Client,
                                                            request, tmp_path: Path):
    """Over plain http on a name other than localhost, browsers give no camera API at all."""
    pid, _ = make_project(api, "Insecure")
    port = server.rsplit(":", 1)[1]
    browser = launch(playwright_sync, [*CHROMIUM_ARGS, "--host-resolver-rules=MAP snapclass.test 127.0.0.1"])
    try:
        for page in _page(browser, f"http://snapclass.test:{port}", request, tmp_path, viewport=DESKTOP):
            page.goto(f"/projects/{pid}")
            assert page.evaluate("() => [window.isSecureContext, typeof navigator.mediaDevices]") == [
                False, "undefined"]
            open_recorder(page, "bees")
            expect(page.get_by_test_id("recorder").get_by_test_id("camera-error")).to_contain_text("https")
            expect(page.get_by_test_id("recorder")).to_have_attribute("data-error", "insecure")
            page.goto(f"/projects/{pid}/live")
            expect(page.get_by_test_id("camera-error")).to_contain_text("https")
    finally:
        browser.close()
