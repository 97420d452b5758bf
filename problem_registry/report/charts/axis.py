"""The x axis every chart shares: model versions in registration order.

Built from registered versions or from metric rows, it knows each version's label (bare
``v3``, or ``name@v3`` when several models share a chart) and which are champions, and draws
itself: thinned and rotated tick labels that never overlap, the champions' shaded columns, the
hatched columns of versions without results, and a 0-100% error-rate y axis. Lines are split
per model so one model's versions are never joined to another's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from problem_registry.refs import format_ref
from problem_registry.report.charts.style import SKY
from problem_registry.store.views import ModelVersionView
from problem_registry.verdicts.metrics import ProblemVersionMetrics


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
    return [format_ref(name, version) for name, version in keys]


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
