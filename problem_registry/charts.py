"""Charts of the registry's numbers: matplotlib ``Figure`` objects in, PNG files out.

Plain data in (rows of :func:`problem_registry.metrics.problem_metrics`, model versions from
``registry.models.list()``), a :class:`matplotlib.figure.Figure` out; nothing here opens a
database or a window. Figures are built directly, never through ``pyplot``, and the backend is
never switched (``matplotlib.use``): pyplot keeps global state that leaks figures in a
long-running process and fights whatever backend a notebook chose. :func:`save_figure` renders
through an Agg canvas of its own, so no display is needed. The API::

    rows = problem_metrics(registry, model="digits")
    save_figure(overview_chart(rows, registry.models.list("digits")), out / "overview.png")
    save_figure(problem_chart([r for r in rows if r.problem == "threes"]), out / "threes.png")
    save_figure(heatmap_chart(rows), out / "heatmap.png")
    save_figure(small_multiples(rows), out / "multiples.png")
    save_figure(confusion_chart(row_with_confusion), out / "confusion.png")

Readable from 1 to 50+ versions and 100+ problems: version labels are rotated and thinned,
figures grow with their data up to a cap, the overview colours only the worst and most changed
problems (the rest grey) once there are more than the palette holds, and colours come from the
Okabe-Ito palette (lines) and cividis (heatmap), which colour-blind readers can tell apart.
Only this module imports matplotlib; the core never imports it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator, PercentFormatter

from problem_registry.metrics import ProblemVersionMetrics
from problem_registry.views import ModelVersionView

__all__ = [
    "OKABE_ITO",
    "confusion_chart",
    "heatmap_chart",
    "overview_chart",
    "problem_chart",
    "save_figure",
    "small_multiples",
]

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision
# deficiency. Yellow (#F0E442) is left out: it vanishes on white.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
BLUE, VERMILLION, GREEN, PURPLE, ORANGE, SKY, BLACK = OKABE_ITO
GREY = "#B8B8B8"
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
HEATMAP = "cividis_r"  # 0% light, 100% dark: the worst cells are the ones that stand out
MISSING_COLOUR = "#EDEDED"

MAX_WIDTH = 16.0  # inches: 1600 px at the default 100 dpi
MAX_HEIGHT = 22.0
LABEL_CHARS = 28  # problem slugs longer than this are shortened in legends and tick labels


# -- shared pieces ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    """The x axis every chart shares: model versions in registration order."""

    keys: list[tuple[str, str]]  # (model, version)
    labels: list[str]
    champions: list[int]  # positions of champion versions

    @property
    def size(self) -> int:
        return len(self.keys)

    def index(self) -> dict[tuple[str, str], int]:
        return {key: i for i, key in enumerate(self.keys)}


def _axis_from_versions(versions: Sequence[ModelVersionView]) -> _Axis:
    keys = [(v.name, v.version) for v in versions]
    champions = [i for i, v in enumerate(versions) if v.is_champion]
    return _Axis(keys, _version_labels(keys), champions)


def _axis_from_rows(rows: Sequence[ProblemVersionMetrics]) -> _Axis:
    keys: dict[tuple[str, str], bool] = {}
    for row in rows:
        keys[(row.model, row.version)] = keys.get((row.model, row.version), False) or bool(
            row.is_champion
        )
    ordered = list(keys)
    return _Axis(ordered, _version_labels(ordered), [i for i, k in enumerate(ordered) if keys[k]])


def _version_labels(keys: Sequence[tuple[str, str]]) -> list[str]:
    """The bare version when every version belongs to one model, else ``name@version``."""
    if len({name for name, _ in keys}) <= 1:
        return [version for _, version in keys]
    return [f"{name}@{version}" for name, version in keys]


def _by_model(axis: _Axis, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y for one line, with a gap between models, so a line never joins one model's
    version to another model's (a NaN breaks a matplotlib line)."""
    models = [name for name, _ in axis.keys]
    if len(set(models)) <= 1:
        return np.arange(axis.size, dtype=float), np.asarray(values, dtype=float)
    xs: list[float] = []
    ys: list[float] = []
    for name in dict.fromkeys(models):
        positions = [i for i, model in enumerate(models) if model == name]
        xs += [*positions, np.nan]
        ys += [*np.asarray(values, dtype=float)[positions], np.nan]
    return np.array(xs), np.array(ys)


