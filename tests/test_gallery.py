"""Failure galleries: thumbnails of every kind of pattern, the outcome grid and contact sheets.

The grid and the sheets are checked against the library's own answers (the timeline's fixed and
broken patterns, the gates' newly failing ones), and every picture is written as a PNG and
opened again. Memory is measured in a child process, where the peak is the thumbnail's alone.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops

from problem_registry.enums import PatternKind, Polarity
from problem_registry.errors import AmbiguousReference, ModelNotFound
from problem_registry.expectations import Expectation
from problem_registry.replay.engine import replay
from problem_registry.report import gallery
from problem_registry.report.gallery import grid, grid_parts
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from problem_registry.verdicts.gates import evaluate
from problem_registry.verdicts.metrics import pattern_results, problem_metrics
from problem_registry.verdicts.pattern_grid import (
    ERRORED,
    NO_RESULT,
    RIGHT,
    WRONG,
    OutcomeMatrix,
    outcome_matrices,
)
from problem_registry.verdicts.timeline import (
    matrix_changes,
    timelines,
    timelines_from,
    timelines_with,
)
from tests.digit_registry import Digits, register_answers, write_digit
from tests.helpers import write_json, write_text

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def png_bytes(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def assert_picture(
    image: Image.Image,
    path: Path,
    *,
    min_size: tuple[int, int] = (300, 200),
    max_size: tuple[int, int] = (2000, 2000),
) -> None:
    """Written as PNG, read back: sensible size, not blank."""
    image.save(path, format="PNG")
    with Image.open(path) as again:
        assert again.format == "PNG"
        again.load()
        assert min_size[0] <= again.width <= max_size[0], again.size
        assert min_size[1] <= again.height <= max_size[1], again.size
        colours = again.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) >= 8


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and whose pixels are cut short."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)


# --- thumbnails -----------------------------------------------------------------------------


def test_an_8x8_digit_becomes_crisp_square_blocks() -> None:
    digit = Image.new("L", (8, 8))
    digit.putdata([(x * 37 + y * 11) % 256 for y in range(8) for x in range(8)])
    thumb = gallery.thumbnail(png_bytes(digit), PatternKind.image, 100)
    assert thumb.size == (96, 96), "a whole factor (12), so every pixel is a 12x12 block"
    for y in range(8):
        for x in range(8):
            block = thumb.crop((x * 12, y * 12, x * 12 + 12, y * 12 + 12)).getcolors()
            value = digit.getpixel((x, y))
            assert block == [(144, (value, value, value))], (x, y, block)


def test_a_large_image_is_shrunk_to_fit_and_keeps_its_shape() -> None:
    wide = Image.linear_gradient("L").resize((900, 300))
    thumb = gallery.thumbnail(png_bytes(wide), "image", 90)
    assert thumb.size == (90, 30) and thumb.mode == "RGB"


def test_exif_orientation_turns_a_photo_upright() -> None:
    photo = Image.new("RGB", (80, 40), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    thumb = gallery.thumbnail(png_bytes(photo, "JPEG", exif=exif.tobytes()), "image", 64)
    assert thumb.height > thumb.width, thumb.size


def test_exif_orientation_survives_the_reduction_of_a_big_image() -> None:
    photo = Image.linear_gradient("L").resize((1600, 800)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 8
    thumb = gallery.thumbnail(png_bytes(photo, "PNG", exif=exif.tobytes()), "image", 64)
    assert thumb.size == (32, 64), thumb.size


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGBA", (20, 20), (255, 0, 0, 0)),
        Image.new("LA", (20, 20), (10, 128)),
        Image.new("P", (20, 20)),
        Image.new("CMYK", (20, 20), (0, 255, 0, 0)),
        Image.new("1", (20, 20), 1),
    ],
    ids=lambda image: image.mode,
)
def test_every_image_mode_becomes_rgb(image: Image.Image) -> None:
    fmt = "JPEG" if image.mode == "CMYK" else "PNG"
    thumb = gallery.thumbnail(png_bytes(image, fmt), "image", 40)
    assert thumb.mode == "RGB" and thumb.size == (40, 40)
    if image.mode == "RGBA":  # fully transparent: drawn on white, not black
        assert thumb.getpixel((5, 5)) == (255, 255, 255)


def test_a_16_bit_image_is_stretched_rather_than_clipped_to_white() -> None:
    deep = Image.new("I;16", (16, 16))
    deep.putdata([i * 200 for i in range(256)])  # 0..51000: most of it above 255
    thumb = gallery.thumbnail(png_bytes(deep), "image", 32)
    values = {thumb.getpixel((x, y))[0] for x in range(0, 32, 2) for y in range(0, 32, 2)}
    assert len(values) > 50, "shades survive, instead of everything above 255 turning white"


@pytest.mark.parametrize("size", [(8000, 6000), (40000, 40000)], ids=["over-40MP", "bomb"])
def test_an_image_over_the_pixel_budget_is_never_decoded(size: tuple[int, int]) -> None:
    card = gallery.thumbnail(header_only_png(*size), "image", 96)
    assert card.size == (96, 96)
    assert len(card.getcolors() or []) >= 3, "a card that says so, not an empty square"


def test_a_huge_jpeg_is_decoded_small_by_a_gallery_without_matplotlib(tmp_path: Path) -> None:
    """5000x4000 RGB is 60 MB decoded; draft mode decodes it at 1/8 scale, under 1 MB.

    (Without draft mode this probe grows by ~77 MB.) The same child process shows the gallery
    loads no matplotlib: only charts/ may."""
    path = tmp_path / "huge.jpg"
    gradient = Image.linear_gradient("L").resize((5000, 4000))
    Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_180), gradient)).save(
        path, quality=70
    )
    probe = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from problem_registry.report.gallery import thumbnail\n"
        f"data = Path({str(path)!r}).read_bytes()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "thumb = thumbnail(data, 'image', 160)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(thumb.size[0], thumb.size[1], (after - before) // 1024)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    sizes, plotting = done.stdout.splitlines()
    assert plotting == "[]"
    width, height, grown_mb = (int(n) for n in sizes.split())
    assert (width, height) == (160, 128)
    assert grown_mb < 20, f"peak memory grew by {grown_mb} MB: the JPEG was decoded at full size"


def test_text_json_and_unreadable_files_become_cards() -> None:
    text = gallery.thumbnail(b"a review that says\nthe plot was thin\n", "text", 120)
    data = json.dumps({"age": 41, "income": None, "tags": ["a", "b"]}).encode()
    card = gallery.thumbnail(data, PatternKind.json, 120)
    broken = gallery.thumbnail(b"\x89PNG\r\n\x1a\nnot really", "image", 120)
    huge_text = gallery.thumbnail(b"word " * 200_000, "text", 120)
    for picture in (text, card, broken, huge_text):
        assert picture.size == (120, 120) and picture.mode == "RGB"
        assert len(picture.getcolors(maxcolors=1 << 16) or []) >= 4
    assert text.tobytes() != card.tobytes() != broken.tobytes()


def test_thumbnails_need_a_usable_size() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        gallery.thumbnail(b"x", "text", 4)


# --- the real digit versions ------------------------------------------------------------------


def test_grid_marks_exactly_what_the_timeline_calls_fixed_and_broken(
    digits: Digits, tmp_path: Path
) -> None:
    replay(digits.registry)
    for story in timelines(digits.registry, model="digits"):
        results = pattern_results(digits.registry, problems=[story.problem], model="digits")
        cells = gallery.grid_cells(results)
        names = {r.pattern_id: r.file for r in results}
        for point in story.points:
            ref = f"digits@{point.version}"
            changed = {
                kind: sorted(
                    names[pid] for (pid, r), c in cells.items() if r == ref and c.change == kind
                )
                for kind in ("fixed", "broken")
            }
            assert changed == {"fixed": sorted(point.fixed), "broken": sorted(point.broken)}
    assert any(c.change for c in cells.values()), "the real versions do fix and break patterns"
    picture = gallery.outcome_grid(digits.registry, "threes-vs-eights")
    assert_picture(picture, tmp_path / "grid.png")


def test_contact_sheet_flags_what_the_gates_call_newly_failing(
    digits: Digits, tmp_path: Path
) -> None:
    replay(digits.registry)
    registry = digits.registry
    registry.models.promote("digits", "v3")
    for gate in evaluate(registry, "digits@v1"):
        sheet = gallery.sheet_contents(registry, gate.problem, "v1")
        assert sheet.champion == "digits@v3"
        newly = {t.pattern.id for t in sheet.newly_failing}
        assert newly == {f.pattern_id for f in gate.failing if f.newly_failing}
        failing = gallery.sheet_contents(registry, gate.problem, "digits@v1", only_failing=True)
        assert {t.pattern.id for t in failing.tiles} == {f.pattern_id for f in gate.failing}
        assert (sheet.right, sheet.answered) == (gate.metrics.right, gate.metrics.answered)
    assert_picture(gallery.contact_sheet(registry, "sevens-vs-ones", "v1"), tmp_path / "sheet.png")
    alone = gallery.contact_sheet(registry, "sevens-vs-ones", "v3", only_failing=True)
    assert alone.height < 200, "the champion fails nothing here: a short sheet that says so"


@SQLITE_ONLY
def test_a_missing_pattern_file_is_drawn_as_a_card_not_an_error(
    digits: Digits, tmp_path: Path
) -> None:
    replay(digits.registry)
    view = digits.registry.patterns.list("sevens-vs-ones")[0]
    digits.registry.store.path_of(view.sha256, "png").unlink()
    assert_picture(gallery.outcome_grid(digits.registry, "sevens-vs-ones"), tmp_path / "grid.png")
    assert_picture(
        gallery.contact_sheet(digits.registry, "sevens-vs-ones", "v2"), tmp_path / "sheet.png"
    )


@SQLITE_ONLY
def test_versions_are_named_as_refs_or_unambiguous_bare_versions(digits: Digits) -> None:
    registry = digits.registry
    assert registry.models.resolve(["v2", "digits@v1"]) == ["digits@v2", "digits@v1"]
    register_answers(registry, "other", "v2", {}, digits.inputs.parent / "answers")
    with pytest.raises(AmbiguousReference, match="digits@v2, other@v2"):
        registry.models.resolve(["v2"])
    assert registry.models.resolve(["v2"], model="other") == ["other@v2"]
    with pytest.raises(ModelNotFound, match="v9"):
        gallery.outcome_grid(registry, "sevens-vs-ones", versions=["v9"])
    with pytest.raises(ModelNotFound, match="digits@v9"):
        gallery.contact_sheet(registry, "sevens-vs-ones", "digits@v9")


# --- one problem of mixed inputs across 50 versions -------------------------------------------

VERSIONS = 50


@dataclass
class Mixed:
    registry: Registry
    problem: str


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mixed]:
    """Digits, a photo, text and JSON in one problem, answered by 50 predictions files."""
    folder = tmp_path_factory.mktemp("mixed")
    registry = Registry.open(
        url=f"sqlite:///{folder}/registry.db", patterns_dir=folder / "patterns", user="t"
    )
    registry.problems.add("mixed-inputs", max_error_rate=0.2)
    new = []
    for i in range(9):
        digit = Image.new("L", (8, 8))
        digit.putdata([(x * 29 + y * (i + 3) * 7) % 241 for y in range(8) for x in range(8)])
        path = folder / "in" / f"digit-{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        digit.save(path)
        new.append(NewPattern(path, Expectation.exact(str(i)), Polarity.positive))
    photo = folder / "in" / "photo.jpg"
    Image.linear_gradient("L").resize((1200, 800)).convert("RGB").save(photo)
    new.append(NewPattern(photo, Expectation.exact("muffin"), Polarity.negative))
    review = write_text(folder / "in" / "review.txt", "Not bad at all, I would go again.")
    new.append(NewPattern(review, Expectation.none_of(["negative"]), Polarity.negative))
    record = write_json(folder / "in" / "record.json", {"age": 41, "income": 52000})
    new.append(NewPattern(record, Expectation.between(0.5, 1.0), Polarity.negative))
    registry.patterns.add("mixed-inputs", new)
    views = registry.patterns.list("mixed-inputs")
    for n in range(1, VERSIONS + 1):
        answers: dict[str, object] = {}
        for k, view in enumerate(views):
            if k == 3 and n % 10 == 0:
                continue  # no line for it: an errored result
            right = (n + 3 * k) % 7 != 0 and not (k == 1 and n > 40)
            if view.expect["kind"] == "range":
                answers[view.sha256] = 0.7 if right else 0.2
            elif view.expect["kind"] == "not":
                answers[view.sha256] = "positive" if right else "negative"
            else:
                answers[view.sha256] = view.expect["labels"][0] if right else "x"
        register_answers(registry, "mix", f"v{n}", answers, folder / "answers")
    registry.models.promote("mix", f"v{VERSIONS - 5}")
    replay(registry)
    try:
        yield Mixed(registry, "mixed-inputs")
    finally:
        registry.close()


def test_grid_of_50_versions_stays_a_page_wide(mixed: Mixed, tmp_path: Path) -> None:
    picture = gallery.outcome_grid(mixed.registry, mixed.problem)
    assert_picture(picture, tmp_path / "grid.png", min_size=(900, 600), max_size=(1300, 1100))
    cells = gallery.grid_cells(pattern_results(mixed.registry, problems=[mixed.problem]))
    outcomes = {c.outcome for c in cells.values()}
    assert {gallery.Outcome.PASS, gallery.Outcome.FAIL, gallery.Outcome.ERRORED} <= outcomes
    assert {c.change for c in cells.values()} == {None, "fixed", "broken"}


def test_a_reports_grid_in_blocks_is_the_whole_grids_pixels(mixed: Mixed) -> None:
    """The report's grid (issue 19 item 13): the rows' heads and blocks of 25 versions, side by
    side, are the whole grid's pixels but for its title and legend (written apart) and the
    pixel a "changed" frame reaches past the end of a block."""
    registry = mixed.registry
    results = pattern_results(registry, problems=[mixed.problem])
    patterns = grid.in_grid_order(registry.patterns.list(mixed.problem))
    columns = list(dict.fromkeys(r.ref for r in results))
    champions = {v.ref for v in registry.models.list() if v.is_champion}
    whole = gallery.draw_outcome_grid(
        mixed.problem, patterns, results, columns=columns, champions=champions, store=registry.store
    )
    labels = grid.column_labels(columns, champions)
    label_h, cell_w = grid.label_height(labels), grid.cell_width(len(columns))
    body, wrong = grid.grid_body(patterns, results, columns, champions)
    parts = [grid_parts.draw_grid_heads(patterns, label_h=label_h, store=registry.store)]
    blocks = grid_parts.blocks(len(columns))
    for block in blocks:
        first, stop = block.start, block.stop
        starred = [i - first for i, ref in enumerate(columns) if ref in champions and i in block]
        cells = [row[first:stop] for row in body]
        parts.append(
            grid_parts.draw_grid_block(
                cells,
                wrong[first:stop],
                labels[first:stop],
                starred,
                label_h=label_h,
                cell_w=cell_w,
            )
        )
    assert len(blocks) == 2 and champions  # 50 versions, the champion's column among them
    stitched = Image.new("RGB", (sum(p.width for p in parts), parts[0].height))
    x = 0
    for part in parts:
        assert part.height == stitched.height
        stitched.paste(part, (x, 0))
        x += part.width
    title_h = 34  # the whole grid's title, over its column labels
    same_place = whole.crop((0, title_h, stitched.width, title_h + stitched.height))
    differ = np.asarray(ImageChops.difference(same_place, stitched)).any(axis=2)
    ends = {grid.HEADER_W + block.start * cell_w for block in blocks[1:]}
    assert set(np.nonzero(differ)[1].tolist()) <= ends


def _matrix_and_walk_agree(registry: Registry, problem: str, model: str) -> OutcomeMatrix:
    """The report's grid cells and timeline changes from the outcome matrix are those walked
    from every result (grid_body, _changes): the same cells, counts, fixed and broken lists."""
    (matrix,) = outcome_matrices(registry, problems=[problem], model=model).values()
    results = pattern_results(registry, problems=[problem], model=model)
    patterns = grid.in_grid_order(registry.patterns.list(problem))
    champions = {v.ref for v in registry.models.list() if v.is_champion}
    assert matrix.refs == list(dict.fromkeys(r.ref for r in results))
    body, wrong = grid.grid_body(patterns, results, matrix.refs, champions)
    assert grid_parts.cells_of_matrix(matrix, patterns, champions) == (
        grid_parts.cells_as_text(body),
        wrong,
    )
    rows = problem_metrics(registry, model=model, problems=[problem])
    assert timelines_with(model, rows, matrix_changes([matrix])) == timelines_from(
        model, rows, results
    )
    return matrix


def test_outcome_matrices_give_the_walks_cells_and_changes(mixed: Mixed) -> None:
    matrix = _matrix_and_walk_agree(mixed.registry, mixed.problem, "mix")
    assert {int(c) for c in np.unique(matrix.codes)} == {RIGHT, WRONG, ERRORED}
    assert matrix.changes()[1].any()


def test_outcome_matrices_of_a_pattern_added_after_versions_ran(digits: Digits) -> None:
    """Cells with no result (the earlier versions never saw the late pattern), and a pattern
    neither fixed nor broken until a second version has answered it."""
    registry, problem = digits.registry, "threes-vs-eights"
    replay(registry)
    index = digits.cases[problem][0].index
    late = write_digit(digits.inputs / "late.png", digits.trained.test_x[index] // 2)
    registry.patterns.add(problem, [NewPattern(late, Expectation.exact("3"), Polarity.positive)])
    versions = [v.ref for v in registry.models.list()]
    replay(registry, [versions[-1]])
    matrix = _matrix_and_walk_agree(registry, problem, "digits")
    last_row = matrix.codes[matrix.pattern_ids.index(max(matrix.pattern_ids))]
    assert list(last_row[:-1]) == [NO_RESULT] * (len(versions) - 1) and last_row[-1] != NO_RESULT
    assert not matrix.changes()[1][-1].any()  # answered once: neither fixed nor broken


def test_contact_sheet_of_mixed_inputs(mixed: Mixed, tmp_path: Path) -> None:
    sheet = gallery.sheet_contents(mixed.registry, mixed.problem, f"v{VERSIONS}")
    assert sheet.champion == f"mix@v{VERSIONS - 5}" and len(sheet.tiles) == 12
    assert sheet.newly_failing, "pattern 1 breaks after v40, which the champion got right"
    picture = gallery.contact_sheet(mixed.registry, mixed.problem, f"v{VERSIONS}")
    assert_picture(picture, tmp_path / "sheet.png", min_size=(900, 500), max_size=(1200, 900))
    failing = gallery.contact_sheet(
        mixed.registry, mixed.problem, f"mix@v{VERSIONS}", champion="v1", only_failing=True
    )
    assert failing.height < picture.height


@pytest.mark.parametrize(
    "text",
    [
        "#16 problem-0001-00.png",
        "expected: one of 5, 6",
        "AVAVA Wolf, Ty. fixed",
        "café ñandú — 1/2 ½",
        "",
        "   ",
    ],
)
def test_text_set_from_glyphs_measures_and_looks_like_pillows(text: str) -> None:
    """Gallery text is set from glyphs rendered once (gallery/glyphs.py) rather than by Pillow
    per string: the same width as ``getlength``, and the same pixels but for pen rounding."""
    from PIL import ImageDraw

    from problem_registry.report.gallery.glyphs import font, text_width, write

    for size in (8, 11, 15):
        face = font(size)
        assert text_width(text, face) == face.getlength(text)
        pillow = Image.new("RGB", (420, 40))
        ImageDraw.Draw(pillow).text((5, 5), text, font=face, fill=(255, 255, 255))
        ours = Image.new("RGB", (420, 40))
        write(ours, (5, 5), text, face, (255, 255, 255))
        theirs, mine = pillow.convert("L").tobytes(), ours.convert("L").tobytes()
        inked = sum(1 for value in theirs if value)
        differing = sum(1 for a, b in zip(theirs, mine, strict=True) if a != b)
        assert differing <= max(2, inked // 20), (text, size, differing, inked)
