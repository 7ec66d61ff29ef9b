"""Alembic environment: runs on the connection that ``facegate.storage.migrate`` hands over."""

from __future__ import annotations

from alembic import context

from facegate.storage.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("facegate migrations run through facegate.storage.migrate, not alembic")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
