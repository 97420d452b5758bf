"""`problem-registry triage ...`: production cases in, ranked, reviewed, turned into patterns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from problem_registry.cli.context import (
    JsonOption,
    note,
    output,
    print_fields,
    print_table,
    registry,
    stdout,
)
from problem_registry.cli.help import choices
from problem_registry.cli.patterns import Expect, ExpectAny, ExpectNot, ExpectRange, PolarityOption
from problem_registry.cli.terminal import visible
from problem_registry.enums import Polarity
from problem_registry.expectations import Expectation
from problem_registry.triage.queue import REASONS

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry
    from problem_registry.triage.neighbours import Similar

app = typer.Typer(
    help="Production cases: ingest a batch, rank what deserves a tester's eye, turn cases into "
    "patterns, find more like them, watch for drift.",
    no_args_is_help=True,
)

CaseRef = typer.Argument(..., help="A case id (see `triage list`).", metavar="CASE")


@app.command("add")
def add(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A batch: JSONL, or CSV with a header.", metavar="FILE"),
    as_json: bool = JsonOption,
) -> None:
    """Ingest a batch of production predictions as queued cases.

    Each row: path (beside the batch file) or input_base64; version (NAME@VERSION that
    answered); prediction; optionally confidence, scores (label -> probability), rating
    (1 bad .. 5 good), correction (the right label, says the user), id. Every row and input is
    checked first: one bad row refuses the batch, and nothing is written. The same rows again
    add nothing.

    Example: problem-registry triage add monday.jsonl
    """
    from problem_registry.triage.ingest import ingest

    done = ingest(registry(ctx), file)

    def render() -> None:
        already = f", {done.already} already known" if done.already else ""
        where = f" as batch {done.batch}" if done.batch is not None else ""
        note(f"{file}: {done.rows} row(s), {done.added} new case(s){where}{already}")

    output(as_json, done, render)


@app.command("list")
def list_(
    ctx: typer.Context,
    reasons: list[str] | None = typer.Option(
        None,
        "--reason",
        help="Only cases queued for this reason; repeat for several.",
        metavar=choices(REASONS),
    ),
    version: str | None = typer.Option(
        None, "--version", help="Only cases this version answered.", metavar="NAME@VERSION"
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="The first N.", metavar="N"),
    no_replay: bool = typer.Option(
        False, "--no-replay", help="Use cached champion/candidate answers only: load no model."
    ),
    as_json: bool = JsonOption,
) -> None:
    """The queue, most deserving first, with why each case is there.

    Reasons: low-confidence, bad-rating, correction, disagreement (the champion and the latest
    candidate answer differently; both are replayed on new cases, once), near-failures (close
    to a pattern the version gets wrong). Decided cases never come back.

    Example: problem-registry triage list --reason correction --version digits@v3
    """
    from problem_registry.triage.queue import rank

    queue = rank(registry(ctx), reasons=reasons, version=version, replay=not no_replay, limit=limit)

    def render() -> None:
        for ref, reason in queue.unavailable.items():
            note(f"warning: {ref} could not answer the cases ({reason}); no disagreement from it")
        print_table(
            None,
            ["case", "priority", "version", "answer", "conf", "user", "reasons", "detail"],
            (
                [
                    c.id,
                    f"{c.priority:.2f}",
                    c.model,
                    c.predicted,
                    "-" if c.confidence is None else f"{c.confidence:.2f}",
                    _user(c.rating, c.correction),
                    ", ".join(c.reasons),
                    _detail(c.answers, c.near),
                ]
                for c in queue.cases
            ),
            empty="nothing to triage: no queued case has a reason (add a batch: triage add FILE)",
        )
        skipped = f"; {queue.already_patterns} already patterns" if queue.already_patterns else ""
        note(f"{len(queue.cases)} of {queue.queued} queued case(s) shown{skipped}")

    output(as_json, queue, render)


@app.command("show")
def show(ctx: typer.Context, case: str = CaseRef, as_json: bool = JsonOption) -> None:
    """One case: its input, answer, what the user said, and its decision."""
    from problem_registry.triage.cases import get_case
    from problem_registry.triage.ingest import prefetch_contents

    reg = registry(ctx)
    view = get_case(reg, case)
    prefetch_contents(reg, [(view.sha256, view.extension)])  # the file shown exists here too

    def render() -> None:
        print_fields(
            f"case {view.id} (batch {view.batch})",
            [
                ("file", reg.store.root / view.file),
                ("name", view.original_name),
                ("kind", view.kind),
                ("version", view.model),
                ("prediction", view.predicted),
                ("confidence", view.confidence),
                ("scores", view.scores),
                ("rating", view.rating),
                ("correction", view.correction),
                ("status", view.status),
                ("decided by", view.decided_by),
                ("decision", view.reason),
            ],
        )

    output(as_json, view, render)


@app.command("accept")
def accept(
    ctx: typer.Context,
    cases: str = typer.Argument(
        ..., help="A case id, or several: 3,7,12.", metavar="CASE[,CASE...]"
    ),
    problem: str = typer.Argument(..., help="The problem they show.", metavar="SLUG"),
    expect: str | None = Expect,
    expect_any: str | None = ExpectAny,
    expect_not: str | None = ExpectNot,
    expect_range: str | None = ExpectRange,
    polarity: Polarity = PolarityOption,
    note_text: str = typer.Option("", "--note", help="Why it matters.", metavar="TEXT"),
    open_title: str | None = typer.Option(
        None,
        "--open",
        help="Open PROBLEM first, with this title: a new weakness these cases show.",
        metavar="TITLE",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Turn cases into patterns of a problem (source production; the production answer and who
    accepted it in the note). All or none.

    Example: problem-registry triage accept 12 fives-read-as-nines --expect 5

    Example: problem-registry triage accept 3,7,12 faint-sevens --expect 7 --open "Faint sevens"
    """
    from problem_registry.triage.review import accept as accept_cases

    expectation = Expectation.from_options(
        expect=expect, expect_any=expect_any, expect_not=expect_not, expect_range=expect_range
    )
    refs = [part.strip() for part in cases.split(",") if part.strip()]
    if not refs:
        raise typer.BadParameter("name at least one case id", param_hint="CASE")
    done = accept_cases(
        registry(ctx),
        refs,
        problem,
        expectation,
        polarity=polarity,
        note=note_text,
        open_title=open_title,
    )

    def render() -> None:
        for case, pattern in zip(done.cases, done.patterns, strict=True):
            note(f"case {case.id} is now pattern {pattern.id} of {problem} ({pattern.expected})")

    output(as_json, done, render)


