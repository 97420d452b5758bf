"""Failure galleries, drawn with Pillow: which patterns fail, and what did the model answer?

- :func:`outcome_grid`: one problem's patterns (rows, each headed by its thumbnail) x model
  versions (columns): pass / fail / errored / no result, with the cells where a version fixed or
  broke a pattern framed, so "v7 fixed these two, v9 broke that one" is read off the picture;
- :func:`contact_sheet`: one version's patterns as captioned thumbnails (expected / got, and the
  champion's answer), framed by outcome, newly failing ones (the champion got them right)
  flagged;
- :func:`thumbnail`: one pattern's picture at a given size: images upscaled with nearest
  neighbour when tiny (an 8x8 digit stays a crisp digit, not a blur), reduced while decoding
  when huge; text and JSON drawn as small cards of their content.

Outcomes are never told by colour alone: a failing cell carries a cross, an errored one a bar,
and every tile says PASS / FAIL / ERROR in words. Colours are Okabe-Ito. Fonts are Pillow's own
scalable default (``ImageFont.load_default(size=...)``), so nothing depends on the fonts a CI
runner happens to have. Pillow only: no matplotlib here.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont, ImageOps

from problem_registry.errors import AmbiguousReference, CorruptPattern, ModelNotFound
from problem_registry.files import MAX_IMAGE_PIXELS
from problem_registry.metrics import PatternResult, pattern_results
from problem_registry.models import PatternKind
from problem_registry.views import PatternView

if TYPE_CHECKING:
    from problem_registry.registry import Registry

__all__ = [
    "MAX_THUMBNAIL_PIXELS",
    "Cell",
    "Outcome",
    "Sheet",
    "Tile",
    "contact_sheet",
    "grid_cells",
    "outcome_grid",
    "pattern_thumbnail",
    "resolve_version",
    "resolve_versions",
    "sheet_contents",
    "thumbnail",
]

# Pixels a thumbnail may decode. Pattern files are refused past the same limit when added, so
# this only bites on a file that was put in the store some other way; a JPEG is decoded at 1/2
# to 1/8 scale (``Image.draft``) and never costs that much.
MAX_THUMBNAIL_PIXELS = MAX_IMAGE_PIXELS
TEXT_PREVIEW_BYTES = 4096  # a card shows a few lines: never decode or parse a whole large file

# Okabe-Ito: told apart with every common colour-vision deficiency.
PASS = (0, 158, 115)  # bluish green
FAIL = (213, 94, 0)  # vermillion
ERRORED = (230, 159, 0)  # orange
MISSING = (215, 215, 215)
INK = (34, 34, 34)
MUTED = (110, 110, 110)
PAPER = (255, 255, 255)
CHAMPION = (86, 180, 233)  # sky blue


class Outcome:
    """What a pattern's result is, in the words every picture uses."""

    PASS = "pass"
    FAIL = "fail"
    NEWLY_FAILING = "newly failing"
    ERRORED = "errored"
    NO_RESULT = "no result"


def outcome_of(result: PatternResult | None) -> str:
    if result is None or not result.answered:
        return Outcome.NO_RESULT
    if result.error is not None:
        return Outcome.ERRORED
    return Outcome.PASS if result.correct else Outcome.FAIL


# -- fonts and text --------------------------------------------------------------------------


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled scalable font (Pillow >= 10.1 with FreeType); no system font needed."""
    return ImageFont.load_default(size=size)


def _text_width(text: str, face: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> float:
    return face.getlength(text)


def _fit(text: str, face: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float) -> str:
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


def _wrap(text: str, face: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float) -> list[str]:
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


# -- thumbnails ------------------------------------------------------------------------------


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
            image = Image.open(io.BytesIO(data))
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


def pattern_thumbnail(registry: Registry, pattern: PatternView, size: int) -> Image.Image:
    """``pattern``'s stored file as a thumbnail; a card if the file is missing or altered."""
    extension = pattern.file.rsplit(".", 1)[-1]
    try:
        data = registry.store.read(pattern.sha256, extension)
    except CorruptPattern as exc:
        reason = "altered on disk" if "altered" in str(exc) else "missing from the store"
        return _card(f"pattern file {reason}", size, label="FILE")
    return thumbnail(data, pattern.kind, size)


