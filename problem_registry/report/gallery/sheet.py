"""One version's patterns of a problem: the contact sheet, and the tiles it shows.

Captioned thumbnails (expected / got, and the champion's answer) framed by outcome, with the
patterns that the champion got right and this version gets wrong flagged as newly failing: the
picture to look at before promoting a version. :func:`sheet_contents` is the same selection as
data, for a caller that lists the tiles instead of drawing them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw

from problem_registry.refs import ModelRef
from problem_registry.report.gallery.cards import _fit
from problem_registry.report.gallery.colours import ERRORED, FAIL, INK, MISSING, MUTED, PAPER, PASS
from problem_registry.report.gallery.glyphs import Face, font, text_width, write
from problem_registry.report.gallery.outcomes import Outcome, outcome_of
from problem_registry.report.gallery.thumbnails import FileReader, _paste_centred, _Thumbnails
from problem_registry.store.views import PatternView
from problem_registry.verdicts.metrics import PatternResult, pattern_results

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry


TILE_THUMB = 112
TILE_W = 172
TILE_PAD = 8


@dataclass(frozen=True)
class Tile:
    """One pattern on a contact sheet."""

    pattern: PatternView
    result: PatternResult | None
    champion: PatternResult | None  # the champion's result on it, when there is a champion
    outcome: str  # an :class:`Outcome`; NEWLY_FAILING when the champion got it right


@dataclass(frozen=True)
class Sheet:
    """What a contact sheet shows, before it is drawn."""

    problem: str
    version: str  # name@version
    champion: str | None
    patterns: int
    answered: int
    right: int
    tiles: list[Tile]

    only_failing: bool = False

    @property
    def newly_failing(self) -> list[Tile]:
        return [t for t in self.tiles if t.outcome == Outcome.NEWLY_FAILING]

    @property
    def heading(self) -> str:
        """``threes on digits@v3: 11 of 12 right``: the title, drawn or written beside it."""
        text = f"{self.problem} on {self.version}: {self.right} of {self.answered} right"
        if self.patterns > self.answered:
            text += f", {self.patterns - self.answered} without a result"
        return text

    @property
    def subheading(self) -> str:
        text = (
            f"vs champion {self.champion}: {len(self.newly_failing)} newly failing"
            if self.champion
            else "no champion to compare with"
        )
        if self.only_failing:
            text += f"; showing the {len(self.tiles)} failing of {self.patterns} patterns"
        return text


def sheet_contents(
    registry: Registry,
    problem: str,
    version: str,
    *,
    champion: str | None = None,
    only_failing: bool = False,
) -> Sheet:
    """The tiles :func:`contact_sheet` draws (same arguments), for a caller that lists them."""
    (ref,) = registry.models.resolve([version])
    name = ModelRef.parse(ref).name
    if champion is None:
        found = registry.models.champion(name)
        champion_ref = found.ref if found is not None and found.ref != ref else None
    else:
        (champion_ref,) = registry.models.resolve([champion])
        champion_ref = None if champion_ref == ref else champion_ref
    wanted = [ref] + ([champion_ref] if champion_ref else [])
    results = pattern_results(registry, problems=[problem], versions=wanted)
    return sheet_from(
        problem,
        registry.patterns.list(problem),
        results,
        ref,
        champion=champion_ref,
        only_failing=only_failing,
    )


def sheet_from(
    problem: str,
    patterns: Sequence[PatternView],
    results: Iterable[PatternResult],
    ref: str,
    *,
    champion: str | None,
    only_failing: bool = False,
) -> Sheet:
    """:func:`sheet_contents` from plain data: ``results`` may hold other versions too."""
    mine: dict[int, PatternResult] = {}
    theirs: dict[int, PatternResult] = {}
    for result in results:
        version = result.ref
        if version == ref:
            mine[result.pattern_id] = result
        elif version == champion:
            theirs[result.pattern_id] = result
    tiles = []
    answered = right = 0
    for pattern in sorted(patterns, key=lambda p: (p.polarity != "positive", p.id)):
        result = mine.get(pattern.id)
        outcome = outcome_of(result)
        before = theirs.get(pattern.id)
        if outcome in (Outcome.FAIL, Outcome.ERRORED) and before is not None and before.correct:
            outcome = Outcome.NEWLY_FAILING
        if result is not None and result.answered:
            answered += 1
            right += bool(result.correct)
        if only_failing and outcome in (Outcome.PASS, Outcome.NO_RESULT):
            continue
        tiles.append(Tile(pattern, result, before if champion else None, outcome))
    return Sheet(problem, ref, champion, len(patterns), answered, right, tiles, only_failing)


def contact_sheet(
    registry: Registry,
    problem: str,
    version: str,
    *,
    champion: str | None = None,
    only_failing: bool = False,
) -> Image.Image:
    """One version's patterns of a problem: thumbnails captioned expected / got, framed by outcome.

    ``version`` and ``champion`` are ``name@version`` refs, or bare versions that one model
    has. ``champion`` defaults to the registered champion of ``version``'s model (none when
    ``version`` is the champion); a wrong or errored pattern the champion got right is **newly
    failing**: a thick vermillion frame inside a black one, captioned NEWLY FAILING.
    ``only_failing``: only the wrong and errored patterns (the sheet says so when there are
    none). Tiles are positives first, then negatives, in the order they were added.
    """
    sheet = sheet_contents(registry, problem, version, champion=champion, only_failing=only_failing)
    return draw_contact_sheet(sheet, registry.store)


def draw_contact_sheet(sheet: Sheet, store: FileReader, *, heading: bool = True) -> Image.Image:
    """:func:`contact_sheet` of a :class:`Sheet`, reading only the pattern files.

    ``heading=False`` leaves out the title lines (:attr:`Sheet.heading`, :attr:`Sheet.subheading`)
    for a page that writes them as text: the tiles alone stay the same picture when only the
    version's name changed, so a report need not draw them again.
    """
    tiles = sheet.tiles
    title_font, small, normal = font(15), font(11), font(12)
    columns = max(1, min(6, len(tiles)))
    rows = math.ceil(len(tiles) / columns) if tiles else 0
    caption_lines = 4 if sheet.champion else 3
    tile_h = TILE_THUMB + 2 * TILE_PAD + 16 + caption_lines * 15 + 6
    header_h, legend_h = (52 if heading else 8), 40
    width = max(560, columns * (TILE_W + TILE_PAD) + TILE_PAD)
    body_h = rows * (tile_h + TILE_PAD) if tiles else 40
    canvas = Image.new("RGB", (width, header_h + body_h + legend_h), PAPER)
    draw = ImageDraw.Draw(canvas)
    if heading:
        write(canvas, (10, 8), _fit(sheet.heading, title_font, width - 20), title_font, INK)
        write(canvas, (10, 30), _fit(sheet.subheading, normal, width - 20), normal, MUTED)
    if not tiles:
        empty = "no failing patterns" if sheet.only_failing else "this problem has no patterns yet"
        write(canvas, (10, header_h + 10), empty, normal, INK)
    thumbs = _Thumbnails(store, TILE_THUMB)
    for n, tile in enumerate(tiles):
        left = TILE_PAD + (n % columns) * (TILE_W + TILE_PAD)
        top = header_h + (n // columns) * (tile_h + TILE_PAD)
        _tile(
            canvas,
            draw,
            (left, top, left + TILE_W, top + tile_h),
            tile,
            thumbs(tile.pattern),
            small,
        )
    _sheet_legend(canvas, draw, (10, header_h + body_h + 10), normal)
    return canvas


_FRAMES = {
    Outcome.PASS: (PASS, 2, "PASS"),
    Outcome.FAIL: (FAIL, 5, "FAIL"),
    Outcome.NEWLY_FAILING: (FAIL, 5, "NEWLY FAILING"),
    Outcome.ERRORED: (ERRORED, 5, "ERROR"),
    Outcome.NO_RESULT: (MISSING, 2, "NO RESULT"),
}


def _tile(
    canvas: Image.Image,
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    tile: Tile,
    picture: Image.Image,
    face: Face,
) -> None:
    pattern, result, champion, outcome = tile.pattern, tile.result, tile.champion, tile.outcome
    left, top, right, bottom = box
    colour, thickness, word = _FRAMES[outcome]
    if outcome == Outcome.NEWLY_FAILING:
        draw.rectangle((left - 3, top - 3, right + 3, bottom + 3), outline=INK, width=3)
    draw.rectangle(box, outline=colour, width=thickness)
    thumb_box = (
        left + (right - left - TILE_THUMB) // 2,
        top + TILE_PAD,
        left + (right - left + TILE_THUMB) // 2,
        top + TILE_PAD + TILE_THUMB,
    )
    draw.rectangle(thumb_box, fill=(242, 242, 242))
    _paste_centred(canvas, picture, thumb_box)
    x, y = left + 8, thumb_box[3] + 6
    room = right - left - 16
    badge_w = int(text_width(word, face)) + 8
    draw.rectangle((x, y, x + badge_w, y + 14), fill=colour)
    write(canvas, (x + 4, y + 1), word, face, INK if outcome == Outcome.NO_RESULT else PAPER)
    label = f"#{pattern.id} {pattern.polarity}"
    if text_width(label, face) > room - badge_w - 6:
        label = f"#{pattern.id}"  # the polarity whole or not at all
    write(canvas, (x + badge_w + 6, y + 1), _fit(label, face, room - badge_w - 6), face, MUTED)
    y += 18
    got = "(no result)" if result is None else result.got
    if result is not None and result.confidence is not None and result.error is None:
        got += f" ({result.confidence:.0%})"
    lines = [
        (pattern.original_name, MUTED),
        (f"expected: {pattern.expected}", INK),
        (f"got: {got}", FAIL if outcome in (Outcome.FAIL, Outcome.NEWLY_FAILING) else INK),
    ]
    if champion is not None or outcome == Outcome.NEWLY_FAILING:
        lines.append((f"champion: {champion.got if champion else '(no result)'}", MUTED))
    for text, fill in lines:
        write(canvas, (x, y), _fit(text, face, room), face, fill)
        y += 15


def _sheet_legend(
    canvas: Image.Image,
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    face: Face,
) -> None:
    x, y = origin
    for outcome in (Outcome.PASS, Outcome.FAIL, Outcome.NEWLY_FAILING, Outcome.ERRORED):
        colour, thickness, _word = _FRAMES[outcome]
        if outcome == Outcome.NEWLY_FAILING:
            draw.rectangle((x - 2, y - 2, x + 20, y + 18), outline=INK, width=2)
        draw.rectangle((x, y, x + 18, y + 16), outline=colour, width=min(thickness, 4))
        text = {
            Outcome.PASS: "right",
            Outcome.FAIL: "wrong",
            Outcome.NEWLY_FAILING: "wrong, and the champion got it right",
            Outcome.ERRORED: "model raised / no prediction",
        }[outcome]
        write(canvas, (x + 26, y + 1), text, face, INK)
        x += 26 + int(text_width(text, face)) + 22
