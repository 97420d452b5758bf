"""Replay on a real registry with real scikit-learn models, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

import problem_registry.replay.engine as replay_module
from problem_registry.adapters import ModelOutputError, ModelUnavailable, check_loadable
from problem_registry.enums import LoaderKind
from problem_registry.expectations import Expectation
from problem_registry.refs import ModelRef
from problem_registry.replay.engine import replay
from problem_registry.replay.selection import prior_versions
from problem_registry.replay.summary import ReplayProgress
from problem_registry.store.patterns import NewPattern
from problem_registry.store.runs import finish_run, start_run
from problem_registry.store.tables import Result, Run
from problem_registry.verdicts.metrics import problem_metrics
from tests.digit_registry import Digits
from tests.helpers import lose_content
from tests.models import digits as models
from tests.models.digits import write_digit


def stored(digits: Digits) -> list[tuple[int, int, str | None, str | None]]:
    table = Result.__table__  # type: ignore[attr-defined]
    with digits.registry.engine.connect() as connection:
        query = sa.select(
            table.c.model_version_id, table.c.file_id, table.c.predicted, table.c.error
        )
        return sorted(connection.execute(query.order_by(table.c.model_version_id, table.c.file_id)))


def runs(digits: Digits) -> list[Run]:
    with digits.registry.reading() as session:
        return list(session.exec(select(Run).order_by(Run.id)))


def files_in_use(digits: Digits) -> int:
    return len({view.sha256 for view in digits.registry.patterns.list()})


def test_first_replay_predicts_every_pair_and_the_second_predicts_nothing(digits: Digits) -> None:
    files = files_in_use(digits)
    first = replay(digits.registry, trigger="test")
    assert (first.predicted, first.reused, first.errored) == (3 * files, 0, 0)
    assert [v.status for v in first.versions] == ["replayed"] * 3
    assert models.CALLS["loads"] == 3 and models.CALLS["items"] == 3 * files
    rows = stored(digits)

    second = replay(digits.registry, trigger="test")
    assert (second.predicted, second.reused) == (0, 3 * files)
    assert [v.status for v in second.versions] == ["up-to-date"] * 3
    assert models.CALLS["loads"] == 3, "a replay with nothing missing must load no model"
    assert models.CALLS["items"] == 3 * files
    assert stored(digits) == rows

    recorded = runs(digits)
    assert [(r.status, r.trigger, r.predicted, r.reused) for r in recorded] == [
        ("completed", "test", 3 * files, 0),
        ("completed", "test", 0, 3 * files),
    ]
    assert all(r.finished_at is not None and r.triggered_by == "tester" for r in recorded)


def test_each_pattern_file_is_decoded_once_whatever_uses_it(
    digits: Digits, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[bytes] = []
    real_decode = replay_module.decode

    def counting_decode(data: bytes, kind: object, extension: str | None = None) -> object:
        decoded.append(data)
        return real_decode(data, kind, extension)  # type: ignore[arg-type]

    monkeypatch.setattr(replay_module, "decode", counting_decode)
    replay(digits.registry, batch_size=7)
    # Three versions, and some files in two problems: still one decode per distinct file.
    assert len(decoded) == len(set(decoded)) == files_in_use(digits)
    assert models.CALLS["batches"] == 3 * -(-files_in_use(digits) // 7)


def test_only_the_missing_pairs_of_a_new_pattern_and_a_new_version_are_predicted(
    digits: Digits, tmp_path: Path
) -> None:
    replay(digits.registry, versions=["digits@v1", "digits@v2"])
    index = digits.cases["threes-vs-eights"][-1].index + 1
    new_file = write_digit(tmp_path / "late.png", digits.trained.test_x[index])
    label = str(digits.trained.test_y[index])
    digits.registry.patterns.add("sevens-vs-ones", [NewPattern(new_file, Expectation.exact(label))])
    models.CALLS.clear()

    summary = replay(digits.registry)
    files = files_in_use(digits)
    assert {v.ref: v.predicted for v in summary.versions} == {
        "digits@v1": 1,
        "digits@v2": 1,
        "digits@v3": files,
    }
    assert summary.reused == 2 * (files - 1)
    assert models.CALLS["items"] == files + 2


def test_a_model_raising_on_one_input_marks_only_that_pattern(digits: Digits) -> None:
    bad = digits.cases["sevens-vs-ones"][2]
    image_bytes = digits.file_of(bad.index).read_bytes()
    from PIL import Image

    with Image.open(digits.file_of(bad.index)) as image:
        models.FRAGILE.add(image.tobytes())
    registry = digits.registry
    registry.models.register(
        "digits",
        "fragile",
        loader="tests.models.digits:load_fragile",
        artifact=digits.trained.artifacts["v3"],
    )

    summary = replay(registry, versions=[], candidate="digits@fragile")
    assert (summary.predicted, summary.errored) == (files_in_use(digits), 1)
    errors = [row for row in stored(digits) if row[3] is not None]
    assert len(errors) == 1 and errors[0][3] == "ValueError: cannot read this digit"
    assert errors[0][2] is None
    row = next(
        m
        for m in problem_metrics(registry, versions=["digits@fragile"])
        if m.problem == "sevens-vs-ones"
    )
    assert row.errored == 1 and row.wrong >= 1 and row.answered == row.patterns
    assert image_bytes  # the file itself is intact: only the model refused it


def test_wrong_number_of_outputs_is_an_error_naming_the_model(digits: Digits) -> None:
    digits.registry.models.register(
        "digits",
        "short",
        loader="tests.models.digits:load_wrong_count",
        artifact=digits.trained.artifacts["v1"],
    )
    with pytest.raises(ModelOutputError, match=r"digits@short returned \d+ outputs for a batch"):
        replay(digits.registry, versions=[], candidate="digits@short")
    assert runs(digits)[-1].status == "failed"
    assert "digits@short" in runs(digits)[-1].message
    assert stored(digits) == []


def test_unavailable_prior_versions_are_reported_and_their_results_still_count(
    digits: Digits, tmp_path: Path
) -> None:
    registry = digits.registry
    replay(registry)
    artifact = digits.trained.artifacts["v1"]
    original = artifact.read_bytes()
    try:
        # A retrained file written over the registered one: refused, never mixed in.
        artifact.write_bytes(digits.trained.artifacts["v3"].read_bytes())
        registry.models.register("digits", "gone", loader="tests.models.no_such_module:load")
        index = digits.cases["threes-vs-eights"][-1].index + 1
        new_file = write_digit(tmp_path / "late.png", digits.trained.test_x[index])
        label = str(digits.trained.test_y[index])
        registry.patterns.add("threes-vs-eights", [NewPattern(new_file, Expectation.exact(label))])

        summary = replay(registry)
    finally:
        artifact.write_bytes(original)
    status = {v.ref: (v.status, v.reason) for v in summary.versions}
    assert status["digits@v1"][0] == "unavailable", summary.to_dict()
    assert "changed since it was registered" in status["digits@v1"][1]
    assert status["digits@gone"][0] == "unavailable"
    assert "cannot import tests.models.no_such_module" in status["digits@gone"][1]
    assert [v.ref for v in summary.unavailable] == ["digits@v1", "digits@gone"]
    assert status["digits@v2"][0] == status["digits@v3"][0] == "replayed"
    assert runs(digits)[-1].status == "completed"
    assert "digits@v1 unavailable" in runs(digits)[-1].message

    v1 = next(
        m
        for m in problem_metrics(registry, versions=["digits@v1"])
        if m.problem == "threes-vs-eights"
    )
    assert (v1.patterns, v1.answered, v1.missing) == (13, 12, 1)
    assert v1.error_rate == digits.expected_error_rate("threes-vs-eights", "v1")


def test_a_candidate_that_cannot_load_is_an_error(digits: Digits) -> None:
    digits.registry.models.register("digits", "v4", loader="tests.models.digits:load_broken")
    with pytest.raises(ModelUnavailable, match=r"digits@v4: loader .* raised RuntimeError: CUDA"):
        replay(digits.registry, versions=[], candidate="digits@v4")
    assert runs(digits)[-1].status == "failed"


def test_an_interrupted_replay_keeps_its_batches_and_the_next_one_resumes(digits: Digits) -> None:
    seen: list[ReplayProgress] = []

    def interrupt_after_two_batches(event: ReplayProgress) -> None:
        seen.append(event)
        if len(seen) == 3:  # the start, then two batches
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replay(digits.registry, batch_size=4, progress=interrupt_after_two_batches)
    assert runs(digits)[-1].status == "interrupted"
    kept = len(stored(digits))
    assert kept == 8  # two batches of 4 were committed before the interruption

    resumed = replay(digits.registry, batch_size=4)
    assert resumed.predicted == 3 * files_in_use(digits) - kept
    assert resumed.reused == kept
    assert runs(digits)[-1].status == "completed"


def test_progress_counts_every_missing_pair_once(digits: Digits) -> None:
    events: list[ReplayProgress] = []
    replay(digits.registry, batch_size=5, progress=events.append)
    total = 3 * files_in_use(digits)
    assert events[0] == ReplayProgress(0, total, None)
    assert events[-1].done == total
    assert [e.done for e in events] == sorted(e.done for e in events)


def test_missing_or_altered_pattern_files_are_refused_and_the_rest_replayed(
    digits: Digits,
) -> None:
    registry = digits.registry
    views = {v.original_name: v for v in registry.patterns.list("sevens-vs-ones")}
    gone, altered = sorted(views)[:2]
    lose_content(registry, views[gone].sha256, views[gone].file)
    (registry.store.root / views[altered].file).write_bytes(b"not the digit it was")
    with registry.writing() as session:  # the database's copy edited by hand too
        session.execute(
            sa.text("UPDATE pattern_blob SET data = :d WHERE sha256 = :s"),
            {"d": b"not the digit it was", "s": views[altered].sha256},
        )

    summary = replay(registry)
    reasons = {r.patterns[0]: r.reason for r in summary.refused}
    assert set(reasons) == {f"sevens-vs-ones/{gone}", f"sevens-vs-ones/{altered}"}
    assert "is not in the database" in reasons[f"sevens-vs-ones/{gone}"]
    assert "no longer matches its sha256" in reasons[f"sevens-vs-ones/{altered}"]
    assert summary.predicted == 3 * (files_in_use(digits) - 2)
    row = next(
        m
        for m in problem_metrics(registry, versions=["digits@v3"])
        if m.problem == "sevens-vs-ones"
    )
    assert (row.answered, row.missing) == (8, 2)
    assert "refused pattern file" in runs(digits)[-1].message


def test_predictions_file_version_needs_no_model_and_no_pattern_file(
    digits: Digits, tmp_path: Path
) -> None:
    registry = digits.registry
    model = digits.trained.models["v2"]
    views = registry.patterns.list()
    by_sha = {}
    for view in views:
        index = int(view.original_name.removeprefix("digit-").removesuffix(".png"))
        by_sha[view.sha256] = int(model.predict(digits.trained.test_x[[index]])[0])
    answers = tmp_path / "served-elsewhere.csv"
    with answers.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sha256", "prediction", "confidence"])
        for sha, label in sorted(by_sha.items())[:-1]:  # one pattern left unanswered
            writer.writerow([sha, label, 0.9])
    registry.models.register(
        "digits",
        "remote",
        loader=str(answers),
        loader_kind=LoaderKind.predictions,
        artifact=answers,
        check=check_loadable,
    )
    for view in views:  # a predictions version never reads the pattern files
        (registry.store.root / view.file).unlink(missing_ok=True)

    summary = replay(registry, versions=[], candidate="digits@remote")
    assert (summary.predicted, summary.errored, summary.refused) == (len(by_sha), 1, [])
    missing_line = [row[3] for row in stored(digits) if row[3] is not None]
    assert missing_line == ["no prediction for this pattern in served-elsewhere.csv"]


def test_replay_can_be_limited_to_some_problems(digits: Digits) -> None:
    summary = replay(digits.registry, problems=["sevens-vs-ones"])
    assert summary.predicted == 3 * len(digits.cases["sevens-vs-ones"])
    counts = {
        m.problem: m.answered for m in problem_metrics(digits.registry, versions=["digits@v1"])
    }
    assert counts == {
        "nines-not-fours": 0,
        "sevens-vs-ones": 10,
        "threes-as-numbers": 0,
        "threes-vs-eights": 0,
    }


def test_a_caller_owned_run_collects_several_replays(digits: Digits) -> None:
    registry = digits.registry
    candidate = ModelRef("digits", "v3")
    run_id = start_run(registry, trigger="pytest", candidate=candidate, git_commit="abc123")
    history = prior_versions(registry, "digits@v3")
    assert history == ["digits@v1", "digits@v2"]
    replay(registry, versions=history, candidate="digits@v3", run_id=run_id)
    replay(registry, versions=history, candidate="digits@v3", run_id=run_id)
    assert runs(digits)[-1].status == "running"  # the caller closes it
    finish_run(registry, run_id, status="completed")
    (run,) = runs(digits)
    assert (run.status, run.predicted, run.reused, run.git_commit) == (
        "completed",
        3 * files_in_use(digits),
        3 * files_in_use(digits),
        "abc123",
    )
    assert run.candidate_id is not None


def test_the_git_commit_of_the_working_directory_is_recorded(digits: Digits) -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    replay(digits.registry)
    assert runs(digits)[-1].git_commit == (head or None)


def test_the_core_imports_no_cli_test_or_plotting_library() -> None:
    code = (
        "import sys\n"
        "import problem_registry.replay.engine, problem_registry.verdicts.metrics\n"
        "import problem_registry.verdicts.gates\n"
        "import problem_registry.verdicts.timeline, problem_registry.adapters.python\n"
        "import problem_registry.adapters.predictions\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'typer', 'rich', 'pytest', 'matplotlib', 'click'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_negative_patterns_keep_their_polarity_in_results(digits: Digits) -> None:
    replay(digits.registry)
    row = next(
        m
        for m in problem_metrics(digits.registry, versions=["digits@v3"])
        if m.problem == "threes-vs-eights"
    )
    assert (row.positive.patterns, row.negative.patterns) == (7, 5)
    assert row.positive.answered + row.negative.answered == row.answered


COUNTED_MODELS = """
import os
import weakref

