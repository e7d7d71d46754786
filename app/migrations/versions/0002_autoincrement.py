"""Ids are never given out twice: SQLite tables get AUTOINCREMENT.

Revision ID: 0002_autoincrement
Revises: 0001_initial
Create Date: 2025-01-01

Without AUTOINCREMENT SQLite hands out max(id)+1, so deleting the newest project and making another gave the
new one the old id, and a stale browser tab wrote into it. Each table is rebuilt with every row kept (app.migrate
runs this with foreign keys off, so dropping the old table cascades nothing). The new counters start above the
highest id still in a table or still named by another row (a model's class_ids, its per-photo validation rows);
an id deleted by 0.1.0 above those left no trace and cannot be known. PostgreSQL's serial columns never reuse
ids: nothing to do there.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0002_autoincrement"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

TABLES = ("projects", "classes", "trained_models", "samples", "jobs", "embeddings")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    floors = _referenced_ids(bind)
    _rebuild(autoincrement=True)
    for table in TABLES:
        # Copying the rows already set each counter to max(id); only ever raise it.
        floor = max(floors.get(table, 0), bind.scalar(sa.text(f"SELECT coalesce(max(id), 0) FROM {table}")))
        seq = sa.text("SELECT seq FROM sqlite_sequence WHERE name = :t")
        if bind.scalar(seq, {"t": table}) is None:
            bind.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :n)"), {"t": table, "n": floor})
        else:
            bind.execute(sa.text("UPDATE sqlite_sequence SET seq = max(seq, :n) WHERE name = :t"),
                         {"t": table, "n": floor})


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild(autoincrement=False)
    op.execute(sa.text(f"DELETE FROM sqlite_sequence WHERE name IN ({', '.join(repr(t) for t in TABLES)})"))


def _rebuild(autoincrement: bool) -> None:
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def _referenced_ids(bind) -> dict[str, int]:
    """The highest id of each table that some row still names in its JSON, though the row it named is gone."""
    floors = {"classes": 0, "samples": 0}
    for (class_ids,) in bind.execute(sa.text("SELECT class_ids FROM trained_models")):
        class_ids = json.loads(class_ids or "null")
        floors["classes"] = max([floors["classes"], *_ints(class_ids if isinstance(class_ids, list) else [])])
    rows = bind.execute(sa.text("SELECT metrics FROM trained_models UNION ALL SELECT metrics FROM jobs"))
    for (metrics,) in rows:
        metrics = json.loads(metrics or "null")
        if isinstance(metrics, dict):
            for key in ("val_predictions", "misclassified"):
                named = [row.get("sample_id") for row in metrics.get(key) or [] if isinstance(row, dict)]
                floors["samples"] = max([floors["samples"], *_ints(named)])
    return floors


def _ints(values) -> list[int]:
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
