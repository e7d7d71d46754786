"""Job leases: a job run by a worker process on another machine says who holds it and until when.

Revision ID: 0005_job_leases
Revises: 0004_class_colors_trash_changes
Create Date: 2026-12-04

- jobs.worker: the worker process running the job (host:pid:random), None while queued or with the thread worker.
- jobs.lease_until: the worker renews it every few seconds; a running job whose lease has passed lost its worker
  (kill -9, a lost machine) and is queued again for another (app.jobs).
- jobs.attempts: how many times a worker has started it, so a job that kills every worker stops being retried.
Existing jobs: no worker, no lease, attempts 0 (the thread worker fails a job left running at start, as before).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_job_leases"
down_revision = "0004_class_colors_trash_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases: SQLite keeps the table (and its AUTOINCREMENT) as it is.
    op.add_column("jobs", sa.Column("worker", sa.String(length=200), nullable=True))
    op.add_column("jobs", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("attempts")
        batch.drop_column("lease_until")
        batch.drop_column("worker")
