"""`problem-registry problem ...`: name the weaknesses of a model and set their gates."""

from __future__ import annotations

from typing import Any

import typer

from problem_registry.cli.context import (
    JsonOption,
    note,
    output,
    percent,
    print_fields,
    print_table,
    registry,
)
from problem_registry.cli.help import choices
from problem_registry.cli.history import history_dict, print_history, problem_history
from problem_registry.cli.patterns import print_patterns
from problem_registry.enums import ProblemStatus
from problem_registry.store.registry import Registry
from problem_registry.store.signoffs import SignOffView, signoffs
from problem_registry.store.views import ProblemView
from problem_registry.verdicts.gates import GateResult, latest_gate
from problem_registry.verdicts.signoffs import sign_off

app = typer.Typer(help="Add, list, show, edit and retire problems.", no_args_is_help=True)

MaxErrorRate = typer.Option(
    None,
    "--max-error-rate",
    help="Canary gate: the highest error rate a candidate may have on this problem (0..1).",
    metavar="RATE",
)
AllowedRegressions = typer.Option(
    None,
    "--allowed-regressions",
    help="Regression gate: how many patterns may newly fail against the champion.",
    metavar="N",
)
Tags = typer.Option(None, "--tag", "-t", help="A tag; repeat for several.", metavar="TAG")
Models = typer.Option(
    None,
    "--model",
    help="A model (its NAME) the problem belongs to: replayed and judged only against its "
    "versions; repeat for several (default: every model).",
    metavar="NAME",
)
Slug = typer.Argument(..., help="The problem's slug, e.g. chihuahua-vs-muffin.", metavar="SLUG")
Text = "TEXT"


@app.command("add")
def add(
    ctx: typer.Context,
    slug: str = typer.Argument(..., help="Identifier, e.g. chihuahua-vs-muffin.", metavar="SLUG"),
    title: str | None = typer.Option(
        None, help="One-line title (default: from the slug).", metavar=Text
    ),
    description: str = typer.Option(
        "", help="What goes wrong, and where it was seen.", metavar=Text
    ),
    tag: list[str] | None = Tags,
    max_error_rate: float | None = MaxErrorRate,
    allowed_regressions: int | None = AllowedRegressions,
    model: list[str] | None = Models,
    as_json: bool = JsonOption,
) -> None:
    """Register a new problem.

    Example: problem-registry problem add chihuahua-vs-muffin --max-error-rate 0.2 -t vision

    Example: problem-registry problem add hat-bias --model people-detector
    """
    reg = registry(ctx)
    view = reg.problems.add(
        slug,
        title=title,
        description=description,
        tags=tag or [],
        max_error_rate=max_error_rate,
        allowed_regressions=allowed_regressions or 0,
        models=model or [],
    )
    _warn_unregistered(reg, view.models)
    output(as_json, view, lambda: note(f"added problem {view.slug}: {view.title}"))


@app.command("list")
def list_(
    ctx: typer.Context,
    status: str | None = typer.Option(
        None, help="Only problems with this status.", metavar=choices(ProblemStatus)
    ),
    tag: str | None = typer.Option(None, help="Only problems with this tag.", metavar="TAG"),
    as_json: bool = JsonOption,
) -> None:
    """List problems, sorted by slug."""
    views = registry(ctx).problems.list(status=status, tag=tag)
    output(as_json, views, lambda: _print_problems(views))


@app.command("show")
def show(ctx: typer.Context, slug: str = Slug, as_json: bool = JsonOption) -> None:
    """Show a problem, its gates, its sign-offs, its history across versions and its patterns.

    The history has one row per version of each model the problem belongs to: how many patterns
    it got right, whether it met the limit, which patterns it fixed or broke since the version
    before, and where a lead signed it off; above it, the story in a line ("first fixed in v2,
    broken in v4").
    """
    reg = registry(ctx)
    view = reg.problems.get(slug)
    patterns = reg.patterns.list(slug)
    gate = latest_gate(reg, slug)
    stories = problem_history(reg, view)
    signed = signoffs(reg, [slug])

    def render() -> None:
        print_fields(view.slug, _fields(view) + _gate_fields(gate) + _signoff_fields(signed))
        for story in stories:
            print_history(story)
        print_patterns(patterns)

    document = {
        "problem": view,
        "patterns": patterns,
        "gate": gate.to_dict() if gate else None,
        "signoffs": signed,
        "history": [history_dict(story) for story in stories],
    }
    output(as_json, document, render)


