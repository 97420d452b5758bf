"""Per-label scores: stored with each result, read back as the expected answer's probability.

A model may answer ``{"label": L, "scores": {label: probability}}`` (a row of ``predict_proba``);
the scores are stored (``result.scores``) and read back against the pattern's *current*
expectation (``PatternResult.p_expected``), on SQLite and PostgreSQL. Hostile scores are one
input's error, never a crash or a lost batch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from problem_registry.adapters import Prediction, normalise, scores_json
from problem_registry.adapters.predictions import read_predictions
from problem_registry.enums import ExpectKind, LoaderKind
from problem_registry.errors import InvalidValue
from problem_registry.expectations import Expectation
from problem_registry.replay.engine import replay
from problem_registry.store import migrations
from problem_registry.store.registry import Registry
from problem_registry.verdicts.pattern_grid import pattern_results
from tests.digit_registry import Digits
from tests.models import digits as models

SCORED = "tests.models.digits:load_with_scores"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def probabilities(digits: Digits, version: str) -> dict[str, tuple[list[str], np.ndarray]]:
    """Pattern sha256 -> (class labels, predict_proba row), straight from scikit-learn."""
    model = digits.trained.models[version]
    classes = [str(c) for c in model.classes_]
    rows: dict[str, tuple[list[str], np.ndarray]] = {}
    for cases in digits.cases.values():
        for case in cases:
            x = digits.trained.test_x[case.index]
            rows[sha256_of(digits.file_of(case.index))] = (classes, model.predict_proba([x])[0])
    return rows


def oracle(expectation: Expectation, classes: list[str], row: np.ndarray) -> float | None:
    """The probability of the expectation from predict_proba, written out independently."""
    p = dict(zip(classes, row.tolist(), strict=True))
    if expectation.kind is ExpectKind.range:
        return None
    if expectation.kind is ExpectKind.exact:
        return p.get(expectation.labels[0], 0.0)
    total = sum(p.get(label, 0.0) for label in expectation.labels)
    return min(total, 1.0) if expectation.kind is ExpectKind.any else max(1.0 - total, 0.0)


def expectations_by_file(digits: Digits) -> dict[tuple[str, str], Expectation]:
    return {
        (slug, sha256_of(digits.file_of(case.index))): case.expectation
        for slug, cases in digits.cases.items()
        for case in cases
    }


def stored_scores(registry: Registry) -> list[tuple[int, str | None, str | None]]:
    with registry.engine.connect() as connection:
        return list(
            connection.exec_driver_sql(
                "SELECT model_version_id, scores, error FROM result"
                " ORDER BY model_version_id, file_id"
            )
        )


# -- the output forms ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            {"label": "cat", "scores": {"dog": 0.25, "cat": 0.75}},
            Prediction("cat", None, 0.75, {"cat": 0.75, "dog": 0.25}),
        ),
        # No label: the argmax; a tie goes to the first label in text order.
        ({"scores": {"b": 0.5, "a": 0.5}}, Prediction("a", None, 0.5, {"a": 0.5, "b": 0.5})),
        ({"scores": {"3": 0.9, "8": 0.1}}, Prediction("3", 3.0, 0.9, {"3": 0.9, "8": 0.1})),
        # Integer (and numpy) labels become text, as a label does.
        (
            {
                "label": np.int64(8),
                "scores": dict(zip(np.array([3, 8]), np.array([0.4, 0.6]), strict=True)),
            },
            Prediction("8", 8.0, 0.6, {"3": 0.4, "8": 0.6}),
        ),
        (
            {"scores": {True: 0.4, False: 0.6}},
            Prediction("false", None, 0.6, {"false": 0.6, "true": 0.4}),
        ),
        # A few ULP over 1 (a float32 softmax) is read as 1; -0.0 as 0.
        (
            {"scores": {"a": float(np.float32(1.0000001)), "b": -0.0}},
            Prediction("a", None, 1.0, {"a": 1.0, "b": 0.0}),
        ),
        # An explicit confidence wins; a label the scores leave out has no default confidence.
        (
            {"label": "a", "confidence": 0.3, "scores": {"a": 0.9}},
            Prediction("a", None, 0.3, {"a": 0.9}),
        ),
        ({"label": "z", "scores": {"a": 0.9}}, Prediction("z", None, None, {"a": 0.9})),
        ({"label": "cat", "confidence": 0.5}, Prediction("cat", None, 0.5, None)),
    ],
)
def test_scored_outputs_are_normalised_with_sorted_scores(
    output: object, expected: Prediction
) -> None:
    normalised = normalise(output)
    assert normalised == expected
    if normalised.scores is not None:
        assert list(normalised.scores) == sorted(normalised.scores)
        assert json.loads(scores_json(normalised.scores)) == normalised.scores


HOSTILE_SCORES: dict[str, tuple[object, str]] = {
    "nan": ({"scores": {"3": float("nan"), "8": 0.5}}, "score nan of label '3'"),
    "negative": ({"label": "3", "scores": {"3": -0.1}}, "score -0.1 of label '3'"),
    "two": ({"scores": {"3": 2}}, "score 2.0 of label '3'"),
    "infinite": ({"scores": {"3": float("inf")}}, "score inf of label '3'"),
    "too-many": ({"scores": {str(i): 1e-4 for i in range(10_000)}}, "10,000 labels"),
    "nul-label": ({"scores": {"3\x00": 0.5}}, "contains a NUL"),
    "surrogate-label": ({"scores": {"\udcff": 0.5}}, "not valid UTF-8"),
    "not-a-dict": ({"label": "3", "scores": [0.1, 0.9]}, "is a list"),
    "text-score": ({"scores": {"3": "high"}}, "'high' of label '3' is not a number"),
    "float-label": ({"scores": {1.5: 0.5}}, "label 1.5 is not a string or an integer"),
    "twice": ({"scores": {3: 0.5, "3": 0.5}}, "label '3' twice"),
    "empty": ({"scores": {}}, "empty"),
    "nul-in-the-label": (
        {"label": "3\x00", "scores": {"3": 0.5}},
        "label '3\\\\x00' contains a NUL",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE_SCORES))
def test_hostile_scores_are_refused_with_the_reason(name: str) -> None:
    output, reason = HOSTILE_SCORES[name]
    with pytest.raises(ValueError, match=reason):
        normalise(output)


# -- Expectation.probability -----------------------------------------------------------------

_LABELS = st.sampled_from(["a", "b", "c", "d", "é", "3"])
_SCORES = st.dictionaries(_LABELS, st.floats(0.0, 1.0), max_size=6)


@given(scores=_SCORES, labels=st.lists(_LABELS, min_size=1, max_size=4))
def test_probability_is_a_probability_and_exact_and_not_are_complements(
    scores: dict[str, float], labels: list[str]
) -> None:
    for expectation in (Expectation.any_of(labels), Expectation.none_of(labels)):
        p = expectation.probability(scores)
        assert p is not None and 0.0 <= p <= 1.0
    label = labels[0]
    exact = Expectation.exact(label).probability(scores)
    forbidden = Expectation.none_of([label]).probability(scores)
    assert exact is not None and forbidden is not None and 0.0 <= exact <= 1.0
    assert math.isclose(exact + forbidden, 1.0, abs_tol=1e-12)
    assert exact == scores.get(label, 0.0)
    assert Expectation.any_of([label]).probability(scores) == exact
    assert Expectation.between(0, 1).probability(scores) is None


def test_probability_of_any_of_is_capped_and_not_is_floored() -> None:
    scores = {"a": 0.7, "b": 0.6}  # a multi-label model: scores need not sum to 1
    assert Expectation.any_of(["a", "b"]).probability(scores) == 1.0
    assert Expectation.none_of(["a", "b"]).probability(scores) == 0.0
    assert Expectation.none_of(["z"]).probability(scores) == 1.0
    assert Expectation.exact("z").probability(scores) == 0.0


# -- replay, stored and read back, on both backends -----------------------------------------


def test_a_scored_model_gives_the_expected_answers_predict_proba(digits: Digits) -> None:
    registry = digits.registry
    for version in ("v1", "v3"):
        artifact = digits.trained.artifacts[version]
        registry.models.register("scored", version, loader=SCORED, artifact=artifact)
    summary = replay(registry, ["scored@v1", "scored@v3"], trigger="test")
    assert summary.errored == 0 and summary.predicted > 0

    expectations = expectations_by_file(digits)
    results = pattern_results(registry, model="scored")
    assert len(results) == len(expectations) * 2
    for version in ("v1", "v3"):
        proba = probabilities(digits, version)
        mine = [r for r in results if r.version == version]
        for result in mine:
            classes, row = proba[result.sha256]
            expectation = expectations[(result.problem, result.sha256)]
            assert result.predicted == classes[int(row.argmax())]
            assert result.confidence == pytest.approx(row.max(), abs=1e-12)
            want = oracle(expectation, classes, row)
            if want is None:
                assert result.p_expected is None, result
            else:
                assert result.p_expected is not None
                assert abs(result.p_expected - want) <= 1e-12, (result, want)
        # Every kind of expectation met a probability (or None for the range).
        kinds = {expectations[(r.problem, r.sha256)].kind for r in mine}
        assert kinds == set(ExpectKind)

    for _version_id, text, error in stored_scores(registry):
        assert error is None and text is not None
        assert list(json.loads(text)) == sorted(json.loads(text))
        assert ", " not in text and ": " not in text  # compact


def test_relabelling_a_pattern_changes_p_expected_with_no_model_run(digits: Digits) -> None:
    registry = digits.registry
    artifact = digits.trained.artifacts["v3"]
    registry.models.register("scored", "v3", loader=SCORED, artifact=artifact)
    replay(registry, ["scored@v3"], trigger="test")
    calls = dict(models.CALLS)
    case = digits.cases["threes-vs-eights"][0]
    sha = sha256_of(digits.file_of(case.index))
    row = digits.trained.models["v3"].predict_proba([digits.trained.test_x[case.index]])[0]
    pattern = next(p for p in registry.patterns.list("threes-vs-eights") if p.sha256 == sha)

    def p_expected() -> float | None:
        found = [
            r
            for r in pattern_results(registry, problems=["threes-vs-eights"], model="scored")
            if r.pattern_id == pattern.id
        ]
        assert len(found) == 1
        return found[0].p_expected

    assert p_expected() == pytest.approx(row[3], abs=1e-12)
    registry.patterns.relabel(pattern.id, Expectation.exact("8"))
    assert p_expected() == pytest.approx(row[8], abs=1e-12)
    registry.patterns.relabel(pattern.id, Expectation.none_of(["8"]))
    assert p_expected() == pytest.approx(1 - row[8], abs=1e-12)
    registry.patterns.relabel(pattern.id, Expectation.any_of(["3", "5", "8"]))
    assert p_expected() == pytest.approx(row[3] + row[5] + row[8], abs=1e-12)
    registry.patterns.relabel(pattern.id, Expectation.between(2.5, 3.5))
    assert p_expected() is None
    assert dict(models.CALLS) == calls, "relabelling must run no model"


def test_a_labels_only_model_has_no_scores_and_no_p_expected(digits: Digits) -> None:
    replay(digits.registry, ["digits@v1"], trigger="test")
    results = pattern_results(digits.registry, model="digits", versions=["digits@v1"])
    assert results and all(r.answered and r.p_expected is None for r in results)
    assert {text for _v, text, _e in stored_scores(digits.registry)} == {None}


def test_hostile_scores_become_error_rows_and_the_rest_of_the_batch_is_stored(
    digits: Digits,
) -> None:
    registry = digits.registry
    registry.models.register(
        "hostile",
        "v3",
        loader="tests.models.digits:load_hostile_scores",
        artifact=digits.trained.artifacts["v3"],
    )
    files = sorted(
        {
            sha256_of(digits.file_of(c.index)): c.index for cs in digits.cases.values() for c in cs
        }.items()
    )
    hostile = {}
    for (sha, index), name in zip(files, HOSTILE_SCORES, strict=False):
        pixels = (digits.trained.test_x[index].reshape(8, 8) * models.PIXEL_SCALE).astype(np.uint8)
        models.HOSTILE[pixels.tobytes()] = HOSTILE_SCORES[name][0]
        hostile[sha] = name
    assert len(hostile) == len(HOSTILE_SCORES) < len(files)

    summary = replay(registry, ["hostile@v3"], trigger="test", batch_size=len(files))
    assert summary.predicted == len(files) and summary.errored == len(hostile)
    results = {r.sha256: r for r in pattern_results(registry, model="hostile")}
    for sha, _index in files:
        result = results[sha]
        assert result.answered
        if sha in hostile:
            reason = HOSTILE_SCORES[hostile[sha]][1]
            assert result.error is not None and result.error.startswith("unusable output: ")
            assert result.p_expected is None and result.predicted is None
            assert result.correct is False
            assert re.search(reason, result.error), (reason, result.error)
        else:
            assert result.error is None and result.p_expected is not None
    stored = stored_scores(registry)
    assert sum(error is not None for _v, _t, error in stored) == len(hostile)
    assert sum(text is not None for _v, text, _e in stored) == len(files) - len(hostile)


def test_predictions_files_carry_scores_in_jsonl_and_csv(digits: Digits, tmp_path: Path) -> None:
    registry = digits.registry
    model = digits.trained.models["v3"]
    classes = [str(c) for c in model.classes_]
    shas, rows = [], []
    for cases in digits.cases.values():
        for case in cases:
            sha = sha256_of(digits.file_of(case.index))
            if sha not in shas:
                shas.append(sha)
                rows.append(model.predict_proba([digits.trained.test_x[case.index]])[0])
    jsonl = tmp_path / "answers.jsonl"
    with jsonl.open("w", encoding="utf-8") as handle:
        for sha, row in zip(shas, rows, strict=True):
            scores = dict(zip(classes, row.tolist(), strict=True))
            handle.write(json.dumps({"sha256": sha, "scores": scores}) + "\n")
    csv_file = tmp_path / "answers.csv"
    lines = ["sha256,prediction,scores"]
    for sha, row in zip(shas, rows, strict=True):
        text = json.dumps(dict(zip(classes, row.tolist(), strict=True))).replace('"', '""')
        lines.append(f'{sha},{classes[int(row.argmax())]},"{text}"')
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    for version, path in (("jsonl", jsonl), ("csv", csv_file)):
        registry.models.register(
            "remote", version, loader=str(path), loader_kind=LoaderKind.predictions, artifact=path
        )
    replay(registry, ["remote@jsonl", "remote@csv"], trigger="test")
    expectations = expectations_by_file(digits)
    by_sha = dict(zip(shas, rows, strict=True))
    results = pattern_results(registry, model="remote")
    assert len(results) == 2 * len(expectations)
    for result in results:
        row = by_sha[result.sha256]
        assert result.error is None and result.predicted == classes[int(row.argmax())]
        want = oracle(expectations[(result.problem, result.sha256)], classes, row)
        if want is None:
            assert result.p_expected is None
        else:
            assert result.p_expected is not None and abs(result.p_expected - want) <= 1e-12


def test_a_predictions_file_with_bad_scores_is_refused_naming_the_line(tmp_path: Path) -> None:
    sha = "a" * 64
    path = tmp_path / "bad.jsonl"
    path.write_text(f'{{"sha256": "{sha}", "scores": {{"x": NaN}}}}\n', encoding="utf-8")
    with pytest.raises(InvalidValue, match=r"bad.jsonl line 1: score nan"):
        read_predictions(path)
    path = tmp_path / "bad.csv"
    path.write_text(f"sha256,prediction,scores\n{sha},x,{{not json\n", encoding="utf-8")
    with pytest.raises(InvalidValue, match=r"bad.csv line 2: scores is not valid JSON"):
        read_predictions(path)


# -- older registries ------------------------------------------------------------------------


def test_a_registry_migrated_from_0002_keeps_its_results_and_replays_with_scores(
    digits: Digits,
) -> None:
    registry = digits.registry
    replay(registry, ["digits@v1"], trigger="test")
    before = stored_scores(registry)
    migrations.downgrade(registry.engine, "0002")
    columns = {c["name"] for c in sa.inspect(registry.engine).get_columns("result")}
    assert "scores" not in columns
    state = migrations.upgrade(registry.engine)
    assert state.migrated and state.previous == "0002"
    assert state.current == migrations.head_revision()
    assert stored_scores(registry) == before  # every row, scores NULL

    registry.models.register("scored", "v3", loader=SCORED, artifact=digits.trained.artifacts["v3"])
    replay(registry, ["scored@v3"], trigger="test")
    results = pattern_results(registry, model="scored")
    assert results and all(r.answered and r.error is None for r in results)
    assert sum(r.p_expected is not None for r in results) > 0
    assert all(r.p_expected is None for r in pattern_results(registry, model="digits"))


SCRIPT = str(Path(sys.executable).parent / "problem-registry")
TOY_SCORES = """
def load(artifact=None):
    return lambda inputs: [{"scores": {"cat": 0.625, "dog": 0.25, "3": 0.125}} for _ in inputs]
