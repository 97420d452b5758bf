"""One problem across versions: its error rate, Wilson band, canary and champion.

The chart a reader opens after the overview points at a problem: the error rate with its 95%
interval, the positive and near-miss patterns apart, the points that miss the problem's
``max_error_rate`` crossed out, and a status line saying where the last version stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D

from problem_registry.refs import format_ref
from problem_registry.report.charts.axis import (
    _Axis,
    _axis_from_rows,
    _by_model,
    _mark_champions,
    _mark_unanswered,
    _percent_axis,
    _version_ticks,
)
from problem_registry.report.charts.rates import _problems_in_order, _unanswered_columns
from problem_registry.report.charts.style import (
    BLACK,
    BLUE,
    GREEN,
    ORANGE,
    PURPLE,
    VERMILLION,
    _message_figure,
    _short,
    _width_for,
)
from problem_registry.verdicts.metrics import ProblemVersionMetrics

FIGURE_HEIGHT = 4.6
HEADING_SIZE, STATUS_SIZE = 11, 9
_LEGEND: dict[str, Any] = {
    "loc": "upper left",
    "bbox_to_anchor": (1.01, 1.0),
    "fontsize": 8,
    "frameon": False,
}
# Every entry a problem's legend can hold, at its widest: the frame keeps room for them all.
_LEGEND_ROOM = [
    Line2D([], [], label=label, marker="X", linewidth=2)
    for label in (
        "95% Wilson interval",
        "positive patterns only",
        "negative patterns only",
        "error rate",
        "misses max error rate",
        "champion",
        "max error rate 100%",
    )
]


def problem_chart(
    rows: Sequence[ProblemVersionMetrics], *, champion: str | None = None, titled: bool = True
) -> Figure:
    """One problem across versions: error rate, its 95% Wilson band, the canary, the champion.

    ``rows``: that problem's rows, one per version in registration order. ``champion``: a
    version (``v3``) or ref (``digits@v3``) to mark; by default the rows' own champion. Points
    that miss ``max_error_rate`` are drawn in vermillion, with a cross; the positive and
    negative (near-miss) patterns' error rates are the thin dotted lines. ``titled=False``
    leaves out the heading (slug and title) and the status line, for a page that writes both.

    The figure is a :func:`problem_frame` (what every problem on the same versions shares)
    with :func:`draw_problem` on it.
    """
    if not rows:
        return _message_figure("Error rate", "no rows: no model version registered yet")
    axis = problem_axis(rows, champion=champion)
    figure, ax = problem_frame(axis, titled=titled)
    draw_problem(figure, ax, axis, rows, titled=titled)
    return figure


def problem_axis(rows: Sequence[ProblemVersionMetrics], *, champion: str | None = None) -> _Axis:
    """The version axis of one problem's rows, ``champion`` (version or ref) starred."""
    problems = _problems_in_order(rows)
    if len(problems) > 1:
        raise ValueError(f"problem_chart draws one problem; got rows for {', '.join(problems)}")
    axis = _axis_from_rows(rows)
    if champion is None:
        return axis
    starred = [i for i, (m, v) in enumerate(axis.keys) if champion in (v, format_ref(m, v))]
    return _Axis(axis.keys, axis.labels, starred)


