"""One pattern's picture at a given size, whatever the pattern file holds.

Images are turned upright, enlarged crisply when tiny (an 8x8 digit stays eight rows of
pixels) and reduced while decoding when huge, never decoded at all past a pixel budget; text
and JSON become small cards of their content, and an unreadable or missing file a card saying
so, so a gallery is always drawn. Also the per-picture cache that reads each stored file once
and the helper that centres a thumbnail in its box.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from typing import Protocol

from PIL import Image, ImageOps

from problem_registry.enums import PatternKind
from problem_registry.errors import CorruptPattern
from problem_registry.report.gallery.cards import _card
from problem_registry.report.gallery.colours import PAPER
from problem_registry.store.content import IMAGE_FORMATS, MAX_IMAGE_PIXELS
from problem_registry.store.views import PatternView

# Pixels a thumbnail may decode. Pattern files are refused past the same limit when added, so
# this only bites on a file that was put in the store some other way; a JPEG is decoded at 1/2
# to 1/8 scale (``Image.draft``) and never costs that much.
MAX_THUMBNAIL_PIXELS = MAX_IMAGE_PIXELS
TEXT_PREVIEW_BYTES = 4096  # a card shows a few lines: never decode or parse a whole large file


def thumbnail(data: bytes, kind: PatternKind | str, size: int) -> Image.Image:
    """A pattern's picture fitting in ``size`` x ``size`` pixels, RGB.

    Images are turned upright (EXIF orientation); a small image is enlarged by a whole factor
    with nearest neighbour, so an 8x8 digit stays eight crisp rows of pixels; a large one is
    reduced while it is decoded (JPEG draft mode) or right after (``reduce``), so a 40 MP photo
    never sits in memory at full size twice. An image over :data:`MAX_THUMBNAIL_PIXELS` is not
    decoded at all: a card says so. Text and JSON become a card showing the start of the
    content. Never raises on bad content: an unreadable file becomes a card saying so.
    """
    if size < 8:
        raise ValueError(f"thumbnail size must be at least 8 pixels, got {size}")
    kind = PatternKind(kind)
    if kind is PatternKind.image:
        return _image_thumbnail(data, size)
    head = data[:TEXT_PREVIEW_BYTES].decode("utf-8", errors="replace").lstrip("\ufeff")
    if kind is PatternKind.json and len(data) <= TEXT_PREVIEW_BYTES:
        with contextlib.suppress(ValueError):  # not JSON after all: show it as it is
            head = json.dumps(json.loads(head), indent=1, ensure_ascii=False)
    return _card(head, size, label=kind.value.upper())


def _image_thumbnail(data: bytes, size: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # The size is judged below; Pillow's own bomb warning would only reach stderr.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Only the formats a pattern may have: never EPS, whose loading runs Ghostscript.
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        width, height = image.size
        if width * height > MAX_THUMBNAIL_PIXELS:
            return _card(f"{width}x{height} image\ntoo large to preview", size, label="IMAGE")
        if image.format == "JPEG":
            image.draft(None, (size, size))  # DCT scaling: decodes at 1/2, 1/4 or 1/8 size
        image.load()
        factor = max(image.size) // (2 * size)
        if factor >= 2:
            image = image.reduce(factor)  # keeps image.info, so the EXIF orientation survives
        image = ImageOps.exif_transpose(image) or image
        image = _rgb(image)
    except Image.DecompressionBombError:
        return _card("image too large to preview", size, label="IMAGE")
    except Exception as exc:  # a corrupt or truncated file: say so, draw the rest
        return _card(f"unreadable image\n{type(exc).__name__}", size, label="IMAGE")
    longest = max(image.size)
    if longest > size:
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
    elif longest * 2 <= size:
        # Whole factors only: every source pixel becomes the same square block.
        factor = size // longest
        image = image.resize(
            (image.width * factor, image.height * factor), Image.Resampling.NEAREST
        )
    return image


def _rgb(image: Image.Image) -> Image.Image:
    """RGB on white: transparency flattened, 16-bit and float images stretched to 8 bits."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = image.convert("F") if image.mode != "F" else image
        low, high = image.getextrema()
        scale = 255.0 / (high - low) if high > low else 1.0  # type: ignore[operator]
        image = image.point(lambda value: (value - low) * scale).convert("L")  # type: ignore[operator]
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, PAPER)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


class FileReader(Protocol):
    """Where thumbnails read pattern files: a :class:`~problem_registry.store.content.PatternStore`.

    Only ``read`` is needed, so a report worker draws from the store's folder with no database.
    """

    def read(self, sha256: str, extension: str) -> bytes: ...


def pattern_thumbnail(store: FileReader, pattern: PatternView, size: int) -> Image.Image:
    """``pattern``'s stored file as a thumbnail; a card if the file is missing or altered."""
    extension = pattern.file.rsplit(".", 1)[-1]
    try:
        data = store.read(pattern.sha256, extension)
    except CorruptPattern as exc:
        reason = "altered on disk" if "altered" in str(exc) else "missing from the store"
        return _card(f"pattern file {reason}", size, label="FILE")
    return thumbnail(data, pattern.kind, size)


class _Thumbnails:
    """Each stored file read and drawn once per picture (a file can serve several patterns)."""

    def __init__(self, store: FileReader, size: int) -> None:
        self.store, self.size = store, size
        self._cache: dict[str, Image.Image] = {}

    def __call__(self, pattern: PatternView) -> Image.Image:
        if pattern.sha256 not in self._cache:
            self._cache[pattern.sha256] = pattern_thumbnail(self.store, pattern, self.size)
        return self._cache[pattern.sha256]


def _paste_centred(canvas: Image.Image, image: Image.Image, box: tuple[int, int, int, int]) -> None:
    left, top, right, bottom = box
    x = left + (right - left - image.width) // 2
    y = top + (bottom - top - image.height) // 2
    canvas.paste(image, (x, y))
