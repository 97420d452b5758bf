"""The static HTML report: what it links, what it says, and that nothing in it can run.

One real digit registry (three scikit-learn versions, a champion, a candidate) is reported once
for the module, on SQLite: the report only reads through the library's API, which the storage
tests already run on both backends. Smaller registries check the edges (empty, unreplayed,
several models) and the two ways a user asks for it (the CLI and the pytest plugin).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from problem_registry.cli import app
from problem_registry.errors import InvalidValue, RegistryError
from problem_registry.expectations import Expectation
from problem_registry.replay.engine import replay
from problem_registry.report.builder import MULTIPLES_FROM, build_report, write_report
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from problem_registry.verdicts.gates import evaluate
from problem_registry.verdicts.metrics import pattern_results, problem_metrics
from problem_registry.verdicts.status import problem_status
from tests.digit_registry import build, register_answers
from tests.models.digits import Trained, write_digit

EVIL_TITLE = "<script>alert(1)</script>"
EVIL_LABEL = "<script>alert(2)</script>"
EVIL_NOTE = '<img src=x onerror="alert(3)">'
EVIL_DESCRIPTION = '<a href="javascript:alert(4)">click</a>'
CANDIDATE = "digits@v3"
CHAMPION = "digits@v2"


@dataclass
class Page:
    """One HTML file as a browser sees its tags: every link, image and stylesheet."""

    path: Path
    html: str
    images: list[dict[str, str | None]]
    links: list[str]  # href of <a> and <link>

    @classmethod
    def read(cls, path: Path) -> Page:
        parser = _Tags()
        html = path.read_text(encoding="utf-8")
        parser.feed(html)
        return cls(path, html, parser.images, parser.links)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values)
        elif tag in ("a", "link") and values.get("href"):
            self.links.append(values["href"] or "")
        elif tag == "script":
            self.scripts += 1


@dataclass
class Report:
    registry: Registry
    index: Path

    @property
    def root(self) -> Path:
        return self.index.parent

    def pages(self) -> list[Page]:
        return [Page.read(self.index)] + [
            Page.read(p) for p in sorted((self.root / "problems").glob("*.html"))
        ]


def digit_report(trained: Trained, folder: Path) -> Report:
    """The digit registry with hostile text in it, replayed, v2 champion, reported for v3."""
    registry = Registry.open(
        url=f"sqlite:///{folder}/registry.db", patterns_dir=folder / "patterns", user="tester"
    )
    build(registry, trained, folder / "inputs")
    registry.problems.edit("threes-vs-eights", title=EVIL_TITLE, description=EVIL_DESCRIPTION)
    nine = int((trained.test_y == 9).nonzero()[0][7])
    path = write_digit(folder / "inputs" / "evil-nine.png", trained.test_x[nine])
    registry.patterns.add(
        "nines-not-fours",
        [NewPattern(path, Expectation.any_of(["9", EVIL_LABEL]), note=EVIL_NOTE)],
    )
    replay(registry, trigger="test")
    registry.models.promote("digits", "v2")
    return Report(registry, build_report(registry, folder / "site", candidate=CANDIDATE))


@pytest.fixture(scope="module")
def report(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    built = digit_report(trained, tmp_path_factory.mktemp("report"))
    try:
        yield built
    finally:
        built.registry.close()


def test_every_page_links_only_files_inside_the_report(report: Report) -> None:
    pages = report.pages()
    assert [p.path.name for p in pages] == [
        "index.html",
        "nines-not-fours.html",
        "sevens-vs-ones.html",
        "threes-as-numbers.html",
        "threes-vs-eights.html",
    ]
    for page in pages:
        assert page.links, page.path
        for target in page.links + [str(image["src"]) for image in page.images]:
            assert "://" not in target and not target.startswith(("/", "//", "data:")), target
            resolved = (page.path.parent / target).resolve()
            assert resolved.is_relative_to(report.root.resolve()), target
            assert resolved.is_file(), f"{page.path.name} links {target}, which is missing"
        assert "<script" not in page.html.lower()


def test_every_image_is_a_png_of_sensible_size_with_alt_text(report: Report) -> None:
    sources = set()
    for page in report.pages():
        for image in page.images:
            assert image.get("alt"), image
            path = (page.path.parent / str(image["src"])).resolve()
            # A block of the outcome grid is a few versions' columns wide (16-30 px each).
            narrowest = 16 if re.search(r"outcomes-\d+\.png$", path.name) else 100
            with Image.open(path) as opened:
                assert opened.format == "PNG"
                assert narrowest <= opened.width <= 6000, opened.size
                assert 50 <= opened.height <= 6000, opened.size
            sources.add(path.relative_to(report.root.resolve()).as_posix())
    assert {"images/overview.png", "images/heatmap.png", "images/outcome-legend.png"} <= sources
    for slug in ("threes-vs-eights", "sevens-vs-ones"):
        assert {
            f"problems/{slug}/{name}.png"
            for name in ("outcomes-patterns", "outcomes-1", "sheet-candidate", "sheet-champion")
        } <= sources
        # The chart is drawn into the page (SVG), titled for a screen reader.
        html = (report.root / "problems" / f"{slug}.html").read_text(encoding="utf-8")
        assert '<svg class="chart"' in html and f"<title>Error rate of {slug}" in html
    written = {p.relative_to(report.root).as_posix() for p in report.root.rglob("*.png")}
    assert written == sources, "every image written is shown, and every image shown is written"


def test_titles_labels_notes_and_descriptions_stay_text(report: Report) -> None:
    index = Page.read(report.index)
    page = Page.read(report.root / "problems" / "threes-vs-eights.html")
    nines = Page.read(report.root / "problems" / "nines-not-fours.html")
    for html in (index.html, page.html, nines.html):
        assert "<script>" not in html and "alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index.html
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>" in page.html
    assert "&lt;a href=&#34;javascript:alert(4)&#34;&gt;click&lt;/a&gt;" in page.html
    assert "javascript:" not in "".join(page.links)
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in nines.html  # the label
    assert "&lt;img src=x onerror=&#34;alert(3)&#34;&gt;" in nines.html  # the note
    assert [i["src"] for i in nines.images if i["src"] == "x"] == []


def test_each_problem_has_its_status_line_against_the_champion(report: Report) -> None:
    index = Page.read(report.index).html
    rows = problem_metrics(report.registry, model="digits")
    results = pattern_results(report.registry, model="digits")
    lines = {}
    for slug in ("nines-not-fours", "sevens-vs-ones", "threes-as-numbers", "threes-vs-eights"):
        line = problem_status(
            [r for r in rows if r.problem == slug],
            [r for r in results if r.problem == slug],
            version=CANDIDATE,
            since=CHAMPION,
        )
        assert line.startswith("v3: ") and line.endswith(" broken since v2 (champion)"), line
        lines[slug] = line
        assert line.replace("≤", "≤") in index
        problem_page = Page.read(report.root / "problems" / f"{slug}.html").html
        assert line in problem_page
    verdicts = [r.meets_canary for r in rows if r.ref == CANDIDATE]
    assert f"<strong>{verdicts.count(True)}</strong> of 4 problems meet" in index
    failed = [g.problem for g in evaluate(report.registry, CANDIDATE) if not g.passed]
    assert f"{len(failed)}</strong> fail" in index
    assert "the gates of digits@v3 against champion digits@v2." in index
    attention = {r.problem for r in rows if r.ref == CANDIDATE and r.meets_canary is False}
    attention |= set(failed)
    assert ("listed first" in index) == bool(attention)
    links = Page.read(report.index).links
    order = [
        link[len("problems/") : -len(".html")] for link in links if link.startswith("problems/")
    ]
    assert order == sorted(lines, key=lambda slug: (slug not in attention, slug))
    assert "; 1 has no limit or no results." in index  # threes-as-numbers
    assert "no error limit set" in lines["threes-as-numbers"]
    assert "needs ≤ 20% error" in lines["threes-vs-eights"]


def test_the_candidate_is_named_and_its_gates_shown(report: Report) -> None:
    index = Page.read(report.index).html
    assert "candidate <strong>digits@v3</strong>" in index
    assert "champion <strong>digits@v2</strong>" in index
    badges = sum(index.count(f'class="badge {outcome}"') for outcome in ("pass", "review", "fail"))
    assert badges == 4
    page = Page.read(report.root / "problems" / "sevens-vs-ones.html").html
    assert "Gate for digits@v3 against digits@v2" in page
    for part in ("<strong>verdict</strong>", "<strong>rule</strong>", "paired one-sided p = "):
        assert part in page
    assert "95% interval" in page and "<strong>power</strong>: catches " in page


def test_patterns_show_their_provenance_and_the_candidates_answer(report: Report) -> None:
    page = Page.read(report.root / "problems" / "nines-not-fours.html").html
    views = report.registry.patterns.list("nines-not-fours")
    for view in views:
        assert f"<td>{view.original_name}</td>" in page
        assert view.sha256[:12] in page
    assert page.count("<td>contrived</td>") == len(views)
    assert "got on digits@v3" in page


# -- small registries: the edges ----------------------------------------------------------


def small_registry(folder: Path, *, versions: int = 1, replayed: bool = True) -> Registry:
    """One problem of three text patterns, ``versions`` predictions-file versions."""
    registry = Registry.open(
        url=f"sqlite:///{folder}/registry.db", patterns_dir=folder / "patterns", user="tester"
    )
    registry.problems.add("cats-vs-dogs", title="Cats read as dogs", max_error_rate=0.34)
    files = []
    for name, label in (("tabby", "cat"), ("siamese", "cat"), ("beagle", "dog")):
        path = folder / "inputs" / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"a photo of a {name}\n", encoding="utf-8")
        files.append(NewPattern(path, Expectation.exact(label)))
    added = registry.patterns.add("cats-vs-dogs", files).added
    for number in range(1, versions + 1):
        answers = {view.sha256: "cat" if number > 1 else "dog" for view in added}
        register_answers(registry, "pets", f"v{number}", answers, folder / "answers")
    if replayed:
        replay(registry, trigger="test")
    return registry


def test_an_empty_registry_still_gives_an_index_that_says_what_to_do(tmp_path: Path) -> None:
    with Registry.open(url=f"sqlite:///{tmp_path}/r.db", patterns_dir=tmp_path / "p") as registry:
        index = build_report(registry, tmp_path / "site")
    page = Page.read(index)
    assert page.images == []
    assert "No model version is registered yet" in page.html
    assert "No problem is registered yet" in page.html


def test_versions_without_results_give_pages_that_say_replay(tmp_path: Path) -> None:
    registry = small_registry(tmp_path, replayed=False)
    try:
        index = build_report(registry, tmp_path / "site")
    finally:
        registry.close()
    page = Page.read(index.parent / "problems" / "cats-vs-dogs.html")
    assert page.images == []
    assert "v1: no results yet for its 3 patterns" in page.html
    assert "run <code>problem-registry replay</code>" in page.html


def test_many_problems_add_one_small_chart_each_to_the_index(tmp_path: Path) -> None:
    registry = small_registry(tmp_path)
    try:
        for number in range(MULTIPLES_FROM):
            registry.problems.add(f"extra-{number}", max_error_rate=0.5)
        build_report(registry, tmp_path / "site")
    finally:
        registry.close()
    index = Page.read(tmp_path / "site" / "index.html")
    assert {str(image["src"]) for image in index.images} == {
        f"images/{name}.png" for name in ("overview", "heatmap", "multiples")
    }
    with Image.open(tmp_path / "site" / "images" / "multiples.png") as image:
        assert image.format == "PNG" and image.width >= 400


def test_a_classification_problem_shows_its_confusion_as_a_table(report: Report) -> None:
    (row,) = problem_metrics(
        report.registry, versions=[CANDIDATE], problems=["sevens-vs-ones"], confusion=True
    )
    assert row.confusion is not None and row.confusion.labels
    page = Page.read(report.root / "problems" / "sevens-vs-ones.html").html
    assert f"Confusion on {CANDIDATE}" in page and '<table class="confusion">' in page
    for label in row.confusion.labels:
        assert f"<td>{label}</td>" in page  # its precision / recall / F1 row
    ranges = Page.read(report.root / "problems" / "threes-as-numbers.html").html
    assert "Confusion on" not in ranges  # range expectations have no labels to confuse


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by relative path, with its bytes."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_rebuild_draws_again_only_what_changed(tmp_path: Path) -> None:
    """Nothing new: nothing drawn. A new version answering as the last one: the page (its chart
    is in it) and the grid's last block change; the grid's row heads, both contact sheets (same
    tiles, the version named on the page) and nothing else are kept. The folder is then the one
    a fresh build writes."""
    registry = small_registry(tmp_path, versions=2)
    try:
        registry.models.promote("pets", "v1")
        first = write_report(registry, tmp_path / "site")
        unchanged = write_report(registry, tmp_path / "site")
        answers = {view.sha256: "cat" for view in registry.patterns.list("cats-vs-dogs")}
        register_answers(registry, "pets", "v3", answers, tmp_path / "answers")
        replay(registry, trigger="test")
        after = write_report(registry, tmp_path / "site")
        fresh = build_report(registry, tmp_path / "fresh").parent
    finally:
        registry.close()
    page = "problems/cats-vs-dogs"
    sheets = {f"{page}/sheet-latest.png", f"{page}/sheet-champion.png"}
    assert first.kept == [] and first.deleted == [] and sheets <= set(first.drawn)
    assert unchanged.drawn == [] and unchanged.deleted == []
    assert sorted(unchanged.kept) == sorted(first.drawn)
    # The grid's last block gains the column; the rows' heads and the legend stay.
    assert set(after.drawn) == {
        f"{page}.html",
        f"{page}/outcomes-1.png",
        "images/overview.png",
        "images/heatmap.png",
    }
    kept = {f"{page}/outcomes-patterns.png", "images/outcome-legend.png"}
    assert set(after.kept) == sheets | kept and after.deleted == []
    html = (tmp_path / "site" / f"{page}.html").read_text(encoding="utf-8")
    assert "cats-vs-dogs on pets@v3: 2 of 3 right; vs champion pets@v1: 1 newly failing" in html
    assert tree(tmp_path / "site") == tree(fresh)


def test_a_rebuild_deletes_what_the_registry_no_longer_has(tmp_path: Path) -> None:
    """A deleted problem's page and pictures go, and so do pages left by a report written before
    reports kept a manifest; a problem whose patterns were removed loses its pictures."""
    registry = small_registry(tmp_path)
    try:
        registry.problems.add("birds", max_error_rate=0.5)
        path = tmp_path / "inputs" / "robin.txt"
        path.write_text("a robin\n", encoding="utf-8")
        (robin,) = registry.patterns.add(
            "birds", [NewPattern(path, Expectation.exact("bird"))]
        ).added
        replay(registry, trigger="test")
        site = tmp_path / "site"
        write_report(registry, site)
        assert (site / "problems" / "birds" / "outcomes-1.png").is_file()
        (site / "problems" / "older").mkdir()
        (site / "problems" / "older.html").write_text("from an older report", encoding="utf-8")
        (site / "problems" / "older" / "error-rate.png").write_bytes(b"stale")
        registry.patterns.remove(robin.id)
        emptied = write_report(registry, site)
        with sqlite3.connect(tmp_path / "registry.db") as connection:
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("DELETE FROM problem WHERE slug = 'birds'")
        gone = write_report(registry, site)
    finally:
        registry.close()
    assert set(emptied.deleted) == {
        "problems/older.html",
        "problems/older/error-rate.png",
        *(
            f"problems/birds/{name}.png"
            for name in ("outcomes-patterns", "outcomes-1", "sheet-latest")
        ),
    }
    assert gone.deleted == ["problems/birds.html"]
    assert sorted(p.name for p in (site / "problems").iterdir()) == [
        "cats-vs-dogs",
        "cats-vs-dogs.html",
    ]
    assert "birds" not in (site / "index.html").read_text(encoding="utf-8")


def test_worker_processes_write_the_same_report_as_one(tmp_path: Path) -> None:
    registry = small_registry(tmp_path, versions=3)
    try:
        for number in range(MULTIPLES_FROM + 1):  # the index's small multiples too
            registry.problems.add(f"extra-{number}", max_error_rate=0.5)
        one = write_report(registry, tmp_path / "one", jobs=1)
        two = write_report(registry, tmp_path / "two", jobs=3)  # two workers beside this one
    finally:
        registry.close()
    assert sorted(one.drawn) == sorted(two.drawn) and len(one.drawn) > 10
    assert tree(tmp_path / "one") == tree(tmp_path / "two")


def test_a_registry_of_several_models_needs_to_be_told_which(tmp_path: Path) -> None:
    registry = small_registry(tmp_path, replayed=False)
    try:
        register_answers(registry, "other", "v1", {}, tmp_path / "answers")
        with pytest.raises(InvalidValue, match=r"several models \(other, pets\); pass --model"):
            build_report(registry, tmp_path / "site")
        with pytest.raises(InvalidValue, match="not a version of model other"):
            build_report(registry, tmp_path / "site", model="other", candidate="pets@v1")
        with pytest.raises(RegistryError, match="no model version pets@v9"):
            build_report(registry, tmp_path / "site", candidate="pets@v9")
        assert build_report(registry, tmp_path / "site", model="pets").is_file()
    finally:
        registry.close()


def test_cli_report_html_writes_the_same_report_as_the_library(tmp_path: Path) -> None:
    small_registry(tmp_path, versions=2).close()
    result = CliRunner().invoke(
        app,
        [
            "--url", f"sqlite:///{tmp_path}/registry.db",
            "--patterns-dir", str(tmp_path / "patterns"),
            "report", "--html", str(tmp_path / "cli"), "--json",
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2  # --json still prints the rows, and only them
    assert f"report written to {tmp_path / 'cli' / 'index.html'}" in result.stderr
    page = Page.read(tmp_path / "cli" / "problems" / "cats-vs-dogs.html").html
    assert "v2: 2 of 3 right, needs ≤ 34% error: meets it; 2 fixed, 1 broken since v1" in page

    without_json = CliRunner().invoke(
        app,
        [
            "--url", f"sqlite:///{tmp_path}/registry.db",
            "--patterns-dir", str(tmp_path / "patterns"),
            "report", "--html", str(tmp_path / "cli"),
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert without_json.exit_code == 0, without_json.stderr
    assert without_json.stdout == ""  # the pages are the report: no table of every row
    assert "0 files drawn" in without_json.stderr  # nothing changed since the build above

    # The same registry gives the same report, byte for byte (images too): it can be diffed.
    with Registry.open(
        url=f"sqlite:///{tmp_path}/registry.db", patterns_dir=tmp_path / "patterns"
    ) as registry:
        again = build_report(registry, tmp_path / "api").parent
    first = tmp_path / "cli"
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name


def test_pytest_registry_report_writes_the_html_beside_the_summaries(
    tmp_path: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_registry(tmp_path, versions=2).close()
    monkeypatch.setenv("PROBLEM_REGISTRY_PATTERNS", str(tmp_path / "patterns"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    # In process: this module already imported the report (and matplotlib), which pytester keeps.
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
        "--registry", "--registry-url", f"sqlite:///{tmp_path}/registry.db",
        "--candidate", "pets@v2", "--registry-report", str(tmp_path / "ci"),
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    assert {p.name for p in (tmp_path / "ci").iterdir()} >= {
        "summary.json",
        "summary.md",
        "index.html",
        "style.css",
    }
    index = Page.read(tmp_path / "ci" / "index.html").html
    assert "candidate <strong>pets@v2</strong>" in index
    assert "v2: 2 of 3 right, needs ≤ 34% error: meets it; 2 fixed, 1 broken since v1" in index


def test_cli_report_names_a_candidate_and_a_baseline_for_the_html_report(tmp_path: Path) -> None:
    small_registry(tmp_path, versions=3).close()
    base = [
        "--url",
        f"sqlite:///{tmp_path}/registry.db",
        "--patterns-dir",
        str(tmp_path / "patterns"),
    ]

    def run(*args: str) -> object:
        return CliRunner().invoke(app, [*base, "report", *args], catch_exceptions=False)

    result = run(
        "--html", str(tmp_path / "site"), "--candidate", "pets@v3", "--baseline", "pets@v1"
    )
    assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]
    index = Page.read(tmp_path / "site" / "index.html").html
    assert "the gates of pets@v3 against pets@v1" in index
    page = Page.read(tmp_path / "site" / "problems" / "cats-vs-dogs.html").html
    assert "Gate for pets@v3 against pets@v1" in page and "since v1" in page
    for args, code in (
        (("--candidate", "pets@v3"), 2),  # the table has no candidate: only --html does
        (("--html", str(tmp_path / "other"), "--baseline", "pets@v1"), 2),
        (("--html", str(tmp_path / "other"), "--candidate", "pets@v3", "--baseline", "pets@v9"), 1),
    ):
        refused = run(*args)
        assert refused.exit_code == code, refused.stderr
        assert "Traceback" not in refused.stderr
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").iterdir())