@app.command("discard")
def discard(
    ctx: typer.Context,
    case: str = CaseRef,
    reason: str = typer.Option(
        ..., "--reason", help="Why it is not worth a pattern.", metavar="TEXT"
    ),
    as_json: bool = JsonOption,
) -> None:
    """Take a case off the queue for good, saying why.

    Example: problem-registry triage discard 14 --reason "blank upload, not a digit"
    """
    from problem_registry.triage.review import discard as discard_case

    view = discard_case(registry(ctx), case, reason)
    output(as_json, view, lambda: note(f"case {view.id} discarded: {view.reason}"))


TargetPattern = typer.Option(
    None,
    "--pattern",
    help="Look around this pattern (id or sha256 prefix) instead of a case.",
    metavar="ID|SHA256",
)
ByOption = typer.Option(
    "auto",
    "--by",
    help="auto: the model's scores when there are, else the input's perceptual hash or text.",
    metavar="[auto|scores|content]",
)


@app.command("similar")
def similar(
    ctx: typer.Context,
    case: str | None = typer.Argument(None, help="A case id.", metavar="CASE"),
    pattern: str | None = TargetPattern,
    count: int = typer.Option(8, "--count", min=1, max=200, help="How many.", metavar="N"),
    by: str = ByOption,
    as_json: bool = JsonOption,
) -> None:
    """More like this: the nearest other cases and patterns.

    Example: problem-registry triage similar 12

    Example: problem-registry triage similar --pattern 3f9a2c --by content
    """
    found = _similar(ctx, case, pattern, count, by)

    def render() -> None:
        measure = f"scores of {found.version}" if found.by == "scores" else "input content"
        target = found.target
        heading = f"nearest to {target.kind} {target.id} ({target.label}), by {measure}"
        stdout.print(visible(heading), markup=False, highlight=False)
        print_table(
            None,
            ["kind", "id", "label", "problem", "distance", "by", "name"],
            (
                [
                    n.item.kind,
                    n.item.id,
                    n.item.label,
                    n.item.problem or "",
                    f"{n.distance:.3f}",
                    n.by,
                    n.item.name,
                ]
                for n in found.neighbours
            ),
            empty="nothing comparable found",
        )

    output(as_json, found, render)


