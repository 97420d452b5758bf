"""The ``problem-registry`` command: a thin layer over :class:`problem_registry.registry.Registry`.

One Typer app per command group, composed here. Exit codes: 0 ok, 1 a user error (one line on
stderr naming the thing and the fix), 2 a usage error.
"""

from __future__ import annotations

import typer

from problem_registry.cli import bundle, database, demo, models, patterns, problems, replay
from problem_registry.cli import charts as chart_command
from problem_registry.cli.context import RegistryGroup, state

app = typer.Typer(
    name="problem-registry",
    cls=RegistryGroup,
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
    ),
    patterns_dir: str | None = typer.Option(
        None,
        "--patterns-dir",
        help="Where pattern files are stored (default: patterns/ beside the SQLite file).",
        show_default=False,
    ),
    user: str | None = typer.Option(
        None, "--user", help="Who is writing (default: $PROBLEM_REGISTRY_USER, then $USER)."
    ),
) -> None:
    app_state = state(ctx)
    app_state.url, app_state.patterns_dir, app_state.user = url, patterns_dir, user
    ctx.call_on_close(app_state.close)


app.command("init")(database.init)
app.add_typer(problems.app, name="problem")
app.add_typer(patterns.app, name="pattern")
app.add_typer(models.app, name="model")
app.add_typer(database.app, name="db")
app.command("replay")(replay.replay)
app.command("report")(replay.report)
app.command("export")(bundle.export)
app.command("import")(bundle.import_)
app.command("check")(bundle.check_)
app.command("chart")(chart_command.chart)
app.command("demo")(demo.demo)


def main() -> None:
    app(prog_name="problem-registry")
