"""One problem's patterns x model versions: the outcome grid, and the cells it draws.

The picture that answers "which version fixed which pattern, and which broke one": a row per
pattern headed by its thumbnail, a column per version, each cell pass / fail / errored / no
result (by a mark as well as a colour), framed where the outcome changed from the previous
version that answered. :func:`grid_cells` is the same comparison as the timelines, as data.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from problem_registry.refs import ModelRef
from problem_registry.report.gallery.cards import _fit
from problem_registry.report.gallery.colours import (
    CHAMPION_SHADE,
    ERRORED,
    FAIL,
    INK,
    MISSING,
    MUTED,
    PAPER,
    PASS,
)
from problem_registry.report.gallery.glyphs import Face, font, text_width, write
from problem_registry.report.gallery.outcomes import Outcome, outcome_of
from problem_registry.report.gallery.thumbnails import FileReader, _paste_centred, _Thumbnails
from problem_registry.store.views import PatternView
from problem_registry.verdicts.metrics import PatternResult, pattern_results

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry


THUMB = 48  # a row's thumbnail, square
ROW_H = THUMB + 8
HEADER_W = THUMB + 12 + 190  # a row's head: thumbnail, file name, expectation
FOOTER_H = 22  # under the cells: each version's count of wrong answers


@dataclass(frozen=True)
class Cell:
    """One pattern on one version, as the grid draws it."""

    outcome: str
    change: str | None  # "fixed" / "broken" vs the pattern's previous answered version
    result: PatternResult


def grid_cells(results: Sequence[PatternResult]) -> dict[tuple[int, str], Cell]:
    """``(pattern id, "name@version")`` -> its :class:`Cell`, for results in version order.

    A pattern is *fixed* (or *broken*) by a version when it is right (wrong) there and was wrong
    (right) in the previous version that answered it: the same comparison as
    :func:`problem_registry.verdicts.timeline.timelines`, so the grid and the status line agree.
    """
    cells: dict[tuple[int, str], Cell] = {}
    last: dict[int, bool] = {}
    for result in results:
        change = None
        if result.correct is not None:
            before = last.get(result.pattern_id)
            if before is not None and before != result.correct:
                change = "fixed" if result.correct else "broken"
            last[result.pattern_id] = result.correct
        ref = result.ref
        cells[(result.pattern_id, ref)] = Cell(outcome_of(result), change, result)
    return cells


def outcome_grid(
    registry: Registry, problem: str, *, versions: Sequence[str] | None = None
) -> Image.Image:
    """One problem's patterns x versions: pass / fail / errored / no result per cell.

    Rows are the problem's patterns (positives first), each headed by its thumbnail, file name
    and expectation; columns are ``versions`` (refs or bare versions; default every registered
    version) in registration order, the champion's named. A cell whose outcome differs from the
    same pattern's previous answered version is framed in black: green framed = fixed there,
    vermillion framed = broken there. The bottom row counts the wrong answers per version.
    """
    refs = None if versions is None else registry.models.resolve(versions)
    results = pattern_results(registry, problems=[problem], versions=refs)
    known = {v.ref: v for v in registry.models.list()}
    columns = list(dict.fromkeys(r.ref for r in results))
    if not columns:
        columns = refs if refs is not None else list(known)
    return draw_outcome_grid(
        problem,
        registry.patterns.list(problem),
        results,
        columns=columns,
        champions={ref for ref in columns if ref in known and known[ref].is_champion},
        store=registry.store,
    )


def draw_outcome_grid(
    problem: str,
    patterns: Sequence[PatternView],
    results: Sequence[PatternResult],
    *,
    columns: Sequence[str],
    champions: Collection[str],
    store: FileReader,
) -> Image.Image:
    """:func:`outcome_grid` from plain data: ``results`` in version order, ``columns`` refs.

    Reads nothing but the pattern files (through ``store``), so a report worker can draw it
    from what the main process already queried.
    """
    patterns = in_grid_order(patterns)
    starred = {i for i, ref in enumerate(columns) if ref in champions}

    n = len(columns)
    cell_w = cell_width(n)
    small, normal, title_font = font(11), font(12), font(15)
    label_texts = column_labels(columns, champions)
    label_h = label_height(label_texts)
    title_h, legend_h = 34, 58
    grid_top = title_h + label_h
    width = max(HEADER_W + n * cell_w + 16, 560)
    height = grid_top + max(1, len(patterns)) * ROW_H + FOOTER_H + legend_h
    canvas = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(canvas)

    write(
        canvas,
        (10, 8),
        _fit(f"{problem}: {len(patterns)} patterns x {n} versions", title_font, width - 20),
        title_font,
        INK,
    )
    for i, text in enumerate(label_texts):  # column labels, written upwards
        x = HEADER_W + i * cell_w
        if i in starred:
            draw.rectangle(
                (x, title_h, x + cell_w - 1, grid_top + len(patterns) * ROW_H), fill=CHAMPION_SHADE
            )
        rotated = _column_label(text, label_h, cell_w, champion=i in starred)
        canvas.paste(rotated, (x, grid_top - rotated.height - 4), rotated)

    thumbs = _Thumbnails(store, THUMB)
    for row, pattern in enumerate(patterns):
        _row_header(canvas, draw, thumbs(pattern), pattern, row, grid_top + row * ROW_H)
    body, wrong = grid_body(patterns, results, columns, champions)
    if body and columns:
        canvas.paste(_grid_body(body, cell_w, ROW_H), (HEADER_W, grid_top))
    footer_top = grid_top + len(patterns) * ROW_H + 4
    write(canvas, (8, footer_top + 2), "wrong answers", small, MUTED)
    for i, count in enumerate(wrong):
        text = str(count)
        x = HEADER_W + i * cell_w + (cell_w - text_width(text, small)) / 2
        write(canvas, (x, footer_top + 2), text, small, FAIL if count else MUTED)
    _grid_legend(canvas, draw, (10, footer_top + FOOTER_H + 6), normal)
    return canvas


def _grid_body(cells: list[list[CellKind]], width: int, height: int) -> Image.Image:
    """The cells, pattern rows x version columns, each ``(outcome, changed, champion's column)``.

    Put together with numpy from one tile per kind of cell (:func:`_cell_tile`): the same pixels
    as drawing each cell in turn, without 1,500 rounds of ImageDraw calls per grid. The picture
    is one column wider than the cells, where the last column's "changed" frames end.
    """
    kinds: dict[tuple[str, bool, bool], int] = {}
    index = np.array([[kinds.setdefault(cell, len(kinds)) for cell in row] for row in cells])
    tiles = np.stack([_cell_tile(*kind, width, height) for kind in kinds])
    rows, columns = index.shape
    pixels = np.empty((rows, height, columns * width + 1, 3), dtype=np.uint8)
    pixels[:, :, -1] = PAPER
    inside = np.ascontiguousarray(tiles[:, :, :width, :3])  # gathered whole below: contiguous
    pixels[:, :, :-1] = (
        inside[index]  # rows, columns, height, width, RGB
        .transpose(0, 2, 1, 3, 4)
        .reshape(rows, height, columns * width, 3)
    )
    # A changed cell's frame reaches one column into the next slot, over whatever is there.
    edges = np.ascontiguousarray(tiles[:, :, width])[index].transpose(0, 2, 1, 3)
    np.copyto(pixels[:, :, width::width], edges[..., :3], where=edges[..., 3:] > 0)
    pixels = pixels.reshape(rows * height, columns * width + 1, 3)
    return Image.fromarray(pixels)


CellKind = tuple[str, bool, bool]
"""A cell as drawn: its outcome, whether it changed, whether it is in the champion's column."""


def grid_body(
    patterns: Sequence[PatternView],
    results: Sequence[PatternResult],
    columns: Sequence[str],
    champions: Collection[str],
) -> tuple[list[list[CellKind]], list[int]]:
    """Each pattern's cells in ``columns`` as drawn (rows in ``patterns``' order), and each
    column's count of wrong answers: everything the cells and the footer of a grid show.

    :func:`grid_cells`'s outcomes and changes, without a :class:`Cell` per result: a report
    plans a thousand grids of 1,500 cells (issue 19 item 13). ``results`` in version order.
    """
    n = len(columns)
    starred = [ref in champions for ref in columns]
    place = {ref: i for i, ref in enumerate(columns)}
    rows = {pattern.id: r for r, pattern in enumerate(patterns)}
    body = [[(Outcome.NO_RESULT, False, starred[i]) for i in range(n)] for _ in patterns]
    wrong = [0] * n
    column_of: dict[int, int] = {}  # version id -> column, or -1: not drawn
    last: dict[int, bool] = {}
    for result in results:
        column = column_of.get(result.version_id)
        if column is None:
            column = column_of[result.version_id] = place.get(result.ref, -1)
        correct, changed = result.correct, False
        if correct is not None:
            before = last.get(result.pattern_id)
            changed = before is not None and before != correct
            last[result.pattern_id] = correct
        row = rows.get(result.pattern_id)
        if row is None or column < 0:
            continue
        if not result.answered:
            kind = Outcome.NO_RESULT
        elif result.error is not None:
            kind = Outcome.ERRORED
        else:
            kind = Outcome.PASS if correct else Outcome.FAIL
        body[row][column] = (kind, changed, starred[column])
        wrong[column] += correct is False
    return body, wrong


def cell_width(columns: int) -> int:
    """A version's column width in pixels: narrower as the versions grow in number."""
    return 30 if columns <= 12 else 22 if columns <= 30 else 16


def in_grid_order(patterns: Sequence[PatternView]) -> list[PatternView]:
    """The grid's rows: positives first, then by id."""
    return sorted(patterns, key=lambda p: (p.polarity != "positive", p.id))


def column_labels(columns: Sequence[str], champions: Collection[str]) -> list[str]:
    """Each column's label as written over it: the version (the ref when several models
    share the grid), the champion's named."""
    parsed = [ModelRef.parse(ref) for ref in columns]
    one_model = len({ref.name for ref in parsed}) <= 1
    return [
        (ref.version if one_model else str(ref)) + (" (champion)" if column in champions else "")
        for ref, column in zip(parsed, columns, strict=True)
    ]


def label_height(labels: Sequence[str]) -> int:
    """Room over the cells for the longest column label, written upwards."""
    return min(150, 12 + int(max((text_width(t, font(11)) for t in labels), default=20)))


def _row_header(
    canvas: Image.Image,
    draw: ImageDraw.ImageDraw,
    thumbnail: Image.Image,
    pattern: PatternView,
    row: int,
    top: int,
) -> None:
    """A pattern's row head: its thumbnail, ``#id file`` and what it expects, striped."""
    small = font(11)
    if row % 2:
        draw.rectangle((0, top, HEADER_W - 4, top + ROW_H - 1), fill=(247, 247, 247))
    _paste_centred(canvas, thumbnail, (6, top + 4, 6 + THUMB, top + 4 + THUMB))
    text_x = THUMB + 14
    room = HEADER_W - text_x - 6
    write(
        canvas,
        (text_x, top + 6),
        _fit(f"#{pattern.id} {pattern.original_name}", small, room),
        small,
        INK,
    )
    write(
        canvas,
        (text_x, top + 24),
        _fit(f"expects {pattern.expected}, {pattern.polarity}", small, room),
        small,
        MUTED,
    )


@lru_cache(maxsize=64)
def _cell_tile(outcome: str, changed: bool, champion: bool, width: int, height: int) -> np.ndarray:
    """One kind of cell in its ``width`` x ``height`` slot as RGBA pixels, on the column's
    background, plus one transparent column to the right where a changed cell's frame ends."""
    stamp = Image.new("RGBA", (width + 1, height))
    _cell(ImageDraw.Draw(stamp), (2, 4, width - 2, height - 4), outcome, changed=changed)
    pixels = np.array(stamp)
    background = np.array([*(CHAMPION_SHADE if champion else PAPER), 255], dtype=np.uint8)
    drawn = pixels[:, :width, 3:] > 0
    pixels[:, :width] = np.where(drawn, pixels[:, :width], background)
    return pixels


@lru_cache(maxsize=1024)
def _column_label(text: str, height: int, width: int, *, champion: bool) -> Image.Image:
    """A version's label written upwards: the same few strips serve every problem of a report,
    so each is drawn and rotated once (callers only paste it, never change it)."""
    strip = Image.new("RGBA", (height - 6, width), (0, 0, 0, 0))
    small = font(11)
    ImageDraw.Draw(strip).text(
        (2, (width - 12) // 2),
        _fit(text, small, height - 10),
        font=small,
        fill=(0, 90, 150) if champion else INK,
    )
    return strip.rotate(90, expand=True)


def _cell(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], outcome: str, *, changed: bool
) -> None:
    left, top, right, bottom = box
    colour = {
        Outcome.PASS: PASS,
        Outcome.FAIL: FAIL,
        Outcome.NEWLY_FAILING: FAIL,
        Outcome.ERRORED: ERRORED,
    }.get(outcome, MISSING)
    draw.rectangle(box, fill=colour)
    middle_x, middle_y = (left + right) // 2, (top + bottom) // 2
    half = max(2, min(right - left, bottom - top) // 2 - 3)
    if outcome in (Outcome.FAIL, Outcome.NEWLY_FAILING):  # a cross: not told by colour alone
        draw.line(
            (middle_x - half, middle_y - half, middle_x + half, middle_y + half),
            fill=PAPER,
            width=2,
        )
        draw.line(
            (middle_x - half, middle_y + half, middle_x + half, middle_y - half),
            fill=PAPER,
            width=2,
        )
    elif outcome == Outcome.ERRORED:  # a bar
        draw.rectangle((left + 3, middle_y - 2, right - 3, middle_y + 2), fill=INK)
    elif outcome == Outcome.NO_RESULT:
        draw.line((left + 3, middle_y, right - 3, middle_y), fill=MUTED, width=1)
    if changed:
        draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), outline=INK, width=3)


def _grid_legend(
    canvas: Image.Image,
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    face: Face,
) -> None:
    x, y = origin
    entries = [
        (Outcome.PASS, False, "right"),
        (Outcome.FAIL, False, "wrong"),
        (Outcome.ERRORED, False, "model raised / no prediction"),
        (Outcome.NO_RESULT, False, "not replayed"),
    ]
    for outcome, changed, text in entries:
        _cell(draw, (x, y, x + 16, y + 16), outcome, changed=changed)
        write(canvas, (x + 22, y + 1), text, face, INK)
        x += 30 + int(text_width(text, face)) + 14
    x, y = origin[0], origin[1] + 26
    for outcome, text in (
        (Outcome.PASS, "fixed in this version"),
        (Outcome.FAIL, "broken in this version (vs the previous version that answered it)"),
    ):
        _cell(draw, (x + 2, y + 2, x + 16, y + 16), outcome, changed=True)
        write(canvas, (x + 24, y + 2), text, face, INK)
        x += 36 + int(text_width(text, face)) + 14
