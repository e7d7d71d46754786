"""Issue 12's scale table, measured in one run against a real server: one project of CIFAR-10 photos
(cifar10-scale, 32x32 JPEGs, 10 classes) grown to 5,000 and then 20,000 photos.

At each size: upload rate, the training job that embeds the new photos (its extraction img/s against the bare
pipeline's on the same photos), a warm retrain (everything cached), POST /predict p50/p95, the load times of
the project page, the models page and the first page of a class's photos, and the server's memory.

    .venv/bin/python -m bench.scale            # 5,000 and 20,000 (about 15 minutes on 2 cores)
    .venv/bin/python -m bench.scale 2000       # other sizes, for a quick look
    SNAPCLASS_BENCH_DATA=/tmp/scale .venv/bin/python -m bench.scale   # keeps the server's data dir
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from bench.common import bare_pipeline, machine, ok, photos, rss_mb, server, settled, timed_job, upload

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def timed(client: httpx.Client, method: str, url: str, repeat: int = 5) -> float:
    """Median milliseconds of `repeat` requests, after one to warm up."""
    ok_status = client.request(method, url)
    assert ok_status.status_code == 200, (url, ok_status.status_code)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.request(method, url)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, url
    return statistics.median(times)


WARM_RUNS = 3


def train(client: httpx.Client, pid: int) -> tuple[float, dict]:
    return timed_job(client, pid, {"mode": "head"})


def main(sizes: list[int]) -> None:
    per_class = {c: photos("cifar10-scale", c) for c in CLASSES}
    probe = [p for c in CLASSES for p in per_class[c][:64]]  # 640 of the same photos for the bare pipeline
    bare = bare_pipeline(probe)
    queries = [p for c in CLASSES for p in photos("cifar10-mini", "test", c)[:5]]
    rows = []
    keep = os.environ.get("SNAPCLASS_BENCH_DATA")  # a folder to keep the server's data in, to look at later
    with server(Path(keep) if keep else None) as (url, proc), httpx.Client(base_url=url, timeout=1800) as client:
        idle = rss_mb(proc.pid)[0]
        pid = ok(client.post("/api/projects", json={"name": "scale"}))["id"]
        cids = {c: ok(client.post(f"/api/projects/{pid}/classes", json={"name": c}))["id"] for c in CLASSES}
        have = 0
        for n in sizes:
            each = n // len(CLASSES)
            start = time.perf_counter()
            for c in CLASSES:
                upload(client, cids[c], per_class[c][have // len(CLASSES):each])
            upload_rate = (n - have) / (time.perf_counter() - start)
            have = n
            cold, job = train(client, pid)
            warms = [train(client, pid) for _ in range(WARM_RUNS)]
            settled(client, warms[-1][1]["id"])  # its learning curves done: predict and the pages get the cores
            warm, warm_job = sorted(warms, key=lambda r: r[0])[WARM_RUNS // 2]  # one noisy run is not the figure
            files = [(p.name, p.read_bytes()) for p in queries]
            for f in files[:5]:
                ok(client.post(f"/api/projects/{pid}/predict", files={"file": f}))
            lat = []
            for f in files:
                t = time.perf_counter()
                ok(client.post(f"/api/projects/{pid}/predict", files={"file": f}))
                lat.append((time.perf_counter() - t) * 1000)
            rows.append({
                "n": n, "upload": upload_rate, "job": cold, "extract": job["metrics"]["extract_images_per_second"],
                "accuracy": job["metrics"]["balanced_accuracy"], "warm": warm,
                "head": warm_job["metrics"]["head_seconds"],
                "p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)),
                "project_page": timed(client, "GET", f"/projects/{pid}"),
                "models_page": timed(client, "GET", f"/projects/{pid}/models"),
                "photos_page": timed(client, "GET", f"/api/classes/{cids['cat']}/samples?limit=60"),
                "project_api": timed(client, "GET", f"/api/projects/{pid}"),
                "rss": rss_mb(proc.pid)[0],
            })
        peak = rss_mb(proc.pid)[1]

    print(f"machine: {machine()}")
    print(f"bare pipeline (Pillow draft decode + ONNX Runtime Lite0 at 288 px, batch 32) on 640 of these photos: "
          f"{bare:.1f} img/s")
    print(f"server memory idle after start: {idle:.0f} MiB; peak over the run: {peak:.0f} MiB "
          f"(**{(peak - idle) / 1024:.2f} GiB** above idle)")
    print("| photos | upload | training job (embeds the new) | extraction | warm retrain (head) | accuracy "
          "| predict p50 / p95 | project page | models page | 60 photos of a class | GET project | RSS |")
    print("|" + "---|" * 12)
    for r in rows:
        print(f"| {r['n']:,} | {r['upload']:.0f} img/s | {r['job']:.1f} s | {r['extract']:.1f} img/s = "
              f"**{r['extract'] / bare:.2f}x** bare | **{r['warm']:.2f} s** (median of {WARM_RUNS}; "
              f"head {r['head']:.2f} s) | "
              f"{r['accuracy']:.3f} | {r['p50']:.1f} / {r['p95']:.1f} ms | {r['project_page']:.0f} ms | "
              f"{r['models_page']:.0f} ms | {r['photos_page']:.0f} ms | {r['project_api']:.0f} ms | "
              f"{r['rss']:.0f} MiB |")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [5000, 20000])
