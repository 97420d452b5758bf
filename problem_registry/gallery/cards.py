"""Text in pictures: the font, captions made to fit, and small cards of text.

Fonts are Pillow's own scalable default (``ImageFont.load_default(size=...)``), so nothing
depends on the fonts a CI runner happens to have. A caption is shortened with "..." to the
pixels it is given and a card's text is wrapped, so a long file name or a line of JSON never runs
out of its box; a card (a label strip over the start of a text) stands in for a thumbnail when
a pattern is text, JSON, or a picture that cannot be shown.
"""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from problem_registry.gallery.colours import INK, MUTED

Face = ImageFont.FreeTypeFont | ImageFont.ImageFont
Ink = tuple[int, int, int]
TEXTS_KEPT = 4096  # rasterised strings per process: a report's recurring labels, counts, captions


@lru_cache(maxsize=16)
def font(size: int) -> Face:
    """Pillow's bundled scalable font (Pillow >= 10.1 with FreeType); no system font needed."""
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=TEXTS_KEPT)
def _text_width(text: str, face: Face) -> float:
    return face.getlength(text)


def write(canvas: Image.Image, xy: tuple[float, float], text: str, face: Face, fill: Ink) -> None:
    """``ImageDraw.text`` at whole pixels; a string written before is pasted, not rendered.

    FreeType renders a short caption in ~0.1-0.3 ms, and a report writes the same strings on
    every page (counts under a grid's columns, "expected: 7", badges, legends): kept as masks
    once they recur, they cost a paste. A string seen once (a pattern's file name) is drawn as
    it is, since keeping it would cost a measure and a render for nothing.
    """
    x, y = round(xy[0]), round(xy[1])
    key = (text, face)
    if key not in _SEEN:
        if len(_SEEN) >= TEXTS_KEPT:
            _SEEN.clear()
        _SEEN[key] = None
        ImageDraw.Draw(canvas).text((x, y), text, font=face, fill=fill)
        return
    mask, left, top = _text_mask(text, face)
    canvas.paste(fill, (x + left, y + top), mask)


_SEEN: dict[tuple[str, Face], None] = {}


@lru_cache(maxsize=TEXTS_KEPT)
def _text_mask(text: str, face: Face) -> tuple[Image.Image, int, int]:
    left, top, right, bottom = (int(v) for v in face.getbbox(text))
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, font=face, fill=255)
    return mask, left, top


@lru_cache(maxsize=TEXTS_KEPT)
def _fit(text: str, face: Face, width: float) -> str:
    """``text`` shortened with "..." so it fits in ``width`` pixels."""
    text = " ".join(text.split())  # newlines and tabs would break a one-line caption
    if _text_width(text, face) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the ellipsis
        middle = (low + high + 1) // 2
        if _text_width(text[:middle] + "...", face) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low] + "..."


def _wrap(text: str, face: Face, width: float) -> list[str]:
    """Lines that fit ``width``: broken between words, and inside a word only when the word
    alone is too long (JSON and URLs have few spaces)."""
    lines: list[str] = []
    for paragraph in text.replace("\t", "  ").splitlines() or [""]:
        indent = paragraph[: len(paragraph) - len(paragraph.lstrip(" "))]
        current = indent
        for word in paragraph.split(" "):
            if not word:
                continue
            candidate = f"{current} {word}" if current.strip() else current + word
            if _text_width(candidate, face) <= width:
                current = candidate
                continue
            if current.strip():
                lines.append(current)
            current = ""
            for char in word:  # a word wider than the card: cut it
                if _text_width(current + char, face) > width and current:
                    lines.append(current)
                    current = ""
                current += char
        lines.append(current)
    return lines


def _card(text: str, size: int, *, label: str) -> Image.Image:
    """A small card: a label strip, then as much of ``text`` as fits."""
    card = Image.new("RGB", (size, size), (252, 249, 238))
    draw = ImageDraw.Draw(card)
    face = font(max(8, min(13, size // 9)))
    strip = face.size + 4 if hasattr(face, "size") else 14
    draw.rectangle((0, 0, size - 1, strip), fill=(226, 222, 208))
    draw.text((4, 2), label, font=face, fill=MUTED)
    draw.rectangle((0, 0, size - 1, size - 1), outline=(190, 186, 172))
    line_height = strip - 2
    lines = _wrap(text, face, size - 8)
    room = max(1, (size - strip - 4) // line_height)
    if len(lines) > room:
        lines = lines[:room]
        lines[-1] = _fit(lines[-1] + " ...", face, size - 8)
    for n, line in enumerate(lines):
        draw.text((4, strip + 2 + n * line_height), line, font=face, fill=INK)
    return card
