"""Alembic revisions of the database schema, run by app.migrate (never by hand-edited SQL)."""
