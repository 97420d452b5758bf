"""`problem-registry init` and `problem-registry db ...`: where the registry lives, its schema."""

from __future__ import annotations

import typer

from problem_registry.cli.context import JsonOption, note, output, print_fields, state
from problem_registry.db import create_registry_engine, redact, translate_connection_errors
from problem_registry.migrations import schema_state, upgrade

app = typer.Typer(help="Database schema: status and upgrade.", no_args_is_help=True)


def init(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Create the registry (database and pattern folder) if it does not exist yet.

    With no configuration it is registry.db and patterns/ in the project root (the folder of the
    nearest pyproject.toml, else the current folder).

    Example: PROBLEM_REGISTRY_URL=postgresql+psycopg://ci@db/registry problem-registry init
    """
    settings = state(ctx).settings()
    registry = state(ctx).registry()
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
    url = state(ctx).settings().database_url
    engine = create_registry_engine(url)
    try:
        with translate_connection_errors(engine.url):
            current = schema_state(engine)
    finally:
        engine.dispose()
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
    url = state(ctx).settings().database_url
    engine = create_registry_engine(url)
    try:
        with translate_connection_errors(engine.url):
            after = upgrade(engine)
    finally:
        engine.dispose()
    if after.migrated:
        note(f"upgraded {redact(engine.url)} from {after.previous or 'empty'} to {after.current}")
    else:
        note(f"{redact(engine.url)} is already at revision {after.current}")
