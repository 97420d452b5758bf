"""The "more like this" contact sheet: a case or pattern, then its nearest neighbours.

Each tile: the input's thumbnail, what it is (case or pattern, its id), its label (a case's
production answer, a pattern's expectation and problem) and its distance. The target has a
thick blue frame, patterns a black one, cases a grey one: the frames say which is which, the
words too.
"""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

from problem_registry.enums import PatternKind
from problem_registry.errors import CorruptPattern
from problem_registry.report.gallery.cards import _card, _fit
from problem_registry.report.gallery.colours import INK, MISSING, MUTED, PAPER
from problem_registry.report.gallery.glyphs import font, write
from problem_registry.report.gallery.thumbnails import FileReader, _paste_centred, thumbnail
from problem_registry.triage.neighbours import Similar
from problem_registry.triage.similarity import Item

THUMB = 96
TILE_W, TILE_H, PAD = 150, 96 + 70, 8
TARGET = (0, 114, 178)  # Okabe-Ito blue


def item_thumbnail(store: FileReader, item: Item, size: int) -> Image.Image:
    """A case's or pattern's input as a thumbnail; a card when its file cannot be read."""
    try:
        data = store.read(item.sha256, item.extension)
    except CorruptPattern:
        return _card("input missing from the store", size, label="FILE")
    return thumbnail(data, PatternKind(item.content_kind), size)


def neighbour_sheet(store: FileReader, found: Similar) -> Image.Image:
    tiles = [(found.target, None), *((n.item, n) for n in found.neighbours)]
    columns = max(1, min(6, len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    title, small = font(14), font(11)
    measure = f"scores of {found.version}" if found.by == "scores" else "perceptual hash / text"
    width = max(480, columns * (TILE_W + PAD) + PAD)
    header = 44
    canvas = Image.new("RGB", (width, header + rows * (TILE_H + PAD) + PAD), PAPER)
    draw = ImageDraw.Draw(canvas)
    target = found.target
    heading = f"More like {target.kind} {target.id} ({target.label})"
    write(canvas, (10, 6), _fit(heading, title, width - 20), title, INK)
    sub = f"nearest {len(found.neighbours)} by {measure}; distance 0 = alike, 1 = unlike"
    write(canvas, (10, 26), _fit(sub, small, width - 20), small, MUTED)
    for n, (item, neighbour) in enumerate(tiles):
        left = PAD + (n % columns) * (TILE_W + PAD)
        top = header + (n // columns) * (TILE_H + PAD)
        box = (left, top, left + TILE_W, top + TILE_H)
        colour, thickness = (
            (TARGET, 5)
            if neighbour is None
            else ((INK, 2) if item.kind == "pattern" else (MISSING, 2))
        )
        draw.rectangle(box, outline=colour, width=thickness)
        thumb_box = (
            left + (TILE_W - THUMB) // 2,
            top + PAD,
            left + (TILE_W + THUMB) // 2,
            top + PAD + THUMB,
        )
        draw.rectangle(thumb_box, fill=(242, 242, 242))
        _paste_centred(canvas, item_thumbnail(store, item, THUMB), thumb_box)
        room = TILE_W - 16
        y = thumb_box[3] + 6
        what = "THIS " if neighbour is None else ""
        lines = [f"{what}{item.kind} {item.id}"]
        if item.kind == "pattern":
            lines.append(f"{item.problem}: {item.label}")
        else:
            lines.append(f"answered {item.label}")
        lines.append("" if neighbour is None else f"distance {neighbour.distance:.3f}")
        for text in lines:
            write(
                canvas,
                (left + 8, y),
                _fit(text, small, room),
                small,
                INK if text == lines[0] else MUTED,
            )
            y += 15
    return canvas
