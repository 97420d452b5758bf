"""`problem-registry replay` and `report`: predict what is missing, then read the error rates.

The progress bar goes to stderr and never captures stdout (see ``cli.context.progress_bar``), so
``replay --json`` and ``report --json`` stay parseable even on a terminal.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from problem_registry.cli.context import (
    JsonOption,
    fail,
    note,
    percent,
    print_json,
    print_table,
    progress_bar,
    registry,
)
from problem_registry.cli.grid import GRID_VERSIONS, print_grid
from problem_registry.errors import InvalidValue
from problem_registry.replay import engine
from problem_registry.replay.refusals import unreadable_message
from problem_registry.replay.shards import Shard
from problem_registry.replay.summary import ReplayProgress, ReplaySummary
from problem_registry.store.signoffs import signoffs
from problem_registry.text import visible

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry
    from problem_registry.verdicts.metrics import ProblemVersionMetrics


def replay(
    ctx: typer.Context,
    model: str | None = typer.Option(
        None,
        "--model",
        help="Replay only this version; it must load.",
        metavar="NAME@VERSION",
    ),
    all_versions: bool = typer.Option(
        False, "--all", help="Replay every registered version (the default)."
    ),
    batch_size: int = typer.Option(
        engine.DEFAULT_BATCH_SIZE,
        "--batch-size",
        min=1,
        help="Inputs per model call.",
        metavar="N",
    ),
    batch_timeout: float | None = typer.Option(
        None,
        "--batch-timeout",
        min=0.001,
        help="Seconds one model call may take; a version that hangs longer is stopped and "
        "reported, and the others go on.",
        metavar="SECONDS",
    ),
    retry_errored: bool = typer.Option(
        False,
        "--retry-errored",
        help="Predict again the pairs stored as errored (say, after fixing a loader) and replace "
        "them with the new answers.",
    ),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="Replay only shard I of N of the pattern files (a CI matrix job); a final job "
        "without --shard gates on all shards' results and predicts nothing.",
        metavar="I/N",
    ),
    jobs: int | None = typer.Option(
        None,
        "--jobs",
        min=1,
        help="Versions predicting at once, each in its own process (default: 8, or one per CPU "
        "on a machine with more).",
        metavar="N",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Predict every (model version, pattern) pair that has no stored result yet.

    Nothing already stored is predicted again, and a replay with nothing missing loads no model.
    A prior version whose loader no longer works is reported and skipped; its results still
    count. Interrupted? Run it again: it resumes where it stopped.

    Example: problem-registry replay --model digits@v3

    Example: problem-registry replay --all --batch-timeout 30

    Example: problem-registry replay --model digits@v3 --retry-errored

    Example: problem-registry replay --shard 2/3   (the second job of a three-job CI matrix)

    Runners replaying one registry at once share the work: each pair is predicted once.
    """
    if model is not None and all_versions:
        raise typer.BadParameter("give --model NAME@VERSION or --all, not both")
    try:
        chosen = Shard.parse(shard) if shard is not None else None
    except InvalidValue as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None
    reg = registry(ctx)
    # Held until the summary is printed: a signal arriving once the replay is done is ignored.
    with _StopOnSignal() as stop:
        try:
            with progress_bar("replaying") as update:

                def callback(event: ReplayProgress) -> None:
                    stop.check()
                    update(event.done, event.total, f"replaying {event.version or ''}".strip())

                summary = engine.replay(
                    reg,
                    versions=[] if model else None,
                    candidate=model,
                    batch_size=batch_size,
                    progress=callback,
                    trigger="cli",
                    batch_timeout=batch_timeout,
                    retry_errored=retry_errored,
                    shard=chosen,
                    jobs=jobs,
                )
        except KeyboardInterrupt:
            note("interrupted: what was predicted is stored; run replay again to resume")
            raise typer.Exit(130) from None
        _print_summary(summary, as_json)


def _print_summary(summary: ReplaySummary, as_json: bool) -> None:
    if as_json:
        print_json(summary.to_dict())
    for version in summary.versions:
        if version.status == "unavailable":
            note(f"warning: {version.reason}")
        elif version.status == "replayed":
            remarks = version.remarks()
            note(f"{version.ref}: {version.predicted} predicted{', ' if remarks else ''}{remarks}")
    for refused in summary.refused:
        used_by = f" (used by {', '.join(refused.patterns)})" if refused.patterns else ""
        note(f"warning: refused {refused.reason}{used_by}")
    note(
        f"run #{summary.run_id}: {summary.predicted} predicted, {summary.reused} already stored, "
        f"{summary.errored} errored, in {summary.seconds:.2f} s"
    )
    if summary.refused:
        # Never a green replay that replayed nothing (issue 17): the results of content nobody
        # can read are missing, so the gates would judge fewer patterns than the problems hold.
        fail(unreadable_message(summary))


