"""Issue 13's table, measured in one run: jobs per minute with one and with two `snapclass worker` processes on the
same services, and the web processes' POST /predict p50 while training runs.

The services are the tests' private instances (tests/services.py): PostgreSQL, redis-server and moto's S3 server,
reached through the app's own settings. Two `serve` processes; each phase trains fresh projects of the same size
(cold jobs: upload done -> model ready, extraction included), submitted all at once, half through each web process.

    .venv/bin/python -m bench.scaleout          # 6 projects of 24 photos per phase (about 4 minutes on 2 cores)
    .venv/bin/python -m bench.scaleout 4 16     # projects per phase, photos per project
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.common import machine, ok, photos
from tests.services import cluster, new_bucket, new_database, postgres_server, redis_server, s3_server

ANTS, BEES = photos("hymenoptera", "train", "ants"), photos("hymenoptera", "train", "bees")
PROBE = photos("hymenoptera", "val", "bees")[:20]


def make_project(client: httpx.Client, name: str, n: int, offset: int) -> int:
    pid = ok(client.post("/api/projects", json={"name": name}))["id"]
    for label, pool in (("ants", ANTS), ("bees", BEES)):
        cid = ok(client.post(f"/api/projects/{pid}/classes", json={"name": label}))["id"]
        chosen = [pool[(offset + i) % len(pool)] for i in range(n // 2)]
        ok(client.post(f"/api/classes/{cid}/samples", files=[("files", (p.name, p.read_bytes())) for p in chosen]))
    return pid


def wait_all(client: httpx.Client, job_ids: list[int], timeout: float = 1800) -> list[dict]:
    deadline, done = time.monotonic() + timeout, {}
    while len(done) < len(job_ids):
        for jid in job_ids:
            if jid not in done:
                job = client.get(f"/api/jobs/{jid}").json()
                if job["status"] not in ("queued", "running"):
                    assert job["status"] == "succeeded", job
                    done[jid] = job
        assert time.monotonic() < deadline, "jobs did not finish"
        time.sleep(0.2)
    return [done[j] for j in job_ids]


def phase(clients: list[httpx.Client], projects: list[int]) -> float:
    """Jobs per minute: all submitted at once, timed from the first submit to the last model ready."""
    start = time.monotonic()
    jobs = [ok(clients[i % 2].post(f"/api/projects/{pid}/train", json={"mode": "head"}))["job_id"]
            for i, pid in enumerate(projects)]
    wait_all(clients[0], jobs)
    return len(jobs) / ((time.monotonic() - start) / 60)


class Prober(threading.Thread):
    """POST /predict through both web processes in turn, one at a time, until stopped: milliseconds each."""

    def __init__(self, urls: list[str], pid: int):
        super().__init__(daemon=True)
        self.clients = [httpx.Client(base_url=u, timeout=60) for u in urls]
        self.pid, self.times, self.stop = pid, [], threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            path = PROBE[i % len(PROBE)]
            t = time.perf_counter()
            ok(self.clients[i % 2].post(f"/api/projects/{self.pid}/predict",
                                        files={"file": (path.name, path.read_bytes())}))
            self.times.append((time.perf_counter() - t) * 1000)
            i += 1


def p50_p95(times: list[float]) -> str:
    q = statistics.quantiles(times, n=20)
    return f"p50 {statistics.median(times):.1f} ms, p95 {q[18]:.1f} ms ({len(times)} requests)"


def main() -> None:
    per_phase = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    root = Path(tempfile.mkdtemp(prefix="scaleout-"))
    with postgres_server(root / "pg") as pg, redis_server(root / "redis") as redis, s3_server(root / "s3") as s3:
        db, bucket = new_database(pg, "bench"), new_bucket(s3)
        with cluster(root / "cluster", db, redis, s3, bucket, webs=2, workers=1) as c:
            clients = [httpx.Client(base_url=u, timeout=120) for u in c.urls]
            # A trained project for the predict probe; its job also warms the first worker.
            probe_pid = make_project(clients[0], "probe", size, 0)
            phase(clients, [probe_pid])
            idle = Prober(c.urls, probe_pid)
            idle.start()
            time.sleep(8)
            idle.stop.set()
            idle.join()

            one = [make_project(clients[i % 2], f"one-{i}", size, 7 * i + 1) for i in range(per_phase)]
            two = [make_project(clients[i % 2], f"two-{i}", size, 7 * i + 3) for i in range(per_phase)]
            busy = Prober(c.urls, probe_pid)
            busy.start()
            rate_one = phase(clients, one)
            c.start_worker()
            time.sleep(15)  # the second worker starts and warms up (imports, ONNX session) before it is timed
            rate_two = phase(clients, two)
            busy.stop.set()
            busy.join()

    print(f"machine: {machine()}")
    print("| measure | value |")
    print("|---|---|")
    print(f"| jobs per minute, 1 worker ({per_phase} cold head jobs of {size} photos, submitted at once) | "
          f"{rate_one:.1f} |")
    print(f"| jobs per minute, 2 workers (same services, {per_phase} more such jobs) | {rate_two:.1f} = "
          f"**{rate_two / rate_one:.2f}x** |")
    print(f"| POST /predict through the 2 web processes, nothing training | {p50_p95(idle.times)} |")
    print(f"| POST /predict through the 2 web processes while the jobs above train | {p50_p95(busy.times)} |")


if __name__ == "__main__":
    main()
