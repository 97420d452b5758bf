"""Alembic environment shared by the library (which passes a connection) and developers' CLI use."""

from __future__ import annotations

import sqlmodel  # noqa: F401  (migration scripts use sqlmodel types)
from alembic import context
from sqlalchemy import engine_from_config, pool

from problem_registry.store import tables as models

config = context.config
target_metadata = models.SQLModel.metadata


def _configure_and_run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        # Called from problem_registry.store.migrations: the caller owns the connection, its
        # transaction and its lock, and logging is left alone (no fileConfig in a library).
        _configure_and_run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from problem_registry.config import resolve_settings

        url = resolve_settings().database_url
    engine = engine_from_config(
        {"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as conn:
        _configure_and_run(conn)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
