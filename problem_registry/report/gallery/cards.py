"""Text in pictures: the font, captions made to fit, and small cards of text.

The font and the setting of text are in :mod:`.glyphs`. A caption is shortened with "..." to the
pixels it is given and a card's text is wrapped, so a long file name or a line of JSON never runs
out of its box; a card (a label strip over the start of a text) stands in for a thumbnail when
a pattern is text, JSON, or a picture that cannot be shown.
"""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw

from problem_registry.report.gallery.colours import INK, MUTED
from problem_registry.report.gallery.glyphs import TEXTS_KEPT, Face, font, text_width, write


@lru_cache(maxsize=TEXTS_KEPT)
def _fit(text: str, face: Face, width: float) -> str:
    """``text`` shortened with "..." so it fits in ``width`` pixels."""
    text = " ".join(text.split())  # newlines and tabs would break a one-line caption
    if text_width(text, face) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the ellipsis
        middle = (low + high + 1) // 2
        if text_width(text[:middle] + "...", face) <= width:
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
            if text_width(candidate, face) <= width:
                current = candidate
                continue
            if current.strip():
                lines.append(current)
            current = ""
            for char in word:  # a word wider than the card: cut it
                if text_width(current + char, face) > width and current:
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
    write(card, (4, 2), label, face, MUTED)
    draw.rectangle((0, 0, size - 1, size - 1), outline=(190, 186, 172))
    line_height = strip - 2
    lines = _wrap(text, face, size - 8)
    room = max(1, (size - strip - 4) // line_height)
    if len(lines) > room:
        lines = lines[:room]
        lines[-1] = _fit(lines[-1] + " ...", face, size - 8)
    for n, line in enumerate(lines):
        write(card, (4, strip + 2 + n * line_height), line, face, INK)
    return card
