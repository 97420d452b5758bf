"""`replay`, `report` and `model register --predictions` through the real CLI, on both backends."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from problem_registry.cli import app
from problem_registry.verdicts.metrics import problem_metrics
from tests.digit_registry import Digits
from tests.helpers import lose_content
from tests.models import digits as models


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


Cli = Callable[..., Outcome]


@pytest.fixture
def cli(database_url: str, tmp_path: Path, digits: Digits) -> Cli:
    """The CLI on the same database and pattern store as the ``digits`` registry."""
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Outcome:
        result = runner.invoke(
            app,
            ["--url", database_url, "--patterns-dir", str(tmp_path / "patterns"), *args],
            catch_exceptions=False,
        )
        outcome = Outcome(result.exit_code, result.stdout, result.stderr)
        assert outcome.exit_code == code, (args, outcome)
        if code == 1:
            assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr
            assert outcome.stderr.startswith("error: ")
            assert "Traceback" not in outcome.stderr + outcome.stdout
        return outcome

    return run


def test_replay_then_report_json_gives_scikit_learns_numbers(cli: Cli, digits: Digits) -> None:
    first = cli("replay", "--all")
    files = len({v.sha256 for v in digits.registry.patterns.list()})
    assert f"run #1: {3 * files} predicted, 0 already stored, 0 errored" in first.stderr
    assert first.stdout == ""

    second = cli("replay", "--json")
    summary = json.loads(second.stdout)
    assert (summary["predicted"], summary["reused"], summary["status"]) == (
        0,
        3 * files,
        "completed",
    )
    assert models.CALLS["loads"] == 3

    report = json.loads(cli("report", "--json").stdout)
    assert len(report) == 4 * 3
    for row in report:
        assert {"problem", "model", "version", "error_rate", "interval", "counts"} <= set(row)
        assert set(row["interval"]) == {"low", "high"}
        assert row["interval"]["low"] <= row["error_rate"] <= row["interval"]["high"]
        assert row["error_rate"] == pytest.approx(
            digits.expected_error_rate(row["problem"], row["version"])
        )
        assert row["counts"]["patterns"] == len(digits.cases[row["problem"]])
        assert row["counts"]["missing"] == 0
    library = [m.to_dict() for m in problem_metrics(digits.registry)]
    assert report == json.loads(json.dumps(library))


def test_replay_model_replays_only_that_version(cli: Cli, digits: Digits) -> None:
    out = cli("replay", "--model", "digits@v2", "--batch-size", "4")
    assert "digits@v2: " in out.stderr and "digits@v1" not in out.stderr
    report = json.loads(cli("report", "--model", "digits", "--json").stdout)
    answered = {row["version"]: row["counts"]["answered"] for row in report}
    assert answered["v1"] == answered["v3"] == 0 and answered["v2"] > 0


def test_model_and_all_together_are_a_usage_error(cli: Cli) -> None:
    out = cli("replay", "--model", "digits@v1", "--all", code=2)
    assert "not both" in out.stderr


def test_a_candidate_that_cannot_load_is_one_line_and_a_prior_one_a_warning(
    cli: Cli, digits: Digits
) -> None:
    digits.registry.models.register("digits", "v4", loader="tests.models.digits:load_broken")
    refused = cli("replay", "--model", "digits@v4", code=1)
    assert "digits@v4: loader tests.models.digits:load_broken raised RuntimeError" in refused.stderr

    warned = cli("replay", "--all")
    assert "warning: digits@v4: loader tests.models.digits:load_broken raised" in warned.stderr
    assert "digits@v3: " in warned.stderr


def test_wrong_output_count_is_one_line_naming_the_model(cli: Cli, digits: Digits) -> None:
    digits.registry.models.register(
        "digits",
        "short",
        loader="tests.models.digits:load_wrong_count",
        artifact=digits.trained.artifacts["v1"],
    )
    out = cli("replay", "--model", "digits@short", code=1)
    assert "model digits@short returned" in out.stderr


def test_unreadable_content_fails_the_replay_naming_its_patterns(
    database_url: str, tmp_path: Path, digits: Digits
) -> None:
    view = digits.registry.patterns.list("sevens-vs-ones")[0]
    lose_content(digits.registry, view.sha256, view.file)
    # Not through `cli`, which holds an exit 1 to its one line: the replay's summary comes first.
    args = ["--url", database_url, "--patterns-dir", str(tmp_path / "patterns")]
    out = CliRunner().invoke(app, [*args, "replay", "--model", "digits@v1"])
    assert out.exit_code == 1 and "Traceback" not in out.stderr
    assert f"warning: refused the content of pattern file {view.file}" in out.stderr
    assert f"(used by sevens-vs-ones/{view.original_name})" in out.stderr
    assert f"not replayed: sevens-vs-ones/{view.original_name}" in out.stderr
    assert out.stderr.splitlines()[-1].startswith("error: the content of 1 pattern file(s)")


def test_an_altered_or_deleted_cache_file_is_replaced_from_the_database_never_scored(
    cli: Cli, digits: Digits
) -> None:
    altered, deleted = digits.registry.patterns.list("nines-not-fours")[:2]
    original = (digits.registry.store.root / altered.file).read_bytes()
    (digits.registry.store.root / altered.file).write_bytes(b"not the digit that was added")
    (digits.registry.store.root / deleted.file).unlink()
    out = cli("replay", "--model", "digits@v1", "--json")
    summary = json.loads(out.stdout)
    assert summary["refused"] == []
    assert (digits.registry.store.root / altered.file).read_bytes() == original
    assert (digits.registry.store.root / deleted.file).is_file()
    with digits.registry.reading() as session:
        errored = session.exec(
            sa.text(
                "SELECT count(*) FROM result JOIN pattern_file f ON f.id = result.file_id "
                "WHERE f.sha256 IN (:a, :d) AND result.error IS NULL"
            ).bindparams(a=altered.sha256, d=deleted.sha256)
        ).one()[0]
    assert errored == 2  # both scored, from the database's content


def test_batch_timeout_stops_a_hanging_version_and_replays_the_others(
    cli: Cli, digits: Digits
) -> None:
    digits.registry.models.register("digits", "hangs", loader="tests.models.digits:load_hanging")
    out = cli("replay", "--all", "--batch-timeout", "0.2")
    assert "warning: model digits@hangs timed out" in out.stderr
    assert "batch timeout of 0.2 s" in out.stderr
    assert "digits@v3: " in out.stderr and " predicted" in out.stderr


def test_report_prints_a_table_and_names_an_unknown_model(cli: Cli) -> None:
    cli("replay")
    table = cli("report", "--model", "digits", "--long").stdout
    assert "threes-vs-eights" in table and "digits@v3" in table and "95% CI" in table
    assert "no model named 'nope'" in cli("report", "--model", "nope", code=1).stderr


def test_report_is_a_grid_of_problems_and_recent_versions_with_filters(
    cli: Cli, digits: Digits
) -> None:
    """Issue 19 item 4: one row per problem, one column per version, as the demo prints."""
    cli("replay")
    digits.registry.problems.edit("threes-vs-eights", tags=["confusions"])
    digits.registry.problems.edit("sevens-vs-ones", tags=["confusions"])
    rows = {row.problem: row for row in problem_metrics(digits.registry, versions=["digits@v1"])}
    grid = cli("report").stdout.splitlines()
    assert grid[0] == "patterns wrong per problem and version (* champion)"
    header = next(line for line in grid if line.startswith("┃"))
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")] == [
        "problem",
        "v1",
        "v2",
        "v3",
        "max error",
    ]
    threes = next(line for line in grid if "threes-vs-eights" in line)
    row = rows["threes-vs-eights"]
    assert f"{row.wrong}/{row.answered}" in threes.split("│")[2]
    assert len([line for line in grid if line.startswith("│")]) == len(digits.cases)

    last = cli("report", "--last", "1", "--tag", "confusions").stdout
    assert "v3" in last and "v2" not in last
    assert "threes-vs-eights" in last and "sevens-vs-ones" in last
    assert "nines-not-fours" not in last
    one = cli("report", "--problem", "sevens-vs-ones", "--json").stdout
    assert {r["problem"] for r in json.loads(one)} == {"sevens-vs-ones"}
    assert len(json.loads(cli("report", "--json").stdout)) == len(digits.cases) * 3
    assert "no problem is tagged 'nope'" in cli("report", "--tag", "nope", code=1).stderr


def test_model_register_refuses_a_loader_that_cannot_be_imported(cli: Cli, digits: Digits) -> None:
    out = cli("model", "register", "digits", "v9", "--loader", "tests.models.nowhere:load", code=1)
    assert "cannot import tests.models.nowhere" in out.stderr
    out = cli("model", "register", "digits", "v9", "--loader", "tests.models.digits:nope", code=1)
    assert "has no attribute 'nope'" in out.stderr
    cli(
        "model",
        "register",
        "digits",
        "v9",
        "--loader",
        "tests.models.digits:load",
        "--artifact",
        str(digits.trained.artifacts["v3"]),
    )
    assert [v.version for v in digits.registry.models.list("digits")][-1] == "v9"


def test_model_register_predictions_from_a_file(cli: Cli, digits: Digits, tmp_path: Path) -> None:
    answers = tmp_path / "answers.jsonl"
    lines = [
        json.dumps({"sha256": v.sha256, "prediction": "3"}) for v in digits.registry.patterns.list()
    ]
    answers.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = cli("model", "register", "remote", "v1", "--predictions", str(answers), "--json")
    view = json.loads(out.stdout)
    assert view["loader_kind"] == "predictions" and view["artifact_sha256"]
    cli("replay", "--model", "remote@v1")
    report = {
        r["problem"]: r for r in json.loads(cli("report", "--model", "remote", "--json").stdout)
    }
    assert report["threes-as-numbers"]["error_rate"] == 0.0  # "3" is in 2.5..3.5
    assert report["sevens-vs-ones"]["error_rate"] == 1.0

    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n", encoding="utf-8")
    assert (
        "line 1"
        in cli("model", "register", "remote", "v2", "--predictions", str(bad), code=1).stderr
    )
    cli("model", "register", "remote", "v2", code=2)
    cli(
        "model",
        "register",
        "remote",
        "v2",
        "--loader",
        "a:b",
        "--predictions",
        str(answers),
        code=2,
    )
