"""The ``problem-registry`` command: a thin layer over the library's ``Registry``.

One Typer app per command group, composed here. Exit codes: 0 ok, 1 a user error (one line on
stderr naming the thing and the fix), 2 a usage error.

Command modules are imported only when their command runs: importing all of them eagerly was most of
the start-up every ``replay`` in CI pays (docs/performance.md). :data:`COMMANDS` names where each
command lives; ``--help`` imports them all.
"""

from __future__ import annotations

import gc
from difflib import get_close_matches
from importlib import import_module
from typing import Any

import typer
from typer.models import CommandInfo, TyperInfo

from problem_registry import __version__
from problem_registry.cli.context import RegistryGroup, state
from problem_registry.cli.help import humanise

# command name -> (module under problem_registry.cli, attribute): a function is one command, a
# Typer app a group of them. In the order --help lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("database", "init"),
    "problem": ("problems", "app"),
    "pattern": ("patterns", "app"),
    "model": ("models", "app"),
    "db": ("database", "app"),
    "replay": ("replay", "replay"),
    "report": ("replay", "report"),
    "run": ("runs", "app"),
    "export": ("bundle", "export"),
    "import": ("bundle", "import_"),
    "check": ("bundle", "check_"),
    "chart": ("charts", "chart"),
    "triage": ("triage", "app"),
    "demo": ("demo", "demo"),
}


class LazyRegistryGroup(RegistryGroup):
    """The root group: builds a command from its module the first time it is asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        humanise(self)

    def get_params(self, ctx: Any) -> list[Any]:
        humanise(self)  # again: Typer adds its completion options after __init__
        return list(super().get_params(ctx))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """A mistyped command gets "did you mean 'problem'?" (exit 2): Typer's own suggestion
        looks only at commands already built, and these are built lazily."""
        name, known = (args[0] if args else ""), self.list_commands(ctx)
        if name and not name.startswith("-") and name not in known:
            matches = get_close_matches(name, known, n=1)
            if matches:
                ctx.fail(f"No such command {name!r}; did you mean {matches[0]!r}?")
        return super().resolve_command(ctx, args)

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(name for name in super().list_commands(ctx) if name not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = _load(cmd_name)
        return super().get_command(ctx, cmd_name)


def _load(name: str) -> Any:
    module, attribute = COMMANDS[name]
    target = getattr(import_module(f"problem_registry.cli.{module}"), attribute)
    if isinstance(target, typer.Typer):
        return humanise(
            typer.main.get_group_from_info(
                TyperInfo(target, name=name),
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
                suggest_commands=app.suggest_commands,
            )
        )
    return humanise(
        typer.main.get_command_from_info(
            CommandInfo(name=name, callback=target),
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
        )
    )


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"problem-registry {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="problem-registry",
    cls=LazyRegistryGroup,
    no_args_is_help=True,
    # Locals can hold database URLs with passwords: never print them in a traceback.
    pretty_exceptions_show_locals=False,
    help="Keep every known model problem in a database, with test patterns, and replay them "
    "against every model version.",
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    url: str | None = typer.Option(
        None,
        "--url",
        help="Database URL (default: $PROBLEM_REGISTRY_URL, then \\[tool.problem-registry] url in "
        "pyproject.toml, then sqlite:///registry.db in the project root).",
        show_default=False,
        metavar="URL",
    ),
    patterns_dir: str | None = typer.Option(
        None,
        "--patterns-dir",
        help="Where pattern files are stored (default: patterns/ beside the SQLite file).",
        show_default=False,
        metavar="DIR",
    ),
    user: str | None = typer.Option(
        None,
        "--user",
        help="Who is writing, recorded with what you add (default: $PROBLEM_REGISTRY_USER, then "
        "user in pyproject.toml, then $GITHUB_ACTOR, $GITLAB_USER_LOGIN, $USER, $LOGNAME).",
        metavar="NAME",
    ),
    _version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    app_state = state(ctx)
    app_state.url, app_state.patterns_dir, app_state.user = url, patterns_dir, user
    ctx.call_on_close(app_state.close)


def main() -> None:
    """The ``problem-registry`` console script: one command, then the process exits."""
    try:
        app(prog_name="problem-registry")
    finally:
        # Python's exit collects every reference cycle still alive, and SQLAlchemy's, pydantic's
        # and the tables' classes are tens of thousands of objects: a tenth of a second of every
        # command that opened the registry, to free memory the process hands back anyway.
        # Frozen objects are left out of that collection. Nothing of ours waits on it: the
        # registry is closed when the command ends, and files are closed where they are written.
        gc.freeze()