def problem_frame(axis: _Axis, *, titled: bool = True) -> tuple[Figure, Axes]:
    """What every problem's chart on ``axis`` shares: size, axes, ticks, labels, champion shade.

    Laid out once (constrained) around the widest legend and the titles a problem can have,
    then frozen, so that drawing a problem's data never moves anything: the frame can be drawn
    once and reused under every problem's data.
    """
    width = _width_for(axis.size, base=7.5, per_version=0.2)
    figure = Figure(figsize=(width, FIGURE_HEIGHT), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    _mark_champions(ax, axis)
    _percent_axis(ax)
    _version_ticks(ax, axis, width_inches=width)
    xlabel = "model version, in registration order (★ champion)"
    ax.set_xlabel(xlabel + ("; under each point: wrong/answered" if axis.size <= 16 else ""))
    if titled:
        heading = figure.suptitle("Xg", x=0.01, ha="left", fontsize=HEADING_SIZE)
        status = ax.set_title("Xg", loc="left", fontsize=STATUS_SIZE)
    room = ax.legend(handles=_LEGEND_ROOM, **_LEGEND)
    layout = figure.get_layout_engine()
    assert layout is not None
    layout.execute(figure)
    figure.set_layout_engine("none")
    room.remove()
    if titled:
        heading.set_text("")
        status.set_text("")
    return figure, ax


def draw_problem(
    figure: Figure,
    ax: Axes,
    axis: _Axis,
    rows: Sequence[ProblemVersionMetrics],
    *,
    legend: bool = True,
    titled: bool = True,
) -> None:
    """One problem's data on its :func:`problem_frame`: every artist here is the problem's own.

    ``legend=False`` leaves the legend to the caller (:func:`add_legend`), who may already have
    its pixels: it depends only on which lines the problem has.
    """
    first = rows[0]
    by_key = {(r.model, r.version): r for r in rows}
    ordered = [by_key[key] for key in axis.keys]
    x = np.arange(axis.size)
    rate = np.array([np.nan if r.error_rate is None else r.error_rate for r in ordered])
    low = np.array([r.interval[0] if r.interval else np.nan for r in ordered])
    high = np.array([r.interval[1] if r.interval else np.nan for r in ordered])
    band_x, band_low = _by_model(axis, low)
    ax.fill_between(
        band_x,
        band_low,
        _by_model(axis, high)[1],
        color=BLUE,
        alpha=0.18,
        linewidth=0,
        label="95% Wilson interval",
    )
    for name, colour, style in (("positive", PURPLE, ":"), ("negative", GREEN, "--")):
        values = np.array(
            [
                np.nan if getattr(r, name).error_rate is None else getattr(r, name).error_rate
                for r in ordered
            ]
        )
        if np.isfinite(values).any() and any(getattr(r, name).patterns for r in ordered):
            ax.plot(
                *_by_model(axis, values),
                color=colour,
                linestyle=style,
                linewidth=1.1,
                label=f"{name} patterns only",
            )
    ax.plot(*_by_model(axis, rate), color=BLUE, linewidth=2.2, label="error rate", zorder=3)
    misses = np.array([r.meets_canary is False for r in ordered])
    meets = ~misses & np.isfinite(rate)
    ax.plot(x[meets], rate[meets], "o", color=BLUE, markersize=5, zorder=4)
    if misses.any():
        ax.plot(
            x[misses],
            rate[misses],
            "X",
            color=VERMILLION,
            markersize=7,
            zorder=5,
            label="misses max error rate",
        )
    for position in axis.champions:
        if np.isfinite(rate[position]):
            ax.plot(
                position,
                rate[position],
                marker="*",
                markersize=16,
                color=ORANGE,
                markeredgecolor=BLACK,
                zorder=6,
                label="champion",
                linestyle="none",
            )
    if first.max_error_rate is not None:
        ax.axhline(
            first.max_error_rate,
            color=VERMILLION,
            linestyle="--",
            linewidth=1.2,
            label=f"max error rate {first.max_error_rate:.0%}",
        )
    if axis.size <= 16:
        for i, row in enumerate(ordered):
            if row.answered:
                # Below the point, or above it near 0% where below is the x axis.
                clearance = 11 if i in axis.champions else 7
                below = rate[i] > 0.12
                ax.annotate(
                    f"{row.wrong}/{row.answered}",
                    xy=(i, rate[i]),
                    xytext=(0, -clearance if below else clearance),
                    textcoords="offset points",
                    ha="center",
                    va="top" if below else "bottom",
                    fontsize=7,
                    color="#444444",
                )
    _mark_unanswered(ax, _unanswered_columns(rate[np.newaxis, :]), label=True)
    if titled:
        _write_titles(figure, ax, ordered)
    if legend:
        add_legend(ax)


def _write_titles(figure: Figure, ax: Axes, rows: Sequence[ProblemVersionMetrics]) -> None:
    first = rows[0]
    heading = first.problem
    if first.title and first.title != first.problem:
        heading += f": {_short(first.title, 60)}"
    # Where suptitle and a left title would stand, as plain texts: the frame owns those two.
    figure.text(0.01, 0.98, heading, ha="left", va="top", fontsize=HEADING_SIZE)
    ax.annotate(
        _status_line(rows),
        xy=(0, 1),
        xycoords="axes fraction",
        xytext=(0, 6),
        textcoords="offset points",
        ha="left",
        va="baseline",
        fontsize=STATUS_SIZE,
        color="#333333",
    )


def add_legend(ax: Axes) -> Legend:
    """The legend of a problem's chart, beside its axes, from the labelled artists on ``ax``."""
    return ax.legend(**_LEGEND)


def _status_line(rows: Sequence[ProblemVersionMetrics]) -> str:
    """The last answered version in words: ``v8: 11 of 12 right, needs ≤ 20% error: meets it``."""
    answered = [row for row in rows if row.answered]
    if not answered:
        return "no results yet: replay the model versions"
    last = answered[-1]
    name = last.version if len({row.model for row in rows}) == 1 else last.ref
    text = f"{name}: {last.right} of {last.answered} right"
    if last.max_error_rate is not None:
        verdict = "meets it" if last.meets_canary else "misses it"
        text += f", needs ≤ {last.max_error_rate:.0%} error: {verdict}"
    if last.missing:
        text += f" ({last.missing} without a result)"
    return text
