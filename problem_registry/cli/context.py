"""What every command shares: the registry it talks to, error translation, and output helpers.

stdout carries only what a script may parse (tables, or JSON with ``--json``); messages and
progress go to stderr.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from problem_registry.cli.terminal import cell, json_safe, visible
from problem_registry.config import Settings, resolve_settings
from problem_registry.errors import RegistryError, UnknownUserWarning
from problem_registry.redaction import redact_text

if TYPE_CHECKING:
    # Imported when a command first opens the registry: SQLAlchemy, SQLModel and Alembic are most
    # of the start-up, and --help or --version need none of them.
    from problem_registry.store.registry import Registry

stdout = Console(soft_wrap=False)
if not stdout.is_terminal:
    # Piped or captured: do not fold tables at rich's default 80 columns.
    stdout = Console(soft_wrap=False, width=200)
stderr = Console(stderr=True, soft_wrap=True)

JsonOption = typer.Option(False, "--json", help="Print JSON on stdout instead of a table.")


class RegistryGroup(TyperGroup):
    """Turns any user mistake raised by the library into one line on stderr and exit code 1."""

    def invoke(self, ctx: typer.Context) -> Any:
        with warnings.catch_warnings():
            # The library's "recorded as 'unknown'" warning: once, one line on stderr (issue 19).
            # Counted here: a library imported on the way (scikit-learn) may add filters of its own.
            warnings.simplefilter("always", UnknownUserWarning)
            warnings.showwarning = _OncePerMessage()
            try:
                return super().invoke(ctx)
            except RegistryError as exc:
                fail(str(exc))


class _OncePerMessage:
    """A ``warnings.showwarning`` writing each distinct warning once, as one line on stderr."""

    def __init__(self) -> None:
        self.shown: set[str] = set()

    def __call__(self, message: Warning | str, *_args: Any, **_kwargs: Any) -> None:
        if str(message) not in self.shown:
            self.shown.add(str(message))
            note(f"warning: {message}")


def fail(message: str, code: int = 1) -> typer.Exit:
    # RegistryError has redacted its own text; this also covers a message built here (issue 16).
    # A message quotes what the user gave (a file name, a label, a bundle's field), which can hold
    # a newline, an escape sequence or a lone surrogate: it must stay one line (cli.terminal).
    message = visible(redact_text(message))
    stderr.print(f"error: {message}", markup=False, highlight=False, emoji=False)
    raise typer.Exit(code)


@dataclass
class AppState:
    """The global flags; the registry is opened on first use and closed when the command ends."""

    url: str | None = None
    patterns_dir: str | None = None
    user: str | None = None
    _registry: Registry | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        return resolve_settings(url=self.url, patterns_dir=self.patterns_dir, user=self.user)

    def registry(self, *, create: bool = False) -> Registry:
        """The registry, which must exist: only ``init`` passes ``create`` (issue 19), so a read
        or a write in the wrong folder says "no registry here" instead of making one."""
        if self._registry is None:
            from problem_registry.store.registry import Registry

            self._registry = Registry.open(self.settings(), create=create)
        return self._registry

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None


def state(ctx: typer.Context) -> AppState:
    return ctx.find_root().ensure_object(AppState)


def registry(ctx: typer.Context) -> Registry:
    return state(ctx).registry()


def print_json(data: Any) -> None:
    """JSON on stdout, UTF-8 and stable key order, for scripts and CI jobs."""
    typer.echo(json_safe(json.dumps(_plain(data), indent=2, sort_keys=True, ensure_ascii=False)))


def _plain(data: Any) -> Any:
    if hasattr(data, "model_dump"):
        return data.model_dump(mode="json")
    if hasattr(data, "to_dict"):
        return data.to_dict()
    if isinstance(data, (list, tuple)):
        return [_plain(item) for item in data]
    if isinstance(data, dict):
        return {key: _plain(value) for key, value in data.items()}
    return data


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    empty: str = "nothing to show",
) -> None:
    """A table on stdout; cells and title shown as text (never markup, controls made visible)."""
    cells = [
        ["" if value is None else visible(str(value), newlines=True) for value in row]
        for row in rows
    ]
    if not cells:
        note(empty)
        return
    if len(cells) > PLAIN_TABLE_ROWS:
        _print_plain_table(title, columns, cells)
        return
    table = Table(title=cell(title) if title else None, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in cells:
        table.add_row(*map(Text, row))
    stdout.print(table)


# Rich lays out ~1 ms per row: 95 s for `report` at 1,000 problems x 100 versions. Past this many
# rows nobody reads boxes, so the table is printed as plain aligned columns (well under 1 s).
PLAIN_TABLE_ROWS = 2000


def _print_plain_table(title: str | None, columns: Sequence[str], cells: list[list[str]]) -> None:
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    lines = [visible(title)] if title else []
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [columns, *cells]
    ]
    sys.stdout.write("\n".join(lines) + "\n")


def print_fields(title: str, fields: Sequence[tuple[str, Any]]) -> None:
    """A record's fields on stdout; values shown as text (never markup, controls visible)."""
    table = Table(title=cell(title), title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in fields:
        table.add_row(cell(key), cell(value))
    stdout.print(table)


def note(message: str) -> None:
    """A human message on stderr (never mixed into what a script reads from stdout)."""
    stderr.print(visible(message, newlines=True), markup=False, highlight=False, emoji=False)


def percent(rate: float | None) -> str:
    return (
        "-" if rate is None else f"{rate:.0%}" if rate * 100 == int(rate * 100) else f"{rate:.1%}"
    )


def output(as_json: bool, data: Any, render: Callable[[], None]) -> None:
    """One switch for every list/show command: JSON for scripts, a table for people."""
    if as_json:
        print_json(data)
    else:
        render()


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[..., None]]:
    """A rich progress bar on stderr, driven by the library's ``progress(done, total)`` callbacks.

    The callable it yields also takes a new ``description`` for the step under way.

    ``redirect_stdout=False``: on a terminal, rich would otherwise capture stdout into its own
    stderr console, and JSON meant for a script would land on stderr.
    """
    with Progress(
        TextColumn("{task.description}", markup=False),  # it names versions: user text
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        redirect_stdout=False,
        redirect_stderr=False,
        transient=True,
        disable=not stderr.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int, description: str | None = None) -> None:
            shown = None if description is None else visible(description)
            progress.update(task, completed=done, total=total, description=shown)

        yield update