def _problems_in_order(rows: Sequence[ProblemVersionMetrics]) -> list[str]:
    return list(dict.fromkeys(row.problem for row in rows))


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    """Shortened in the middle: slugs often differ only at the end (``...-muffin-017``)."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def _rate_matrix(
    rows: Sequence[ProblemVersionMetrics], problems: list[str], axis: _Axis
) -> np.ndarray:
    """problems x versions array of error rates, NaN where nothing was answered."""
    matrix = np.full((len(problems), axis.size), np.nan)
    where = {slug: i for i, slug in enumerate(problems)}
    index = axis.index()
    for row in rows:
        column = index.get((row.model, row.version))
        if column is None or row.problem not in where:
            continue
        if row.error_rate is not None:
            matrix[where[row.problem], column] = row.error_rate
    return matrix


def _width_for(versions: int, *, base: float = 7.0, per_version: float = 0.2) -> float:
    return min(MAX_WIDTH, max(base, 3.5 + per_version * versions))


def _version_ticks(
    ax: Axes, axis: _Axis, *, width_inches: float, label_axis: bool = True, fontsize: float = 8
) -> None:
    """Every version gets a minor tick; labels are thinned so they never overlap.

    Labels are rotated as soon as there are more than a few; the longest label decides how many
    fit across the axis. The last version and the champions always keep their label.
    """
    n = axis.size
    ax.set_xlim(-0.5, n - 0.5)
    if n == 0:
        return
    longest = max(len(label) for label in axis.labels)
    rotate = n > 6 or longest * n > 60
    # A rotated label needs about one line height (~0.16 in at 8 pt) across the axis.
    room = width_inches * 0.8
    slots = max(2, int(room / (0.17 if rotate else 0.09 * max(longest, 3) + 0.15)))
    step = max(1, math.ceil(n / slots))
    shown = set(range(0, n, step)) | {n - 1} | set(axis.champions)
    # Drop a regular label that would collide with a forced one (last version, champion).
    for forced in {n - 1, *axis.champions}:
        for i in list(shown):
            if i != forced and i not in axis.champions and i != n - 1 and abs(i - forced) < step:
                shown.discard(i)
    positions = sorted(shown)
    ax.set_xticks(range(n), minor=True)
    ax.set_xticks(positions)
    if not label_axis:
        ax.tick_params(axis="x", which="both", labelbottom=False)
        return
    labels = [axis.labels[i] + (" ★" if i in axis.champions else "") for i in positions]
    ax.set_xticklabels(labels, fontsize=fontsize)
    if rotate:
        for text in ax.get_xticklabels():
            text.set_rotation(45)
            text.set_horizontalalignment("right")
            text.set_rotation_mode("anchor")
    for text, i in zip(ax.get_xticklabels(), positions, strict=True):
        if i in axis.champions:
            text.set_fontweight("bold")


def _percent_axis(ax: Axes, label: str = "error rate") -> None:
    ax.set_ylim(-0.03, 1.03)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.set_ylabel(label)
    ax.grid(axis="y", color="#E4E4E4", linewidth=0.8)
    ax.set_axisbelow(True)


def _mark_champions(ax: Axes, axis: _Axis) -> Patch | None:
    """Shade the champions' columns; the legend handle that explains the shade, if any."""
    for position in axis.champions:
        ax.axvspan(position - 0.5, position + 0.5, color=SKY, alpha=0.15, linewidth=0)
    if not axis.champions:
        return None
    return Patch(facecolor=SKY, alpha=0.3, label="champion (★)")


def _mark_unanswered(ax: Axes, columns: Sequence[int], *, label: bool) -> None:
    """Hatch the versions with no result at all (never replayed, or unavailable)."""
    for position in columns:
        ax.axvspan(
            position - 0.5,
            position + 0.5,
            facecolor="none",
            edgecolor="#C4C4C4",
            hatch="///",
            linewidth=0,
        )
        if label:
            ax.text(
                position,
                0.5,
                "no results",
                transform=ax.get_xaxis_transform(),
                rotation=90,
                ha="center",
                va="center",
                fontsize=7,
                color="#777777",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
            )


