"""`problem-registry model ...`: register model versions in order and name the champion."""

from __future__ import annotations

from pathlib import Path

import typer

from problem_registry.adapters import check_loadable
from problem_registry.cli.context import JsonOption, note, output, print_table, registry
from problem_registry.enums import LoaderKind
from problem_registry.store.model_versions import parse_metrics
from problem_registry.store.views import ModelVersionView

app = typer.Typer(help="Register, list and promote model versions.", no_args_is_help=True)


@app.command("register")
def register(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name, e.g. digits.", metavar="NAME"),
    version: str = typer.Argument(
        ..., help="Version, e.g. v3. Versions are kept in order.", metavar="VERSION"
    ),
    loader: str | None = typer.Option(
        None,
        "--loader",
        help="module:callable returning a batch predict function.",
        metavar="MODULE:CALLABLE",
    ),
    artifact: Path | None = typer.Option(
        None,
        "--artifact",
        help="Model file passed to the loader; its sha256 is recorded.",
        metavar="FILE",
    ),
    predictions: Path | None = typer.Option(
        None,
        "--predictions",
        help="Instead of --loader: a JSONL or CSV file of answers keyed by pattern sha256 "
        "(columns sha256,prediction[,confidence][,scores]), for a model that runs elsewhere.",
        metavar="FILE",
    ),
    metric: list[str] | None = typer.Option(
        None,
        "--metric",
        "-m",
        help="Headline metric KEY=VALUE; repeat for several.",
        metavar="KEY=VALUE",
    ),
    note_text: str = typer.Option(
        "", "--note", help="Free text: what changed in this version.", metavar="TEXT"
    ),
    as_json: bool = JsonOption,
) -> None:
    """Register a model version (after those already registered).

    The loader must import now (from the working directory): a typo is refused here, not in CI.

    Example: problem-registry model register digits v3 --loader my_models:load
    --artifact models/v3.joblib --metric accuracy=0.97
    """
    if (loader is None) == (predictions is None) or (predictions and artifact):
        raise typer.BadParameter("give --loader (with an optional --artifact) or --predictions")
    view = registry(ctx).models.register(
        name,
        version,
        loader=loader or str(predictions.resolve()),  # type: ignore[union-attr]
        loader_kind=LoaderKind.predictions if predictions else LoaderKind.python,
        artifact=predictions or artifact,
        metrics=parse_metrics(metric or []),
        note=note_text,
        check=check_loadable,
    )
    output(as_json, view, lambda: note(f"registered {view.ref}"))


@app.command("list")
def list_(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="Only versions of this model.", metavar="NAME"),
    as_json: bool = JsonOption,
) -> None:
    """List model versions in registration order; the champion is starred."""
    views = registry(ctx).models.list(name)
    output(as_json, views, lambda: _print_models(views))


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name.", metavar="NAME"),
    version: str = typer.Argument(..., help="The version to promote.", metavar="VERSION"),
    as_json: bool = JsonOption,
) -> None:
    """Make a version the champion of its model: candidates are compared against it."""
    view = registry(ctx).models.promote(name, version)
    output(as_json, view, lambda: note(f"{view.ref} is now the champion of {view.name}"))


def _print_models(views: list[ModelVersionView]) -> None:
    print_table(
        None,
        ["model", "version", "champion", "loader", "artifact", "metrics", "registered"],
        (
            [
                v.name,
                v.version,
                "*" if v.is_champion else "",
                v.loader,
                (v.artifact_sha256 or "")[:12],
                ", ".join(f"{key}={value:g}" for key, value in v.metrics.items()),
                f"{v.registered_at} by {v.registered_by}",
            ]
            for v in views
        ),
        empty="no model versions yet; add one with `problem-registry model register NAME VERSION`",
    )
