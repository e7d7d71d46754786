"""Alembic revisions of the database schema, run at start by app.migrate (and by `snapclass migrate`).

A schema change is a models.py change plus a new revision on top of the last one (the chain stays linear):
    python -c "from alembic import command; from app.migrate import config; \\
               command.revision(config(), 'what changed', rev_id='0003_short_name')"
writes versions/0003_short_name.py to fill in. Revisions must run on SQLite and PostgreSQL alike (batch_alter_table
for what SQLite can only do by copying a table; any dialect-only SQL behind a dialect check).
tests/test_migrations.py fails while models.py and the migrated schema differ.
"""
