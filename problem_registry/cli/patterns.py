"""`problem-registry pattern ...`: the test cases testers add to a problem."""

from __future__ import annotations

from pathlib import Path

import typer

from problem_registry.cli.context import (
    JsonOption,
    note,
    output,
    print_fields,
    print_table,
    registry,
)
from problem_registry.cli.help import choices
from problem_registry.enums import Polarity, Source
from problem_registry.expectations import Expectation
from problem_registry.store.patterns import AddedPatterns, NewPattern
from problem_registry.store.views import PatternView

app = typer.Typer(
    help="Add, list, show, relabel, remove and import test patterns.", no_args_is_help=True
)

Expect = typer.Option(
    None, "--expect", help="The exact label the model must give.", metavar="LABEL"
)
ExpectAny = typer.Option(
    None, "--expect-any", help="Comma-separated labels, any of which is right.", metavar="A,B"
)
ExpectNot = typer.Option(
    None, "--expect-not", help="Comma-separated labels the model must not give.", metavar="A,B"
)
ExpectRange = typer.Option(
    None, "--expect-range", help="A regressor's number must fall in LOW:HIGH.", metavar="LOW:HIGH"
)
PolarityOption = typer.Option(
    Polarity.positive,
    "--polarity",
    help="positive: an instance of the problem; negative: a near miss that must keep its answer.",
    metavar=choices(Polarity),
)
SourceOption = typer.Option(
    Source.contrived, "--source", help="Where the pattern came from.", metavar=choices(Source)
)
NoteOption = typer.Option("", "--note", help="Free text: why this pattern matters.", metavar="TEXT")
ProblemOption = typer.Option(
    None, "--problem", "-p", help="Only look in this problem.", metavar="SLUG"
)
PatternRef = typer.Argument(
    ..., help="Pattern id, or a sha256 prefix (6+ hex digits).", metavar="ID|SHA256"
)


@app.command("add")
def add(
    ctx: typer.Context,
    slug: str = typer.Argument(..., help="The problem the patterns belong to.", metavar="SLUG"),
    files: list[Path] = typer.Argument(
        ..., help="One or more image, text or JSON files.", metavar="FILE"
    ),
    expect: str | None = Expect,
    expect_any: str | None = ExpectAny,
    expect_not: str | None = ExpectNot,
    expect_range: str | None = ExpectRange,
    polarity: Polarity = PolarityOption,
    source: Source = SourceOption,
    note_text: str = NoteOption,
    as_json: bool = JsonOption,
) -> None:
    """Add files as patterns of a problem, all with the same expectation.

    All files are checked first; if one is refused, none is added.

    Example: problem-registry pattern add chihuahua-vs-muffin muffin1.jpg muffin2.jpg
    --expect muffin --source production --note "from ticket 4411"
    """
    expectation = Expectation.from_options(
        expect=expect, expect_any=expect_any, expect_not=expect_not, expect_range=expect_range
    )
    new = [NewPattern(path, expectation, polarity, source, note_text) for path in files]
    added = registry(ctx).patterns.add(slug, new)
    _report(as_json, slug, added)


