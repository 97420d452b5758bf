"""``pytest --registry`` end to end: a real registry, real scikit-learn versions, real pytest runs.

The digits registry (tests/digit_registry.py) holds four problems over held-out ``load_digits``
rows and three genuinely different versions: v1 (naive Bayes on 150 rows), v2 (a heavily
regularised logistic regression), v3 (a scaled logistic regression on 1,200 rows).
"""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sqlalchemy as sa

from problem_registry.expectations import Expectation
from problem_registry.pytest_plugin.options import RegistryOptions
from problem_registry.pytest_plugin.session import RegistrySession
from problem_registry.refs import ModelRef
from problem_registry.replay.engine import replay
from problem_registry.verdicts.metrics import pattern_results
from problem_registry.verdicts.stats import wilson_interval
from tests.digit_registry import Digits, register_answers
from tests.models import digits as digit_models

CANDIDATE = "digits@v3"
# Without the cache and hypothesis plugins: pytester restores sys.modules after every run, so
# hypothesis would be imported afresh (seconds) by each in-process run.
NO_SLOW_PLUGINS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


@pytest.fixture
def run_registry(
    digits: Digits,
    database_url: str,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
):
    """Run ``pytest --registry`` in a fresh project folder against the digits registry."""
    monkeypatch.setenv("PROBLEM_REGISTRY_PATTERNS", str(digits.registry.store.root))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    # The loaders live in this repository's tests package; subprocess runs must find it too.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))

    def run(*args: str, subprocess: bool = False) -> pytest.RunResult:
        argv = ["--registry", "--registry-url", database_url, *NO_SLOW_PLUGINS, *args]
        if subprocess:
            return pytester.runpytest_subprocess(*argv)
        return pytester.runpytest_inprocess(*argv)

    return run


def _champion(digits: Digits, version: str) -> None:
    digits.registry.models.promote("digits", version)


def test_one_test_per_problem_and_gates_pass_on_the_best_model(
    digits: Digits,
    run_registry,
) -> None:
    _champion(digits, "v2")
    result = run_registry("--candidate", CANDIDATE, "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*problem-registry::nines-not-fours PASSED*",
            "*problem-registry::sevens-vs-ones PASSED*",
            "*problem-registry::threes-as-numbers PASSED*",
            "*problem-registry::threes-vs-eights PASSED*",
            "*problem registry*",
            "candidate digits@v3 against digits@v2",
            "problem*baseline*candidate*change*broken/fixed*p*catches*verdict",
        ]
    )


def test_the_canary_fails_a_weak_candidate_with_the_failing_patterns(
    digits: Digits,
    run_registry,
) -> None:
    result = run_registry("--candidate", "digits@v1")
    expected = {
        slug: digits.expected_error_rate(slug, "v1")
        for slug in ("threes-vs-eights", "sevens-vs-ones")
    }
    text = result.stdout.str()
    failed = flagged = 0
    for slug, rate in expected.items():
        limit = {"threes-vs-eights": 0.2, "sevens-vs-ones": 0.3}[slug]
        n = len(digits.cases[slug])
        low, _high = wilson_interval(round(rate * n), n)
        if low > limit:  # confidently over the limit: CI red, the failing patterns listed
            failed += 1
            assert f"{slug}: FAIL (no baseline: canary only): canary (Wilson" in text
            assert "failing patterns (file | expected | got | baseline | verdict):" in text
            assert "digit-" in text  # the failing files are named
        elif rate > limit:  # only the point over: CI green, a warning lists it for a person
            flagged += 1
            assert f"{slug}: REVIEW (no baseline: canary only)" in text
            assert "ReviewWarning" in text
    assert failed + flagged >= 1  # v1 is over at least one limit
    assert result.parseoutcomes().get("failed", 0) == failed
    assert "Traceback" not in text


def test_the_regression_gate_fails_a_candidate_that_breaks_what_the_champion_got_right(
    digits: Digits,
    run_registry,
) -> None:
    _champion(digits, "v3")
    registry = digits.registry
    replay(registry)
    # digits@bad answers every threes-vs-eights pattern "0" and every other pattern as v3 did:
    # far more breaks than v1 and v2's history of flips explains.
    answers = {}
    for result in pattern_results(registry, versions=["digits@v3"]):
        answers[result.sha256] = result.predicted
    for view in registry.patterns.list("threes-vs-eights"):
        answers[view.sha256] = "0"
    register_answers(registry, "digits", "bad", answers, digits.inputs.parent / "answers")
    result = run_registry("--candidate", "digits@bad")
    text = result.stdout.str()
    assert "threes-vs-eights: FAIL vs digits@v3: confidently worse" in text, text
    assert "newly failing" in text and "rule: flips (labels)" in text
    # threes-as-numbers shares three files with threes-vs-eights: it broke there too.
    assert result.parseoutcomes()["failed"] == 2 and "sevens-vs-ones: FAIL" not in text


