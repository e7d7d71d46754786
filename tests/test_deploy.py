"""The scale-out deployment as files and commands: the compose profile, and `snapclass worker`'s refusals."""

from __future__ import annotations

import subprocess
import sys

import yaml

from tests.conftest import REPO


def _cli(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd or REPO, env={**os.environ, **(env or {})})


def test_compose_scaleout_profile_runs_the_services_two_webs_and_a_gpu_worker():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    scaleout = {name for name, s in services.items() if "scaleout" in s.get("profiles", [])}
    assert {"postgres", "redis", "minio", "migrate", "web1", "web2", "worker"} <= scaleout
    assert "profiles" not in services["snapclass"]  # `docker compose up` alone stays the one-process default
    env = services["web1"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:" in env["DATABASE_URL"]
    assert env["SNAPCLASS_QUEUE_URL"] == "redis://redis:6379/0"
    assert env["SNAPCLASS_BLOB_URL"].startswith("s3://") and env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    for name in ("web2", "worker", "migrate"):
        assert services[name]["environment"] == env, name  # every process on the same services
    assert services["web1"]["ports"] != services["web2"]["ports"]
    worker = services["worker"]
    assert worker["command"][:2] == ["snapclass", "worker"] and "--device" in worker["command"]
    gpu = worker["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    for name in ("web1", "web2", "worker"):  # nobody starts on a schema that is not migrated yet
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_worker_help_and_its_refusals(tmp_path):
    assert _cli("worker", "--help").returncode == 0
    no_queue = _cli("worker", "--data-dir", str(tmp_path / "w"), env={"SNAPCLASS_QUEUE_URL": ""})
    assert no_queue.returncode == 2 and "SNAPCLASS_QUEUE_URL is not set" in no_queue.stderr
    # A worker never migrates: on a database no `migrate` has prepared it says what to run.
    unmigrated = _cli("worker", "--data-dir", str(tmp_path / "w"),
                      env={"SNAPCLASS_QUEUE_URL": "redis://127.0.0.1:1/0"})
    assert unmigrated.returncode == 1 and "snapclass migrate" in unmigrated.stderr
