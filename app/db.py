"""Engine and sessions: SQLite in WAL mode with foreign keys on."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.migrate import SchemaError, Upgrade, current_revision, head, upgrade


def make_engine(url: str) -> Engine:
    is_sqlite = url.startswith("sqlite")
    more = {} if is_sqlite else {
        # PostgreSQL's json type refuses NaN, which Python writes for a figure with nothing to measure: null.
        "json_serializer": dumps_finite,
        # Several processes share the server's connections: check them before use, keep a few per process.
        "pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}
    engine = create_engine(
        url,
        # Request threads and the worker thread share the engine; each uses its own session.
        connect_args={"check_same_thread": False, "timeout": 30} if is_sqlite else {},
        **more,
    )
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            # WAL lets readers go on while the worker writes; a crash mid-write rolls back cleanly.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps_finite(value) -> str:
    return json.dumps(_finite(value))


def init_db(engine: Engine) -> Upgrade:
    """Bring the schema to this release's in place (see app.migrate); raises SchemaError, changing nothing,
    for a database written by a newer release."""
    return upgrade(engine)


def require_current_schema(engine: Engine) -> None:
    """For processes that must not migrate (workers): the schema is this release's, or SchemaError saying so."""
    current, target = current_revision(engine), head()
    if current != target:
        raise SchemaError(f"the database is at schema {current or 'nothing'}, this release needs {target}: run "
                          "`snapclass migrate` (or start `serve` once) first")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
