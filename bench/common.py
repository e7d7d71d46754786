"""Helpers for benchmarks: a real server process on a free port, and the shared photos."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parent.parent
# Next to the checkout; a git worktree elsewhere names them as the tests do.
DATASETS = Path(os.environ.get("SNAPCLASS_TEST_DATASETS") or REPO.parent / "shared" / "datasets")


def documented_input(path: Path, size: int) -> np.ndarray:
    """A downloaded model's input as API.md documents it, written without any snapclass code:
    shorter side to S (bilinear), center crop S x S, RGB in [0, 1], 1x3xSxS float32."""
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    w, h = img.size
    s = size / min(w, h)
    img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    img = img.crop((left, top, left + size, top + size))
    return (np.asarray(img, dtype=np.float32) / 255).transpose(2, 0, 1)[None]


def bare_pipeline(paths: list[Path], size: int = 288, batch: int = 32) -> float:
    """img/s of the plain pipeline snapclass is measured against, on `paths`: Pillow's draft decode, shorter
    side to `size` and centre crop, ONNX Runtime with its default session options on the bare Lite0 backbone,
    batch 32, in one plain loop (no snapclass code between the file and the network)."""
    import onnxruntime as ort

    from app.ml.backbones import get_spec
    from app.ml.runtime import FeatureNet, export_onnx

    spec = get_spec("efficientnet_lite0")

    def load(path: Path) -> np.ndarray:
        img = Image.open(path)
        img.draft("RGB", (size, size))  # JPEG: decode at 1/2, 1/4 or 1/8 scale when that is still >= size
        img = img.convert("RGB")
        w, h = img.size
        s = size / min(w, h)
        img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
        left, top = (img.width - size) // 2, (img.height - size) // 2
        img = img.crop((left, top, left + size, top + size))
        return (np.asarray(img, dtype=np.float32) / 255).transpose(2, 0, 1)

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "bare.onnx"
        export_onnx(FeatureNet(spec.load(), spec.preprocessing, uint8_input=False), onnx_path, size, ["features"])
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        session.run(None, {name: np.stack([load(p) for p in paths[:batch]])})  # first run allocates
        start, done = time.perf_counter(), 0
        for i in range(0, len(paths) - batch + 1, batch):
            session.run(None, {name: np.stack([load(p) for p in paths[i:i + batch]])})
            done += batch
        return done / (time.perf_counter() - start)


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def photos(*parts: str) -> list[Path]:
    return sorted(p for p in DATASETS.joinpath(*parts).iterdir() if p.is_file())


def machine() -> str:
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except Exception:
        gpu = "?"
    return f"{platform.machine()}, {os.cpu_count()} cores, {gpu}, {time.strftime('%Y-%m-%d')}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120, what: str = "") -> None:
    """Until `serve` at `url` answers /api/health; RuntimeError (with `what`) if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start{': ' + what if what else ''}")
        time.sleep(0.2)


@contextlib.contextmanager
def server(data_dir: Path | None = None, env: dict | None = None):
    """`python -m app serve` as users start it; yields (base_url, process).

    A bench stopped with SIGTERM (kill, timeout) stops its server too: the signal becomes SystemExit,
    so the `finally` below runs instead of leaving a server training on, skewing the next bench.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        data = data_dir or Path(tmp) / "data"
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port), "--data-dir", str(data)],
            cwd=REPO, env={**os.environ, "SNAPCLASS_LOG_LEVEL": "warning", **(env or {})},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc)
            yield url, proc
        finally:
            proc.terminate()
            proc.wait(30)


def upload(client: httpx.Client, class_id: int, paths: list[Path], chunk: int = 64) -> None:
    for i in range(0, len(paths), chunk):
        files = [("files", (p.name, p.read_bytes())) for p in paths[i:i + chunk]]
        ok(client.post(f"/api/classes/{class_id}/samples", files=files))


def wait_job(client: httpx.Client, job_id: int, timeout: float = 1800) -> dict:
    start = time.monotonic()
    while time.monotonic() < start + timeout:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        # Each poll costs the server CPU that training would use (the page listens to a feed instead);
        # timings come from the job's own finished_at (timed_job), not from when a poll saw it.
        time.sleep(0.05 if time.monotonic() - start < 3 else 0.2)
    raise TimeoutError(job_id)


def timed_job(client: httpx.Client, pid: int, body: dict) -> tuple[float, dict]:
    """(seconds from POST /train to the model being ready, the job): ready is the server's finished_at,
    stamped as the job commits its model, on this same machine's clock."""
    start = time.time()
    job = wait_job(client, ok(client.post(f"/api/projects/{pid}/train", json=body))["job_id"])
    assert job["status"] == "succeeded", job
    finished = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00"))
    if finished.tzinfo is None:  # stored as UTC
        finished = finished.replace(tzinfo=timezone.utc)
    return finished.timestamp() - start, job


def settled(client: httpx.Client, job_id: int, timeout: float = 600) -> dict:
    """The job once its follow-up analysis (learning curves) has finished: latency measured while the
    worker still works them out measures two things at once on 2 cores."""
    start = time.monotonic()
    while time.monotonic() < start + timeout:
        job = client.get(f"/api/jobs/{job_id}").json()
        if (job.get("metrics") or {}).get("learning_curves", {}).get("status") != "pending":
            return job
        time.sleep(0.2)
    raise TimeoutError(job_id)


def ok(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")
    return response.json()


def project_with_classes(client: httpx.Client, name: str, classes: dict[str, list[Path]]) -> tuple[int, dict]:
    pid = ok(client.post("/api/projects", json={"name": name}))["id"]
    ids = {}
    for label, paths in classes.items():
        ids[label] = ok(client.post(f"/api/projects/{pid}/classes", json={"name": label}))["id"]
        upload(client, ids[label], paths)
    return pid, ids