LOG = os.environ["COUNTED_MODELS_LOG"]


def _log(change):
    with open(LOG, "a") as handle:
        handle.write(f"{os.getpid()} {change}\\n")


class Model:
    def __call__(self, inputs):
        return ["0"] * len(inputs)


def load(artifact=None):
    model = Model()
    _log(1)
    weakref.finalize(model, _log, -1)
    return model
"""


def _counted_versions(
    digits: Digits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int
) -> tuple[list[str], Path]:
    """``count`` versions of COUNTED_MODELS registered, and the log their workers write."""
    module = f"counted_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(COUNTED_MODELS, encoding="utf-8")
    log = tmp_path / "models.log"
    monkeypatch.setenv("COUNTED_MODELS_LOG", str(log))
    monkeypatch.chdir(tmp_path)
    for index in range(count):
        digits.registry.models.register("counted", f"c{index}", loader=f"{module}:load")
    return [f"counted@c{index}" for index in range(count)], log


def _models_held(log: Path) -> tuple[int, list[int], set[str]]:
    """From the workers' log: the loads, the models held after each load or release, the pids."""
    changes = [line.split() for line in log.read_text().splitlines()]
    alive = [sum(int(change) for _pid, change in changes[: i + 1]) for i in range(len(changes))]
    loads = sum(int(change) == 1 for _pid, change in changes)
    return loads, alive, {pid for pid, _change in changes}


