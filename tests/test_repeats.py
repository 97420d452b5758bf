"""Non-deterministic models (issue 15, item 5): asked N times per pattern, judged on the rate.

The model is a real scikit-learn classifier on its inputs plus fresh noise at each call
(``tests.models.digits:load_noisy``). Every answer is stored; the tests recompute from the stored
rows themselves, pattern by pattern, what the gate must conclude.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from problem_registry.cli import app
from problem_registry.enums import LoaderKind
from problem_registry.errors import InvalidValue
from problem_registry.replay.engine import replay
from problem_registry.store.registry import Registry
from problem_registry.verdicts.gates import evaluate
from tests.digit_registry import Digits
from tests.models import digits as models

NOISY = "tests.models.digits:load_noisy"
REPEATS = 5


def _answers(registry: Registry, ref_version: str) -> dict[str, list[str | None]]:
    """Pattern file sha256 -> every stored answer of the version, first answer first."""
    query = sa.text(
        "SELECT f.sha256, r.predicted, 0 AS k FROM result r"
        " JOIN pattern_file f ON f.id = r.file_id"
        " JOIN model_version v ON v.id = r.model_version_id WHERE v.version = :v"
        " UNION ALL SELECT f.sha256, r.predicted, r.repeat FROM result_repeat r"
        " JOIN pattern_file f ON f.id = r.file_id"
        " JOIN model_version v ON v.id = r.model_version_id WHERE v.version = :v"
    )
    rows: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
    with registry.engine.connect() as connection:
        for sha256, predicted, k in connection.execute(query, {"v": ref_version}):
            rows[sha256].append((k, predicted))
    return {sha: [p for _, p in sorted(found)] for sha, found in rows.items()}


def _register_noisy(digits: Digits, version: str = "noisy", repeats: int = REPEATS) -> None:
    artifact = digits.trained.artifacts["v3"]
    digits.registry.models.register(
        "digits", version, loader=NOISY, artifact=artifact, repeats=repeats
    )


@pytest.mark.parametrize("scores", ["labels", "scores"])
def test_every_answer_is_stored_and_the_gate_judges_the_majority(
    digits: Digits, monkeypatch: pytest.MonkeyPatch, scores: str
) -> None:
    monkeypatch.setenv("NOISY_SCORES", "1" if scores == "scores" else "0")
    registry = digits.registry
    _register_noisy(digits)
    summary = replay(registry)
    answers = _answers(registry, "noisy")
    files = {p.sha256 for p in registry.patterns.list()}
    assert set(answers) == files
    assert all(len(given) == REPEATS for given in answers.values())
    # The model really was asked five times per pattern, and no deterministic version was.
    assert models.CALLS["noisy_items"] == REPEATS * len(files)
    varied = {sha for sha, given in answers.items() if len(set(given)) > 1}
    noisy = next(v for v in summary.versions if v.version == "noisy")
    assert noisy.flaky == len(varied) > 0
    assert f"{len(varied)} flaky" in noisy.remarks()
    assert all(v.flaky == 0 for v in summary.versions if v.version != "noisy")

    gates = {g.problem: g for g in evaluate(registry, "digits@noisy")}
    cases = {
        (slug, digits.file_of(case.index).name): case
        for slug, problem_cases in digits.cases.items()
        for case in problem_cases
    }
    by_name = {(p.problem, p.original_name): p.sha256 for p in registry.patterns.list()}
    for (slug, name), case in cases.items():
        given = answers[by_name[(slug, name)]]
        rights = [case.is_right(int(p)) for p in given if p is not None]
        majority_wrong = sum(rights) * 2 <= len(rights)
        gate = gates[slug]
        assert (name in {f.file for f in gate.failing}) == majority_wrong, (slug, name, given)
        assert (name in gate.flaky) == (0 < sum(rights) < len(rights)), (slug, name, given)
    flaky_gate = next(g for g in gates.values() if g.flaky)
    assert "flaky (right in some repeats, wrong in others)" in flaky_gate.message
    assert flaky_gate.to_dict()["flaky"] == flaky_gate.flaky


def test_a_second_replay_predicts_nothing_and_a_deterministic_version_has_no_repeats(
    digits: Digits,
) -> None:
    registry = digits.registry
    _register_noisy(digits, repeats=3)
    replay(registry)
    again = replay(registry)
    assert again.predicted == 0
    answers = _answers(registry, "v1")
    assert all(len(given) == 1 for given in answers.values())
    assert all(len(given) == 3 for given in _answers(registry, "noisy").values())


def test_repeats_out_of_range_or_on_a_predictions_file_are_refused(
    digits: Digits, tmp_path: Path
) -> None:
    registry = digits.registry
    for repeats in (0, 51):
        with pytest.raises(InvalidValue, match="--repeats must be between 1 and 50"):
            _register_noisy(digits, repeats=repeats)
    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"sha256": "0" * 64, "prediction": "3"}) + "\n")
    with pytest.raises(InvalidValue, match="a predictions file has one answer"):
        registry.models.register(
            "digits",
            "file",
            loader=str(answers),
            loader_kind=LoaderKind.predictions,
            artifact=answers,
            repeats=2,
        )
    assert [v.version for v in registry.models.list()] == ["v1", "v2", "v3"]


def test_the_cli_registers_shows_and_replays_repeats(
    digits: Digits, database_url: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    base = ["--url", database_url, "--patterns-dir", str(digits.registry.store.root)]
    artifact = str(digits.trained.artifacts["v2"])
    args = ["model", "register", "digits", "noisy", "--loader", NOISY, "--artifact", artifact]
    result = runner.invoke(app, [*base, *args, "--repeats", "4"])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, [*base, "model", "show", "digits@noisy", "--json", "--no-load"])
    assert json.loads(shown.stdout)["repeats"] == 4
    replayed = runner.invoke(app, [*base, "replay", "--model", "digits@noisy"])
    assert replayed.exit_code == 0, replayed.output
    assert "flaky (answers changed between repeats)" in replayed.stderr
    refused = runner.invoke(app, [*base, *args[:3], "again", "--loader", NOISY, "--repeats", "0"])
    assert refused.exit_code == 2
