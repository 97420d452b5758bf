"""`problem-registry init` and `problem-registry db ...`: where the registry lives, its schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.engine import Engine

from problem_registry.cli.context import JsonOption, note, output, print_fields, state
from problem_registry.store.engines import (
    create_registry_engine,
    redact,
    translate_connection_errors,
)
from problem_registry.store.migrations import require_sqlite_file, schema_state, upgrade

app = typer.Typer(help="Database schema: status and upgrade.", no_args_is_help=True)


def init(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Create the registry (database and pattern folder) if it does not exist yet.

    With no configuration it is registry.db and patterns/ in the project root (the folder of the
    nearest pyproject.toml, else the current folder).

    Example: PROBLEM_REGISTRY_URL=postgresql+psycopg://ci@db/registry problem-registry init
    """
    settings = state(ctx).settings()
    registry = state(ctx).registry(create=True)
    registry.store.root.mkdir(parents=True, exist_ok=True)
    info = {
        "database": registry.display_url,
        "patterns": str(registry.store.root),
        "configured_by": settings.url_source,
        "problems": len(registry.problems.list()),
    }

    def render() -> None:
        note(f"registry ready: {info['database']} (from {settings.url_source})")
        note(f"pattern files: {info['patterns']}")

    output(as_json, info, render)


@app.command("status")
def status(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Show the schema revision of the database and the one this version needs."""
    require_sqlite_file(state(ctx).settings().database_url)  # a status check creates no file
    with _bare_engine(ctx) as engine:
        current = schema_state(engine)
    info = {
        "database": redact(engine.url),
        "revision": current.current,
        "head": current.head,
        "up_to_date": current.is_current,
    }
    output(as_json, info, lambda: print_fields("schema", list(info.items())))


@app.command("upgrade")
def upgrade_(ctx: typer.Context) -> None:
    """Upgrade the database schema to this version's; safe to run twice or concurrently."""
    with _bare_engine(ctx) as engine:
        after = upgrade(engine, patterns_dir=state(ctx).settings().patterns_dir)
    if after.migrated:
        note(f"upgraded {redact(engine.url)} from {after.previous or 'empty'} to {after.current}")
        if after.content_copied or after.content_missing:
            note(
                f"copied {after.content_copied} pattern file(s) and case input(s) into the database"
            )
        if after.content_missing:
            note(
                f"warning: {after.content_missing} pattern file(s) or case input(s) were not "
                f"found intact in {state(ctx).settings().patterns_dir}; run `problem-registry "
                "check` where they are to put them in the database"
            )
    else:
        note(f"{redact(engine.url)} is already at revision {after.current}")


@contextmanager
def _bare_engine(ctx: typer.Context) -> Iterator[Engine]:
    """The configured database without Registry.open, which refuses an out-of-date schema:
    these two commands exist to look at and fix exactly that."""
    engine = create_registry_engine(state(ctx).settings().database_url)
    try:
        with translate_connection_errors(engine.url):
            yield engine
    finally:
        engine.dispose()
