"""`problem-registry demo [DIR]`: the whole tool on real models in well under a minute.

Steps and the replay's progress bar go to stderr; stdout gets the error-rate table, the gate
verdicts and, on its last line, where the report is (``problem-registry demo | tail -1``).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from problem_registry.cli.context import note, percent, progress_bar, stdout
from problem_registry.cli.grid import print_grid
from problem_registry.demo.folder import DEFAULT_DIRECTORY


def demo(
    directory: Path = typer.Argument(
        DEFAULT_DIRECTORY,
        help="Folder to build the demo in: new, empty, or a previous demo (rebuilt).",
        metavar="DIR",
    ),
) -> None:
    """Build a real registry from scikit-learn's digits and write its report.

    Imports the curated problems (confusions real models make, faint and
    off-centre digits), trains four model versions with scikit-learn, makes
    v3 the champion, replays every pattern against every version, judges the
    newest version against the champion and writes the report. The demo uses
    its own SQLite registry in DIR (--url does not apply) and downloads
    nothing: the digits ship with scikit-learn. About 10-30 s.

    Example: problem-registry demo ./problem-registry-demo
    """
    # Imported here: numpy, Pillow and the replay engine would slow every other command.
    from problem_registry.demo.run import run_demo
    from problem_registry.verdicts.summary import terminal_rows

    with progress_bar("demo") as update:
        result = run_demo(
            directory, log=note, progress=lambda event: update(event.done, event.total)
        )
    print_grid(
        result.metrics,
        result.versions,
        title="patterns wrong per problem and version (accuracy on held-out digits; * champion)",
        metric="accuracy",
    )
    stdout.print()
    for line in terminal_rows(result.gates, result.candidate, result.champion):
        stdout.print(line, markup=False, highlight=False, soft_wrap=True)
    failed = [gate.problem for gate in result.gates if not gate.passed]
    stdout.print()
    accuracy = {v.ref: v.metrics.get("accuracy") for v in result.versions}
    stdout.print(
        f"{result.candidate} has accuracy {percent(accuracy[result.candidate])} against the "
        f"champion's {percent(accuracy[result.champion])}; "
        + (
            f"it fails the gates of {len(failed)} problem(s): {', '.join(failed)}"
            if failed
            else "it passes every problem's gates"
        ),
        markup=False,
        highlight=False,
        soft_wrap=True,  # one line however narrow the terminal: it is pasted into chats
    )
    url = shlex.quote(f"sqlite:///{result.directory / 'registry.db'}")
    note(f"explore it: problem-registry --url {url} problem list")
    note(f"demo finished in {result.seconds:.1f} s")
    stdout.print(
        f"report: {result.report.resolve()}", markup=False, highlight=False, soft_wrap=True
    )