class _Thumbnails:
    """Each stored file read and drawn once per picture (a file can serve several patterns)."""

    def __init__(self, registry: Registry, size: int) -> None:
        self.registry, self.size = registry, size
        self._cache: dict[str, Image.Image] = {}

    def __call__(self, pattern: PatternView) -> Image.Image:
        if pattern.sha256 not in self._cache:
            self._cache[pattern.sha256] = pattern_thumbnail(self.registry, pattern, self.size)
        return self._cache[pattern.sha256]


def _paste_centred(canvas: Image.Image, image: Image.Image, box: tuple[int, int, int, int]) -> None:
    left, top, right, bottom = box
    x = left + (right - left - image.width) // 2
    y = top + (bottom - top - image.height) // 2
    canvas.paste(image, (x, y))


# -- which versions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Version:
    name: str
    version: str
    is_champion: bool

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def _all_versions(registry: Registry) -> list[_Version]:
    return [_Version(v.name, v.version, v.is_champion) for v in registry.models.list()]


def resolve_version(registry: Registry, text: str) -> str:
    """``name@version``, or a bare version that only one model has, as a ``name@version`` ref."""
    return resolve_versions(registry, [text])[0]


def resolve_versions(registry: Registry, texts: Sequence[str]) -> list[str]:
    """:func:`resolve_version` for many, reading the registered versions once."""
    known = _all_versions(registry)
    refs = {v.ref for v in known}
    out = []
    for text in texts:
        if "@" in text:
            if text not in refs:
                raise ModelNotFound(f"no model version {text}; see `problem-registry model list`")
            out.append(text)
            continue
        matches = [v.ref for v in known if v.version == text]
        if not matches:
            raise ModelNotFound(f"no model version {text!r}; see `problem-registry model list`")
        if len(matches) > 1:
            raise AmbiguousReference(
                f"version {text!r} exists for several models ({', '.join(matches)}); "
                "give NAME@VERSION"
            )
        out.append(matches[0])
    return out


