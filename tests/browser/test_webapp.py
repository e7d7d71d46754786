"""The `webapp` download in Chromium: unzipped, served by a plain static server, every other origin blocked, it
prepares photos byte for byte as the server does and gives the server's answers, on photos and on the camera."""

from __future__ import annotations

import functools
import http.server
import io
import json
import threading
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from app import images
from app.ml.preprocess import prepare
from tests.browser.conftest import DESKTOP, PHONE

pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
from playwright.sync_api import expect  # noqa: E402

PER_CLASS = 8
VAL_PER_CLASS = 6
TRAIN_TIMEOUT_S = 180
# Measured: the page's probabilities differ from the server's by at most ~1e-6 (the same input tensor, the
# same ONNX graph, ORT Web's wasm kernels against the server's runtime).
PROB_TOLERANCE = 1e-4
# A JPEG with a side over 4 × the input size: the server's DCT-scaled decode cannot be reproduced in a browser.
BIG_JPEG_TOLERANCE = 0.02


def _created(r: httpx.Response) -> int:
    assert r.status_code == 201, f"{r.status_code} {r.text}"
    return r.json()["id"]


@pytest.fixture(scope="module")
def webapp_site(api: httpx.Client, hymenoptera: Path, tmp_path_factory):
    """A small ants/bees project trained on the live server, its webapp zip unzipped and served on 127.0.0.1."""
    pid = _created(api.post("/api/projects", json={"name": "Ants & bees"}))
    for label in ("ants", "bees"):
        cid = _created(api.post(f"/api/projects/{pid}/classes", json={"name": label}))
        paths = sorted((hymenoptera / "train" / label).glob("*.jpg"))[:PER_CLASS]
        r = api.post(f"/api/classes/{cid}/samples", files=[("files", (p.name, p.read_bytes())) for p in paths])
        assert r.status_code == 201, r.text
    r = api.post(f"/api/projects/{pid}/train", json={"mode": "head", "epochs": 5})
    assert r.status_code == 202, r.text
    job_id, deadline = r.json()["job_id"], time.monotonic() + TRAIN_TIMEOUT_S
    while (job := api.get(f"/api/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "succeeded", job

    r = api.get(f"/api/projects/{pid}/model/download", params={"format": "webapp"})
    if r.status_code == 409 and "ONNX Runtime Web" in r.text:
        pytest.skip(f"the server has no ONNX Runtime Web files: {r.json()['detail']}")
    assert r.status_code == 200, r.text
    root = tmp_path_factory.mktemp("webapp-site")
    zipfile.ZipFile(io.BytesIO(r.content)).extractall(root)
    # Photos the byte-for-byte test fetches from the page's own origin (not part of the download).
    (root / "test-photos").mkdir()
    meta = json.loads((root / "model.json").read_text())

    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="webapp-static", daemon=True)
    thread.start()
    print(f"\nwebapp zip: {len(r.content) / 1e6:.2f} MB")
    try:
        yield {"url": f"http://127.0.0.1:{httpd.server_address[1]}", "root": root, "pid": pid, "meta": meta,
               "zip_bytes": len(r.content), "model_id": job["model_id"]}
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def open_page(browser, webapp_site, request, tmp_path):
    """Open index.html in a fresh context with every other origin blocked; at the end: no request left the
    static server, no uncaught error, no console warning or error."""
    contexts, blocked, noise = [], [], []
    origin = webapp_site["url"]

    def route(r):
        if r.request.url == origin or r.request.url.startswith(origin + "/"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    def open_(viewport=DESKTOP, **context_args):
        context = browser.new_context(viewport=viewport, **context_args)
        context.set_default_timeout(30_000)
        context.route("**/*", route)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: noise.append(f"pageerror: {exc}"))
        page.on("console", lambda m: m.type in ("warning", "error") and noise.append(f"{m.type}: {m.text}"))
        page.goto(f"{origin}/index.html")
        expect(page.locator("body[data-ready=true]")).to_be_attached(timeout=60_000)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not blocked, f"the page asked for other origins: {blocked}"
    assert not noise, noise


def _val_photos(hymenoptera: Path) -> list[Path]:
    return [p for label in ("ants", "bees")
            for p in sorted((hymenoptera / "val" / label).glob("*.jpg"))[:VAL_PER_CLASS]]


def _classify(page, path: Path) -> dict:
    """Pick one photo through the file input; the page's answer once it is on screen."""
    page.evaluate("() => document.querySelectorAll('[data-top-label]').forEach((e) => e.dataset.stale = '1')")
    page.set_input_files("#file", str(path))
    top = page.locator("#answer [data-top-label]:not([data-stale])")
    expect(top).to_have_count(1)
    return page.evaluate("""() => ({
        label: document.querySelector('#answer [data-top-label]').dataset.topLabel,
        text: document.querySelector('#answer [data-top-label]').textContent,
        similarity: Number(document.querySelector('#answer').dataset.similarity),
        scores: Object.fromEntries([...document.querySelectorAll('#bars .bar')]
            .map((b) => [b.dataset.label, Number(b.dataset.score)])),
    })""")


def test_photos_get_the_servers_answers(open_page, webapp_site, api, hymenoptera, tmp_path):
    page = open_page()
    assert page.title() == "Ants & bees"
    expect(page.locator("h1")).to_have_text("Ants & bees")
    diffs, sim_diffs = [], []
    for path in _val_photos(hymenoptera):
        r = api.post(f"/api/projects/{webapp_site['pid']}/predict", files={"file": (path.name, path.read_bytes())})
        assert r.status_code == 200, r.text
        served = r.json()
        seen = _classify(page, path)
        assert seen["label"] == served["label"], path.name
        expected_text = "None of these" if served["unknown"] else served["label"]
        assert seen["text"] == expected_text, path.name
        for p in served["predictions"]:
            diffs.append(abs(seen["scores"][p["label"]] - p["score"]))
        sim_diffs.append(abs(seen["similarity"] - served["similarity"]))
        expect(page.locator("#bars .bar")).to_have_count(2)
    print(f"\nChromium vs server on {len(diffs) // 2} val photos: top label agrees on all, "
          f"max prob diff {max(diffs):.2e}, max similarity diff {max(sim_diffs):.2e}")
    assert max(diffs) < PROB_TOLERANCE and max(sim_diffs) < PROB_TOLERANCE

    # A camera-sized JPEG: the server decodes it scaled down in the DCT (app/images.py, draft mode), which a
    # browser cannot do, so its pixels differ slightly (a few levels at most) before the same resize.
    big = tmp_path / "big.jpg"
    Image.open(_val_photos(hymenoptera)[-1]).convert("RGB").resize((2400, 1800), Image.BICUBIC).save(big, quality=92)
    served = api.post(f"/api/projects/{webapp_site['pid']}/predict", files={"file": ("big.jpg", big.read_bytes())})
    served = served.json()
    seen = _classify(page, big)
    big_diff = max(abs(seen["scores"][p["label"]] - p["score"]) for p in served["predictions"])
    print(f"a 2400x1800 JPEG (server: DCT-scaled decode): prob diff {big_diff:.2e}, "
          f"similarity diff {abs(seen['similarity'] - served['similarity']):.2e}")
    assert seen["label"] == served["label"] and big_diff < BIG_JPEG_TOLERANCE


def _write_cases(folder: Path, hymenoptera: Path) -> dict[str, bytes]:
    """Real photos and made ones covering each path of the resize: shrink, enlarge, one side only, EXIF turn,
    transparency (onto white, as the server does)."""
    rng = np.random.default_rng(7)
    cases = {p.name: p.read_bytes() for p in _val_photos(hymenoptera)[::3]}
    big = Image.open(_val_photos(hymenoptera)[1]).convert("RGB").resize((1200, 700), Image.BICUBIC)
    for name, img, fmt in [
        ("noise-small.png", Image.fromarray(rng.integers(0, 256, (97, 150, 3), dtype=np.uint8)), "PNG"),
        ("big.png", big, "PNG"),
        ("tall-exact-width.png", Image.fromarray(rng.integers(0, 256, (500, 288, 3), dtype=np.uint8)), "PNG"),
        ("alpha.png", Image.fromarray(rng.integers(0, 256, (300, 400, 4), dtype=np.uint8), "RGBA"), "PNG"),
    ]:
        buf = io.BytesIO()
        img.save(buf, fmt)
        cases[name] = buf.getvalue()
    turned = Image.open(_val_photos(hymenoptera)[0])
    exif = turned.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    buf = io.BytesIO()
    turned.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    cases["exif-6.jpg"] = buf.getvalue()
    for name, data in cases.items():
        (folder / name).write_bytes(data)
    return cases


def test_the_page_prepares_photos_byte_for_byte_as_the_server(open_page, webapp_site, hymenoptera):
    size = webapp_site["meta"]["input_size"]
    cases = _write_cases(webapp_site["root"] / "test-photos", hymenoptera)
    page = open_page()
    mismatched = {}
    for name, data in cases.items():
        got = page.evaluate("""async ([name, size]) => {
            const blob = await (await fetch(`test-photos/${name}`)).blob();
            return window.snapclassWebapp.crop(blob, size);
        }""", [name, size])
        # What /predict does with the same bytes.
        decoded = images.decode(data, max_bytes=50 << 20, max_pixels=50_000_000, min_side=2 * size)
        want = prepare(decoded.image, size)
        got = np.array(got, dtype=np.uint8).reshape(size, size, 3)
        if not np.array_equal(got, want):
            diff = np.abs(got.astype(int) - want.astype(int))
            mismatched[name] = (int(diff.max()), int((diff > 0).sum()))
    # Measured: every case identical, transparency onto white included.
    assert not mismatched, f"(largest difference, differing values) per photo: {mismatched}"


def test_the_webcam_is_classified(open_page, webapp_site):
    page = open_page()  # Chromium's fake camera (the conftest's flags), granted without asking
    page.get_by_role("button", name="Camera").click()
    expect(page.locator("#answer [data-top-label]")).to_have_count(1)
    expect(page.locator("#bars .bar")).to_have_count(2)
    label = page.locator("#answer [data-top-label]").get_attribute("data-top-label")
    assert label in ("ants", "bees", "unknown")
    expect(page.get_by_role("button", name="Stop the camera")).to_be_visible()
    # It keeps classifying frames: the similarity of the moving fake picture changes.
    first = page.locator("#answer").get_attribute("data-similarity")
    expect(page.locator("#answer")).not_to_have_attribute("data-similarity", first, timeout=20_000)
    page.get_by_role("button", name="Stop the camera").click()
    expect(page.locator("#video-off")).to_be_visible()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_screenshots(open_page, webapp_site, hymenoptera, tmp_path, size):
    """How the page looks with an answer, at both sizes (written under the test's tmp dir to look at)."""
    if size == "phone":
        page = open_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    else:
        page = open_page(viewport={"width": 1280, "height": 800})
    _classify(page, _val_photos(hymenoptera)[-1])
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], "the page scrolls sideways"
    page.screenshot(path=str(tmp_path / f"webapp-{size}.png"), full_page=True)
    page.get_by_role("button", name="Camera").click()
    expect(page.locator("#bars .bar")).to_have_count(2)
    page.screenshot(path=str(tmp_path / f"webapp-{size}-camera.png"), full_page=True)
