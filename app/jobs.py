"""The worker: one owner of the device runs queued jobs one at a time.

Job state lives in the database, so the page, the API and a restarted server all see the same truth. Two ways to
feed it, one interface (submit, cancel, start, stop):

- `Worker` in a thread inside `serve` (the default): at start-up a job left "running" by a dead process is marked
  failed, never left stuck.
- `Worker` with an identity, run by `snapclass worker` from a Redis queue (app.queue): it claims a job in the
  database with a lease it renews every second, so a worker that dies mid-job (kill -9, a lost machine) lets its
  lease pass and any other worker queues the job again; the model is written only in a transaction that proves
  the lease is still this worker's, so it is written once even if the job ran twice. Cancel is a flag in the
  database, which the lease renewal reads.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from app import crud
from app.db import session_scope
from app.ml.train import TrainingCancelled
from app.models import utcnow

log = logging.getLogger("snapclass.worker")

_STOP = object()


@dataclass
class JobOutcome:
    model_id: int | None = None
    metrics: dict = field(default_factory=dict)
    message: str = "done"
    # Work that does not change the result (a model's learning curves): run after the job is marked done,
    # so "ready" does not wait for it. It gets a should-stop function that turns true when another job is
    # waiting (that job goes first; the follow-up records that it gave way) or the server stops.
    follow_up: Callable[[Callable[[], bool]], None] | None = None


class JobContext:
    """What a job handler may touch: its parameters, progress reporting and the cancel flag."""

    def __init__(self, worker: Worker, job_id: int, project_id: int, params: dict):
        self.worker, self.job_id, self.project_id, self.params = worker, job_id, project_id, params
        self._last_write = 0.0
        self.notes: dict = {}
        # Shown while the job runs (the time left): written into the job's metrics with each progress.
        self.live: dict = {}

    def progress(self, fraction: float, message: str, *, force: bool = False) -> None:
        # Throttled: the page polls a few times a second, more writes would only load SQLite.
        now = time.monotonic()
        if not force and now - self._last_write < 0.25:
            return
        self._last_write = now
        with session_scope(self.worker.session_factory) as s:
            job = crud.get_job(session=s, job_id=self.job_id)
            job.progress = max(0.0, min(1.0, fraction))
            job.message = message[:500]
            if self.live:
                job.metrics = {**(job.metrics or {}), **self.live}

    def should_stop(self) -> bool:
        return self.job_id in self.worker.cancelled or self.worker.stopping.is_set()

    def confirm(self, session: Session, model_id: int) -> None:
        """Inside the transaction that writes this job's model: raise LostJob (rolling the model back) unless
        this worker still holds the job; it then holds it with the model recorded."""
        if self.worker.identity is None:
            return  # the thread worker is the only one
        if crud.renew_lease(session=session, job_id=self.job_id, worker=self.worker.identity,
                            seconds=LEASE_SECONDS, model_id=model_id) is None:
            raise LostJob(f"job {self.job_id} was taken up by another worker")


class LostJob(RuntimeError):
    """This worker's lease on a job passed and another worker took it: its result is not ours to write."""


# A worker renews its lease every RENEW_SECONDS; one that missed this long is taken for dead. Long enough for a
# loaded machine's stall, short enough that a killed worker's job moves on within seconds.
LEASE_SECONDS = 15.0
RENEW_SECONDS = 1.0
# A job that has taken this many workers down (say, it runs out of memory) fails instead of going round.
MAX_ATTEMPTS = 3


Handler = Callable[[JobContext], JobOutcome]


