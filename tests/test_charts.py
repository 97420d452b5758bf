"""Charts of real registries: the digit versions, and a synthetic 100 problems x 50 versions.

Every chart is rendered to a PNG and opened again with Pillow: a valid PNG of sensible size,
not blank (several distinct colours). Readability at 50 versions and 100 problems is checked
where it can be measured: the tick labels actually drawn never overlap.

Charts read plain rows, so these tests run on SQLite only (the queries behind the rows are
tested on both backends in test_metrics); the CLI reads through the same library calls.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image
from typer.testing import CliRunner

from problem_registry.cli import app
from problem_registry.enums import LoaderKind, Polarity
from problem_registry.expectations import Expectation
from problem_registry.replay.engine import replay
from problem_registry.report import charts
from problem_registry.report.charts.heatmap import _cmap as heatmap_colours
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from problem_registry.store.views import ModelVersionView
from problem_registry.verdicts.metrics import (
    PolarityMetrics,
    ProblemVersionMetrics,
    problem_metrics,
)
from tests.digit_registry import Digits

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def assert_png(
    path: Path,
    *,
    min_size: tuple[int, int] = (300, 200),
    max_size: tuple[int, int] = (2400, 2400),
    colours: int = 8,
) -> Image.Image:
    """A PNG Pillow can decode, of a size a page can show, and not blank."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        width, height = image.size
        assert min_size[0] <= width <= max_size[0], (path, image.size)
        assert min_size[1] <= height <= max_size[1], (path, image.size)
        found = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert found is not None and len(found) >= colours, (path, found and len(found))
        return image.copy()


def drawn_tick_labels(figure: Figure, axis: str = "x", *, ax: int | None = None) -> list[Text]:
    """The tick labels the renderer actually draws (visible, non-empty), of one or every Axes."""
    if not isinstance(figure.canvas, FigureCanvasAgg):
        FigureCanvasAgg(figure).draw()  # once: a large figure takes seconds to lay out
    labels = []
    for each in figure.axes if ax is None else [figure.axes[ax]]:
        ticks = each.get_xticklabels() if axis == "x" else each.get_yticklabels()
        labels += [t for t in ticks if t.get_visible() and t.get_text()]
    return labels


def assert_no_overlap(labels: list[Text]) -> None:
    """No two labels share pixels: bounding boxes for level text; for rotated text (whose
    axis-aligned boxes overlap by construction) the gap between neighbours, measured across
    the slanted lines, is at least the font's height."""
    figure = labels[0].figure
    renderer = figure.canvas.get_renderer()  # type: ignore[union-attr]
    angle = labels[0].get_rotation() % 180
    if angle == 0:
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
        for i, (text, box) in enumerate(boxes):
            for other, other_box in boxes[i + 1 :]:
                assert not box.overlaps(other_box), (text, other)
        return
    anchors = sorted(
        (t.get_transform().transform(t.get_position())[0], t.get_text()) for t in labels
    )
    height = labels[0].get_fontsize() * figure.dpi / 72  # type: ignore[union-attr]
    for (x, text), (next_x, other) in itertools.pairwise(anchors):
        gap = (next_x - x) * math.sin(math.radians(angle))
        assert gap >= height, (text, other, gap, height)


def legend_texts(figure: Figure, title: str | None = None) -> list[str]:
    """Every legend entry, or those of the legend with this title."""
    found = []
    for ax in figure.axes:
        legend = ax.get_legend()
        if legend is not None and title in (None, legend.get_title().get_text()):
            found += [t.get_text() for t in legend.get_texts()]
    for legend in figure.legends:
        found += [t.get_text() for t in legend.get_texts()]
    return found


def with_metrics(views: list[ModelVersionView], **series: list[float]) -> list[ModelVersionView]:
    """Views with headline metrics: plain data in, as the report hands it to the charts."""
    return [
        view.model_copy(update={"metrics": {name: values[i] for name, values in series.items()}})
        for i, view in enumerate(views)
    ]


