"""Many problems' charts over the same versions, each at the cost of its own data only.

A problem's chart is mostly frame: the axes, a tick and maybe a label per version, the grid,
the champion's shade. matplotlib spends most of a chart's time laying out and drawing those,
and every problem of a report has the same frame. :class:`ProblemCharts` draws the frame once
per version axis, keeps its pixels, and per problem copies them back and draws only that
problem's artists on top (Agg's ``restore_region``, as animation blitting does), in the order a
full draw would: the PNG is :func:`~problem_registry.report.charts.problem.problem_chart`'s, through
:func:`~problem_registry.report.charts.output.figure_png`, for a fraction of the time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.transforms import Bbox

from problem_registry.report.charts.output import FACE, canvas_png, figure_png
from problem_registry.report.charts.problem import (
    add_legend,
    draw_problem,
    problem_axis,
    problem_chart,
    problem_frame,
)
from problem_registry.verdicts.metrics import ProblemVersionMetrics

FRAMES_KEPT = 4  # a report has one version axis; a few more cost a figure each
LEGEND_MARGIN = 3  # pixels kept around a legend's box


@dataclass
class _Frame:
    figure: Figure
    ax: Axes
    canvas: FigureCanvasAgg
    background: Any  # Agg's saved region: the frame's pixels
    # Each legend's pixels over the frame, by its labels: the same picture for every problem
    # with the same lines, and costly to lay out.
    legends: dict[tuple[str, ...], Any] = field(default_factory=dict)


def _around(legend: Legend, frame: _Frame) -> Bbox:
    """The legend's box with room for anti-aliased edges: it stands beside the axes, where
    nothing else of a problem's is drawn, so these pixels are the legend over the frame."""
    return legend.get_window_extent(frame.canvas.get_renderer()).padded(LEGEND_MARGIN)


class ProblemCharts:
    """Draws problem charts as PNG bytes, reusing the frame of charts over the same versions.

    Not thread-safe (one figure per frame is drawn on in place); a process pool gives each
    worker its own.
    """

    def __init__(self, *, dpi: int = 100) -> None:
        self.dpi = dpi
        self._frames: OrderedDict[tuple[Any, ...], _Frame] = OrderedDict()

    def png(
        self,
        rows: Sequence[ProblemVersionMetrics],
        *,
        champion: str | None = None,
        titled: bool = True,
    ) -> bytes:
        """``problem_chart(rows, champion=champion, titled=titled)`` as PNG bytes."""
        if not rows:
            return figure_png(problem_chart(rows), dpi=self.dpi)
        axis = problem_axis(rows, champion=champion)
        key = (tuple(axis.keys), tuple(axis.labels), tuple(axis.champions), titled)
        frame = self._frame(key, axis, titled=titled)
        frame.canvas.restore_region(frame.background)
        before = set(frame.ax.get_children()) | set(frame.figure.get_children())
        draw_problem(frame.figure, frame.ax, axis, rows, legend=False, titled=titled)
        labels = tuple(frame.ax.get_legend_handles_labels()[1])
        drawn_legend = frame.legends.get(labels)
        legend = add_legend(frame.ax) if drawn_legend is None else None
        added = [
            artist
            for artist in [*frame.ax.get_children(), *frame.figure.get_children()]
            if artist not in before
        ]
        # The spines are drawn over the data in a full draw too (zorder 2.5); a stable sort keeps
        # the order in which artists were added among equals, as Axes.draw does.
        layers: list[Artist] = sorted(
            [*added, *frame.ax.spines.values()], key=lambda artist: artist.get_zorder()
        )
        try:
            for artist in layers:
                frame.figure.draw_artist(artist)
            if legend is not None:
                frame.legends[labels] = frame.canvas.copy_from_bbox(_around(legend, frame))
            else:
                frame.canvas.restore_region(drawn_legend)
            return canvas_png(frame.canvas)
        finally:
            for artist in added:
                artist.remove()

    def _frame(self, key: tuple[Any, ...], axis: Any, *, titled: bool) -> _Frame:
        if key in self._frames:
            self._frames.move_to_end(key)
            return self._frames[key]
        figure, ax = problem_frame(axis, titled=titled)
        figure.set_dpi(self.dpi)
        figure.patch.set_facecolor(FACE)
        canvas = FigureCanvasAgg(figure)
        # The spines go over the data, so they are drawn with it, never into the background:
        # an anti-aliased line drawn twice comes out darker.
        for spine in ax.spines.values():
            spine.set_visible(False)
        canvas.draw()
        for spine in ax.spines.values():
            spine.set_visible(True)
        frame = _Frame(figure, ax, canvas, canvas.copy_from_bbox(figure.bbox))
        self._frames[key] = frame
        while len(self._frames) > FRAMES_KEPT:
            self._frames.popitem(last=False)
        return frame
