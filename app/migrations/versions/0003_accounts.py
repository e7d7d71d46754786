"""Accounts: users, their sessions and API tokens, project members; a project's owner and share link.

Revision ID: 0003_accounts
Revises: 0002_autoincrement
Create Date: 2026-11-30

Existing projects get no owner (NULL): the first admin account claims them (app.accounts), so a data dir from
before accounts loses nothing when its server starts asking for logins.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_accounts"
down_revision = "0002_autoincrement"
branch_labels = None
depends_on = None

NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
        **NEVER_REUSE_IDS,
    )
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
        **NEVER_REUSE_IDS,
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
        **NEVER_REUSE_IDS,
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "project_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "user_id"),
        **NEVER_REUSE_IDS,
    )
    op.create_index("ix_project_members_project_id", "project_members", ["project_id"])
    op.create_index("ix_project_members_user_id", "project_members", ["user_id"])
    bind = op.get_bind()
    counter = sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'projects'")
    # SQLite adds a foreign key only by rebuilding the table (app.migrate runs this with foreign keys off, so
    # nothing cascades). Dropping the old table drops its AUTOINCREMENT counter too: it is put back after.
    seq = bind.scalar(counter) if bind.dialect.name == "sqlite" else None
    with op.batch_alter_table("projects", recreate="auto", table_kwargs=NEVER_REUSE_IDS) as batch:
        batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("share_token", sa.String(length=64), nullable=True))
        batch.create_foreign_key("fk_projects_owner_id_users", "users", ["owner_id"], ["id"], ondelete="SET NULL")
    if seq is not None:
        bind.execute(sa.text("UPDATE sqlite_sequence SET seq = max(seq, :n) WHERE name = 'projects'"), {"n": seq})
        if bind.scalar(counter) is None:
            bind.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('projects', :n)"), {"n": seq})
    op.create_index("ix_projects_owner_id", "projects", ["owner_id"])
    op.create_index("ix_projects_share_token", "projects", ["share_token"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_projects_share_token", "projects")
    op.drop_index("ix_projects_owner_id", "projects")
    with op.batch_alter_table("projects", recreate="always", table_kwargs=NEVER_REUSE_IDS) as batch:
        batch.drop_column("share_token")
        batch.drop_column("owner_id")
    for table in ("project_members", "api_tokens", "user_sessions", "users"):
        op.drop_table(table)
