"""The problems x versions grid: patterns wrong per problem (down) and version (across).

The seed's picture as a table, read in one glance where one row per (problem, version) ran to
thousands of lines (issue 19 item 4). ``report`` prints it by default and ``demo`` after its
replay; both call :func:`print_grid`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from problem_registry.cli.context import percent, print_table, stdout

if TYPE_CHECKING:
    from problem_registry.store.views import ModelVersionView
    from problem_registry.verdicts.metrics import ProblemVersionMetrics

GRID_VERSIONS = 8  # the columns a terminal holds beside the problem's name and its limit


def print_grid(
    rows: Sequence[ProblemVersionMetrics],
    versions: Sequence[ModelVersionView],
    *,
    title: str,
    metric: str | None = None,
    empty: str = "nothing to show",
) -> None:
    """One row per problem, one column per version (registration order), then the problem's
    limit. A cell is ``wrong/answered`` (errored answers count as wrong), ``-`` without results.
    ``metric``: a headline metric shown under each version's name, as a percentage."""
    cells = {
        (row.problem, row.ref): f"{row.wrong}/{row.answered}" if row.answered else "-"
        for row in rows
    }
    problems = {row.problem: row for row in rows}  # slug order, as the rows come
    several_models = len({view.name for view in versions}) > 1
    headers = ["problem"]
    for view in versions:
        name = view.ref if several_models else view.version
        star = " *" if view.is_champion else ""
        value = f" ({percent(view.metrics.get(metric))})" if metric else ""
        headers.append(f"{name}{star}{value}")
    if rows:
        # A line of its own: a table's title is folded to the table's width, a narrow one here.
        stdout.print(title, markup=False, highlight=False, soft_wrap=True)
    print_table(
        None,
        [*headers, "max error"],
        (
            [
                slug + (" (retired)" if row.status == "retired" else ""),
                *[cells.get((slug, view.ref), "-") for view in versions],
                percent(row.max_error_rate),
            ]
            for slug, row in problems.items()
        ),
        empty=empty,
    )