@app.command("signoff")
def signoff(
    ctx: typer.Context,
    slug: str = Slug,
    version: str = typer.Option(
        ...,
        "--version",
        help="The version accepted, NAME@VERSION (or VERSION when only one model has it).",
        metavar="NAME@VERSION",
    ),
    note_text: str = typer.Option(
        "",
        "--note",
        help='What was accepted, and why, e.g. "80% is fine for launch".',
        metavar="TEXT",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Sign a problem off at a version: record who accepted it, its numbers now, and a note.

    A later version of that model which is confidently worse than the signed-off one on this
    problem (the gates' paired test, with the signed-off version as baseline) then fails its
    gate, naming the sign-off. Who signs is --user, else $PROBLEM_REGISTRY_USER, $GITHUB_ACTOR,
    $USER.

    Example: problem-registry problem signoff chihuahua-vs-muffin --version dogs-vs-food@v2
    --note "80% right, accepted for the pilot"
    """
    view = sign_off(registry(ctx), slug, version, note=note_text)
    output(as_json, view, lambda: note(f"signed off {view.problem}: {view.describe()}"))


@app.command("edit")
def edit(
    ctx: typer.Context,
    slug: str = Slug,
    title: str | None = typer.Option(None, help="A new one-line title.", metavar=Text),
    description: str | None = typer.Option(None, help="A new description.", metavar=Text),
    status: str | None = typer.Option(
        None, help="open, fixed or retired.", metavar=choices(ProblemStatus)
    ),
    tag: list[str] | None = typer.Option(
        None, "--tag", "-t", help="Replace the tags.", metavar="TAG"
    ),
    max_error_rate: float | None = MaxErrorRate,
    no_max_error_rate: bool = typer.Option(
        False, "--no-max-error-rate", help="Remove the canary gate."
    ),
    allowed_regressions: int | None = AllowedRegressions,
    model: list[str] | None = typer.Option(
        None,
        "--model",
        help="Replace the models the problem belongs to; repeat for several.",
        metavar="NAME",
    ),
    all_models: bool = typer.Option(
        False, "--all-models", help="The problem belongs to every model again."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Change a problem's title, description, status, tags, models or gates.

    Example: problem-registry problem edit chihuahua-vs-muffin --max-error-rate 0.1
    """
    changes: dict[str, Any] = {
        key: value
        for key, value in {
            "title": title,
            "description": description,
            "status": status,
            "tags": tag,
            "max_error_rate": max_error_rate,
            "allowed_regressions": allowed_regressions,
        }.items()
        if value is not None
    }
    if no_max_error_rate:
        if max_error_rate is not None:
            raise typer.BadParameter("give --max-error-rate or --no-max-error-rate, not both")
        changes["max_error_rate"] = None
    if all_models:
        if model:
            raise typer.BadParameter("give --model or --all-models, not both")
        changes["models"] = []
    elif model:
        changes["models"] = model
    reg = registry(ctx)
    view = reg.problems.edit(slug, **changes)
    if model:
        _warn_unregistered(reg, view.models)
    output(as_json, view, lambda: note(f"updated problem {view.slug}"))


@app.command("retire")
def retire(ctx: typer.Context, slug: str = Slug, as_json: bool = JsonOption) -> None:
    """Retire a problem: its patterns and history stay, it no longer gates a candidate."""
    view = registry(ctx).problems.retire(slug)
    output(as_json, view, lambda: note(f"retired problem {view.slug}"))


def _warn_unregistered(reg: Registry, names: list[str]) -> None:
    """A model not registered yet is kept (register it next), but said, in case of a typo."""
    known = {view.name for view in reg.models.list()}
    for name in names:
        if name not in known:
            note(
                f"note: no model named {name} is registered yet; its versions will replay this "
                "problem once registered (`problem-registry model register`)"
            )


def _print_problems(views: list[ProblemView]) -> None:
    print_table(
        None,
        [
            "slug",
            "title",
            "status",
            "patterns (+/-)",
            "max error",
            "allowed regr.",
            "tags",
            "models",
        ],
        (
            [
                v.slug,
                v.title,
                v.status,
                f"{v.patterns} ({v.positives}/{v.negatives})",
                percent(v.max_error_rate),
                v.allowed_regressions,
                ", ".join(v.tags),
                ", ".join(v.models) or "all",
            ]
            for v in views
        ),
        empty="no problems yet; add one with `problem-registry problem add SLUG`",
    )


def _signoff_fields(signed: list[SignOffView]) -> list[tuple[str, Any]]:
    return [("signed off", view.describe()) for view in signed]


def _gate_fields(gate: GateResult | None) -> list[tuple[str, Any]]:
    """What the problem's patterns can catch, from its gate on the newest version."""
    if gate is None:
        return [("power", "no version has answered its patterns yet")]
    against = f" against {gate.champion}" if gate.champion else " (no champion: canary only)"
    fields = [("last gate", f"{gate.candidate}{against}: {gate.outcome.value}")]
    if gate.signoff is not None:
        below = "not below it"
        if gate.below_signoff:
            below = "below it: fails"
        elif gate.verdict.reason.startswith("possibly below the sign-off"):
            below = "possibly below it: review"
        fields.append(("held to", f"the sign-off at {gate.signoff.ref}: {below}"))
    power = gate.verdict.power
    if power is not None:
        weak = "" if power.adequate else " (weak: cannot catch what the gate promises)"
        fields.append(("power", f"{power.statement()}{weak}"))
    return fields


def _fields(view: ProblemView) -> list[tuple[str, Any]]:
    return [
        ("title", view.title),
        ("status", view.status),
        ("description", view.description),
        ("tags", ", ".join(view.tags)),
        ("models", ", ".join(view.models) or "every model"),
        ("max error rate", percent(view.max_error_rate)),
        ("allowed regressions", view.allowed_regressions),
        ("patterns", f"{view.patterns} ({view.positives} positive, {view.negatives} negative)"),
        ("created", view.created_at),
        ("updated", view.updated_at),
    ]
