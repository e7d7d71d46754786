"""Beyond one machine: two `serve` and two `worker` processes on real PostgreSQL, Redis and S3 (moto's server, reached
only through the app's S3 client and an endpoint URL), each process on its own empty data dir."""

from __future__ import annotations

import io
import os
import signal
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from tests.conftest import photos
from tests.services import cluster, new_bucket

pytestmark = pytest.mark.slow


def _sql(url: str):
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg_server, redis_url, s3_env):
    from tests.services import new_database

    db = new_database(pg_server, "scaleout")
    bucket = new_bucket(s3_env)
    with cluster(tmp_path_factory.mktemp("cluster"), db, redis_url, s3_env, bucket) as c:
        c.db, c.bucket = db, bucket
        c.clients = [httpx.Client(base_url=u, timeout=120) for u in c.urls]
        yield c
        for client in c.clients:
            client.close()


def _project(client: httpx.Client, name: str, n: int = 8) -> tuple[int, list[int]]:
    pid = client.post("/api/projects", json={"name": name}).json()["id"]
    cids = []
    for label in ("ants", "bees"):
        cid = client.post(f"/api/projects/{pid}/classes", json={"name": label}).json()["id"]
        files = [("files", (p.name, p.read_bytes())) for p in photos("hymenoptera", "train", label, limit=n)]
        assert client.post(f"/api/classes/{cid}/samples", files=files).status_code == 201
        cids.append(cid)
    return pid, cids


def _wait(client: httpx.Client, job_id: int, timeout: float = 240, until=("succeeded", "failed", "cancelled")):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s: {job['message']}")


def _job_row(deployment, job_id: int) -> tuple[str | None, int]:
    with _sql(deployment.db) as conn:
        return conn.execute("SELECT worker, attempts FROM jobs WHERE id = %s", (job_id,)).fetchone()


def test_two_projects_train_at_once_on_the_two_workers(deployment):
    web1, web2 = deployment.clients
    (pa, _), (pb, _) = _project(web1, "first"), _project(web2, "second")
    # Long enough that both are running at the same moment, one on each worker.
    body = {"mode": "head", "epochs": 60, "batch_size": 1}
    ja = web1.post(f"/api/projects/{pa}/train", json=body).json()["job_id"]
    jb = web2.post(f"/api/projects/{pb}/train", json=body).json()["job_id"]
    assert _wait(web2, ja)["status"] == "succeeded" and _wait(web1, jb)["status"] == "succeeded"
    (wa, _), (wb, _) = _job_row(deployment, ja), _job_row(deployment, jb)
    assert wa and wb and wa != wb  # two workers, one job each
    # Either web process answers for either project with its model.
    for client in (web1, web2):
        for pid in (pa, pb):
            one = photos("hymenoptera", "val", "bees", limit=1)[0]
            r = client.post(f"/api/projects/{pid}/predict", files={"file": (one.name, one.read_bytes())})
            assert r.status_code == 200, r.text
    deployment.trained = (pa, pb)


def test_uploads_through_both_web_processes_at_once_lose_nothing(deployment):
    web1, web2 = deployment.clients
    pid = web1.post("/api/projects", json={"name": "uploads"}).json()["id"]
    cid = web1.post(f"/api/projects/{pid}/classes", json={"name": "ants"}).json()["id"]
    files = photos("hymenoptera", "train", "ants", limit=40)

    def send(i: int) -> int:
        client = (web1, web2)[i % 2]
        batch = files[i * 4:(i + 1) * 4]
        r = client.post(f"/api/classes/{cid}/samples", files=[("files", (p.name, p.read_bytes())) for p in batch])
        assert r.status_code == 201, r.text
        return len(r.json()["added"])

    with ThreadPoolExecutor(8) as pool:
        added = sum(pool.map(send, range(10)))
    assert added == 40
    for client in (web1, web2):
        assert client.get(f"/api/projects/{pid}").json()["classes"][0]["sample_count"] == 40
    ids = [s["id"] for s in web2.get(f"/api/classes/{cid}/samples").json()]
    assert len(ids) == len(set(ids)) == 40
    # Every photo's bytes come back from either process (they live in the bucket, not a process's disk).
    sample = web2.get(f"/api/classes/{cid}/samples").json()[0]
    assert web1.get(sample["url"]).content == web2.get(sample["url"]).content


def test_a_retrain_through_one_web_process_is_used_by_the_other_within_a_second(deployment):
    web1, web2 = deployment.clients
    pid = deployment.trained[0]
    one = photos("hymenoptera", "val", "ants", limit=1)[0]

    def model_id_at(client):
        r = client.post(f"/api/projects/{pid}/predict", files={"file": (one.name, one.read_bytes())})
        assert r.status_code == 200, r.text
        return r.json()["model_id"]

    before = model_id_at(web2)
    job = _wait(web1, web1.post(f"/api/projects/{pid}/train", json={"mode": "head"}).json()["job_id"])
    seen = time.monotonic()
    assert job["status"] == "succeeded" and job["model_id"] != before
    while model_id_at(web2) != job["model_id"]:
        assert time.monotonic() - seen < 1.0, "web2 still answers with the old model a second after"
        time.sleep(0.02)


