"""Problems x versions as a heatmap: every error rate of a registry in one picture.

Where the overview picks lines to colour, the heatmap shows every cell: viridis from light (0%)
to dark (100%), hatched where there is no result, each cell's rate written in it, a dot where a
problem's ``max_error_rate`` is missed and the champion's column outlined, readable up to 100+
problems and 50+ versions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import PercentFormatter

from problem_registry.report.charts.axis import _axis_from_rows, _version_ticks
from problem_registry.report.charts.rates import _problems_in_order, _rate_matrix
from problem_registry.report.charts.style import (
    HEATMAP,
    MAX_HEIGHT,
    MAX_WIDTH,
    MISSING_COLOUR,
    VERMILLION,
    _message_figure,
    _short,
)
from problem_registry.verdicts.metrics import ProblemVersionMetrics


def heatmap_chart(rows: Sequence[ProblemVersionMetrics]) -> Figure:
    """Problems (rows) x versions (columns), each cell the error rate; hatched where no result.

    Cells carry their percentage (small cells: the number alone) down to about 60 x 50; a dot
    marks a cell that misses the problem's ``max_error_rate``. The champion's column is outlined.
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
    # Missing cells are transparent over a hatched ground: no colour of the scale can be read
    # as "no result".
    ax.add_patch(
        Rectangle(
            (-0.5, -0.5),
            axis.size,
            len(problems),
            facecolor="white",
            edgecolor=MISSING_COLOUR,
            hatch="////",
            linewidth=0,
            zorder=0,
        )
    )
    # A mesh of cells, not an image: matplotlib resamples an image through float arrays of the
    # output's size, ~100 MB at 1,000 x 100 even coloured into bytes first (issue 19 item 13);
    # the mesh's quads cost a few MB. Rows top down, as an image's.
    cmap = _cmap()
    ax.pcolormesh(
        np.arange(axis.size + 1) - 0.5,
        np.arange(len(problems) + 1) - 0.5,
        masked,
        cmap=cmap,
        norm=Normalize(vmin=0, vmax=1),
        shading="flat",
        antialiased=False,
        linewidth=0,
        zorder=1,
    )
    ax.set_ylim(len(problems) - 0.5, -0.5)
    scale = ScalarMappable(norm=Normalize(vmin=0, vmax=1), cmap=cmap)
    colourbar = figure.colorbar(
        scale, ax=ax, fraction=0.04, pad=0.01, shrink=min(0.9, 4.0 / height)
    )
    colourbar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    colourbar.set_label("error rate (hatched: no result)", fontsize=8)
    colourbar.ax.tick_params(labelsize=7)
    cell_w = (width - label_width - 1.6) / max(axis.size, 1)
    cell_h = (height - 1.9) / len(problems)
    roomy = cell_w >= 0.42 and cell_h >= 0.2
    if cell_w >= 0.2 and cell_h >= 0.12:  # 5 pt digits still fit a 60 x 50 grid
        for (i, j), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                ax.text(
                    j,
                    i,
                    f"{value:.0%}" if roomy else f"{value * 100:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7 if roomy else 5,
                    color="white" if value > 0.5 else "black",
                    zorder=2,
                )
    index = axis.index()
    limits = {}
    for row in rows:
        column = index.get((row.model, row.version))
        if row.meets_canary is False and column is not None:
            limits[(problems.index(row.problem), column)] = True
    if limits and min(cell_w, cell_h) >= 0.1:  # smaller dots are noise, not information
        ys, xs = zip(*limits, strict=True)
        size = max(4.0, min(22.0, 60 * min(cell_w, cell_h)))
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

    return colormaps[HEATMAP].with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