class _StopOnSignal:
    """SIGINT (Ctrl-C) and SIGTERM (a CI job cancelled, `kill`) stop a replay between batches.

    The first signal asks the replay to stop at the end of the current batch, so the stop never
    lands inside a database call; a second one stops at once. Either way the replay's Run is
    recorded ``interrupted`` and what was predicted is kept.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = 0
        self.stopping_twice = False
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignal:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            for signum in self.SIGNALS:
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = signum
        if self.stopping_twice:
            raise KeyboardInterrupt(f"signal {signum}, twice")
        self.stopping_twice = True

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt(f"signal {self.requested}")


def report(
    ctx: typer.Context,
    model: str | None = typer.Option(
        None, "--model", help="Only the versions of this model.", metavar="NAME"
    ),
    problems: list[str] | None = typer.Option(
        None, "--problem", "-p", help="Only this problem; repeat for several.", metavar="SLUG"
    ),
    tag: str | None = typer.Option(
        None, "--tag", help="Only problems with this tag.", metavar="TAG"
    ),
    last: int | None = typer.Option(
        None,
        "--last",
        min=1,
        help=f"Only the N most recent versions (the grid's default: {GRID_VERSIONS}).",
        metavar="N",
    ),
    long: bool = typer.Option(
        False,
        "--long",
        help="One row per problem and version, with its interval, errored and missing counts, "
        "instead of the grid.",
    ),
    as_json: bool = JsonOption,
    html: Path | None = typer.Option(
        None,
        "--html",
        help="Write the HTML report (charts, galleries, status) into DIR instead of the table.",
        metavar="DIR",
    ),
    jobs: int | None = typer.Option(
        None,
        "--jobs",
        min=1,
        help="Processes that build the HTML report: this one reads the registry, the others "
        "draw the pages (default: one per CPU; 1: this one does both).",
        metavar="N",
    ),
    candidate: str | None = typer.Option(
        None,
        "--candidate",
        help="With --html: the version the report judges, NAME@VERSION (default: the newest).",
        metavar="NAME@VERSION",
    ),
    baseline: str | None = typer.Option(
        None,
        "--baseline",
        help="With --html and --candidate: compare with this version (default: the champion).",
        metavar="NAME@VERSION",
    ),
    csv_file: Path | None = typer.Option(
        None,
        "--csv",
        help="Write per-pattern results (problem, pattern, version, expected, answer, correct, "
        "score) to FILE for a notebook, instead of the table; --model, --problem, --tag and "
        "--last choose the rows.",
        metavar="FILE",
    ),
    production: Path | None = typer.Option(
        None,
        "--production",
        help="Instead: the drift of this production batch (PSI per label and confidence band).",
        metavar="FILE",
    ),
) -> None:
    """Patterns wrong per problem and version, from stored results: a grid of the problems (down)
    and the most recent versions (across), or every row with --long or --json.

    Correctness is judged against the current expectations, so a relabelled pattern shows here
    at once, without any model being run. Errored answers count as wrong; patterns without a
    result are counted as missing and left out of the rate.

    Example: problem-registry report --tag vision --last 4

    Example: problem-registry report --problem chihuahua-vs-muffin --long

    Example: problem-registry report --model digits --json

    Example: problem-registry report --html report/   (then open report/index.html)

    Example: problem-registry report --html report/ --candidate digits@v4 --baseline digits@v2

    Example: problem-registry report --csv results.csv   (then pandas.read_csv("results.csv"))

    Built again into the same DIR, the report draws only what changed since, and deletes the
    pages of problems that are gone.

    Example: problem-registry report --production tuesday.jsonl   (drift; see `triage drift`)
    """
    if production is not None:  # issue 20: the drift of a production batch
        from problem_registry.cli.triage import report_drift

        chart = None if html is None else html / "production-drift.png"
        report_drift(registry(ctx), production, as_json=as_json, chart=chart)
        return
    if html is not None and (problems or tag or last or long):
        raise typer.BadParameter(
            "--problem, --tag, --last and --long choose what the terminal or --json shows; the "
            "HTML report holds every problem"
        )
    if (candidate or baseline) and html is None:
        raise typer.BadParameter("--candidate and --baseline are for the HTML report: add --html")
    if baseline and not candidate:
        raise typer.BadParameter(
            "--baseline needs --candidate NAME@VERSION", param_hint="--baseline"
        )
    if csv_file is not None and (html is not None or as_json or long):
        raise typer.BadParameter(
            "--csv writes a file of its own: give it without --html, --json, --long"
        )
    # Imported here, not with the module: `replay` lives in this module too and needs none of it.
    from problem_registry.verdicts.metrics import problem_metrics, problem_metrics_json

    if csv_file is not None:
        from problem_registry.verdicts.results_csv import write_results_csv

        reg = registry(ctx)
        slugs = _chosen_problems(reg, problems, tag)
        refs = [view.ref for view in reg.models.list(model)[-last:]] if last else None
        count = write_results_csv(reg, csv_file, model=model, versions=refs, problems=slugs)
        note(f"wrote {count} result row(s) to {csv_file}")
        return

    if as_json or html is None:
        # With --html the pages are the report: a terminal table of every problem x version
        # would only scroll by (100,000 rows at 1,000 problems x 100 versions); --json still
        # prints its rows for a script.
        reg = registry(ctx)
        slugs = _chosen_problems(reg, problems, tag)
        limit = last if (last or as_json or long) else GRID_VERSIONS
        # No limit (--json, --long): every version, without listing them first; with refs None
        # (and slugs None) the error rates take the queries' fast paths.
        shown = reg.models.list(model)[-limit:] if limit is not None else []
        refs = [view.ref for view in shown] if limit is not None else None
        signed = signoffs(reg, slugs)  # a lead's sign-offs, beside the numbers (issue 19)
        if as_json:
            extra = {
                (
                    view.problem,
                    view.ref,
                ): f'"signoff":{json.dumps(view.to_dict(), sort_keys=True, separators=(",", ":"))}'
                for view in signed
            }
            _print_json_rows(
                problem_metrics_json(reg, model=model, versions=refs, problems=slugs, extra=extra)
            )
        elif long:
            _print_report(problem_metrics(reg, model=model, versions=refs, problems=slugs))
        else:
            rows = problem_metrics(reg, model=model, versions=refs, problems=slugs)
            print_grid(
                rows,
                shown,
                title="patterns wrong per problem and version (* champion)",
                empty=NOTHING_TO_REPORT,
            )
        if not as_json and signed:
            lines = [f"  {view.problem}: {view.describe()}" for view in signed]
            sys.stdout.write(visible("signed off\n" + "\n".join(lines), newlines=True) + "\n")
    if html is not None:
        # matplotlib and Jinja2: only when asked.
        from problem_registry.report.builder import write_report
        from problem_registry.report.per_model import model_names, write_reports_per_model

        reg = registry(ctx)
        if model is None and candidate is None and len(model_names(reg)) > 1:
            index, builds = write_reports_per_model(reg, html, jobs=jobs or os.cpu_count() or 1)
            for name, each in builds.items():
                note(f"report of {name} written to {each.index} ({each.describe()})")
            note(f"report written to {index} (one report per model)")
            return
        build = write_report(
            registry(ctx),
            html,
            model=model,
            candidate=candidate,
            baseline=baseline,
            jobs=jobs or os.cpu_count() or 1,
        )
        note(f"report written to {build.index} ({build.describe()})")


NOTHING_TO_REPORT = (
    "nothing to report yet: add problems and patterns, register a model, then replay"
)


def _chosen_problems(
    reg: Registry, problems: list[str] | None, tag: str | None
) -> list[str] | None:
    """The slugs --problem and --tag leave (both: those named that carry the tag); None: all."""
    if tag is None:
        return list(dict.fromkeys(problems)) if problems else None
    tagged = [view.slug for view in reg.problems.list(tag=tag)]
    if not tagged:
        fail(f"no problem is tagged {tag!r}; see the tags in `problem-registry problem list`")
    if problems:
        for slug in problems:
            reg.problems.get(slug)  # an unknown slug is an error, not an empty report
        return [slug for slug in dict.fromkeys(problems) if slug in tagged]
    return tagged


def _print_json_rows(lines: list[str]) -> None:
    """The rows as one JSON array on stdout, one compact row per line, keys sorted.

    The same data as ``print_json``, but ``print_json`` indents, and indenting turns the json
    module's C encoder off, most of a large ``report --json``'s time. Each line is a row's
    ``to_json``, written by ``problem_metrics_json`` without building the rows. A row per line stays
    greppable and diffable. Written to ``sys.stdout`` directly: ``typer.echo`` runs a regular
    expression over the whole text to strip terminal colours when stdout is a file (~45 MB here),
    and JSON holds none (an escape character is written ``\\u001b``).
    """
    out = sys.stdout
    if lines:
        out.write("[\n")
        out.write(",\n".join(lines))
        out.write("\n]\n")
    else:
        out.write("[]\n")
    out.flush()


def _print_report(rows: list[ProblemVersionMetrics]) -> None:
    print_table(
        None,
        [
            "problem",
            "version",
            "error",
            "95% CI",
            "wrong",
            "errored",
            "missing",
            "+/- error",
            "max",
        ],
        (
            [
                row.problem + (" (retired)" if row.status == "retired" else ""),
                row.ref + (" *" if row.is_champion else ""),
                percent(row.error_rate),
                f"{percent(row.interval[0])}-{percent(row.interval[1])}" if row.interval else "-",
                f"{row.wrong}/{row.answered}",
                row.errored,
                row.missing,
                f"{percent(row.positive.error_rate)} / {percent(row.negative.error_rate)}",
                percent(row.max_error_rate),
            ]
            for row in rows
        ),
        empty=NOTHING_TO_REPORT,
    )
