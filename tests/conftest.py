"""Shared fixtures: the real app over HTTP on a real SQLite file under tmp_path, and real photos."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.main import create_app

# Private PostgreSQL, Redis and S3 (moto) servers for the tests that run on them.
pytest_plugins = ["tests.services"]

REPO = Path(__file__).resolve().parent.parent
# The photos lie next to the checkout; a git worktree elsewhere names them with SNAPCLASS_TEST_DATASETS.
DATASETS = Path(os.environ.get("SNAPCLASS_TEST_DATASETS") or REPO.parent / "shared" / "datasets")


def dataset(*parts: str) -> Path:
    path = DATASETS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"dataset folder {path} is missing (see ../shared/datasets/README.md)", allow_module_level=True)
    return path


def photos(*parts: str, limit: int | None = None) -> list[Path]:
    files = sorted(p for p in dataset(*parts).iterdir() if p.is_file())
    return files[:limit] if limit else files


# SNAPCLASS_TEST_POSTGRES=1 runs tests on PostgreSQL: every test gets a fresh database on a private server, named by
# DATABASE_URL, which every Settings() reads (scripts/test runs a set of the suite so, beside the SQLite run).
ON_POSTGRES = os.environ.get("SNAPCLASS_TEST_POSTGRES") == "1"
sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="about the SQLite file itself")


@pytest.fixture(autouse=True)
def _database_for_test(request, monkeypatch):
    if ON_POSTGRES:
        from tests.services import new_database

        server = request.getfixturevalue("pg_server")
        monkeypatch.setenv("DATABASE_URL", new_database(server, f"t{os.urandom(6).hex()}"))
    yield


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """The backbone's ONNX graph is derived data: one copy serves every app in the test session."""
    return tmp_path_factory.mktemp("cache")


def make_client(data_dir: Path, cache: Path) -> TestClient:
    return TestClient(create_app(Settings(data_dir=data_dir, cache_path=cache)))


@pytest.fixture
def client(tmp_path, cache_dir):
    with make_client(tmp_path / "data", cache_dir) as c:
        yield c


def jpeg_bytes(color=(200, 30, 30), size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def upload(client: TestClient, class_id: int, paths: list[Path], **form):
    files = [("files", (p.name, p.read_bytes())) for p in paths]
    return client.post(f"/api/classes/{class_id}/samples", files=files, data=form)


def make_project(client: TestClient, name: str = "test", classes=("a", "b")) -> tuple[int, list[int]]:
    pid = client.post("/api/projects", json={"name": name}).json()["id"]
    cids = [client.post(f"/api/projects/{pid}/classes", json={"name": c}).json()["id"] for c in classes]
    return pid, cids


def wait_job(client: TestClient, job_id: int, timeout: float = 300, follow_ups: bool = False) -> dict:
    """The job once finished; with `follow_ups`, also once its learning curves (worked out after the model
    is ready) are in, so that tests comparing answers before and after something do not see them arrive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        pending = (job.get("metrics") or {}).get("learning_curves", {}).get("status") == "pending"
        if job["status"] in ("succeeded", "failed", "cancelled") and not (follow_ups and pending):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job}")


def train(client: TestClient, project_id: int, **body) -> dict:
    r = client.post(f"/api/projects/{project_id}/train", json={"mode": "head", **body})
    assert r.status_code == 202, r.text
    return wait_job(client, r.json()["job_id"])
