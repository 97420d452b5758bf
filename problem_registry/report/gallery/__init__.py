"""Failure galleries, drawn with Pillow: which patterns fail, and what did the model answer?

- :func:`outcome_grid`: one problem's patterns (rows, each headed by its thumbnail) x model
  versions (columns): pass / fail / errored / no result, with the cells where a version fixed or
  broke a pattern framed, so "v7 fixed these two, v9 broke that one" is read off the picture;
- :func:`contact_sheet`: one version's patterns as captioned thumbnails (expected / got, and the
  champion's answer), framed by outcome, newly failing ones (the champion got them right)
  flagged;
- :func:`draw_outcome_grid`, :func:`sheet_from` and :func:`draw_contact_sheet`: the same pictures
  from data already queried (the report's workers draw them with no database);
- :func:`thumbnail`: one pattern's picture at a given size: images upscaled with nearest
  neighbour when tiny (an 8x8 digit stays a crisp digit, not a blur), reduced while decoding
  when huge; text and JSON drawn as small cards of their content.

Outcomes are never told by colour alone: a failing cell carries a cross, an errored one a bar,
and every tile says PASS / FAIL / ERROR in words. Colours are Okabe-Ito. Fonts are Pillow's own
scalable default (``ImageFont.load_default(size=...)``), so nothing depends on the fonts a CI
runner happens to have. Pillow only: no matplotlib here.

One module per picture (:mod:`.grid`, :mod:`.sheet`, :mod:`.thumbnails`), over the pieces
they share: :mod:`.colours`, :mod:`.cards` (font, captions, text cards), :mod:`.outcomes` (the
pass / fail / ... words) and :mod:`.versions` (which versions a user means). Import from here:
the submodules are not an API.
"""

from __future__ import annotations

from problem_registry.report.gallery.grid import Cell, draw_outcome_grid, grid_cells, outcome_grid
from problem_registry.report.gallery.outcomes import Outcome
from problem_registry.report.gallery.sheet import (
    Sheet,
    Tile,
    contact_sheet,
    draw_contact_sheet,
    sheet_contents,
    sheet_from,
)
from problem_registry.report.gallery.thumbnails import (
    MAX_THUMBNAIL_PIXELS,
    FileReader,
    pattern_thumbnail,
    thumbnail,
)

__all__ = [
    "MAX_THUMBNAIL_PIXELS",
    "Cell",
    "FileReader",
    "Outcome",
    "Sheet",
    "Tile",
    "contact_sheet",
    "draw_contact_sheet",
    "draw_outcome_grid",
    "grid_cells",
    "outcome_grid",
    "pattern_thumbnail",
    "sheet_contents",
    "sheet_from",
    "thumbnail",
]