def test_a_second_run_predicts_nothing(digits: Digits, run_registry) -> None:
    run_registry("--candidate", CANDIDATE)
    first = dict(digit_models.CALLS)
    assert first["loads"] == 3  # the candidate and both prior versions were replayed
    digit_models.CALLS.clear()
    result = run_registry("--candidate", CANDIDATE)
    assert dict(digit_models.CALLS) == {}  # no model loaded, nothing predicted
    result.stdout.fnmatch_lines(["replay: 0 predicted, * already stored*"])


def test_relabelling_changes_the_rates_without_calling_the_model(
    digits: Digits,
    run_registry,
    tmp_path: Path,
) -> None:
    run_registry("--candidate", CANDIDATE, "--registry-report", str(tmp_path / "before"))
    before = json.loads((tmp_path / "before" / "summary.json").read_text())
    rate = {p["problem"]: p["metrics"]["error_rate"] for p in before["problems"]}
    # Expect the impossible of every threes-vs-eights pattern: all now wrong.
    for pattern in digits.registry.patterns.list("threes-vs-eights"):
        digits.registry.patterns.relabel(pattern.id, Expectation.exact("not-a-digit"))
    digit_models.CALLS.clear()
    result = run_registry("--candidate", CANDIDATE, "--registry-report", str(tmp_path / "after"))
    assert dict(digit_models.CALLS) == {}
    after = json.loads((tmp_path / "after" / "summary.json").read_text())
    new_rate = {p["problem"]: p["metrics"]["error_rate"] for p in after["problems"]}
    assert new_rate["threes-vs-eights"] == 1.0 != rate["threes-vs-eights"]
    assert new_rate["sevens-vs-ones"] == rate["sevens-vs-ones"]
    assert "threes-vs-eights: FAIL" in result.stdout.str()  # 12 of 12 wrong: confidently over


def test_reported_numbers_equal_scikit_learn_on_the_same_rows(
    digits: Digits,
    run_registry,
    tmp_path: Path,
) -> None:
    run_registry("--candidate", CANDIDATE, "--registry-report", str(tmp_path / "report"))
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    for problem in summary["problems"]:
        assert problem["metrics"]["error_rate"] == pytest.approx(
            digits.expected_error_rate(problem["problem"], "v3")
        )


def test_k_selects_problems_by_name_and_marker_selects_them_all(
    digits: Digits,
    run_registry,
) -> None:
    run_registry("--candidate", CANDIDATE, "-k", "threes").assert_outcomes(passed=2, deselected=2)
    run_registry("--candidate", CANDIDATE, "-m", "problem_registry").assert_outcomes(passed=4)
    run_registry("--candidate", CANDIDATE, "--registry-problems", "sevens-vs-ones").assert_outcomes(
        passed=1
    )


def test_junit_xml_carries_the_error_rates(
    digits: Digits,
    run_registry,
    tmp_path: Path,
) -> None:
    xml = tmp_path / "junit.xml"
    run_registry("--candidate", CANDIDATE, f"--junitxml={xml}")
    cases = ET.parse(xml).getroot().iter("testcase")
    properties = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in cases
    }
    assert set(properties) == {
        "nines-not-fours",
        "sevens-vs-ones",
        "threes-as-numbers",
        "threes-vs-eights",
    }
    for slug, props in properties.items():
        assert float(props["error_rate"]) == pytest.approx(
            digits.expected_error_rate(slug, "v3"), abs=1e-6
        )
        assert props["candidate"] == CANDIDATE
        # Every verdict carries its outcome, rule, paired p-value, interval and power.
        assert props["outcome"] in {"pass", "review", "fail"} and props["rule"]
        assert 0 <= float(props["p_value"]) <= 1
        assert -1 <= float(props["change_low"]) <= float(props["change_high"]) <= 1
        assert props["detectable"] == "" or 0 < float(props["detectable"]) <= 0.5


def test_markdown_summary_goes_to_the_ci_job_page(
    digits: Digits,
    run_registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(page))
    run_registry("--candidate", CANDIDATE)
    text = page.read_text()
    assert text.startswith("### ") and "| problem | baseline | candidate |" in text
    assert "threes-vs-eights" in text


