"""Figures out to PNG: drawn once on an Agg canvas of the figure's own, encoded by Pillow.

Kept apart from the charts so that drawing and writing stay separate: a chart returns a
``Figure`` and never touches the disk or a display, and this is the one place that turns one
into bytes, without pyplot and without switching matplotlib's backend. ``savefig`` is not used:
it stamps the matplotlib version into the file and compresses at zlib level 6; the canvas is
drawn once here and encoded as RGB at a faster level, the same bytes for the same figure.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

# zlib level: measured on report charts, level 3 encodes in ~60% of level 6's time for ~10% more
# bytes (issue 7: a report of 1,000 problems encodes thousands of these).
PNG_COMPRESSION = 3
FACE = "white"


def save_figure(figure: Figure, path: Path, *, dpi: int = 100) -> Path:
    """Render ``figure`` to a PNG at ``path`` (folders created) through an Agg canvas; return it.

    The figure is cleared afterwards to free its memory at once (a report draws hundreds):
    build a new one to draw again.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figure_png(figure, dpi=dpi))
    figure.clear()
    return path


def figure_png(figure: Figure, *, dpi: int = 100) -> bytes:
    """``figure`` drawn on a white face at ``dpi`` and encoded as PNG."""
    figure.set_dpi(dpi)
    figure.patch.set_facecolor(FACE)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas_png(canvas)


def canvas_png(canvas: FigureCanvasAgg) -> bytes:
    """What an Agg canvas holds now, as PNG bytes (RGB: every chart is drawn on white)."""
    width, height = canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    return image_png(image.convert("RGB"))


def image_png(image: Image.Image) -> bytes:
    """A Pillow picture as PNG bytes, at the one compression level every picture uses."""
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=PNG_COMPRESSION)
    return out.getvalue()