class Worker:
    def __init__(self, session_factory: sessionmaker[Session], handlers: dict[str, Handler],
                 warm_up: Callable[[], None] | None = None, identity: str | None = None,
                 others_waiting: Callable[[], bool] | None = None):
        self.session_factory = session_factory
        self.handlers = handlers
        self.warm_up = warm_up  # run in the worker's thread before the first job
        # None: the thread inside serve, the only worker. Else a worker process's name (app.queue), which
        # holds the jobs it runs by a lease.
        self.identity = identity
        self._others_waiting = others_waiting
        self.queue: queue.Queue = queue.Queue()
        self.cancelled: set[int] = set()
        self.stopping = threading.Event()
        self.current_job: int | None = None
        self.thread = threading.Thread(target=self._loop, name="snapclass-worker", daemon=True)

    def others_waiting(self) -> bool:
        return self._others_waiting() if self._others_waiting else not self.queue.empty()

    def start(self) -> None:
        with session_scope(self.session_factory) as s:
            pending = crud.recover_jobs(session=s)
        for job_id in pending:
            self.queue.put(job_id)
        self.thread.start()

    def stop(self, timeout: float = 30) -> None:
        self.stopping.set()
        self.queue.put(_STOP)
        self.thread.join(timeout)

    def submit(self, job_id: int) -> None:
        self.queue.put(job_id)

    def cancel(self, job_id: int) -> bool:
        """Ask a queued or running job to stop; False when it has already finished."""
        with session_scope(self.session_factory) as s:
            if not crud.request_cancel(session=s, job_id=job_id):
                return False
        self.cancelled.add(job_id)
        return True

    def _loop(self) -> None:
        if self.warm_up:
            try:
                self.warm_up()
            except Exception:
                log.exception("worker: warm-up failed (jobs still run, the first one slower)")
        while True:
            item = self.queue.get()
            if item is _STOP:
                return
            try:
                self._run(item)
            except Exception:  # never let one job kill the thread that serves all others
                log.exception("worker: job %s crashed outside its handler", item)

    def run_one(self, job_id: int) -> None:
        """Run one job now, in the caller's thread (a queue worker's), if it is still waiting for a worker."""
        self._run(job_id)

    def _run(self, job_id: int) -> None:
        with session_scope(self.session_factory) as s:
            job = crud.claim_job(session=s, job_id=job_id, worker=self.identity,
                                 seconds=LEASE_SECONDS if self.identity else None)
            if job is None:  # cancelled, done, or another worker has it
                return
            ctx = JobContext(self, job.id, job.project_id, dict(job.params or {}))
            kind = job.kind
        self.current_job = job_id
        status, outcome, message = "failed", JobOutcome(), ""
        try:
            outcome = self.handlers[kind](ctx)
            status, message = "succeeded", outcome.message
        except LostJob:
            log.warning("worker %s: job %s was taken up by another worker; its result is dropped", self.identity,
                        job_id)
            self.current_job = None
            self.cancelled.discard(job_id)
            return
        except TrainingCancelled:
            status, message = "cancelled", "cancelled"
            if self.stopping.is_set() and job_id not in self.cancelled:
                status, message = "failed", "interrupted: the server was shut down; train again"
                if self.identity:  # a worker asked to stop mid-job: another takes it up at once
                    self._release(job_id)
                    self.current_job = None
                    return
        except crud.NotFound:
            message = "something this training needed was deleted while it ran; train again"
        except Exception as exc:
            log.error("job %s failed:\n%s", job_id, traceback.format_exc())
            message = f"failed: {type(exc).__name__}: {exc}"
        finally:
            self.current_job = None
            self.cancelled.discard(job_id)
        self._finish(job_id, status, outcome, message, ctx.notes)
        if status == "succeeded" and outcome.follow_up:
            try:
                outcome.follow_up(lambda: self.stopping.is_set() or self.others_waiting())
            except Exception:
                log.exception("worker: the follow-up of job %s failed", job_id)

    def _release(self, job_id: int) -> None:
        with session_scope(self.session_factory) as s:
            crud.release_job(session=s, job_id=job_id, worker=self.identity)

    def _finish(self, job_id: int, status: str, outcome: JobOutcome, message: str, notes: dict) -> None:
        try:
            with session_scope(self.session_factory) as s:
                # Locked: a requeue or cancel from another process cannot slip between this check and the write.
                job = crud.get_job(session=s, job_id=job_id, lock=self.identity is not None)
                if self.identity is not None and (job.worker != self.identity or job.status != "running"):
                    log.warning("worker %s: job %s is no longer ours (%s, %s)", self.identity, job_id, job.status,
                                job.worker)
                    return
                job.status, job.message, job.finished_at = status, message[:500], utcnow()
                job.lease_until = None
                job.metrics = {**notes, **outcome.metrics}
                if status == "succeeded":
                    job.progress, job.model_id = 1.0, outcome.model_id
        except crud.NotFound:
            pass  # the project (and with it the job) was deleted meanwhile
