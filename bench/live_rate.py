"""Issue 3's figure: predictions per second of the live page, measured end to end in the browser.

A real server (`python -m app serve`), a 2-class hymenoptera project trained in head mode, and the
live page in Debian's Chromium with its fake camera, which plays hymenoptera/val photos at 640x480
(an MJPEG file; `--pattern` uses Chromium's synthetic test pattern instead): frames are grabbed from
the <video>, encoded as JPEG, sent over the WebSocket one at a time, and counted when their answer
arrives. After a warm-up, the page's own counters (window.__liveStats) are read twice, `--seconds` apart.

    .venv/bin/python -m bench.live_rate [--seconds 15] [--warmup 5] [--size 288] [--quality 0.8] [--pattern]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image, ImageOps

from bench.common import machine, photos, project_with_classes, server, wait_job

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
SNAPSHOT = "() => ({ ...window.__liveStats, now: performance.now() })"


def photo_camera(path: Path, per_photo: int = 15) -> Path:
    """An MJPEG file for --use-file-for-fake-video-capture: bees, then ants, each photo for half a second."""
    with path.open("wb") as out:
        for label in ("bees", "ants"):
            for photo in photos("hymenoptera", "val", label)[:20]:
                img = ImageOps.fit(ImageOps.exif_transpose(Image.open(photo)).convert("RGB"), (640, 480))
                buf = io.BytesIO()
                img.save(buf, "JPEG", quality=85)
                out.write(buf.getvalue() * per_photo)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--size", type=int, default=0, help="shorter side of a frame (default: the model's input)")
    parser.add_argument("--quality", type=float, default=0, help="JPEG quality (default: the page's 0.8)")
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--pattern", action="store_true", help="Chromium's synthetic camera instead of photos")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    load = os.getloadavg()
    classes = {c: photos("hymenoptera", "train", c)[:args.per_class] for c in ("ants", "bees")}
    with (tempfile.TemporaryDirectory() as tmp, server() as (url, _),
          httpx.Client(base_url=url, timeout=600) as client):
        camera = [] if args.pattern else [
            f"--use-file-for-fake-video-capture={photo_camera(Path(tmp) / 'camera.mjpeg')}"]
        pid, _ = project_with_classes(client, "live rate", classes)
        job_id = client.post(f"/api/projects/{pid}/train", json={"mode": "head"}).json()["job_id"]
        job = wait_job(client, job_id)
        assert job["status"] == "succeeded", job
        query = "&".join(f"{k}={v}" for k, v in (("size", args.size), ("quality", args.quality)) if v)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS + camera)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}/projects/{pid}/live" + (f"?{query}" if query else ""))
            page.wait_for_function("() => window.__liveStats && window.__liveStats.frames > 0", timeout=120_000)
            time.sleep(args.warmup)
            a = page.evaluate(SNAPSHOT)
            time.sleep(args.seconds)
            b = page.evaluate(SNAPSHOT)
            shown = page.get_by_test_id("live-pps").text_content()
            browser.close()
    frames = b["frames"] - a["frames"]
    seconds = (b["now"] - a["now"]) / 1000
    assert frames > 0 and b["errors"] == a["errors"], (a, b)
    sent = b["sent"] - a["sent"]
    print(f"machine: {machine()}")
    source = "synthetic pattern" if args.pattern else "hymenoptera photos"
    print(f"live page, Chromium {page_version(url)}, fake camera ({source}) 640x480 -> "
          f"{b['frameWidth']}x{b['frameHeight']} "
          f"JPEG q{b['quality']}, {(b['bytes'] - a['bytes']) / sent / 1024:.1f} KiB/frame, one frame in flight")
    print(f"predictions per second, measured in the browser over {seconds:.1f} s: {frames / seconds:.1f} "
          f"({frames} answers; the page showed {shown}/s)")
    mean = {k: (b[k] - a[k]) / frames for k in ("gapMsTotal", "rttTotal", "serverMsTotal")}
    grab = (b["grabMsTotal"] - a["grabMsTotal"]) / max(1, b["grabs"] - a["grabs"])
    print(f"per prediction {1000 * seconds / frames:.1f} ms = round trip (send -> answer) {mean['rttTotal']:.1f} ms "
          f"(server {mean['serverMsTotal']:.1f} ms) + answer -> next send {mean['gapMsTotal']:.1f} ms; "
          f"grabbing + encoding a frame takes {grab:.1f} ms, mostly while the server works")
    print(f"load average before: {load[0]:.2f}, after: {os.getloadavg()[0]:.2f} (other processes slow it down)")


def page_version(_url: str) -> str:
    import subprocess

    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout
        return out.split()[1]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


if __name__ == "__main__":
    main()
