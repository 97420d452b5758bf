"""Figures out to files: a PNG rendered through an Agg canvas of the figure's own.

Kept apart from the charts so that drawing and writing stay separate: a chart returns a
``Figure`` and never touches the disk or a display, and this is the one place that does,
without pyplot and without switching matplotlib's backend.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


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
