"""Class colours and the "use in training" switch; a trash for undoable deletes; a change feed.

Revision ID: 0004_class_colors_trash_changes
Revises: 0003_accounts
Create Date: 2026-12-03

- classes.color: each class keeps one colour everywhere (app.colors). Existing classes get the palette in the
  order they were made, per project, exactly as new ones would have.
- classes.enabled: a class switched off stays with its photos but is left out of training. Existing: on.
- trash: a deleted photo or class (with its photos) is kept restorable for a while; its rows are kept as JSON
  and its photo files stay in storage until the entry expires and is purged.
- changes: one row per change to a project, read by open pages to stay current (app.changes). project_id
  has no foreign key on purpose: a project's deletion is itself a change its open pages must hear about.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_class_colors_trash_changes"
down_revision = "0003_accounts"
branch_labels = None
depends_on = None

NEVER_REUSE_IDS = {"sqlite_autoincrement": True}

# As app.colors.PALETTE at this revision: a migration never imports code that may change later.
PALETTE = ("#0072B2", "#B34E00", "#007A59", "#A8527F", "#8C6D00", "#56789A", "#7B4FA0", "#A0522D",
           "#2E7D32", "#C2185B", "#00796B", "#5D4037")


def upgrade() -> None:
    op.add_column("classes", sa.Column("color", sa.String(length=16), nullable=True))
    op.add_column("classes", sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, project_id FROM classes ORDER BY project_id, id")).fetchall()
    seen: dict[int, int] = {}
    for class_id, project_id in rows:
        n = seen.get(project_id, 0)
        seen[project_id] = n + 1
        bind.execute(sa.text("UPDATE classes SET color = :c WHERE id = :i"),
                     {"c": PALETTE[n % len(PALETTE)], "i": class_id})

    op.create_table(
        "trash",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("keys", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        **NEVER_REUSE_IDS,
    )
    op.create_index("ix_trash_project_id", "trash", ["project_id"])
    op.create_index("ix_trash_expires_at", "trash", ["expires_at"])
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        **NEVER_REUSE_IDS,
    )
    op.create_index("ix_changes_project_id", "changes", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_changes_project_id", table_name="changes")
    op.drop_table("changes")
    op.drop_index("ix_trash_expires_at", table_name="trash")
    op.drop_index("ix_trash_project_id", table_name="trash")
    op.drop_table("trash")
    with op.batch_alter_table("classes", recreate="never") as batch:
        batch.drop_column("enabled")
        batch.drop_column("color")
