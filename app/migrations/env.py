"""Alembic's entry point for programmatic use: app.migrate passes an open connection in config.attributes."""

from alembic import context

from app.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through app.migrate (`snapclass migrate`), which hands over a connection")

# Batch mode: SQLite alters most things by copying the table, and Alembic does that for us.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
