"""Training jobs through a Redis queue (SNAPCLASS_QUEUE_URL): `serve` only enqueues, `snapclass worker` processes run.

RQ carries job ids, nothing else; the database stays the one truth about every job (app.jobs). RQ's SimpleWorker
runs each job in the worker process itself, without forking, so the process keeps one CUDA context (and its warm
backbone) for its whole life. Losing a message costs nothing: a worker also queues again any job the database says
is waiting that Redis does not hold, and any running job whose worker stopped renewing its lease. Enqueueing a job
twice is harmless: only one claim of it succeeds (crud.claim_job).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import timedelta

from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy.orm import Session, sessionmaker

from app import crud
from app.db import session_scope
from app.jobs import LEASE_SECONDS, MAX_ATTEMPTS, RENEW_SECONDS, Worker

log = logging.getLogger("snapclass.queue")

QUEUE_NAME = "snapclass-train"
# How often a worker looks for jobs to queue again; a queued job younger than this may still be on its way.
SWEEP_SECONDS = 5.0


def connect(url: str) -> Redis:
    return Redis.from_url(url, health_check_interval=30, socket_connect_timeout=5)


def enqueue(queue: Queue, job_id: int) -> None:
    # job_timeout -1: a fine-tuning may take an hour; the lease, not RQ, decides when a worker is gone.
    queue.enqueue("app.queue.perform", job_id, job_id=f"snapclass-{job_id}-{secrets.token_hex(4)}",
                  job_timeout=-1, result_ttl=0, failure_ttl=24 * 3600, description=f"training job {job_id}")


def _db_id(rq_id: str) -> int | None:
    parts = rq_id.split("-")
    return int(parts[1]) if len(parts) == 3 and parts[0] == "snapclass" and parts[1].isdigit() else None


class QueueRunner:
    """What `serve` has instead of the worker thread when a queue is set: the same submit/cancel interface."""

    current_job = None

    def __init__(self, url: str, session_factory: sessionmaker[Session]):
        self.session_factory = session_factory
        self.queue = Queue(QUEUE_NAME, connection=connect(url))

    def start(self) -> None:
        pass  # serve never trains, and never touches another process's running job

    def stop(self, timeout: float = 30) -> None:
        self.queue.connection.close()

    def submit(self, job_id: int) -> None:
        try:
            enqueue(self.queue, job_id)
        except Exception:  # the job is in the database: a worker's sweep queues it once Redis answers again
            log.exception("could not queue job %s in Redis; a worker will pick it up from the database", job_id)

    def cancel(self, job_id: int) -> bool:
        """A flag in the database: a queued job is cancelled at once, a running one's worker reads it within a
        second (it renews its lease every RENEW_SECONDS)."""
        with session_scope(self.session_factory) as s:
            return crud.request_cancel(session=s, job_id=job_id)


# The worker of this process, for `perform` (RQ calls a function by its import path).
_worker: Worker | None = None


def perform(job_id: int) -> None:
    if _worker is None:
        raise RuntimeError("app.queue.perform runs only inside `snapclass worker`")
    _worker.run_one(job_id)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class LeaseKeeper(threading.Thread):
    """Beside the job, every RENEW_SECONDS: renews the lease of the job being run (and reads its cancel flag); every
    SWEEP_SECONDS, also while idle: queues again the jobs whose worker died, and the waiting jobs Redis lost."""

    def __init__(self, worker: Worker, queue: Queue):
        super().__init__(name="snapclass-lease", daemon=True)
        self.worker, self.queue = worker, queue
        self._since_sweep = SWEEP_SECONDS  # sweep at once: a worker starting after a crash takes its jobs up

    def run(self) -> None:
        while not self.worker.stopping.wait(RENEW_SECONDS):
            try:
                self.renew()
                self._since_sweep += RENEW_SECONDS
                if self._since_sweep >= SWEEP_SECONDS:
                    self._since_sweep = 0.0
                    self.sweep()
            except Exception:  # a database or Redis hiccup: try again next round
                log.exception("lease keeper: round failed")

    def renew(self) -> None:
        job_id = self.worker.current_job
        if job_id is None:
            return
        with session_scope(self.worker.session_factory) as s:
            stop = crud.renew_lease(session=s, job_id=job_id, worker=self.worker.identity, seconds=LEASE_SECONDS)
        if stop is None or stop:  # cancelled, or no longer ours: the job stops at its next check
            self.worker.cancelled.add(job_id)

    def sweep(self) -> None:
        with session_scope(self.worker.session_factory) as s:
            lost = crud.requeue_lost_jobs(session=s, max_attempts=MAX_ATTEMPTS)
            waiting = crud.queued_jobs(session=s, older_than=timedelta(seconds=SWEEP_SECONDS))
        for job_id in lost:
            log.warning("job %s lost its worker (its lease passed): queued again", job_id)
            enqueue(self.queue, job_id)
        if waiting:
            # Only what waits in Redis counts (RQ's started registry keeps a killed worker's entry for ever with
            # job_timeout -1); queueing a job twice is harmless.
            held = {_db_id(i) for i in self.queue.get_job_ids()}
            for job_id in waiting:
                if job_id not in held and job_id not in lost:
                    log.warning("job %s waits in the database but not in Redis: queued again", job_id)
                    enqueue(self.queue, job_id)


class _Worker(SimpleWorker):
    """RQ's SimpleWorker, whose first SIGTERM/SIGINT (a warm stop: no new job) also tells the job in hand to stop at
    its next check: it is handed back to the queue uncounted (Worker._run) and another worker starts it at once,
    instead of this one training on past `docker stop`'s grace period."""

    def __init__(self, *args, snapclass: Worker, **kwargs):
        super().__init__(*args, **kwargs)
        self.snapclass = snapclass

    def request_stop(self, signum, frame):
        self.snapclass.stopping.set()
        super().request_stop(signum, frame)


def run_worker(worker: Worker, url: str, burst: bool = False) -> None:
    """Serve the queue until stopped (SIGINT/SIGTERM: RQ finishes the job in hand first, a second signal stops at
    once; the job's lease then passes and another worker takes it up)."""
    global _worker
    connection = connect(url)
    queue = Queue(QUEUE_NAME, connection=connection)
    _worker = worker
    worker._others_waiting = lambda: queue.count > 0
    keeper = LeaseKeeper(worker, queue)
    if worker.warm_up:
        try:
            worker.warm_up()
        except Exception:
            log.exception("worker: warm-up failed (jobs still run, the first one slower)")
    keeper.start()
    try:
        _Worker([queue], connection=connection, name=worker.identity.replace(":", "-"), snapclass=worker).work(
            burst=burst, with_scheduler=False, logging_level=os.environ.get("SNAPCLASS_LOG_LEVEL", "INFO").upper())
    finally:
        worker.stopping.set()
        keeper.join(5)
        _worker = None