def test_a_cold_replay_of_many_versions_holds_a_bounded_number_of_models(
    digits: Digits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 7: memory must not grow with the number of versions (100 versions of a big model).
    # Models live in worker processes (issue 16), so each load and each release is logged by
    # the worker that made it: the running sum is the number of models held at that moment.
    versions = 2 * replay_module.MAX_LOADED_MODELS + 1
    refs, log = _counted_versions(digits, tmp_path, monkeypatch, versions)

    # More jobs than the cap: the cap still bounds the models held (issue 17's --jobs).
    summary = replay(digits.registry, versions=refs, batch_size=5, jobs=99)

    assert summary.predicted == versions * files_in_use(digits)
    loads, alive, pids = _models_held(log)
    assert loads == versions
    assert max(alive) == replay_module.MAX_LOADED_MODELS
    assert alive[-1] == 0  # every model released by the end
    # Workers are reused across groups: no more processes than models held at once.
    assert len(pids) <= replay_module.MAX_LOADED_MODELS


def test_jobs_2_loads_the_next_versions_on_spare_workers_within_the_models_cap(
    digits: Digits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 17: no barrier between groups. While 2 versions predict, the next 2 load on spare
    # workers: 4 models held at most (never more than the cap), 4 processes, every pair stored.
    refs, log = _counted_versions(digits, tmp_path, monkeypatch, 5)

    summary = replay(digits.registry, versions=refs, batch_size=5, jobs=2)

    assert summary.predicted == 5 * files_in_use(digits)
    assert {v.status for v in summary.versions} == {"replayed"}
    loads, alive, pids = _models_held(log)
    assert loads == 5
    assert max(alive) <= 4 and alive[-1] == 0
    assert len(pids) <= 4


def test_a_candidate_that_cannot_load_fails_before_any_history_is_replayed(
    digits: Digits,
) -> None:
    digits.registry.models.register("digits", "v9", loader="tests.models.digits:load_broken")
    with pytest.raises(ModelUnavailable):
        replay(digits.registry, candidate="digits@v9")
    assert models.CALLS["items"] == 0
    assert stored(digits) == []
