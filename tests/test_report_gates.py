"""The HTML report colours and words each problem as its candidate's gate decided (issue 19 item 5).

One small registry, three problems of 15 text patterns under a 50% error limit, four
predictions-file versions that agree with each other until the last: on ``pets@v4`` one problem
breaks 6 patterns (40% wrong: within its limit, yet its gate fails), one breaks 2 (its gate asks
a review) and one breaks none (it passes). Built once for the module; each test reads the pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from matplotlib.colors import to_hex

from problem_registry.expectations import Expectation
from problem_registry.replay.engine import replay
from problem_registry.report.builder import build_report
from problem_registry.report.charts import small_multiples
from problem_registry.report.charts.style import BLUE, VERMILLION
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from problem_registry.verdicts.gates import evaluate
from problem_registry.verdicts.metrics import problem_metrics
from tests.digit_registry import register_answers

BROKEN = {"breaks-six": 6, "breaks-two": 2, "breaks-none": 0}
VERSIONS = 4
CANDIDATE = f"pets@v{VERSIONS}"


@dataclass
class Gated:
    folder: Path
    registry: Registry

    def page(self, site: str, slug: str | None = None) -> str:
        path = self.folder / site / ("index.html" if slug is None else f"problems/{slug}.html")
        return path.read_text(encoding="utf-8")


def gated_registry(folder: Path) -> Registry:
    registry = Registry.open(
        url=f"sqlite:///{folder}/registry.db", patterns_dir=folder / "patterns", user="tester"
    )
    answers: dict[int, dict[str, object]] = {v: {} for v in range(1, VERSIONS + 1)}
    for slug, broken in BROKEN.items():
        registry.problems.add(slug, max_error_rate=0.5)
        files = []
        for number in range(15):
            path = folder / "inputs" / f"{slug}-{number}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{slug} {number}\n", encoding="utf-8")
            files.append(NewPattern(path, Expectation.exact("cat")))
        for n, view in enumerate(registry.patterns.add(slug, files).added):
            for version in range(1, VERSIONS):
                answers[version][view.sha256] = "cat"
            answers[VERSIONS][view.sha256] = "dog" if n < broken else "cat"
    for version in range(1, VERSIONS + 1):
        register_answers(registry, "pets", f"v{version}", answers[version], folder / "answers")
    replay(registry, trigger="test")
    registry.models.promote("pets", "v2")
    return registry


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gated]:
    folder = tmp_path_factory.mktemp("gated")
    registry = gated_registry(folder)
    try:
        build_report(registry, folder / "candidate", candidate=CANDIDATE)
        build_report(registry, folder / "latest")
        yield Gated(folder, registry)
    finally:
        registry.close()


def _row(index: str, slug: str) -> str:
    """The index's table row of ``slug``, from its ``<tr`` to its ``</tr>``."""
    match = re.search(rf'<tr class="[^"]*">\s*<td class="problem"><a href="problems/{slug}\.html"'
                      r".*?</tr>", index, re.S)  # fmt: skip
    assert match, slug
    return match.group(0)


def test_the_registry_holds_one_gate_of_each_outcome(gated: Gated) -> None:
    outcomes = {g.problem: g.outcome.value for g in evaluate(gated.registry, CANDIDATE)}
    assert outcomes == {"breaks-six": "fail", "breaks-two": "review", "breaks-none": "pass"}
    rows = problem_metrics(gated.registry, versions=[CANDIDATE])
    assert all(row.meets_canary for row in rows)  # every one within its error limit


def test_a_failed_gate_is_drawn_as_a_failure_and_never_said_to_meet_it(gated: Gated) -> None:
    index = gated.page("candidate")
    row = _row(index, "breaks-six")
    assert row.startswith('<tr class="gate-fail">')
    assert "meets it" not in row
    assert "v4: 9 of 15 right, needs ≤ 50% error; fails its gate: flips (labels)" in row
    page = gated.page("candidate", "breaks-six")
    status = re.search(r'<p class="status ([^"]+)">([^<]*)</p>', page)
    assert status and status.group(1) == "gate-fail"
    assert "meets it" not in status.group(2) and "fails its gate" in status.group(2)
    # Beside the chart, which draws the error limit only, the gate's verdict in its colour.
    assert (
        '<figcaption class="gate-fail">pets@v4 fails its gate against pets@v2 (flips (labels)),'
        " though within its error limit" in page
    )
    # The stylesheet draws that class in the fail colour, as it draws a missed limit.
    css = (gated.folder / "candidate" / "style.css").read_text(encoding="utf-8")
    assert re.search(r"p\.status\.misses, p\.status\.gate-fail \{ border-color: var\(--fail\)", css)


def test_status_colours_follow_the_gate_verdict(gated: Gated) -> None:
    index = gated.page("candidate")
    expected = {"breaks-six": "gate-fail", "breaks-two": "gate-review", "breaks-none": "gate-pass"}
    for slug, colour in expected.items():
        assert _row(index, slug).startswith(f'<tr class="{colour}">'), slug
        page = gated.page("candidate", slug)
        assert f'<p class="status {colour}">' in page, slug
    review = _row(index, "breaks-two")
    assert "meets it; its gate asks a review: flips (labels)" in review
    # Without a candidate there is no gate: the colour is the error limit's.
    latest = gated.page("latest")
    assert _row(latest, "breaks-six").startswith('<tr class="meets">')


def test_the_index_status_names_the_version_its_header_names(gated: Gated) -> None:
    for site, role in (("latest", "latest"), ("candidate", "candidate")):
        index = gated.page(site)
        assert f"{role} <strong>pets@v4</strong> · champion <strong>pets@v2</strong>" in index
        assert "compared with champion pets@v2" in index
        assert index.count("broken since v2 (champion)") == len(BROKEN), site
        assert "since v3" not in index


def test_a_named_baseline_is_named_in_the_header_and_every_line(gated: Gated) -> None:
    site = gated.folder / "baseline"
    build_report(gated.registry, site, candidate=CANDIDATE, baseline="pets@v3")
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "compared with baseline pets@v3" in index
    assert index.count("broken since v3;") + index.count("broken since v3<") == len(BROKEN)
    assert "the gates of pets@v4 against pets@v3" in index
    page = (site / "problems" / "breaks-six.html").read_text(encoding="utf-8")
    assert "Gate for pets@v4 against pets@v3" in page


def test_the_small_multiples_draw_a_failed_gate_in_the_fail_colour(gated: Gated) -> None:
    rows = problem_metrics(gated.registry, model="pets")
    figure = small_multiples(rows, failing=["breaks-six"])
    lines = [line for line in figure.axes[0].lines if len(line.get_xdata()) > 2]  # not rules
    colours = [to_hex(line.get_color()) for line in lines]
    assert colours.count(to_hex(VERMILLION)) == 1
    assert colours.count(to_hex(BLUE)) == len(BROKEN) - 1
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "misses it or fails its gate" in legend


def test_the_plugin_report_judges_its_candidate_against_its_baseline(
    gated: Gated, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBLEM_REGISTRY_PATTERNS", str(gated.folder / "patterns"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    ci = gated.folder / "ci"
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
        "--registry", "--registry-url", f"sqlite:///{gated.folder}/registry.db",
        "--candidate", CANDIDATE, "--baseline", "pets@v3", "--registry-report", str(ci),
    )  # fmt: skip
    result.assert_outcomes(passed=2, failed=1)
    index = (ci / "index.html").read_text(encoding="utf-8")
    assert "candidate <strong>pets@v4</strong>" in index
    assert "compared with baseline pets@v3" in index
    assert _row(index, "breaks-six").startswith('<tr class="gate-fail">')
