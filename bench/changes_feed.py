"""What the change feed costs: a write's flush with and without the listener that records it, and one poll of a
stream (`id > last`) on a full table (ten minutes of training progress and more), on a real SQLite file.

    .venv/bin/python -m bench.changes_feed
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, insert
from sqlalchemy.orm import Session

from app import changes
from app.db import init_db, make_engine, make_session_factory, session_scope
from app.models import Change, ImageClass, Project, Sample
from bench.common import machine

ROUNDS = 100


def _median_ms(run) -> float:
    times = []
    for i in range(ROUNDS):
        start = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        init_db(engine)
        factory = make_session_factory(engine)
        with session_scope(factory) as s:
            project = Project(name="bench", backbone="x")
            s.add(project)
            s.flush()
            cls = ImageClass(project_id=project.id, name="a")
            s.add(cls)
            s.flush()
            pid, cid = project.id, cls.id

        def upload(i: int) -> None:  # a batch of 20 photos, as the page sends them
            with session_scope(factory) as s:
                s.add_all(Sample(class_id=cid, key=f"k{i}-{j}", filename="a.jpg", original_format="JPEG",
                                 width=1, height=1) for j in range(20))

        # Alternated in blocks, so that the table's growth and the disk's mood weigh on both alike.
        with_feed, without = [], []
        for block in range(6):
            if block % 2:
                event.remove(Session, "after_flush", changes._record_flush)
            (without if block % 2 else with_feed).append(_median_ms(lambda i, b=block: upload(b * ROUNDS + i)))
            if block % 2:
                event.listen(Session, "after_flush", changes._record_flush)
        with_feed, without = statistics.median(with_feed), statistics.median(without)

        with session_scope(factory) as s:  # 10 minutes of progress rows of 4 projects, 4 a second each
            s.execute(insert(Change), [{"project_id": pid + (n % 4), "topic": "jobs"} for n in range(9600)])
            last = changes.latest_id(s)

        def poll(_i: int) -> None:
            with session_scope(factory) as s:
                changes.since(s, last - 2, pid)

        polled = _median_ms(poll)
        engine.dispose()
    print(f"change feed, {machine()}, medians of 3 blocks of {ROUNDS}:")
    print(f"  commit of 20 photos: {with_feed:.2f} ms with the feed, {without:.2f} ms without "
          f"({with_feed / without:.2f}x)")
    print(f"  one stream poll (id > last, one project) on 9,600 rows: {polled:.3f} ms")


if __name__ == "__main__":
    main()