# --- a real registry: three scikit-learn versions -------------------------------------------


@SQLITE_ONLY
def test_overview_shows_each_problem_under_the_headline_metrics(
    digits: Digits, tmp_path: Path
) -> None:
    replay(digits.registry)
    digits.registry.models.promote("digits", "v2")
    rows = problem_metrics(digits.registry, model="digits")
    versions = with_metrics(
        digits.registry.models.list("digits"), accuracy=[0.8, 0.88, 0.96], latency_ms=[3, 4, 9]
    )
    figure = charts.overview_chart(rows, versions)

    texts = legend_texts(figure)
    for slug in digits.cases:  # four problems: every one has a colour of its own
        assert any(t.startswith(f"{slug}: ") for t in texts), texts
    assert any(t.startswith("accuracy: 0.96") for t in texts), texts
    assert any(t.startswith("latency_ms (right axis)") for t in texts), texts
    assert "champion (★)" in texts
    assert_no_overlap(drawn_tick_labels(figure))
    image = assert_png(charts.save_figure(figure, tmp_path / "overview.png"))
    assert image.width >= 800


@SQLITE_ONLY
def test_problem_chart_has_the_wilson_band_the_threshold_and_the_champion(
    digits: Digits, tmp_path: Path
) -> None:
    replay(digits.registry)
    rows = problem_metrics(digits.registry, problems=["threes-vs-eights"])
    figure = charts.problem_chart(rows, champion="digits@v2")

    texts = legend_texts(figure)
    assert {"95% Wilson interval", "error rate", "max error rate 20%", "champion"} <= set(texts)
    last = rows[-1]
    status = f"v3: {last.right} of {last.answered} right, needs ≤ 20% error"
    assert any(text.get_text().startswith(status) for text in figure.axes[0].texts), status
    assert_png(charts.save_figure(figure, tmp_path / "problem.png"))
    assert figure.axes == [], "save_figure frees the figure it rendered"


@SQLITE_ONLY
def test_heatmap_and_confusion_matrix_of_the_real_versions(digits: Digits, tmp_path: Path) -> None:
    replay(digits.registry)
    rows = problem_metrics(digits.registry, confusion=True)
    assert_png(charts.save_figure(charts.heatmap_chart(rows), tmp_path / "heatmap.png"))
    row = next(r for r in rows if r.problem == "threes-vs-eights" and r.version == "v1")
    figure = charts.confusion_chart(row)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == ["3", "8"], "rows are the labels the patterns expect"
    columns = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert columns[-1] == "error" and {"3", "8"} <= set(columns)
    assert_png(charts.save_figure(figure, tmp_path / "confusion.png"), colours=6)


def test_charts_refuse_rows_they_cannot_draw() -> None:
    row = ProblemVersionMetrics(
        problem="a",
        title="a",
        status="open",
        model="m",
        version="v1",
        is_champion=False,
        max_error_rate=None,
        allowed_regressions=0,
        patterns=0,
        answered=0,
        wrong=0,
        errored=0,
        positive=PolarityMetrics(0, 0, 0),
        negative=PolarityMetrics(0, 0, 0),
    )
    other = ProblemVersionMetrics(**{**row.__dict__, "problem": "b"})
    with pytest.raises(ValueError, match="one problem"):
        charts.problem_chart([row, other])
    with pytest.raises(ValueError, match="confusion=True"):
        charts.confusion_chart(row)


def test_empty_registries_give_a_picture_that_says_so(tmp_path: Path) -> None:
    for figure in (
        charts.overview_chart([], []),
        charts.heatmap_chart([]),
        charts.small_multiples([]),
        charts.problem_chart([]),
    ):
        assert_png(charts.save_figure(figure, tmp_path / "empty.png"), colours=2)


# --- 100 problems x 50 versions, written through the library --------------------------------