@app.command("import")
def import_(
    ctx: typer.Context,
    slug: str = typer.Argument(..., help="The problem the patterns belong to.", metavar="SLUG"),
    folder: Path | None = typer.Argument(
        None, help="A folder laid out label/file.", metavar="FOLDER"
    ),
    csv_file: Path | None = typer.Option(
        None, "--csv", help="A CSV with columns path,expected,polarity,note.", metavar="FILE"
    ),
    polarity: Polarity = PolarityOption,
    source: Source = SourceOption,
    note_text: str = NoteOption,
    update: bool = typer.Option(
        False,
        "--update",
        help="Relabel the patterns already held whose expectation the folder or CSV changed "
        "(without it, such a change is a conflict and nothing is imported).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Import many patterns at once; files the problem already holds are skipped.

    From a folder, each file expects the name of its folder: cats/a.png expects "cats".
    From a CSV, `expected` is a label, or any:a,b / not:x / range:3.5:4.0.

    A file already held whose expectation changed is a conflict (exit 1, naming each, nothing
    imported) unless --update relabels it.

    Example: problem-registry pattern import chihuahua-vs-muffin ./triage/

    Example: problem-registry pattern import chihuahua-vs-muffin --csv labels.csv --update
    """
    if (folder is None) == (csv_file is None):
        raise typer.BadParameter("give either a FOLDER or --csv FILE")
    patterns = registry(ctx).patterns
    if csv_file is not None:
        added = patterns.import_csv(slug, csv_file, source=source, update=update)
    else:
        assert folder is not None
        added = patterns.import_folder(
            slug, folder, polarity=polarity, source=source, note=note_text, update=update
        )
    _report(as_json, slug, added)


@app.command("list")
def list_(
    ctx: typer.Context,
    slug: str | None = typer.Argument(None, help="Only this problem's patterns.", metavar="SLUG"),
    as_json: bool = JsonOption,
) -> None:
    """List patterns, by problem."""
    views = registry(ctx).patterns.list(slug)
    output(as_json, views, lambda: print_patterns(views))


@app.command("show")
def show(
    ctx: typer.Context,
    ref: str = PatternRef,
    problem: str | None = ProblemOption,
    as_json: bool = JsonOption,
) -> None:
    """Show one pattern: its file, expectation and provenance."""
    reg = registry(ctx)
    view = reg.patterns.get(ref, problem=problem)
    path = reg.store.root / view.file

    def render() -> None:
        print_fields(
            f"pattern {view.id} of {view.problem}",
            [
                ("sha256", view.sha256),
                ("kind", view.kind),
                ("file", path),
                ("original name", view.original_name),
                ("expected", view.expected),
                ("polarity", view.polarity),
                ("source", view.source),
                ("note", view.note),
                ("added by", view.added_by),
                ("added at", view.added_at),
            ],
        )

    output(as_json, view, render)


@app.command("relabel")
def relabel(
    ctx: typer.Context,
    ref: str = PatternRef,
    expect: str | None = Expect,
    expect_any: str | None = ExpectAny,
    expect_not: str | None = ExpectNot,
    expect_range: str | None = ExpectRange,
    problem: str | None = ProblemOption,
    as_json: bool = JsonOption,
) -> None:
    """Change what a pattern expects. Stored results are re-scored; no model runs again.

    Example: problem-registry pattern relabel 3f9a2c --expect-any muffin,cake
    """
    expectation = Expectation.from_options(
        expect=expect, expect_any=expect_any, expect_not=expect_not, expect_range=expect_range
    )
    view = registry(ctx).patterns.relabel(ref, expectation, problem=problem)
    output(
        as_json,
        view,
        lambda: note(f"pattern {view.id} of {view.problem} now expects {view.expected}"),
    )


@app.command("remove")
def remove(
    ctx: typer.Context,
    ref: str = PatternRef,
    problem: str | None = ProblemOption,
    as_json: bool = JsonOption,
) -> None:
    """Remove a pattern from its problem."""
    view = registry(ctx).patterns.remove(ref, problem=problem)
    output(
        as_json,
        view,
        lambda: note(f"removed pattern {view.id} ({view.original_name}) from {view.problem}"),
    )


def print_patterns(views: list[PatternView]) -> None:
    print_table(
        None,
        ["id", "problem", "sha256", "kind", "file", "expected", "polarity", "source", "note"],
        (
            [
                v.id,
                v.problem,
                v.sha256[:12],
                v.kind,
                v.original_name,
                v.expected,
                v.polarity,
                v.source,
                v.note,
            ]
            for v in views
        ),
        empty="no patterns yet; add some with `problem-registry pattern add SLUG FILE --expect L`",
    )


def _report(as_json: bool, slug: str, result: AddedPatterns) -> None:
    def render() -> None:
        if result.added:
            print_patterns(result.added)
        skipped = f", skipped {len(result.skipped)} already present" if result.skipped else ""
        for view in result.relabelled:
            note(f"relabelled pattern {view.id} ({view.original_name}): expects {view.expected}")
        relabelled = f", relabelled {len(result.relabelled)}" if result.relabelled else ""
        note(f"added {len(result.added)} pattern(s) to {slug}{skipped}{relabelled}")

    document = {"added": result.added, "skipped": result.skipped, "relabelled": result.relabelled}
    output(as_json, document, render)
