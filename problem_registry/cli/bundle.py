"""`problem-registry export|import|check`: the registry as code, and its integrity."""

from __future__ import annotations

from pathlib import Path

import typer

from problem_registry.cli.context import (
    JsonOption,
    note,
    output,
    progress_bar,
    registry,
    stdout,
)
from problem_registry.store.bundle import ImportSummary, export_bundle, import_bundle
from problem_registry.store.integrity import CheckReport, check


def export(
    ctx: typer.Context,
    directory: Path = typer.Argument(
        ..., help="Folder to write (created if missing).", metavar="DIR"
    ),
    as_json: bool = JsonOption,
) -> None:
    """Write every problem and its patterns to a folder a team keeps in git.

    One JSON manifest per problem plus the pattern files, in a stable order: exporting twice gives
    identical bytes, and re-exporting rewrites only what changed.

    Example: problem-registry export patterns/ && git add patterns/
    """
    with progress_bar("exporting") as progress:
        summary = export_bundle(registry(ctx), directory, progress=progress)
    output(
        as_json,
        summary,
        lambda: note(
            f"exported {summary.problems} problem(s), {summary.patterns} pattern(s) to "
            f"{directory}: {len(summary.written)} file(s) written, {len(summary.removed)} removed"
        ),
    )


def import_(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="A folder written by `export`.", metavar="DIR"),
    prune: bool = typer.Option(
        False,
        "--prune",
        help="Also remove the patterns of the bundle's problems that the bundle no longer "
        "lists (deleted from it in git, say); each is printed before it goes.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="With --prune: print what would be removed; change nothing."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Load a bundle into the registry; running it again changes nothing.

    The whole bundle is verified first (hashes, kinds, paths); then it is written in one
    transaction. Problems and patterns the bundle does not mention are left as they are, unless
    --prune removes the patterns its problems no longer list (problems it lacks are kept).

    Example: problem-registry import patterns/

    Example: problem-registry import patterns/ --prune --dry-run
    """
    if dry_run and not prune:
        raise typer.BadParameter("--dry-run shows what --prune would remove: add --prune")
    reg = registry(ctx)
    if prune and not dry_run:
        # What goes is said before it goes (issue 19): the plan, then the import that does it.
        with progress_bar("checking the bundle") as progress:
            plan = import_bundle(reg, directory, progress=progress, prune=True, dry_run=True)
        for line in plan.patterns_removed:
            note(f"removing {line}: no longer in {directory}")
    with progress_bar("importing") as progress:
        summary = import_bundle(reg, directory, progress=progress, prune=prune, dry_run=dry_run)
    if dry_run:
        output(as_json, summary, lambda: _print_dry_run(summary, directory))
        return
    output(
        as_json,
        summary,
        lambda: note(
            f"imported {directory}: problems {summary.problems_created} new, "
            f"{summary.problems_updated} updated, {summary.problems_unchanged} unchanged; "
            f"patterns {summary.patterns_created} new, {summary.patterns_updated} updated, "
            f"{summary.patterns_unchanged} unchanged"
            + (f", {len(summary.patterns_removed)} removed" if prune else "")
        ),
    )


def _print_dry_run(summary: ImportSummary, directory: Path) -> None:
    for line in summary.patterns_removed:
        note(f"would remove {line}: no longer in {directory}")
    note(
        f"dry run: {len(summary.patterns_removed)} pattern(s) would be removed; nothing was "
        "changed (run again without --dry-run to import and remove them)"
    )


def check_(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Verify every pattern file is present and matches its hash; exit 1 if not.

    Also runs the database's own integrity checks. Unused files in the store are warnings.
    """
    with progress_bar("checking") as progress:
        report = check(registry(ctx), progress=progress)
    output(as_json, report, lambda: _print_report(report))
    if not report.ok:
        raise typer.Exit(1)


def _print_report(report: CheckReport) -> None:
    """One line per finding, wrapped by the terminal (or pager) at whatever width it has: a table
    squeezed its long messages (paths, hashes) into a column a few words wide (issue 19)."""
    findings = [("error", f) for f in report.errors] + [("warning", f) for f in report.warnings]
    for severity, f in findings:
        parts = [", ".join(f.problems)] if f.problems else []
        parts += [f"pattern {', '.join(map(str, f.patterns))}"] if f.patterns else []
        where = "; ".join(parts)
        line = f"{severity}: {f.code}{f' ({where})' if where else ''}: {f.message}"
        stdout.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
    verdict = "ok" if report.ok else f"{len(report.errors)} error(s)"
    note(
        f"checked {report.files_checked} file(s) in {report.store}: {verdict}, "
        f"{len(report.warnings)} warning(s)"
    )
