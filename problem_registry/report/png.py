"""Pillow pictures to PNG bytes, fast: what every picture of a report is written with.

Apart from the charts, so that the processes drawing the pages (Pillow pictures only) never
import matplotlib (issue 19 item 13: ~50 MB a process).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from isal import isal_zlib
from PIL import Image

# ISA-L's deflate level (0-3): on report pictures 1 is as fast as 0 and ~20% smaller; zlib at
# any level took 5-6x as long for files ~20% smaller still (outcome grid: 2.6 ms vs 15 ms).
PNG_COMPRESSION = 1


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
