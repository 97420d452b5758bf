"""`problem-registry run list`: the recent replays, what they did and when (issue 19, item 11)."""

from __future__ import annotations

import typer

from problem_registry.cli.context import JsonOption, output, print_table, registry
from problem_registry.store.run_list import RunView, recent_runs

app = typer.Typer(help="List the recent replay runs.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    last: int = typer.Option(20, "--last", min=1, help="How many runs, newest first.", metavar="N"),
    as_json: bool = JsonOption,
) -> None:
    """Recent replay runs (replay, pytest --registry), newest first: status, what triggered it,
    the versions it predicted, its counts (predicted, already stored, errored), when and how
    long, and why it stopped or what it reported.

    Example: problem-registry run list --last 5
    """
    views = recent_runs(registry(ctx), last=last)
    output(as_json, views, lambda: _print_runs(views))


def _print_runs(views: list[RunView]) -> None:
    print_table(
        None,
        [
            "run",
            "status",
            "trigger",
            "by",
            "versions",
            "predicted",
            "stored",
            "errored",
            "started",
            "took",
            "first error / message",
        ],
        (
            [
                v.id,
                v.status,
                v.trigger,
                v.triggered_by,
                ", ".join(v.versions) or (v.candidate or "-"),
                v.predicted,
                v.reused,
                v.errored,
                v.started_at,
                "-" if v.seconds is None else f"{v.seconds:.1f} s",
                "; ".join(part for part in (v.first_error, v.message) if part),
            ]
            for v in views
        ),
        empty="no runs yet; `problem-registry replay` records one",
    )
