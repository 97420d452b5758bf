"""Text in gallery pictures, set from glyphs rendered once per process.

Fonts are Pillow's own scalable default (``ImageFont.load_default(size=...)``), so nothing depends
on the fonts a CI runner happens to have. Pillow rasterises a whole string on every
``ImageDraw.text`` call, and a report's problem page writes ~120 of them: the largest single cost of
its pictures (docs/performance.md, "The HTML report"). Here each glyph is rendered once and a string
is set the way Pillow's basic layout sets it (each glyph at its pen position, whole pixels, its
advance and the pair's kerning), so its width is ``getlength``'s and its pixels Pillow's, give or
take a pixel of rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Face = ImageFont.FreeTypeFont | ImageFont.ImageFont
Ink = tuple[int, int, int]
KERNING_KEPT = 100_000  # letter pairs measured per process before the table starts again
TEXTS_KEPT = 4096  # strings kept set per process


@lru_cache(maxsize=16)
def font(size: int) -> Face:
    """Pillow's bundled scalable font (Pillow >= 10.1 with FreeType); no system font needed."""
    return ImageFont.load_default(size=size)


@dataclass(frozen=True)
class _Glyph:
    coverage: np.ndarray  # 0-255, rows x columns; empty for a space
    left: int  # from the pen position to the coverage's first column
    top: int  # from the line's top to its first row
    advance: float  # pixels the pen moves on


def text_width(text: str, face: Face) -> float:
    """``face.getlength(text)``, from the glyphs' advances and their pairs' kerning."""
    return _pens(text, face)[1]


def write(canvas: Image.Image, xy: tuple[float, float], text: str, face: Face, fill: Ink) -> None:
    """``ImageDraw.Draw(canvas).text(xy, text, font=face, fill=fill)``, at whole pixels."""
    mask = _mask(text, face)
    if mask is not None:
        image, left, top = mask
        canvas.paste(fill, (round(xy[0]) + left, round(xy[1]) + top), image)


@lru_cache(maxsize=TEXTS_KEPT)
def _mask(text: str, face: Face) -> tuple[Image.Image, int, int] | None:
    """The coverage of ``text`` set from its glyphs, and its offset from the pen; kept, as a
    page writes many strings again (counts, expectations, badges, legends)."""
    placed = [
        (int(pen) + glyph.left, glyph.top, glyph.coverage)
        for pen, glyph in _set(text, face)
        if glyph.coverage.size
    ]
    if not placed:
        return None
    left = min(x for x, _, _ in placed)
    top = min(y for _, y, _ in placed)
    right = max(x + coverage.shape[1] for x, _, coverage in placed)
    bottom = max(y + coverage.shape[0] for _, y, coverage in placed)
    mask = np.zeros((bottom - top, right - left), dtype=np.uint8)
    for x, y, coverage in placed:  # overlapping glyphs keep the darker pixel, as Pillow's do
        height, width = coverage.shape
        region = mask[y - top : y - top + height, x - left : x - left + width]
        np.maximum(region, coverage, out=region)
    return Image.fromarray(mask), left, top


def _set(text: str, face: Face) -> list[tuple[float, _Glyph]]:
    """Each glyph of ``text`` with its pen position."""
    pens, _width = _pens(text, face)
    return [(pen, _glyph(char, face)) for pen, char in zip(pens, text, strict=True)]


def _pens(text: str, face: Face) -> tuple[list[float], float]:
    pens: list[float] = []
    pen, previous = 0.0, ""
    for char in text:
        if previous:
            pen += _kerning(previous, char, face)
        pens.append(pen)
        pen += _glyph(char, face).advance
        previous = char
    return pens, pen


_GLYPHS: dict[tuple[str, Face], _Glyph] = {}
_KERNING: dict[tuple[str, str, Face], float] = {}


def _glyph(char: str, face: Face) -> _Glyph:
    glyph = _GLYPHS.get((char, face))
    if glyph is None:
        left, top, right, bottom = (int(v) for v in face.getbbox(char))
        image = Image.new("L", (max(0, right - left), max(0, bottom - top)), 0)
        if image.width and image.height:
            ImageDraw.Draw(image).text((-left, -top), char, font=face, fill=255)
        glyph = _Glyph(np.asarray(image), left, top, face.getlength(char))
        _GLYPHS[(char, face)] = glyph
    return glyph


def _kerning(first: str, second: str, face: Face) -> float:
    key = (first, second, face)
    kerning = _KERNING.get(key)
    if kerning is None:
        if len(_KERNING) >= KERNING_KEPT:
            _KERNING.clear()
        pair = face.getlength(first + second)
        kerning = _KERNING[key] = pair - _glyph(first, face).advance - _glyph(second, face).advance
    return kerning