# -- patterns x versions -----------------------------------------------------------------------


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
    :func:`problem_registry.timeline.timelines`, so the grid and the status line agree.
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
        ref = f"{result.model}@{result.version}"
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
    refs = None if versions is None else resolve_versions(registry, versions)
    patterns = sorted(
        registry.patterns.list(problem), key=lambda p: (p.polarity != "positive", p.id)
    )
    results = pattern_results(registry, problems=[problem], versions=refs)
    known = {v.ref: v for v in _all_versions(registry)}
    columns = list(dict.fromkeys(f"{r.model}@{r.version}" for r in results))
    if not columns:
        columns = refs if refs is not None else list(known)
    cells = grid_cells(results)
    one_model = len({ref.split("@", 1)[0] for ref in columns}) <= 1
    labels = [ref.split("@", 1)[1] if one_model else ref for ref in columns]
    champions = {i for i, ref in enumerate(columns) if ref in known and known[ref].is_champion}

    n = len(columns)
    cell_w = 30 if n <= 12 else 22 if n <= 30 else 16
    thumb = 48
    row_h = thumb + 8
    header_w = thumb + 12 + 190
    small, normal, title_font = font(11), font(12), font(15)
    label_texts = [
        label + (" (champion)" if i in champions else "") for i, label in enumerate(labels)
    ]
    label_h = min(150, 12 + int(max((small.getlength(t) for t in label_texts), default=20)))
    title_h, footer_h, legend_h = 34, 22, 58
    grid_top = title_h + label_h
    width = max(header_w + n * cell_w + 16, 560)
    height = grid_top + max(1, len(patterns)) * row_h + footer_h + legend_h
    canvas = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(canvas)

    draw.text(
        (10, 8),
        _fit(f"{problem}: {len(patterns)} patterns x {n} versions", title_font, width - 20),
        font=title_font,
        fill=INK,
    )
    for i, text in enumerate(label_texts):  # column labels, written upwards
        x = header_w + i * cell_w
        if i in champions:
            draw.rectangle(
                (x, title_h, x + cell_w - 1, grid_top + len(patterns) * row_h), fill=(226, 242, 251)
            )
        strip = Image.new("RGBA", (label_h - 6, cell_w), (0, 0, 0, 0))
        ImageDraw.Draw(strip).text(
            (2, (cell_w - 12) // 2),
            _fit(text, small, label_h - 10),
            font=small,
            fill=INK if i not in champions else (0, 90, 150),
        )
        rotated = strip.rotate(90, expand=True)
        canvas.paste(rotated, (x, grid_top - rotated.height - 4), rotated)

    thumbs = _Thumbnails(registry, thumb)
    wrong = [0] * n
    for row, pattern in enumerate(patterns):
        top = grid_top + row * row_h
        if row % 2:
            draw.rectangle((0, top, header_w - 4, top + row_h - 1), fill=(247, 247, 247))
        _paste_centred(canvas, thumbs(pattern), (6, top + 4, 6 + thumb, top + 4 + thumb))
        text_x = thumb + 14
        room = header_w - text_x - 6
        draw.text(
            (text_x, top + 6),
            _fit(f"#{pattern.id} {pattern.original_name}", small, room),
            font=small,
            fill=INK,
        )
        draw.text(
            (text_x, top + 24),
            _fit(f"expects {pattern.expected}, {pattern.polarity}", small, room),
            font=small,
            fill=MUTED,
        )
        for i, ref in enumerate(columns):
            cell = cells.get((pattern.id, ref))
            box = (
                header_w + i * cell_w + 2,
                top + 4,
                header_w + (i + 1) * cell_w - 2,
                top + row_h - 4,
            )
            if cell is not None and cell.result.correct is False:
                wrong[i] += 1
            outcome = cell.outcome if cell is not None else Outcome.NO_RESULT
            _cell(draw, box, outcome, changed=cell is not None and cell.change is not None)
    footer_top = grid_top + len(patterns) * row_h + 4
    draw.text((8, footer_top + 2), "wrong answers", font=small, fill=MUTED)
    for i, count in enumerate(wrong):
        text = str(count)
        x = header_w + i * cell_w + (cell_w - small.getlength(text)) / 2
        draw.text((x, footer_top + 2), text, font=small, fill=FAIL if count else MUTED)
    _grid_legend(draw, (10, footer_top + footer_h + 6), normal)
    return canvas


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
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    face: ImageFont.FreeTypeFont | ImageFont.ImageFont,
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
        draw.text((x + 22, y + 1), text, font=face, fill=INK)
        x += 30 + int(face.getlength(text)) + 14
    x, y = origin[0], origin[1] + 26
    for outcome, text in (
        (Outcome.PASS, "fixed in this version"),
        (Outcome.FAIL, "broken in this version (vs the previous version that answered it)"),
    ):
        _cell(draw, (x + 2, y + 2, x + 16, y + 16), outcome, changed=True)
        draw.text((x + 24, y + 2), text, font=face, fill=INK)
        x += 36 + int(face.getlength(text)) + 14


# -- one version's patterns --------------------------------------------------------------------

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

    @property
    def newly_failing(self) -> list[Tile]:
        return [t for t in self.tiles if t.outcome == Outcome.NEWLY_FAILING]


def sheet_contents(
    registry: Registry,
    problem: str,
    version: str,
    *,
    champion: str | None = None,
    only_failing: bool = False,
) -> Sheet:
    """The tiles :func:`contact_sheet` draws (same arguments), for a caller that lists them."""
    ref = resolve_version(registry, version)
    name = ref.split("@", 1)[0]
    if champion is None:
        found = registry.models.champion(name)
        champion_ref = found.ref if found is not None and found.ref != ref else None
    else:
        champion_ref = resolve_version(registry, champion)
        champion_ref = None if champion_ref == ref else champion_ref
    wanted = [ref] + ([champion_ref] if champion_ref else [])
    patterns = sorted(
        registry.patterns.list(problem), key=lambda p: (p.polarity != "positive", p.id)
    )
    results = pattern_results(registry, problems=[problem], versions=wanted)
    mine = {r.pattern_id: r for r in results if f"{r.model}@{r.version}" == ref}
    theirs = {r.pattern_id: r for r in results if f"{r.model}@{r.version}" == champion_ref}
    tiles = []
    answered = right = 0
    for pattern in patterns:
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
        tiles.append(Tile(pattern, result, before if champion_ref else None, outcome))
    return Sheet(problem, ref, champion_ref, len(patterns), answered, right, tiles)


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
    tiles = sheet.tiles
    title_font, small, normal = font(15), font(11), font(12)
    heading = f"{problem} on {sheet.version}: {sheet.right} of {sheet.answered} right"
    if sheet.patterns > sheet.answered:
        heading += f", {sheet.patterns - sheet.answered} without a result"
    sub = (
        f"vs champion {sheet.champion}: {len(sheet.newly_failing)} newly failing"
        if sheet.champion
        else "no champion to compare with"
    )
    if only_failing:
        sub += f"; showing the {len(tiles)} failing of {sheet.patterns} patterns"
    columns = max(1, min(6, len(tiles)))
    rows = math.ceil(len(tiles) / columns) if tiles else 0
    caption_lines = 4 if sheet.champion else 3
    tile_h = TILE_THUMB + 2 * TILE_PAD + 16 + caption_lines * 15 + 6
    header_h, legend_h = 52, 40
    width = max(560, columns * (TILE_W + TILE_PAD) + TILE_PAD)
    body_h = rows * (tile_h + TILE_PAD) if tiles else 40
    canvas = Image.new("RGB", (width, header_h + body_h + legend_h), PAPER)
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 8), _fit(heading, title_font, width - 20), font=title_font, fill=INK)
    draw.text((10, 30), _fit(sub, normal, width - 20), font=normal, fill=MUTED)
    if not tiles:
        empty = "no failing patterns" if only_failing else "this problem has no patterns yet"
        draw.text((10, header_h + 10), empty, font=normal, fill=INK)
    thumbs = _Thumbnails(registry, TILE_THUMB)
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
    _sheet_legend(draw, (10, header_h + body_h + 10), normal)
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
    face: ImageFont.FreeTypeFont | ImageFont.ImageFont,
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
    badge_w = int(face.getlength(word)) + 8
    draw.rectangle((x, y, x + badge_w, y + 14), fill=colour)
    draw.text((x + 4, y + 1), word, font=face, fill=INK if outcome == Outcome.NO_RESULT else PAPER)
    label = f"#{pattern.id} {pattern.polarity}"
    if face.getlength(label) > room - badge_w - 6:
        label = f"#{pattern.id}"  # the polarity whole or not at all
    draw.text(
        (x + badge_w + 6, y + 1),
        _fit(label, face, room - badge_w - 6),
        font=face,
        fill=MUTED,
    )
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
        draw.text((x, y), _fit(text, face, room), font=face, fill=fill)
        y += 15


def _sheet_legend(
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    face: ImageFont.FreeTypeFont | ImageFont.ImageFont,
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
        draw.text((x + 26, y + 1), text, font=face, fill=INK)
        x += 26 + int(face.getlength(text)) + 22
