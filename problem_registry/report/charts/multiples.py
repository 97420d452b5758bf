"""Small multiples: one small panel per problem, for when one chart would hold too many.

Every panel has the same scales, so 100 problems can be compared at a glance; the panels are
drawn into a single ``Axes`` because matplotlib lays out each ``Axes`` slowly, and 100 real
subplots would take seconds (tens of seconds with a constrained layout) to render.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from problem_registry.report.charts.axis import _axis_from_rows, _by_model
from problem_registry.report.charts.rates import _problems_in_order, _rate_matrix, _telling
from problem_registry.report.charts.style import (
    BLACK,
    BLUE,
    MAX_HEIGHT,
    MAX_WIDTH,
    SKY,
    VERMILLION,
    _message_figure,
    _short,
)
from problem_registry.verdicts.metrics import ProblemVersionMetrics


def small_multiples(
    rows: Sequence[ProblemVersionMetrics],
    *,
    columns: int | None = None,
    limit: int = 120,
    failing: Collection[str] = (),
) -> Figure:
    """One small panel per problem, all on the same scales, for when one chart holds too many.

    Each panel is the problem's error rate (0 to 100%, bottom to top) over every version, left
    to right; its line is vermillion when the last answered version misses the problem's
    ``max_error_rate`` (the dashed line) or the problem is in ``failing`` (its candidate's gate
    failed, whatever the limit says), blue otherwise; the champion is the pale vertical line.
    Problems over ``limit`` are dropped, keeping the worst and most changed (the title says so).

    The panels are drawn into a single ``Axes``: matplotlib spends ~50 ms laying out each Axes,
    so 100 real subplots take seconds to render (tens of seconds with a constrained layout).
    """
    axis = _axis_from_rows(rows)
    problems = _problems_in_order(rows)
    if not problems or axis.size == 0:
        return _message_figure("Error rate per problem", "nothing to draw yet")
    matrix = _rate_matrix(rows, problems, axis)
    total = len(problems)
    if total > limit:
        keep = sorted(_telling(problems, matrix, limit), key=problems.index)
        rows_of = {slug: i for i, slug in enumerate(problems)}
        matrix = matrix[[rows_of[slug] for slug in keep]]
        problems = keep
    limits = {row.problem: row.max_error_rate for row in rows}
    last_meets: dict[str, bool | None] = {}
    for row in rows:
        if row.error_rate is not None:
            last_meets[row.problem] = row.meets_canary
    count = len(problems)
    columns = columns or max(1, min(10, math.ceil(math.sqrt(count * 1.6))))
    lines = math.ceil(count / columns)
    width = min(MAX_WIDTH, max(6.0, 1.55 * columns + 0.4))
    height = min(MAX_HEIGHT, max(2.4, 1.2 * lines + 0.9))
    figure = Figure(figsize=(width, height), layout="constrained")
    ax = figure.add_subplot()
    ax.set_axis_off()
    # Panel (col, line) spans x in [col, col + PANEL_W] and y in [base, base + 1] (the rate),
    # with room above for its title; line 0 is the top one.
    panel_w, gap_x, gap_y = 0.86, 0.14, 0.5
    steps = np.linspace(0.0, panel_w, axis.size) if axis.size > 1 else np.array([panel_w / 2])
    for n, slug in enumerate(problems):
        col, line = n % columns, n // columns
        left = col * (panel_w + gap_x)
        base = (lines - 1 - line) * (1 + gap_y)
        ax.add_patch(
            Rectangle(
                (left, base - 0.04),
                panel_w,
                1.08,
                fill=False,
                edgecolor="#C8C8C8",
                linewidth=0.6,
            )
        )
        ax.plot([left, left + panel_w], [base + 0.5, base + 0.5], color="#EEEEEE", linewidth=0.5)
        for position in axis.champions:
            ax.plot(
                [left + steps[position]] * 2,
                [base - 0.04, base + 1.04],
                color=SKY,
                linewidth=1.0,
                alpha=0.8,
            )
        if limits.get(slug) is not None:
            level = base + float(limits[slug])  # type: ignore[arg-type]
            ax.plot([left, left + panel_w], [level, level], color=BLACK, ls="--", lw=0.7)
        colour = VERMILLION if last_meets.get(slug) is False or slug in failing else BLUE
        line_x, line_y = _by_model(axis, matrix[n])
        known = np.isfinite(line_x)
        ax.plot(
            np.where(known, left + steps[np.where(known, line_x, 0).astype(int)], np.nan),
            base + line_y,
            color=colour,
            linewidth=1.3,
            marker="." if axis.size <= 30 else None,
            markersize=3,
        )
        ax.text(
            left + panel_w / 2,
            base + 1.1,
            _short(slug, 24),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set_xlim(-0.05, columns * (panel_w + gap_x) - gap_x + 0.05)
    ax.set_ylim(-0.1, lines * (1 + gap_y) - gap_y + 0.3)
    heading = (
        f"Error rate per problem, each panel 0% (bottom) to 100% (top) over {axis.size} "
        f"versions, {axis.labels[0]} (left) to {axis.labels[-1]} (right)"
    )
    if total > count:
        heading += f"; the {count} worst or most changed of {total} problems"
    figure.suptitle(heading, fontsize=9, x=0.01, ha="left")
    missing = "misses it or fails its gate" if failing else "misses it"
    legend = [
        Line2D([], [], color=BLUE, label="meets its max error rate at the last version"),
        Line2D([], [], color=VERMILLION, label=missing),
        Line2D([], [], color=BLACK, ls="--", lw=0.7, label="max error rate"),
    ]
    if axis.champions:
        legend.append(Line2D([], [], color=SKY, label="champion"))
    figure.legend(
        handles=legend, loc="outside lower left", ncols=len(legend), fontsize=7, frameon=False
    )
    return figure