def _well_into_training(deployment, client: httpx.Client, pid: int):
    """A long job started and well into training (where a signal lands mid-job, not after it): its id, its
    worker's name and attempts, and that worker's process."""
    job_id = client.post(f"/api/projects/{pid}/train", json={"mode": "head", "epochs": 400, "batch_size": 1}).json()[
        "job_id"]
    deadline = time.monotonic() + 120
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] == "running" and job["progress"] > 0.2:
            break
        assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(0.05)
    holder, attempts = _job_row(deployment, job_id)
    process = next(p for p in deployment.workers if p.poll() is None and f":{p.pid}:" in holder)
    return job_id, holder, attempts, process


def test_a_worker_killed_mid_job_loses_nothing_another_takes_it_up(deployment):
    web1, web2 = deployment.clients
    pid, _ = _project(web1, "killed")
    job_id, holder, attempts, victim = _well_into_training(deployment, web1, pid)  # then kill it without warning
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    deployment.start_worker()  # keep two for the tests after this one
    job = _wait(web2, job_id, timeout=300)
    assert job["status"] == "succeeded", job["message"]
    new_holder, attempts_after = _job_row(deployment, job_id)
    assert new_holder != holder and attempts_after == attempts + 1
    # The model was written once: this project has exactly one, the job's, and it is current.
    models = web2.get(f"/api/projects/{pid}/models").json()
    assert [m["id"] for m in models] == [job["model_id"]]
    assert web1.get(f"/api/projects/{pid}").json()["model"]["id"] == job["model_id"]


def test_sigterm_hands_the_job_in_hand_back_and_another_worker_runs_it_uncounted(deployment):
    web1, web2 = deployment.clients
    pid, _ = _project(web2, "stopped")
    job_id, holder, attempts, stopped = _well_into_training(deployment, web2, pid)
    stopped.terminate()
    assert stopped.wait(30) == 0  # it stops at the job's next step, not after the job
    deployment.start_worker()
    job = _wait(web1, job_id, timeout=300)
    assert job["status"] == "succeeded", job["message"]
    new_holder, attempts_after = _job_row(deployment, job_id)
    assert new_holder != holder and attempts_after == attempts  # handed back: not counted as a failed attempt


def test_a_job_whose_model_was_written_before_its_worker_died_is_done_not_rerun(pg_url):
    from datetime import timedelta

    from app import crud
    from app.db import init_db, make_engine, make_session_factory, session_scope
    from app.models import Project, TrainedModel, utcnow

    engine = make_engine(pg_url)
    init_db(engine)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        project = Project(name="p", backbone="efficientnet_lite0")
        s.add(project)
        s.flush()
        job = crud.create_job(session=s, project_id=project.id, kind="train", params={})
        job_id = job.id
        assert crud.claim_job(session=s, job_id=job_id, worker="gone:1:x", seconds=15) is not None
        model = TrainedModel(project_id=project.id, version=1, backbone="b", features="b", mode="head",
                             labels=["a", "b"], class_ids=[1, 2], format_version=1, weights=b"", metrics={})
        s.add(model)
        s.flush()
        assert crud.renew_lease(session=s, job_id=job_id, worker="gone:1:x", seconds=15, model_id=model.id) is False
    with session_scope(factory) as s:  # the worker died right after: its lease passes
        s.get(crud.Job, job_id).lease_until = utcnow() - timedelta(seconds=1)
    with session_scope(factory) as s:
        assert crud.requeue_lost_jobs(session=s, max_attempts=3) == []
    with session_scope(factory) as s:
        job = crud.get_job(session=s, job_id=job_id)
        assert (job.status, job.model_id is not None) == ("succeeded", True)
        assert crud.claim_job(session=s, job_id=job_id, worker="other:2:y", seconds=15) is None
    engine.dispose()


def test_cancel_through_the_other_web_process(deployment):
    web1, web2 = deployment.clients
    pid = deployment.trained[1]
    job_id = web1.post(f"/api/projects/{pid}/train", json={"mode": "head", "epochs": 400, "batch_size": 1}).json()[
        "job_id"]
    _wait(web1, job_id, until=("running",))
    assert web2.post(f"/api/jobs/{job_id}/cancel").status_code == 202
    started = time.monotonic()
    job = _wait(web1, job_id, timeout=60)
    assert job["status"] == "cancelled" and job["model_id"] is None
    assert time.monotonic() - started < 10
    assert web1.post(f"/api/projects/{pid}/train", json={"mode": "head"}).status_code == 202  # free again


def test_exports_downloads_and_imports_work_from_any_process(deployment):
    web1, web2 = deployment.clients
    pid = deployment.trained[0]
    _wait(web1, web1.get(f"/api/projects/{pid}/jobs/latest").json()["id"])
    made = web2.get(f"/api/projects/{pid}/export")
    assert made.status_code == 200
    with zipfile.ZipFile(io.BytesIO(made.content)) as z:
        assert sum(n.startswith("photos/") for n in z.namelist()) == 16
    onnx = web2.get(f"/api/projects/{pid}/model/download", params={"format": "onnx"})
    assert onnx.status_code == 200 and len(onnx.content) > 100_000
    imported = web1.post("/api/projects/import", files={"file": ("p.zip", made.content, "application/zip")})
    assert imported.status_code == 201, imported.text
    new = imported.json()["id"]
    assert sum(c["sample_count"] for c in web2.get(f"/api/projects/{new}").json()["classes"]) == 16


def test_nothing_but_caches_is_written_under_the_data_dirs(deployment):
    for data in deployment.data_dirs:
        if not data.exists():
            continue
        for path in data.rglob("*"):
            if path.is_file():
                assert path.relative_to(data).parts[0] == "cache", path