def _unanswered_columns(matrix: np.ndarray) -> list[int]:
    if matrix.size == 0:
        return []
    return [int(j) for j in np.flatnonzero(~np.isfinite(matrix).any(axis=0))]


def _message_figure(title: str, message: str) -> Figure:
    figure = Figure(figsize=(7, 3), layout="constrained")
    ax = figure.add_subplot()
    ax.set_axis_off()
    ax.set_title(title, loc="left", fontsize=11)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, color="#555555", wrap=True)
    return figure


def _pct(rate: float | None) -> str:
    return "-" if rate is None or (isinstance(rate, float) and math.isnan(rate)) else f"{rate:.0%}"


# -- the seed's picture ----------------------------------------------------------------------


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


def _telling(problems: list[str], matrix: np.ndarray, count: int) -> list[str]:
    """The problems a lead must see: worse at the last version first, then the worst ones."""
    last = np.full(len(problems), np.nan)
    change = np.zeros(len(problems))
    for i, rates in enumerate(matrix):
        finite = rates[np.isfinite(rates)]
        if finite.size:
            last[i] = finite[-1]
        if finite.size > 1:
            change[i] = finite[-1] - finite[-2]
    worse = [i for i in np.argsort(-change, kind="stable") if change[i] > 0][: max(1, count // 2)]
    ranked = [i for i in np.argsort(-np.nan_to_num(last, nan=-1), kind="stable") if i not in worse]
    picked = (worse + ranked)[:count]
    return [problems[i] for i in picked]


# -- one problem -----------------------------------------------------------------------------


def problem_chart(rows: Sequence[ProblemVersionMetrics], *, champion: str | None = None) -> Figure:
    """One problem across versions: error rate, its 95% Wilson band, the canary, the champion.

    ``rows``: that problem's rows, one per version in registration order. ``champion``: a
    version (``v3``) or ref (``digits@v3``) to mark; by default the rows' own champion. Points
    that miss ``max_error_rate`` are drawn in vermillion, with a cross; the positive and
    negative (near-miss) patterns' error rates are the thin dotted lines.
    """
    problems = _problems_in_order(rows)
    if len(problems) > 1:
        raise ValueError(f"problem_chart draws one problem; got rows for {', '.join(problems)}")
    if not rows:
        return _message_figure("Error rate", "no rows: no model version registered yet")
    first = rows[0]
    axis = _axis_from_rows(rows)
    if champion is not None:
        axis = _Axis(
            axis.keys,
            axis.labels,
            [i for i, (m, v) in enumerate(axis.keys) if champion in (v, f"{m}@{v}")],
        )
    by_key = {(r.model, r.version): r for r in rows}
    ordered = [by_key[key] for key in axis.keys]
    x = np.arange(axis.size)
    rate = np.array([np.nan if r.error_rate is None else r.error_rate for r in ordered])
    low = np.array([r.interval[0] if r.interval else np.nan for r in ordered])
    high = np.array([r.interval[1] if r.interval else np.nan for r in ordered])
    width = _width_for(axis.size, base=7.5, per_version=0.2)
    figure = Figure(figsize=(width, 4.6), layout="constrained")
    ax = figure.add_subplot()
    _mark_champions(ax, axis)
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
    _percent_axis(ax)
    _version_ticks(ax, axis, width_inches=width)
    xlabel = "model version, in registration order (★ champion)"
    ax.set_xlabel(xlabel + ("; under each point: wrong/answered" if axis.size <= 16 else ""))
    heading = first.problem
    if first.title and first.title != first.problem:
        heading += f": {_short(first.title, 60)}"
    figure.suptitle(heading, x=0.01, ha="left", fontsize=11)
    ax.set_title(_status_line(ordered), loc="left", fontsize=9, color="#333333")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return figure


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


def small_multiples(
    rows: Sequence[ProblemVersionMetrics], *, columns: int | None = None, limit: int = 120
) -> Figure:
    """One small panel per problem, all on the same scales, for when one chart holds too many.

    Each panel is the problem's error rate (0 to 100%, bottom to top) over every version, left
    to right; its line is vermillion when the last answered version misses the problem's
    ``max_error_rate`` (the dashed line), blue otherwise; the champion is the pale vertical
    line. Problems over ``limit`` are dropped, keeping the worst and most changed (the title
    says so).

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
        colour = VERMILLION if last_meets.get(slug) is False else BLUE
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
    legend = [
        Line2D([], [], color=BLUE, label="meets its max error rate at the last version"),
        Line2D([], [], color=VERMILLION, label="misses it"),
        Line2D([], [], color=BLACK, ls="--", lw=0.7, label="max error rate"),
    ]
    if axis.champions:
        legend.append(Line2D([], [], color=SKY, label="champion"))
    figure.legend(
        handles=legend, loc="outside lower left", ncols=len(legend), fontsize=7, frameon=False
    )
    return figure


# -- problems x versions ---------------------------------------------------------------------


def heatmap_chart(rows: Sequence[ProblemVersionMetrics]) -> Figure:
    """Problems (rows) x versions (columns), each cell the error rate; grey where no result.

    Cells carry their percentage when they are big enough to read it; a dot marks a cell that
    misses the problem's ``max_error_rate``. The champion's column is outlined.
    """
    axis = _axis_from_rows(rows)
    problems = _problems_in_order(rows)
    if not problems or axis.size == 0:
        return _message_figure("Error rate per problem and version", "nothing to draw yet")
    matrix = _rate_matrix(rows, problems, axis)
    label_width = min(3.2, 0.9 + 0.065 * max(len(_short(p)) for p in problems))
    width = min(MAX_WIDTH, max(6.5, label_width + 1.6 + 0.26 * axis.size))
    height = min(MAX_HEIGHT, max(3.2, 1.9 + 0.155 * len(problems)))
    figure = Figure(figsize=(width, height), layout="constrained")
    ax = figure.add_subplot()
    masked = np.ma.masked_invalid(matrix)
    colours = _cmap()
    image = ax.imshow(masked, cmap=colours, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    colourbar = figure.colorbar(
        image, ax=ax, fraction=0.04, pad=0.01, shrink=min(0.9, 4.0 / height)
    )
    colourbar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    colourbar.set_label("error rate (grey: no result)", fontsize=8)
    colourbar.ax.tick_params(labelsize=7)
    cell_w = (width - label_width - 1.6) / max(axis.size, 1)
    cell_h = (height - 1.9) / len(problems)
    if cell_w >= 0.42 and cell_h >= 0.2:
        for (i, j), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                ax.text(
                    j,
                    i,
                    f"{value:.0%}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value > 0.5 else "black",
                )
    index = axis.index()
    limits = {}
    for row in rows:
        column = index.get((row.model, row.version))
        if row.meets_canary is False and column is not None:
            limits[(problems.index(row.problem), column)] = True
    if limits and min(cell_w, cell_h) >= 0.2:  # smaller dots are noise, not information
        ys, xs = zip(*limits, strict=True)
        size = max(6.0, min(22.0, 60 * min(cell_w, cell_h)))
        # In the cell's top-left corner, clear of the percentage written in its middle.
        ax.scatter(
            np.array(xs) - 0.5 + 0.16 * min(1.0, cell_h / cell_w),
            np.array(ys) - 0.5 + 0.2,
            s=size,
            marker="o",
            facecolor=VERMILLION,
            edgecolor="white",
            linewidth=0.5,
            label="misses max error rate",
            zorder=3,
        )
        ax.legend(
            loc="lower left",
            bbox_to_anchor=(0.0, 1.0),
            fontsize=7,
            frameon=False,
            handletextpad=0.2,
            borderaxespad=0.2,
        )
    for position in axis.champions:
        ax.add_patch(
            Rectangle(
                (position - 0.5, -0.5),
                1,
                len(problems),
                fill=False,
                edgecolor=VERMILLION,
                linewidth=1.6,
                zorder=4,
            )
        )
    _version_ticks(ax, axis, width_inches=width - label_width - 1.6)
    ax.set_xlim(-0.5, axis.size - 0.5)
    step = max(1, math.ceil(len(problems) / 110))
    ax.set_yticks(range(0, len(problems), step))
    ax.set_yticklabels(
        [_short(p) for p in problems[::step]], fontsize=8 if len(problems) <= 40 else 6.5
    )
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("model version, in registration order (★ champion, outlined)")
    ax.set_title(
        f"Error rate: {len(problems)} problems × {axis.size} versions",
        loc="right",
        fontsize=10,
    )
    return figure


def _cmap() -> Colormap:
    from matplotlib import colormaps

    return colormaps[HEATMAP].with_extremes(bad=MISSING_COLOUR)


# -- confusion matrix ------------------------------------------------------------------------


def confusion_chart(row: ProblemVersionMetrics) -> Figure:
    """One problem on one version: expected x predicted counts, and precision / recall / F1.

    ``row`` must come from ``problem_metrics(..., confusion=True)``. Only exact-label patterns
    take part (see :mod:`problem_registry.confusion`); the last column counts errored answers.
    """
    if row.confusion is None:
        raise ValueError("confusion_chart needs a row from problem_metrics(..., confusion=True)")
    confusion = row.confusion
    heading = f"{row.problem} on {row.ref}"
    if not confusion.cells:
        return _message_figure(
            heading, "no confusion matrix: no exact-label pattern of this problem was answered"
        )
    labels = confusion.labels  # already in label_order: "2" before "10"
    full = np.array(confusion.matrix(), dtype=float)
    # Rows: the labels some pattern expects (a label only ever predicted has an empty row).
    expected = [i for i, label in enumerate(labels) if full[i].sum() > 0]
    matrix = full[expected]
    columns = [_short(label, 14) for label in labels] + ["error"]
    size = len(labels)
    side = min(9.0, max(3.2, 0.55 * (size + 1) + 1.6))
    figure = Figure(
        figsize=(side + 4.2, max(3.6, 0.55 * len(expected) + 2.4)), layout="constrained"
    )
    ax, table_ax = figure.subplots(1, 2, width_ratios=[side, 4.0])
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(1.0, matrix.max()), aspect="equal")
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            ax.text(
                j,
                i,
                f"{int(value)}",
                ha="center",
                va="center",
                fontsize=9 if size <= 12 else 7,
                color="white" if value > matrix.max() * 0.6 else "black",
                fontweight="bold" if j == expected[i] else "normal",
            )
    ax.set_xticks(range(size + 1))
    ax.set_xticklabels(columns, fontsize=8)
    if size > 6 or max(len(c) for c in columns) > 5:
        for text in ax.get_xticklabels():
            text.set_rotation(45)
            text.set_horizontalalignment("right")
            text.set_rotation_mode("anchor")
    ax.set_yticks(range(len(expected)))
    ax.set_yticklabels([_short(labels[i], 14) for i in expected], fontsize=8)
    ax.set_xlabel("predicted (bold: right)")
    ax.set_ylabel("expected")
    ax.axvline(size - 0.5, color="#888888", linewidth=0.8)
    scores = confusion.scores()
    table_ax.set_axis_off()
    cell_text = [
        [
            _short(label, 14),
            f"{scores[label].precision:.2f}",
            f"{scores[label].recall:.2f}",
            f"{scores[label].f1:.2f}",
            str(scores[label].support),
        ]
        for label in labels[:24]
    ]
    table = table_ax.table(
        cellText=cell_text,
        colLabels=["label", "precision", "recall", "F1", "support"],
        loc="upper center",
        cellLoc="center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.25)
    macro = confusion.macro_f1
    table_ax.set_title(
        f"macro F1 {macro:.2f}" if macro is not None else "macro F1 -", fontsize=10, loc="left"
    )
    figure.suptitle(
        f"{heading}: confusion matrix of exact-label patterns ({row.right} of {row.answered} "
        "answered right overall)",
        x=0.01,
        ha="left",
        fontsize=11,
    )
    return figure


# -- output ----------------------------------------------------------------------------------


def save_figure(figure: Figure, path: Path, *, dpi: int = 100) -> Path:
    """Render ``figure`` to a PNG at ``path`` (folders created) through an Agg canvas; return it.

    The figure is cleared afterwards to free its memory at once (a report draws hundreds):
    build a new one to draw again.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas = FigureCanvasAgg(figure)
    figure.savefig(path, dpi=dpi, format="png", facecolor="white")
    figure.clear()
    del canvas
    return path
