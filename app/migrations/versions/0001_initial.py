"""The schema of release 0.1.0, exactly as its Base.metadata.create_all made it.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01

Data dirs of 0.1.0 have these tables but no alembic_version table: app.migrate stamps them with this
revision instead of running it. Constraints are listed in the order create_all wrote them, so a fresh
SQLite file gets the same CREATE TABLE text as a 0.1.0 one (tests/test_migrations.py compares them).
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

# projects and trained_models point at each other: these two are added once both tables exist.
PROJECT_MODEL_FKS = ("current_model_id", "base_model_id")


def upgrade() -> None:
    op.create_table(
        "backbone_weights",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("backbone", sa.String(length=100), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("backbone", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_model_id", sa.Integer(), nullable=True),
        sa.Column("base_model_id", sa.Integer(), nullable=True),
        sa.Column("base_digest", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        # use_alter: left out of CREATE TABLE where the dialect can ALTER (added below); SQLite, which
        # cannot, writes them inline, and a reference to a table not yet created is fine there.
        *(sa.ForeignKeyConstraint([column], ["trained_models.id"], ondelete="SET NULL", use_alter=True)
          for column in PROJECT_MODEL_FKS),
        sa.ForeignKeyConstraint(["base_digest"], ["backbone_weights.digest"]),
    )
    op.create_table(
        "classes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "name"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_classes_project_id", "classes", ["project_id"])
    op.create_table(
        "trained_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("backbone", sa.String(length=100), nullable=False),
        sa.Column("features", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("class_ids", sa.JSON(), nullable=False),
        sa.Column("format_version", sa.Integer(), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("unknown_threshold", sa.Float(), nullable=True),
        sa.Column("unknown_threshold_calibrated", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_trained_models_project_id", "trained_models", ["project_id"])
    if op.get_bind().dialect.supports_alter:
        for column in PROJECT_MODEL_FKS:
            op.create_foreign_key(None, "projects", "trained_models", [column], ["id"], ondelete="SET NULL")
    op.create_table(
        "samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("original_format", sa.String(length=16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("burst_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["class_id"], ["classes.id"], ondelete="CASCADE"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_samples_class_id", "samples", ["class_id"])
    op.create_index("ix_samples_burst_id", "samples", ["burst_id"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["model_id"], ["trained_models.id"], ondelete="SET NULL"),
    )
    op.create_index("ix_jobs_project_id", "jobs", ["project_id"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "embeddings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("backbone", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sample_id", "backbone", "version"),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_embeddings_sample_id", "embeddings", ["sample_id"])


def downgrade() -> None:
    if op.get_bind().dialect.supports_alter:  # break the projects <-> trained_models cycle first
        for fk in sa.inspect(op.get_bind()).get_foreign_keys("projects"):
            if fk["referred_table"] == "trained_models":
                op.drop_constraint(fk["name"], "projects", type_="foreignkey")
    for table in ("embeddings", "jobs", "samples", "trained_models", "classes", "projects", "backbone_weights"):
        op.drop_table(table)
