"""The seed's picture: every problem's error rate across versions, under the headline metrics.

The one chart that answers "the headline metric went up; did each problem get better?": two
panels on the shared version axis, the registered metrics on top and the problems below, with
only the most telling problems coloured once there are more than the palette holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from problem_registry.report.charts.axis import (
    _Axis,
    _axis_from_rows,
    _axis_from_versions,
    _by_model,
    _mark_champions,
    _mark_unanswered,
    _percent_axis,
    _version_ticks,
)
from problem_registry.report.charts.rates import (
    _problems_in_order,
    _rate_matrix,
    _telling,
    _unanswered_columns,
)
from problem_registry.report.charts.style import (
    GREY,
    MARKERS,
    OKABE_ITO,
    _message_figure,
    _short,
    _width_for,
)
from problem_registry.store.views import ModelVersionView
from problem_registry.verdicts.metrics import ProblemVersionMetrics


def overview_chart(
    rows: Sequence[ProblemVersionMetrics],
    versions: Sequence[ModelVersionView],
    *,
    highlight: int = 6,
    title: str | None = None,
) -> Figure:
    """Every problem's error rate across ``versions`` (registration order), under their metrics.

    Two panels share the x axis: the versions' headline metrics on top (as registered:
    ``--metric auc=0.91``), every problem's error rate below, so a headline metric going up
    while a problem gets worse reads in one glance. With more problems than the palette has
    colours, the ``highlight`` most telling ones are coloured (those that got worse at the last
    version first, then the worst at the last version) and the others drawn in grey, so 100
    problems stay readable. The champion's column is shaded and starred.
    """
    axis = _axis_from_versions(versions) if versions else _axis_from_rows(rows)
    if axis.size == 0:
        return _message_figure(
            title or "Error rate per problem", "no model versions yet: register one and replay"
        )
    problems = _problems_in_order(rows)
    matrix = _rate_matrix(rows, problems, axis)
    metric_names = _metric_names(versions)
    width = _width_for(axis.size, base=9.0, per_version=0.22)
    height = 7.8 if metric_names else 5.6
    figure = Figure(figsize=(width, height), layout="constrained")
    if metric_names:
        top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[1, 2.3])
        _metrics_panel(top, versions, metric_names, axis)
    else:
        bottom = figure.add_subplot()
        top = None
    _problems_panel(bottom, problems, matrix, axis, highlight=highlight)
    if problems:
        _mark_unanswered(bottom, _unanswered_columns(matrix), label=True)
    _version_ticks(bottom, axis, width_inches=width)
    if top is not None:
        top.tick_params(axis="x", which="both", labelbottom=False)
    bottom.set_xlabel("model version, in registration order (★ champion)")
    figure.suptitle(
        title or "Did each problem get better? Error rate per problem across model versions",
        x=0.01,
        ha="left",
        fontsize=12,
    )
    return figure


def _metric_names(versions: Sequence[ModelVersionView], limit: int = 6) -> list[str]:
    counts: dict[str, int] = {}
    for version in versions:
        for name in version.metrics:
            counts[name] = counts.get(name, 0) + 1
    return sorted(counts, key=lambda name: (-counts[name], name))[:limit]


def _metrics_panel(
    ax: Axes, versions: Sequence[ModelVersionView], names: list[str], axis: _Axis
) -> None:
    """Each headline metric as a line; metrics outside [0, 1] (a latency, a loss) go on a
    right-hand axis, so an AUC moving by 0.01 is not flattened by a latency of 35 ms."""
    show_markers = axis.size <= 25
    values = {
        name: np.array([v.metrics.get(name, np.nan) for v in versions], dtype=float)
        for name in names
    }

    def unit(name: str) -> bool:
        finite = values[name][np.isfinite(values[name])]
        return bool(finite.size == 0 or ((finite >= 0) & (finite <= 1)).all())

    left = [name for name in names if unit(name)]
    right = [name for name in names if not unit(name)]
    if not left:
        left, right = right, []
    other = ax.twinx() if right else None
    handles = []
    for i, name in enumerate(names):
        target = other if name in right and other is not None else ax
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        (line,) = target.plot(
            *_by_model(axis, values[name]),
            color=colour,
            marker=MARKERS[i % len(MARKERS)] if show_markers else None,
            markersize=4,
            linewidth=1.8,
            linestyle="--" if target is other else "-",
            label=_metric_label(name, values[name], right=target is other),
        )
        handles.append(line)
    champion = _mark_champions(ax, axis)
    ax.set_ylabel("headline metric")
    ax.set_title("Headline metrics, as registered", loc="left", fontsize=9, color="#333333")
    ax.grid(axis="y", color="#E4E4E4", linewidth=0.8)
    ax.margins(y=0.15)
    if other is not None:
        other.margins(y=0.15)
        other.tick_params(labelsize=8)
    if champion is not None:
        handles.append(champion)
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.06 if other is not None else 1.01, 1.0),
        fontsize=8,
        frameon=False,
    )


def _metric_label(name: str, values: np.ndarray, *, right: bool) -> str:
    """``auc: 0.93 (+0.01)``: the last value in the legend, where it can never hide a line."""
    finite = values[np.isfinite(values)]
    text = name + (" (right axis)" if right else "")
    if finite.size:
        text += f": {finite[-1]:.3g}"
    if finite.size > 1:
        text += f" ({finite[-1] - finite[-2]:+.2g})"
    return text


def _problems_panel(
    ax: Axes, problems: list[str], matrix: np.ndarray, axis: _Axis, *, highlight: int
) -> None:
    chosen = problems if len(problems) <= len(OKABE_ITO) else _telling(problems, matrix, highlight)
    show_markers = axis.size <= 25
    handles: list[Line2D | Patch] = []
    others = [i for i, slug in enumerate(problems) if slug not in chosen]
    for i in others:
        # Markers keep a lone answered version visible (a line needs two points).
        ax.plot(
            *_by_model(axis, matrix[i]),
            color=GREY,
            linewidth=0.7,
            alpha=0.45 if len(others) > 30 else 0.7,
            marker="." if show_markers or not np.isfinite(matrix[i]).sum() > 1 else None,
            markersize=2,
        )
    if others:
        handles.append(
            Line2D([], [], color=GREY, linewidth=1.2, label=f"{len(others)} other problems")
        )
    for n, slug in enumerate(chosen):
        i = problems.index(slug)
        colour = OKABE_ITO[n % len(OKABE_ITO)]
        marker = MARKERS[n % len(MARKERS)]
        (line,) = ax.plot(
            *_by_model(axis, matrix[i]),
            color=colour,
            linewidth=2.0,
            marker=marker if show_markers else None,
            markersize=4.5,
            label=_legend_label(slug, matrix[i]),
        )
        if not show_markers:
            # Without per-point markers, mark the last answer so each line's end is findable.
            finite = np.flatnonzero(np.isfinite(matrix[i]))
            if finite.size:
                ax.plot(finite[-1], matrix[i][finite[-1]], marker=marker, color=colour, ms=5)
        handles.append(line)
    champion = _mark_champions(ax, axis)
    if champion is not None:
        handles.append(champion)
    _percent_axis(ax)
    what = (
        "Error rate per problem (lower is better)"
        if not others
        else f"Error rate per problem (lower is better): the {len(chosen)} worst or most "
        f"changed of {len(problems)} in colour"
    )
    ax.set_title(what, loc="left", fontsize=9, color="#333333")
    if problems:
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            frameon=False,
            title="problem: last (change)",
            title_fontsize=8,
        )
    else:
        ax.text(0.5, 0.5, "no problems yet", transform=ax.transAxes, ha="center", color="#555555")


def _legend_label(slug: str, rates: np.ndarray) -> str:
    finite = rates[np.isfinite(rates)]
    if finite.size == 0:
        return f"{_short(slug)}: no results"
    text = f"{_short(slug)}: {finite[-1]:.0%}"
    if finite.size > 1:
        change = round((finite[-1] - finite[-2]) * 100)
        text += f" ({change:+d} pts)" if change else " (=)"
    return text
