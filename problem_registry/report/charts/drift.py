"""The drift chart: a production batch's answers beside a reference's, label by label.

One row per comparison (against an earlier batch, against the registry's replay): on the left
the share of each predicted label, reference and this batch side by side, with each label's
PSI term written above it; on the right the same for confidence bands. The title is the verdict
in words (:meth:`~problem_registry.triage.drift.Comparison.sentence`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from problem_registry.report.charts.style import BLUE, GREY, VERMILLION, _message_figure
from problem_registry.triage.drift import BinShift, Comparison

VERDICT_COLOURS = {"drifted": VERMILLION, "shifted": "#E69F00", "stable": "#009E73"}


def drift_chart(comparisons: Sequence[Comparison]) -> Figure:
    if not comparisons:
        return _message_figure("Drift", "nothing to compare: no earlier batch and no replay")
    figure = Figure(figsize=(12, 3.6 * len(comparisons)), layout="constrained")
    grid = figure.add_gridspec(len(comparisons), 3)
    for row, comparison in enumerate(comparisons):
        labels = figure.add_subplot(grid[row, :2])
        _bars(labels, comparison.labels, comparison, "share of answers by predicted label")
        labels.set_title(
            "\n".join(textwrap.wrap(comparison.sentence(), 110)),
            loc="left",
            fontsize=9.5,
            color=VERDICT_COLOURS.get(comparison.verdict, "#333333"),
        )
        bands = figure.add_subplot(grid[row, 2])
        if comparison.confidence:
            _bars(bands, comparison.confidence, comparison, "share by confidence band", below=-0.32)
            bands.tick_params(axis="x", labelrotation=45)
        else:
            bands.set_axis_off()
            bands.text(0.5, 0.5, "no confidences to compare", ha="center", va="center")
    return figure


def _bars(
    ax: object,
    shifts: Sequence[BinShift],
    comparison: Comparison,
    ylabel: str,
    *,
    below: float = -0.1,
) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    x = np.arange(len(shifts))
    width = 0.4
    ax.bar(
        x - width / 2, [s.reference for s in shifts], width, color=GREY, label=comparison.reference
    )
    ax.bar(x + width / 2, [s.current for s in shifts], width, color=BLUE, label=comparison.current)
    top = max([s.reference for s in shifts] + [s.current for s in shifts] + [0.01])
    for i, shift in enumerate(shifts):
        if shift.psi >= 0.01:
            ax.text(i, top * 1.04, f"{shift.psi:.2f}", ha="center", fontsize=7, color="#555555")
    ax.set_xticks(x, [s.bin for s in shifts], fontsize=8)
    ax.set_ylim(0, top * 1.18)
    ax.yaxis.set_major_formatter(lambda value, _pos: f"{value:.0%}")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, below), ncol=2, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