@app.command("sheet")
def sheet(
    ctx: typer.Context,
    case: str | None = typer.Argument(None, help="A case id.", metavar="CASE"),
    out: Path = typer.Option(..., "--out", "-o", help="The PNG to write.", metavar="FILE"),
    pattern: str | None = TargetPattern,
    count: int = typer.Option(11, "--count", min=1, max=63, help="How many.", metavar="N"),
    by: str = ByOption,
) -> None:
    """A contact sheet of a case (or pattern) and its nearest neighbours, captioned.

    Example: problem-registry triage sheet 12 --out like-12.png
    """
    from problem_registry.errors import OutputError
    from problem_registry.plain_files import write_atomically
    from problem_registry.report.charts import image_png
    from problem_registry.report.gallery.neighbours import neighbour_sheet
    from problem_registry.triage.ingest import ContentReader

    found = _similar(ctx, case, pattern, count, by)
    picture = neighbour_sheet(ContentReader(registry(ctx)), found)
    try:
        write_atomically(out, image_png(picture))
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
    note(f"contact sheet of {len(found.neighbours)} neighbour(s) written to {out}")


@app.command("drift")
def drift(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A production batch (JSONL or CSV).", metavar="FILE"),
    against: int | None = typer.Option(
        None, "--against-batch", help="Compare with this ingested batch.", metavar="N"
    ),
    chart: Path | None = typer.Option(
        None, "--chart", help="Also draw the drift chart into this PNG.", metavar="FILE"
    ),
    as_json: bool = JsonOption,
) -> None:
    """Has production moved? PSI per label and confidence band, against an earlier batch and the
    registry's replay of the version; the same as `report --production FILE`.

    Example: problem-registry triage drift tuesday.jsonl --chart drift.png
    """
    report_drift(registry(ctx), file, as_json=as_json, chart=chart, against=against)


def report_drift(
    reg: Registry,
    file: Path,
    *,
    as_json: bool,
    chart: Path | None = None,
    against: int | None = None,
) -> None:
    """Print the drift of a production batch (``report --production`` and ``triage drift``)."""
    from problem_registry.triage.drift import drift as drift_of

    found = drift_of(reg, file, against_batch=against)
    if chart is not None:
        from problem_registry.errors import OutputError
        from problem_registry.plain_files import write_atomically
        from problem_registry.report.charts import figure_png
        from problem_registry.report.charts.drift import drift_chart

        try:
            write_atomically(chart, figure_png(drift_chart(found.comparisons)))
        except OSError as exc:
            raise OutputError(f"cannot write {chart}: {exc.strerror or exc}") from None
        note(f"drift chart written to {chart}")

    def render() -> None:
        for line in found.notes:
            note(line)
        for comparison in found.comparisons:
            line = visible(comparison.sentence())
            stdout.print(line, markup=False, highlight=False, soft_wrap=True)
            print_table(
                None,
                ["label", "reference", "this batch", "PSI term"],
                (
                    [b.bin, f"{b.reference:.1%}", f"{b.current:.1%}", f"{b.psi:.3f}"]
                    for b in sorted(comparison.labels, key=lambda b: -b.psi)[:6]
                ),
            )

    output(as_json, found, render)


def _similar(
    ctx: typer.Context, case: str | None, pattern: str | None, count: int, by: str
) -> Similar:
    from problem_registry.triage.neighbours import similar as find

    if (case is None) == (pattern is None):
        raise typer.BadParameter("give either a CASE id or --pattern ID|SHA256")
    if by not in ("auto", "scores", "content"):
        raise typer.BadParameter("--by takes auto, scores or content", param_hint="--by")
    return find(registry(ctx), case=case, pattern=pattern, count=count, by=by)


def _user(rating: int | None, correction: str | None) -> str:
    said = []
    if rating is not None:
        said.append(f"{rating}/5")
    if correction is not None:
        said.append(f"says {correction}")
    return " ".join(said)


def _detail(answers: dict[str, str | None], near: dict[str, object] | None) -> str:
    parts = [
        f"{ref}: {answer if answer is not None else 'error'}" for ref, answer in answers.items()
    ]
    if near is not None:
        parts.append(f"near {near['problem']} #{near['pattern']} ({near['by']} {near['distance']})")
    return "; ".join(parts)
