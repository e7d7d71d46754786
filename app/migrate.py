"""Bring a database to this release's schema in place: Alembic revisions in app/migrations, run at start.

A data dir of 0.1.0 (its tables, no alembic_version) is stamped 0001_initial and upgraded; an empty database is
built from nothing; one written by a newer release is refused before anything touches it. A SQLite file is
copied to `snapclass.db.bak-<revision>` before it is changed.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from app import __version__

log = logging.getLogger("snapclass")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST = "0001_initial"
# What every data dir of release 0.1.0 holds: create_all's tables, with no alembic_version beside them.
RELEASE_0_1_0_TABLES = {"projects", "classes", "samples", "embeddings", "jobs", "backbone_weights", "trained_models"}


class SchemaError(RuntimeError):
    """This release cannot open the database; it was left exactly as it was."""


@dataclass
class Upgrade:
    before: str | None  # None: an empty database
    after: str
    stamped: bool = False  # 0.1.0's tables, which had no version: counted as FIRST
    backup: Path | None = None

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe(self) -> str:
        if not self.changed:
            return f"schema already at {self.after}"
        before = ("empty database" if self.before is None
                  else f"{self.before} (release 0.1.0, no version table)" if self.stamped else self.before)
        kept = f"; the old file is kept as {self.backup}" if self.backup else ""
        return f"schema upgraded from {before} to {self.after}{kept}"


def config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(rev)s")  # versions/0002_autoincrement.py: file name = revision id
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    current, _ = _look(engine)
    return current[0] if len(current) == 1 else None


def upgrade(engine: Engine) -> Upgrade:
    """Upgrade to head in place, or raise SchemaError having changed nothing."""
    cfg = config()
    script = ScriptDirectory.from_config(cfg)
    target = script.get_current_head()
    current, tables = _look(engine)
    unknown = [rev for rev in current if rev not in {s.revision for s in script.walk_revisions()}]
    if unknown:
        raise SchemaError(
            f"the database {_where(engine)} has schema revision {', '.join(unknown)}, written by a newer snapclass "
            f"than this one ({__version__}, which knows up to {target}). Upgrade snapclass to open it; "
            "nothing was changed.")
    if len(current) > 1:
        raise SchemaError(f"the database {_where(engine)} has several schema revisions ({', '.join(current)}); "
                          "nothing was changed.")
    ours = tables & RELEASE_0_1_0_TABLES
    stamped = not current and bool(ours)
    if stamped and ours != RELEASE_0_1_0_TABLES:
        raise SchemaError(
            f"the database {_where(engine)} has some of snapclass 0.1.0's tables but not "
            f"{', '.join(sorted(RELEASE_0_1_0_TABLES - ours))}, and no schema version: it was not made by a "
            "snapclass release this one can upgrade; nothing was changed.")
    before = current[0] if current else FIRST if stamped else None
    result = Upgrade(before=before, after=target, stamped=stamped)
    if before == target:
        return result
    if before is not None:
        result.backup = _backup(engine, before)
    with _migration_connection(engine) as conn:
        if tuple(MigrationContext.configure(conn).get_current_heads()) != current:  # now under the write lock
            raise SchemaError(f"the database {_where(engine)} changed while this process looked at it: another "
                              "snapclass is upgrading it; try again once it has started.")
        cfg.attributes["connection"] = conn
        if stamped:
            command.stamp(cfg, FIRST)
        command.upgrade(cfg, "head")
        _check_foreign_keys(conn)
    log.info("database %s: %s", _where(engine), result.describe())
    return result


def _look(engine: Engine) -> tuple[tuple[str, ...], set[str]]:
    """The revisions in alembic_version and the table names, read without changing a byte of the database."""
    path = _sqlite_file(engine)
    if path is not None and (not path.exists() or path.stat().st_size == 0):
        return (), set()
    reader = engine
    if path is not None:
        # Read-only: the app's engine switches the file to WAL on connect, and a newer release's file must not
        # change at all. mode=ro still reads an un-checkpointed WAL, unlike immutable=1.
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        reader = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True), poolclass=NullPool)
    try:
        with reader.connect() as conn:
            return tuple(MigrationContext.configure(conn).get_current_heads()), set(inspect(conn).get_table_names())
    finally:
        if reader is not engine:
            reader.dispose()


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """One transaction around the whole upgrade, DDL included, committed only if every step worked."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:  # PostgreSQL: transactional DDL as it is
            # Several processes may start at once on one database: one migrates, the others wait here, then find
            # the version changed and say so (the lock ends with the transaction).
            conn.execute(text("SELECT pg_advisory_xact_lock(7163500)"))
            yield conn
        return
    # SQLite: the driver would commit before each DDL statement on its own; take over BEGIN/COMMIT. Foreign keys
    # go off first (PRAGMA foreign_keys is a no-op inside a transaction), so rebuilding a table by dropping the
    # old copy cascades nothing; _check_foreign_keys verifies the result before the commit.
    migrator = create_engine(engine.url, poolclass=NullPool, connect_args={"isolation_level": None, "timeout": 30})

    @event.listens_for(migrator, "connect")
    def _no_foreign_keys(dbapi_conn, _record):
        dbapi_conn.execute("PRAGMA foreign_keys=OFF")

    @event.listens_for(migrator, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with migrator.begin() as conn:
            yield conn
    finally:
        migrator.dispose()


def _check_foreign_keys(conn: Connection) -> None:
    if conn.dialect.name != "sqlite":
        return
    broken = conn.execute(text("PRAGMA foreign_key_check")).fetchall()
    if broken:
        table, rowid, parent, _ = broken[0]
        raise SchemaError(f"after the upgrade {len(broken)} rows point at rows that do not exist (first: {table} "
                          f"row {rowid} -> {parent}); rolled back, nothing was changed.")


def _backup(engine: Engine, revision: str) -> Path | None:
    """A consistent copy of the SQLite file next to it (SQLite's backup API: the WAL's pages included)."""
    path = _sqlite_file(engine)
    if path is None:
        log.warning("database %s: upgrading in place with no copy taken; back it up yourself first", _where(engine))
        return None
    target = path.with_name(f"{path.name}.bak-{revision}")
    n = 1
    while target.exists():  # an older copy of the same revision is kept, never overwritten
        n += 1
        target = path.with_name(f"{path.name}.bak-{revision}.{n}")
    src, dst = sqlite3.connect(path), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    log.info("database %s: copied to %s before upgrading it", _where(engine), target)
    return target


def _sqlite_file(engine: Engine) -> Path | None:
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") or url.database.startswith("file:"):
        return None
    return Path(url.database)


def _where(engine: Engine) -> str:
    path = _sqlite_file(engine)
    return str(path) if path is not None else engine.url.render_as_string(hide_password=True)