"""


def test_a_registry_from_revision_0001_upgrades_and_replays_with_scores(tmp_path: Path) -> None:
    database = tmp_path / "registry.db"
    shutil.copyfile(FIXTURES / "registry-0001.sqlite", database)
    shutil.copytree(FIXTURES / "registry-0001-patterns", tmp_path / "patterns")
    url = f"sqlite:///{database}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
    upgraded = subprocess.run(
        [SCRIPT, "--url", url, "--patterns-dir", str(tmp_path / "patterns"), "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    (tmp_path / "toy_scores.py").write_text(TOY_SCORES, encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        with Registry.open(url=url, patterns_dir=tmp_path / "patterns", user="tester") as registry:
            old = stored_scores(registry)
            assert len(old) == 16 and {text for _v, text, _e in old} == {None}
            registry.models.register("toy", "scored", loader="toy_scores:load")
            summary = replay(registry, ["toy@scored"], trigger="test")
            assert summary.predicted == 8 and summary.errored == 0
            results = pattern_results(registry, model="toy", versions=["toy@scored"])
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("toy_scores", None)
    # Exact 3 (twice), exact 8 (not scored: 0), cat or dog, not dog, not cat; ranges: None.
    want = {"3": 0.125, "8": 0.0, "one of cat, dog": 0.875, "not dog": 0.75, "not cat": 0.375}
    for result in results:
        assert result.predicted == "cat"
        assert result.p_expected == want.get(result.expected), result