PROBLEMS, VERSIONS, PER_PROBLEM = 100, 50, 10
UNREPLAYED = 10  # v11 is registered but never replayed: a column with no results at all
WORDS = (
    "chihuahua-vs-muffin",
    "people-wearing-hats",
    "night-glare",
    "thin-strokes",
    "rotated-sevens",
    "blurry-threes",
    "low-contrast-scans",
    "sarcasm",
    "negation",
    "long-reviews-over-the-limit",
)


@dataclass
class Synthetic:
    registry: Registry
    rows: list[ProblemVersionMetrics]
    versions: list[ModelVersionView]


def build_synthetic(folder: Path) -> Registry:
    """100 problems over a pool of 50 shared text files, and 50 predictions-file versions.

    File ``f`` is answered right from version ``f`` on, so each problem's error rate falls in
    steps as its files are learnt; a few problems expect the opposite label and get worse; the
    last version forgets four files (a late regression); every seventh version has no answer
    for one file (errored); v11 is never replayed.
    """
    rng = random.Random(4)
    registry = Registry.open(
        url=f"sqlite:///{folder}/registry.db", patterns_dir=folder / "patterns", user="synthetic"
    )
    files = []
    for f in range(VERSIONS):
        files.append(folder / "pool" / f"case-{f:03d}.txt")
        files[-1].parent.mkdir(parents=True, exist_ok=True)
        files[-1].write_text(f"synthetic case {f}\n", encoding="utf-8")
    for p in range(PROBLEMS):
        slug = f"{WORDS[p % len(WORDS)]}-{p:03d}"
        registry.problems.add(slug, max_error_rate=(0.1, 0.2, 0.3, None)[p % 4])
        centre = rng.randrange(VERSIONS)
        picked = sorted(
            {min(VERSIONS - 1, max(0, round(rng.gauss(centre, 8)))) for _ in range(40)}
        )[:PER_PROBLEM]
        worse = p % 9 == 4
        registry.patterns.add(
            slug,
            [
                NewPattern(
                    files[f],
                    Expectation.exact("b" if worse and i % 2 else "a"),
                    Polarity.positive if i < 7 else Polarity.negative,
                )
                for i, f in enumerate(picked)
            ],
        )
    sha = {view.original_name: view.sha256 for view in registry.patterns.list()}
    forgotten = set(rng.sample(range(VERSIONS), 4))
    for n in range(VERSIONS):
        progress = n / (VERSIONS - 1)
        answers = folder / f"v{n + 1}.jsonl"
        lines = [
            json.dumps(
                {
                    "sha256": sha[file.name],
                    "prediction": "a"
                    if f <= n and not (n == VERSIONS - 1 and f in forgotten)
                    else "b",
                }
            )
            for f, file in enumerate(files)
            if file.name in sha and not (n % 7 == 3 and f == 5)
        ]
        answers.write_text("\n".join(lines) + "\n", encoding="utf-8")
        registry.models.register(
            "synthetic",
            f"v{n + 1}",
            loader=str(answers),
            loader_kind=LoaderKind.predictions,
            artifact=answers,
            metrics={
                "auc": round(0.8 + 0.15 * progress + rng.uniform(-0.01, 0.01), 4),
                "accuracy": round(0.7 + 0.2 * progress, 4),
            },
        )
    registry.models.promote("synthetic", f"v{VERSIONS - 3}")
    replay(registry, versions=[f"synthetic@v{n + 1}" for n in range(VERSIONS) if n != UNREPLAYED])
    return registry


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthetic]:
    registry = build_synthetic(tmp_path_factory.mktemp("synthetic"))
    try:
        yield Synthetic(registry, problem_metrics(registry), registry.models.list())
    finally:
        registry.close()


