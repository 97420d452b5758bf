"""The outcome grid of a report's page in parts a new version leaves alone (issue 19 item 13).

The whole grid in one picture changes with every version (it gains a column), so after one new
version every problem's grid was drawn again. A report's page shows it instead as pictures put
side by side: the rows' heads (thumbnail, file, expectation), then the cells in blocks of
:data:`BLOCK` versions, each block with its column labels and wrong-answer counts; and the
legend, one picture for the whole report. A new version changes only the last block (and every
block when the grid's geometry changes: the column width or the longest label). The parts are
the whole picture's own pixels: the same cells, labels and heads, drawn by the same functions.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
from PIL import Image, ImageDraw

from problem_registry.report.gallery.colours import CHAMPION_SHADE, FAIL, MUTED, PAPER
from problem_registry.report.gallery.glyphs import font, text_width, write
from problem_registry.report.gallery.grid import (
    FOOTER_H,
    HEADER_W,
    ROW_H,
    THUMB,
    CellKind,
    _column_label,
    _grid_body,
    _grid_legend,
    _row_header,
)
from problem_registry.report.gallery.outcomes import Outcome
from problem_registry.report.gallery.thumbnails import FileReader, _Thumbnails
from problem_registry.store.views import PatternView
from problem_registry.verdicts.pattern_grid import (
    ERRORED,
    NO_RESULT,
    RIGHT,
    WRONG,
    OutcomeMatrix,
)

BLOCK = 25  # versions per picture: only the last block's changes when a version is added
LEGEND_SIZE = (560, 58)
# Every kind of cell a grid draws, and a letter for each: a row of cells is then a short string,
# cheap to key and to send to a worker (1,500 cells a page, a thousand pages).
_OUTCOMES = (Outcome.PASS, Outcome.FAIL, Outcome.ERRORED, Outcome.NO_RESULT)
CELL_KINDS: list[CellKind] = [
    (outcome, changed, champion)
    for outcome in _OUTCOMES
    for changed in (False, True)
    for champion in (False, True)
]
CELL_LETTERS = {kind: chr(ord("a") + n) for n, kind in enumerate(CELL_KINDS)}


def cells_as_text(body: Sequence[Sequence[CellKind]]) -> list[str]:
    """Each row of cells as letters (:data:`CELL_LETTERS`)."""
    return ["".join(CELL_LETTERS[cell] for cell in row) for row in body]


# An OutcomeMatrix's code -> its outcome's place in _OUTCOMES.
_OUTCOME_OF_CODE = np.zeros(4, dtype=np.uint8)
for _code, _outcome in {
    NO_RESULT: Outcome.NO_RESULT,
    RIGHT: Outcome.PASS,
    WRONG: Outcome.FAIL,
    ERRORED: Outcome.ERRORED,
}.items():
    _OUTCOME_OF_CODE[_code] = _OUTCOMES.index(_outcome)


def cells_of_matrix(
    matrix: OutcomeMatrix, patterns: Sequence[PatternView], champions: Collection[str]
) -> tuple[list[str], list[int]]:
    """:func:`cells_as_text` of :func:`~.grid.grid_body`'s cells, and its wrong answers per
    column, from a matrix of every version (its columns): rows in ``patterns``' order, a row of
    no results for a pattern the matrix lacks. Array operations, not a walk over 1,500 results
    a page (issue 19 item 13)."""
    right, changed = matrix.changes()
    starred = np.array([ref in champions for ref in matrix.refs], dtype=np.uint8)
    letters = ord("a") + _OUTCOME_OF_CODE[matrix.codes] * 4 + changed * 2 + starred
    rows = {pattern_id: row for row, pattern_id in enumerate(matrix.pattern_ids)}
    empty = ord("a") + _OUTCOME_OF_CODE[NO_RESULT] * 4 + starred
    body = [
        (letters[rows[p.id]] if p.id in rows else empty).astype(np.uint8).tobytes().decode("ascii")
        for p in patterns
    ]
    wrong = ((matrix.codes != NO_RESULT) & ~right).sum(axis=0)
    return body, [int(count) for count in wrong]


def cells_from_text(rows: Sequence[str]) -> list[list[CellKind]]:
    return [[CELL_KINDS[ord(letter) - ord("a")] for letter in row] for row in rows]


def blocks(columns: int) -> list[range]:
    """The columns of each block, oldest first."""
    return [range(start, min(start + BLOCK, columns)) for start in range(0, columns, BLOCK)]


def draw_grid_heads(
    patterns: Sequence[PatternView], *, label_h: int, store: FileReader
) -> Image.Image:
    """The rows' heads, in ``patterns``' order, under ``label_h`` of room for the column labels:
    the left part of the grid, as high as each block."""
    height = label_h + max(1, len(patterns)) * ROW_H + FOOTER_H
    canvas = Image.new("RGB", (HEADER_W, height), PAPER)
    draw = ImageDraw.Draw(canvas)
    thumbs = _Thumbnails(store, THUMB)
    for row, pattern in enumerate(patterns):
        _row_header(canvas, draw, thumbs(pattern), pattern, row, label_h + row * ROW_H)
    footer_top = label_h + len(patterns) * ROW_H + 4
    write(canvas, (8, footer_top + 2), "wrong answers", font(11), MUTED)
    return canvas


def draw_grid_block(
    body: Sequence[Sequence[CellKind]],
    wrong: Sequence[int],
    labels: Sequence[str],
    champions: Collection[int],
    *,
    label_h: int,
    cell_w: int,
) -> Image.Image:
    """One block of versions: ``labels`` over the columns (``champions``: their positions in the
    block), the cells of each row (``body``, as :func:`~.grid.grid_body` gives them) and each
    column's count of wrong answers (``wrong``)."""
    n, rows = len(labels), len(body)
    height = label_h + max(1, rows) * ROW_H + FOOTER_H
    canvas = Image.new("RGB", (n * cell_w, height), PAPER)
    draw = ImageDraw.Draw(canvas)
    for i, text in enumerate(labels):  # written upwards
        x = i * cell_w
        if i in champions:
            draw.rectangle((x, 0, x + cell_w - 1, label_h + rows * ROW_H), fill=CHAMPION_SHADE)
        rotated = _column_label(text, label_h, cell_w, champion=i in champions)
        canvas.paste(rotated, (x, label_h - rotated.height - 4), rotated)
    if rows and n:
        # The last column's "changed" frame reaches one pixel past the block: cut there.
        canvas.paste(_grid_body([list(row) for row in body], cell_w, ROW_H), (0, label_h))
    small = font(11)
    footer_top = label_h + rows * ROW_H + 4
    for i, count in enumerate(wrong):
        text = str(count)
        x = i * cell_w + (cell_w - text_width(text, small)) / 2
        write(canvas, (x, footer_top + 2), text, small, FAIL if count else MUTED)
    return canvas


def draw_grid_legend() -> Image.Image:
    """What the cells mean, under every grid of a report."""
    canvas = Image.new("RGB", LEGEND_SIZE, PAPER)
    _grid_legend(canvas, ImageDraw.Draw(canvas), (10, 6), font(12))
    return canvas
