"""Pictures out to PNG: a figure drawn once on an Agg canvas of its own, then encoded here.

Kept apart from the charts so that drawing and writing stay separate: a chart returns a
``Figure`` and never touches the disk or a display, and this is the one place that turns one
into bytes, without pyplot and without switching matplotlib's backend. ``savefig`` is not used:
it stamps the matplotlib version into the file and filters every row; the canvas is drawn
once here and encoded by :func:`image_png`, the same bytes for the same figure.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from isal import isal_zlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from problem_registry.plain_files import write_atomically

# ISA-L's deflate level (0-3): on report pictures 1 is as fast as 0 and ~20% smaller; zlib at
# any level took 5-6x as long for files ~20% smaller still (outcome grid: 2.6 ms vs 15 ms).
PNG_COMPRESSION = 1
FACE = "white"


def save_figure(figure: Figure, path: Path, *, dpi: int = 100) -> Path:
    """Render ``figure`` to a PNG at ``path`` (folders created) through an Agg canvas; return it.

    The figure is cleared afterwards to free its memory at once (a report draws hundreds):
    build a new one to draw again.
    """
    path = Path(path)
    data = figure_png(figure, dpi=dpi)
    figure.clear()
    write_atomically(path, data)  # whole or not at all: a full disk left a 0-byte PNG (item 11)
    return path


def figure_png(figure: Figure, *, dpi: int = 100) -> bytes:
    """``figure`` drawn on a white face at ``dpi`` and encoded as PNG."""
    figure.set_dpi(dpi)
    figure.patch.set_facecolor(FACE)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas_png(canvas)


def canvas_png(canvas: FigureCanvasAgg) -> bytes:
    """What an Agg canvas holds now, as PNG bytes (RGB: every chart is drawn on white).

    Pillow drops the alpha channel; it is three times faster at it than numpy's strided copy.
    """
    width, height = canvas.get_width_height(physical=True)
    rgba = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    return image_png(rgba.convert("RGB"))


def image_png(image: Image.Image) -> bytes:
    """A Pillow picture as PNG bytes: RGB, 8 bits, unfiltered rows, deflated at one fixed level.

    Written here rather than by ``Image.save``: Pillow tries every PNG filter on every row of an
    RGB image, most of the cost of a report's pictures, and charts and galleries are large flat
    areas that unfiltered rows compress about as well (docs/performance.md).
    """
    return _png(np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8))


def _png(pixels: np.ndarray) -> bytes:
    height, width, _ = pixels.shape
    rows = np.zeros((height, width * 3 + 1), dtype=np.uint8)  # each row: filter 0, then pixels
    rows[:, 1:] = pixels.reshape(height, width * 3)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", isal_zlib.compress(rows.data, PNG_COMPRESSION)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