def test_synthetic_registry_is_what_the_charts_are_tested_on(synthetic: Synthetic) -> None:
    assert len(synthetic.rows) == PROBLEMS * VERSIONS
    unreplayed = [r for r in synthetic.rows if r.version == f"v{UNREPLAYED + 1}"]
    assert all(r.answered == 0 for r in unreplayed)
    assert any(r.errored for r in synthetic.rows)
    last = [r for r in synthetic.rows if r.version == f"v{VERSIONS}"]
    before = {r.problem: r for r in synthetic.rows if r.version == f"v{VERSIONS - 1}"}
    assert any(r.wrong > before[r.problem].wrong for r in last), "a late regression to show"


def test_overview_at_100_problems_and_50_versions_colours_the_telling_few(
    synthetic: Synthetic, tmp_path: Path
) -> None:
    figure = charts.overview_chart(synthetic.rows, synthetic.versions, highlight=6)
    texts = legend_texts(figure, "problem: last (change)")
    assert "94 other problems" in texts
    coloured = [t for t in texts if t not in ("94 other problems", "champion (★)")]
    assert len(coloured) == 6 and all("%" in t for t in coloured), coloured
    # The problems that got worse at the last version are among the coloured ones.
    last = {r.problem: r.error_rate for r in synthetic.rows if r.version == f"v{VERSIONS}"}
    before = {r.problem: r.error_rate for r in synthetic.rows if r.version == f"v{VERSIONS - 1}"}
    worst_change = max(last, key=lambda p: (last[p] or 0) - (before[p] or 0))
    assert any(t.startswith(worst_change) for t in coloured), (worst_change, coloured)
    assert_no_overlap(drawn_tick_labels(figure))
    assert_png(
        charts.save_figure(figure, tmp_path / "overview.png"),
        min_size=(1200, 500),
        max_size=(1700, 1000),
    )


def test_heatmap_at_100_problems_and_50_versions_keeps_every_label_readable(
    synthetic: Synthetic, tmp_path: Path
) -> None:
    figure = charts.heatmap_chart(synthetic.rows)
    rows = drawn_tick_labels(figure, "y", ax=0)
    slugs = list(dict.fromkeys(r.problem for r in synthetic.rows))
    for label, slug in zip([t.get_text() for t in rows], slugs, strict=True):
        # Long slugs are shortened in the middle: the end that tells them apart stays.
        assert label == slug or (len(label) <= 28 and label[-8:] == slug[-8:]), (label, slug)
    assert len(rows) == PROBLEMS, "every problem is named"
    assert_no_overlap(rows)
    assert_no_overlap(drawn_tick_labels(figure, "x", ax=0))
    assert_png(
        charts.save_figure(figure, tmp_path / "heatmap.png"),
        min_size=(1000, 1200),
        max_size=(1700, 2300),
    )


def test_small_multiples_give_each_of_100_problems_a_named_panel(
    synthetic: Synthetic, tmp_path: Path
) -> None:
    figure = charts.small_multiples(synthetic.rows)
    titles = {t.get_text() for ax in figure.axes for t in ax.texts}
    assert len(titles) == PROBLEMS
    assert_png(
        charts.save_figure(figure, tmp_path / "multiples.png"),
        min_size=(1200, 900),
        max_size=(1700, 2300),
    )
    capped = charts.small_multiples(synthetic.rows, limit=12)
    assert "the 12 worst or most changed of 100" in capped.get_suptitle()


def test_problem_chart_at_50_versions_thins_its_labels(
    synthetic: Synthetic, tmp_path: Path
) -> None:
    slug = synthetic.rows[0].problem
    figure = charts.problem_chart([r for r in synthetic.rows if r.problem == slug])
    labels = drawn_tick_labels(figure)
    assert_no_overlap(labels)
    assert f"v{VERSIONS - 3} ★" in [t.get_text() for t in labels], "the champion keeps its label"
    assert_png(charts.save_figure(figure, tmp_path / "problem.png"), max_size=(1700, 800))