def test_each_session_records_a_run(digits: Digits, run_registry) -> None:
    run_registry("--candidate", CANDIDATE)
    with digits.registry.reading() as session:
        runs = session.exec(sa.text("SELECT status, trigger, message FROM run")).all()  # type: ignore[call-overload]
    assert [(status, trigger) for status, trigger, _ in runs] == [("completed", "pytest")]
    assert "4 problem(s) tested" in runs[0][2]


def test_candidate_registered_from_the_command_line(
    digits: Digits,
    run_registry,
) -> None:
    artifact = digits.trained.artifacts["v3"]
    result = run_registry(
        "--candidate",
        "digits@v4",
        "--candidate-loader",
        "tests.models.digits:load",
        "--candidate-artifact",
        str(artifact),
    )
    result.assert_outcomes(passed=4)
    assert [v.version for v in digits.registry.models.list("digits")] == ["v1", "v2", "v3", "v4"]


def test_a_non_deterministic_candidate_is_asked_again_and_its_flaky_patterns_named(
    digits: Digits, run_registry
) -> None:
    artifact = digits.trained.artifacts["v3"]
    result = run_registry(
        "--candidate", "digits@noisy", "--candidate-loader", "tests.models.digits:load_noisy",
        "--candidate-artifact", str(artifact), "--candidate-repeats", "3",
    )  # fmt: skip
    assert digits.registry.models.get("digits", "noisy").repeats == 3
    assert "flaky (answers changed between repeats)" in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--candidate", "digits@v9"], "no model version digits@v9"),
        (["--candidate", "nonsense"], "is not NAME@VERSION"),
        (["--candidate", CANDIDATE, "--registry-problems", "nope"], "no problem 'nope'"),
        (
            ["--candidate", "digits@v9", "--candidate-loader", "nowhere.at_all:load"],
            "problem-registry: --candidate-loader nowhere.at_all:load: cannot import",
        ),
        (
            ["--candidate", "digits@v9", "--candidate-loader", "not a loader"],
            "problem-registry: --candidate-loader 'not a loader' is not module:callable",
        ),
        (["--candidate", CANDIDATE, "--candidate-repeats", "3"], "needs --candidate-loader"),
        (
            ["--candidate", "digits@v9", "--candidate-loader", "a:b", "--candidate-repeats", "x"],
            "--candidate-repeats must be a whole number, got 'x'",
        ),
    ],
)
def test_bad_options_are_usage_errors_without_traceback(
    digits: Digits,
    run_registry,
    args: list[str],
    message: str,
) -> None:
    result = run_registry(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_options_are_read_once_into_a_frozen_object_and_flags_beat_ini_values(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        "[pytest]\n"
        "registry = true\n"
        "registry_url = sqlite:///from-ini.db\n"
        "registry_candidate = digits@v1\n"
        "registry_problems = sevens-vs-ones, nines-not-fours,\n"
        "registry_report = ini-report\n"
    )
    config = pytester.parseconfigure(
        *NO_SLOW_PLUGINS, "--candidate", "digits@v3", "--registry-report", "flag-report"
    )
    session = config.pluginmanager.get_plugin(RegistrySession.NAME)
    assert isinstance(session, RegistrySession)

    assert session.options == RegistryOptions(
        url="sqlite:///from-ini.db",
        candidate=ModelRef("digits", "v3"),
        problems=("nines-not-fours", "sevens-vs-ones"),
        report_dir=pytester.path / "flag-report",
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.options.candidate = ModelRef("digits", "v2")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("ini", "args", "message"),
    [
        ("", ["--candidate", "nonsense"], "'nonsense' is not NAME@VERSION"),
        ("registry_candidate = digits\n", [], "'digits' is not NAME@VERSION"),
        ("", ["--candidate-loader", "m:load"], "--candidate-loader needs --candidate"),
        (
            "",
            ["--candidate", CANDIDATE, "--candidate-artifact", "model.joblib"],
            "--candidate-artifact needs --candidate-loader",
        ),
    ],
)
def test_a_bad_option_is_refused_before_the_registry_is_opened_or_anything_collected(
    pytester: pytest.Pytester, ini: str, args: list[str], message: str
) -> None:
    pytester.makeini("[pytest]\n" + ini)
    pytester.makeconftest(
        "import pytest\n"
        "@pytest.hookimpl(tryfirst=True)\n"
        "def pytest_sessionstart(session):\n"
        "    open('session-started', 'w').close()\n"
    )
    pytester.makepyfile("def test_ok():\n    assert True\n")
    url = f"sqlite:///{pytester.path / 'registry.db'}"
    result = pytester.runpytest_inprocess(
        "--registry", "--registry-url", url, *NO_SLOW_PLUGINS, *args
    )

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"problem-registry: {message}" in result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert not (pytester.path / "session-started").exists()
    assert not (pytester.path / "registry.db").exists()


def test_a_raising_model_is_contained(
    digits: Digits,
    run_registry,
) -> None:
    fragile = digits.registry.patterns.list("sevens-vs-ones")[0]
    digit_models.FRAGILE.add(
        __import__("PIL.Image").Image.open(digits.registry.store.root / fragile.file).tobytes()
    )
    digits.registry.models.register(
        "digits",
        "v4",
        loader="tests.models.digits:load_fragile",
        artifact=digits.trained.artifacts["v3"],
    )
    result = run_registry("--candidate", "digits@v4")
    text = result.stdout.str()
    assert "sevens-vs-ones" in text
    assert "1 errored" in text or "errored" in text
    assert "warning: digits@v4: 1 errored (first: " in text  # where to look (issue 19)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)


def test_without_registry_flag_the_plugin_does_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    assert True\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "problem registry" not in result.stdout.str()


def _stored(database_url: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [
                tuple(row)
                for row in connection.exec_driver_sql(
                    "SELECT model_version_id, file_id, predicted, value, error FROM result "
                    "ORDER BY model_version_id, file_id"
                )
            ]
    finally:
        engine.dispose()


def _count_evaluations(pytester: pytest.Pytester, log: Path) -> None:
    """A conftest for the runs that writes each evaluation's problems to ``log``, a line each."""
    pytester.makeconftest(
        "import problem_registry.pytest_plugin.session as session\n"
        "real = session.evaluate\n"
        "def counted(*args, **kwargs):\n"
        f"    with open({str(log)!r}, 'a') as log:\n"
        "        log.write(','.join(kwargs['problems']) + '\\n')\n"
        "    return real(*args, **kwargs)\n"
        "session.evaluate = counted\n"
    )


@pytest.mark.slow
def test_xdist_gives_the_same_numbers_summary_and_rows(
    digits: Digits,
    run_registry,
    database_url: str,
    tmp_path: Path,
    pytester: pytest.Pytester,
) -> None:
    """And the workers and the controller read one decision: the gates are evaluated once."""
    _champion(digits, "v2")
    calls = tmp_path / "evaluations"
    _count_evaluations(pytester, calls)
    plain = run_registry(
        "--candidate", CANDIDATE, "--registry-report", str(tmp_path / "plain"), subprocess=True
    )
    plain_rows = _stored(database_url)
    calls.unlink()
    with digits.registry.writing() as session:
        session.execute(sa.text("DELETE FROM result"))
        session.execute(sa.text("DELETE FROM run"))
    parallel = run_registry(
        "--candidate",
        CANDIDATE,
        "--registry-report",
        str(tmp_path / "parallel"),
        "-n",
        "2",
        subprocess=True,
    )
    assert len(calls.read_text().splitlines()) == 1
    assert _stored(database_url) == plain_rows
    assert (tmp_path / "plain" / "summary.md").read_text() == (
        tmp_path / "parallel" / "summary.md"
    ).read_text()
    summary = json.loads((tmp_path / "parallel" / "summary.json").read_text())
    plain_summary = json.loads((tmp_path / "plain" / "summary.json").read_text())
    summary.pop("run_id"), plain_summary.pop("run_id")
    assert summary == plain_summary
    plain.assert_outcomes(passed=4)
    parallel.assert_outcomes(passed=4)

    def table(result: pytest.RunResult) -> list[str]:
        lines = result.stdout.lines
        start = next(i for i, line in enumerate(lines) if line.startswith("candidate digits@v3"))
        return lines[start : start + 6]

    assert table(parallel) == table(plain)


def test_a_baseline_other_than_the_champion_is_compared_with(
    digits: Digits,
    run_registry,
    tmp_path: Path,
) -> None:
    _champion(digits, "v2")
    report = tmp_path / "report"
    result = run_registry(
        "--candidate", CANDIDATE, "--baseline", "digits@v1", "--registry-report", str(report)
    )
    result.stdout.fnmatch_lines(["candidate digits@v3 against digits@v1"])
    summary = json.loads((report / "summary.json").read_text())
    assert {p["champion"] for p in summary["problems"]} == {"digits@v1"}
    assert all(p["verdict"]["outcome"] in {"pass", "review", "fail"} for p in summary["problems"])
    unknown = run_registry("--candidate", CANDIDATE, "--baseline", "digits@v9")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    assert "no model version digits@v9" in unknown.stderr.str()


@pytest.mark.slow
def test_under_xdist_k_evaluates_only_the_selected_problems(
    digits: Digits, run_registry, tmp_path: Path, pytester: pytest.Pytester
) -> None:
    """-k narrows the run to what it selects (the whole run's single evaluation is counted in
    the xdist test above)."""
    _champion(digits, "v2")
    calls = tmp_path / "evaluations"
    _count_evaluations(pytester, calls)
    one = run_registry("--candidate", CANDIDATE, "-n", "2", "-k", "sevens", subprocess=True)
    one.assert_outcomes(passed=1)
    assert calls.read_text().splitlines() == ["sevens-vs-ones"]


# -- issue 19 item 8: what a new user's `pytest --registry` run says -----------------------------


def test_a_registry_option_without_registry_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    assert True\n")
    result = pytester.runpytest_inprocess(*NO_SLOW_PLUGINS, "--candidate", "digits@v3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "problem-registry: --candidate needs --registry" in result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_registry_in_a_folder_without_one_says_run_init(pytester: pytest.Pytester) -> None:
    url = f"sqlite:///{pytester.path / 'registry.db'}"
    result = pytester.runpytest_inprocess("--registry", "--registry-url", url, *NO_SLOW_PLUGINS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "problem-registry: no registry here" in result.stderr.str()
    assert "run `problem-registry init`" in result.stderr.str()
    assert not (pytester.path / "registry.db").exists()


def test_the_header_names_the_candidate_picked_for_you_and_why(run_registry) -> None:
    result = run_registry()  # no --candidate: the newest version, and no champion yet
    result.stdout.fnmatch_lines(
        [
            "problem-registry: candidate digits@v3 (the newest registered version, as no "
            "--candidate was given; pass --candidate NAME@VERSION to test another); digits has "
            "no champion yet, so canary only; promote one with `problem-registry model promote` or "
            "pass --baseline NAME@VERSION",
        ]
    )


def test_a_candidate_that_is_the_champion_says_so(digits: Digits, run_registry) -> None:
    _champion(digits, "v3")
    result = run_registry("--candidate", CANDIDATE)
    text = result.stdout.str()
    assert "candidate digits@v3 (digits@v3 is the champion: no baseline to compare with" in text
    assert "no champion yet" not in text and "no baseline yet" not in text
    _champion(digits, "v2")
    result = run_registry("--candidate", CANDIDATE)
    result.stdout.fnmatch_lines(
        [
            "problem-registry: candidate digits@v3 (given by --candidate); compared with "
            "digits@v2 (the champion of digits)"
        ]
    )


def test_registry_report_prints_its_path_and_summary_md_lists_failing_patterns(
    digits: Digits, run_registry, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    result = run_registry("--candidate", "digits@v1", "--registry-report", str(report))
    result.stdout.fnmatch_lines([f"report: {report / 'index.html'} (and summary.md, summary.json)"])
    summary = json.loads((report / "summary.json").read_text())
    flagged = [p for p in summary["problems"] if p["outcome"] != "pass" and p["failing"]]
    assert flagged  # v1 misses at least one limit
    markdown = (report / "summary.md").read_text()
    assert "| pattern | polarity | expected | got | baseline | verdict |" in markdown
    for problem in flagged:
        assert f"#### {problem['problem']}: " in markdown
        for pattern in problem["failing"]:
            assert f"| {pattern['file']} | {pattern['polarity']} | {pattern['expected']} |" in (
                markdown
            )


def test_problem_tags_select_items_with_m_and_k(digits: Digits, run_registry) -> None:
    digits.registry.problems.edit("threes-vs-eights", tags=["low-light", "skip"])
    digits.registry.problems.edit("sevens-vs-ones", tags=["low-light"])
    picked = run_registry("--candidate", CANDIDATE, "--strict-markers", "-m", "low_light", "-v")
    picked.assert_outcomes(passed=2, deselected=2)
    picked.stdout.fnmatch_lines(["*threes-vs-eights PASSED*"])  # tagged "skip", still run
    by_keyword = run_registry("--candidate", CANDIDATE, "-k", "tag_skip")
    by_keyword.assert_outcomes(passed=1, deselected=3)
    # Workers collect from the controller's snapshot: the same markers, the same selection.
    parallel = run_registry(
        "--candidate", CANDIDATE, "--strict-markers", "-m", "low_light", "-n", "2", subprocess=True
    )
    parallel.assert_outcomes(passed=2)
