"""Jobs: queued, run by the worker thread, cancellable, never left 'running' by a crash or restart."""

from __future__ import annotations

import sqlite3
import time

from tests.conftest import make_client, make_project, photos, sqlite_only, upload, wait_job


def _trainable(client, n=6):
    pid, (a, b) = make_project(client, classes=("ants", "bees"))
    upload(client, a, photos("hymenoptera", "train", "ants", limit=n))
    upload(client, b, photos("hymenoptera", "train", "bees", limit=n))
    return pid


def test_a_job_runs_on_the_one_worker_thread(client):
    pid = _trainable(client)
    r = client.post(f"/api/projects/{pid}/train", json={"mode": "head", "epochs": 3})
    job = wait_job(client, r.json()["job_id"])
    assert job["status"] == "succeeded" and job["kind"] == "train"
    assert job["started_at"] and job["finished_at"]
    worker = client.app.state.services.worker
    assert worker.thread.name == "snapclass-worker" and worker.thread.is_alive()


def test_second_train_while_one_is_active_is_409(client):
    pid = _trainable(client)
    first = client.post(f"/api/projects/{pid}/train", json={"mode": "head", "epochs": 400, "batch_size": 1})
    second = client.post(f"/api/projects/{pid}/train", json={"mode": "head"})
    # Plain words for the person (no "job 3"); a client finds the running job on the project.
    assert second.status_code == 409 and second.json()["detail"].startswith("this project is already training")
    assert client.get(f"/api/projects/{pid}").json()["active_job_id"] == first.json()["job_id"]
    client.post(f"/api/jobs/{first.json()['job_id']}/cancel")
    wait_job(client, first.json()["job_id"])


def test_cancel_a_running_job(client):
    pid = _trainable(client)
    job_id = client.post(f"/api/projects/{pid}/train",
                         json={"mode": "head", "epochs": 500, "batch_size": 1}).json()["job_id"]
    deadline = time.monotonic() + 60
    while client.get(f"/api/jobs/{job_id}").json()["message"].startswith(("waiting", "starting", "reading",
                                                                            "preparing")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 202
    job = wait_job(client, job_id)
    assert job["status"] == "cancelled" and job["model_id"] is None
    assert client.get(f"/api/projects/{pid}").json()["model"] is None
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 409  # already finished


def test_a_failing_job_is_marked_failed_and_the_server_keeps_serving(client):
    pid = _trainable(client, n=3)
    store = client.app.state.services.store
    for path in store.root.rglob("*.*"):
        if ".thumb." not in path.name and ".orig." not in path.name:
            path.unlink()  # the images vanish from disk behind the server's back
    job = wait_job(client, client.post(f"/api/projects/{pid}/train", json={"mode": "head"}).json()["job_id"])
    assert job["status"] == "failed" and "FileNotFoundError" in job["message"]
    assert client.get("/api/health").status_code == 200
    assert client.get(f"/api/projects/{pid}").json()["active_job_id"] is None


@sqlite_only  # reads or writes the SQLite file directly
def test_restart_fails_running_jobs_and_resumes_queued_ones(tmp_path, cache_dir):
    data = tmp_path / "data"
    with make_client(data, cache_dir) as client:
        pid = _trainable(client, n=3)
    # As if the process died: one job mid-run, one still waiting in the queue.
    with sqlite3.connect(data / "snapclass.db") as conn:
        conn.execute("INSERT INTO jobs (project_id, kind, status, progress, message, params, metrics, "
                     "cancel_requested, created_at) VALUES (?, 'train', 'running', 0.4, 'epoch 3', "
                     "'{\"mode\": \"head\", \"epochs\": 3}', '{}', 0, '2026-01-01 00:00:00')", (pid,))
        conn.execute("INSERT INTO jobs (project_id, kind, status, progress, message, params, metrics, "
                     "cancel_requested, created_at) VALUES (?, 'train', 'queued', 0, 'waiting', "
                     "'{\"mode\": \"head\", \"epochs\": 3}', '{}', 0, '2026-01-01 00:00:01')", (pid,))
    with make_client(data, cache_dir) as client:
        died = client.get("/api/jobs/1").json()
        assert died["status"] == "failed" and "interrupted" in died["message"]
        resumed = wait_job(client, 2)
        assert resumed["status"] == "succeeded" and resumed["model_id"] is not None