def test_pictures_are_written_as_png_that_give_back_every_pixel() -> None:
    rng = np.random.default_rng(7)
    noise = Image.fromarray(rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8), "RGB")
    grey = Image.fromarray(rng.integers(0, 256, size=(9, 4), dtype=np.uint8), "L")
    for picture in (noise, grey, Image.new("RGB", (1, 1), (1, 2, 3))):
        with Image.open(io.BytesIO(charts.image_png(picture))) as decoded:
            assert decoded.format == "PNG" and decoded.mode == "RGB"
            assert np.array_equal(np.asarray(decoded), np.asarray(picture.convert("RGB")))


@pytest.fixture
def replayed(digits: Digits) -> Digits:
    replay(digits.registry)
    digits.registry.models.promote("digits", "v2")
    return digits


def run_chart(database_url: str, digits: Digits, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["--url", database_url, "--patterns-dir", str(digits.registry.store.root), "chart", *args],
        catch_exceptions=False,
    )
    return result.exit_code, result.stderr


@SQLITE_ONLY
def test_chart_command_draws_every_kind(
    replayed: Digits, database_url: str, tmp_path: Path
) -> None:
    for kind, extra in [
        ("overview", []),
        ("multiples", []),
        ("heatmap", ["threes-vs-eights", "sevens-vs-ones"]),
        ("problem", ["threes-vs-eights"]),
        ("confusion", ["threes-vs-eights", "--version", "v1"]),
        ("grid", ["sevens-vs-ones"]),
        ("sheet", ["sevens-vs-ones", "--version", "digits@v1"]),
    ]:
        out = tmp_path / "charts" / f"{kind}.png"
        code, stderr = run_chart(database_url, replayed, *extra, "--kind", kind, "--out", str(out))
        assert code == 0, (kind, stderr)
        assert stderr.startswith(f"wrote {out}"), stderr
        assert_png(out, min_size=(300, 150), colours=5)


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-problem"], "error: no problem 'no-such-problem'"),
        (["threes-vs-eights", "--kind", "sheet", "--version", "v9"], "error: no model version v9"),
        (["--kind", "grid"], "error: --kind grid draws one problem"),
        (["--model", "nope"], "error: no model named 'nope'"),
        (["--version", "v1"], "error: --version is for --kind confusion or sheet"),
    ],
)
def test_chart_command_refuses_in_one_line(
    replayed: Digits,
    database_url: str,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    out = tmp_path / "chart.png"
    code, stderr = run_chart(database_url, replayed, *args, "--out", str(out))
    assert code == 1
    assert stderr.startswith(message) and len(stderr.strip().splitlines()) == 1, stderr
    assert not out.exists()


@SQLITE_ONLY
def test_chart_command_wants_a_png_name(
    replayed: Digits, database_url: str, tmp_path: Path
) -> None:
    code, stderr = run_chart(database_url, replayed, "--out", str(tmp_path / "chart.jpg"))
    assert code == 2 and "must end in .png" in stderr


def test_heatmap_at_100_problems_and_50_versions_writes_every_rate_and_hatches_no_result(
    synthetic: Synthetic,
) -> None:
    """Issue 19: a lead reads the grid at 60 x 50 and more; no colour of the scale is grey."""
    figure = charts.heatmap_chart(synthetic.rows)
    ax = figure.axes[0]
    numbers = [t.get_text() for t in ax.texts]
    rated = [r for r in synthetic.rows if r.error_rate is not None]
    assert len(numbers) == len(rated) and all(n.isdigit() for n in numbers)
    assert ax.collections, "the cells that miss their max error rate are dotted"
    assert any(p.get_hatch() for p in ax.patches), "a cell without a result is hatched"
    colours = heatmap_colours()(np.linspace(0, 1, 101))[:, :3]
    assert (colours.max(axis=1) - colours.min(axis=1)).min() > 0.15, "no grey on the scale"
