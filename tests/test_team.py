"""A team registry on real PostgreSQL (issue 17): the URL is the whole registry, runners share
the work, a killed runner's work is finished by another, and a CI matrix splits by shard.

Every runner is a separate process in an empty folder of its own, holding nothing but
``PROBLEM_REGISTRY_URL`` (and ``PYTHONPATH`` for the models' code, as a CI job installs it).
Predictions are counted by the model itself, which appends a line per batch to a shared file.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from problem_registry.store.registry import Registry
from tests.digit_registry import Digits, build
from tests.models.digits import Trained
from tests.throwaway_postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(Path(sys.executable).parent / "problem-registry")
COUNTED_MODULE = """
import os
import re
import time
from pathlib import Path


def load(artifact_path):
    tag = Path(artifact_path).stem  # the version, from its artifact's name
    pause = float(os.environ.get("COUNTED_PAUSE", "0"))

    def predict(images):
        with open(os.environ["COUNTED_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{tag} {len(images)}\\n")
        time.sleep(pause)
        return [int(sum(image.convert("L").getdata())) % 10 for image in images]

    return predict
"""


@pytest.fixture
def team(
    postgres_server: PostgresServer, trained: Trained, tmp_path: Path
) -> Iterator[tuple[str, Digits]]:
    """The digit registry on a new PostgreSQL database, built by a tester in their own folder."""
    url = postgres_server.create_database()
    registry = Registry.open(url=url, patterns_dir=tmp_path / "tester" / "patterns", user="tess")
    try:
        yield url, build(registry, trained, tmp_path / "tester" / "inputs")
    finally:
        registry.close()
        postgres_server.drop_database(url)


def runner_env(url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
    env["PROBLEM_REGISTRY_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "code"), str(ROOT)])
    env.update(extra)
    return env


def empty_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def counted_versions(registry: Registry, tmp_path: Path, count: int) -> list[str]:
    """``count`` versions of the counting model; their refs."""
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "counted_team.py").write_text(COUNTED_MODULE, encoding="utf-8")
    refs = []
    for index in range(count):
        artifact = tmp_path / "artifacts" / f"c{index}.txt"
        artifact.parent.mkdir(exist_ok=True)
        artifact.write_text(str(index), encoding="utf-8")
        registry.models.register(
            "counted", f"c{index}", loader="counted_team:load", artifact=artifact
        )
        refs.append(f"counted@c{index}")
    return refs


def predictions(log: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in log.read_text(encoding="utf-8").splitlines():
        tag, number = line.split()
        counts[tag] += int(number)
    return counts


@pytest.mark.postgres
def test_a_runner_with_only_the_url_replays_gates_and_reports(
    team: tuple[str, Digits], tmp_path: Path
) -> None:
    url, digits = team
    files = len({view.sha256 for view in digits.registry.patterns.list()})
    folder = empty_folder(tmp_path, "runner")
    env = runner_env(url, tmp_path)

    replayed = run([SCRIPT, "replay", "--model", "digits@v1"], folder, env)
    assert replayed.returncode == 0, replayed.stderr
    assert f"digits@v1: {files} predicted" in replayed.stderr

    gated = run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--registry", "--candidate",
         "digits@v3", "--baseline", "digits@v1", "--registry-report", "report"],
        folder,
        env,
    )  # fmt: skip
    assert gated.returncode in (0, 1), gated.stdout + gated.stderr  # 1: a gate may fail
    assert f"replay: {2 * files} predicted" in gated.stdout
    assert "4 passed" in gated.stdout or "failed" in gated.stdout
    assert (folder / "report" / "index.html").is_file()

    report = run([SCRIPT, "report", "--json"], folder, env)
    assert report.returncode == 0 and '"problem":"nines-not-fours"' in report.stdout
    # What the runner wrote: the verified cache and the report it was asked for, nothing else.
    assert sorted(p.name for p in folder.iterdir()) == ["patterns", "report"]


@pytest.mark.postgres
def test_a_runner_that_cannot_read_content_fails_naming_the_patterns(
    team: tuple[str, Digits], tmp_path: Path
) -> None:
    url, digits = team
    view = digits.registry.patterns.list("threes-vs-eights")[0]
    with digits.registry.writing() as session:  # lost from the database: no cache here either
        session.execute(sa.text("DELETE FROM pattern_blob WHERE sha256 = :s"), {"s": view.sha256})
    env = runner_env(url, tmp_path)
    replayed = run([SCRIPT, "replay", "--model", "digits@v1"], empty_folder(tmp_path, "r"), env)
    assert replayed.returncode == 1
    assert "could not be read, so they were not replayed" in replayed.stderr
    assert f"threes-vs-eights/{view.original_name}" in replayed.stderr.splitlines()[-1]
    gated = run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--registry", "--candidate",
         "digits@v2"],
        empty_folder(tmp_path, "g"),
        env,
    )  # fmt: skip
    assert gated.returncode != 0
    assert f"threes-vs-eights/{view.original_name}" in gated.stdout + gated.stderr


@pytest.mark.postgres
def test_concurrent_runners_predict_each_pair_once(
    team: tuple[str, Digits], tmp_path: Path
) -> None:
    url, digits = team
    refs = counted_versions(digits.registry, tmp_path, 4)
    files = len({view.sha256 for view in digits.registry.patterns.list()})
    log = tmp_path / "predictions.log"
    env = runner_env(url, tmp_path, COUNTED_LOG=str(log), COUNTED_PAUSE="0.05")
    runners = [
        subprocess.Popen(
            [SCRIPT, "replay", "--json", "--batch-size", "4", "--jobs", "1"],
            cwd=empty_folder(tmp_path, f"runner-{index}"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(3)
    ]
    outputs = [runner.communicate(timeout=300) for runner in runners]
    assert [runner.returncode for runner in runners] == [0, 0, 0], outputs

    counts = predictions(log)
    assert counts == Counter({f"c{index}": files for index in range(len(refs))})
    with digits.registry.reading() as session:
        results = session.execute(sa.text("SELECT count(*) FROM result")).scalar_one()
        leases = session.execute(sa.text("SELECT count(*) FROM replay_lease")).scalar_one()
    assert results == (len(refs) + 3) * files  # the three digits versions too
    assert leases == 0


@pytest.mark.postgres
def test_a_killed_runners_claimed_work_is_finished_by_another(
    team: tuple[str, Digits], tmp_path: Path
) -> None:
    url, digits = team
    counted_versions(digits.registry, tmp_path, 1)
    files = len({view.sha256 for view in digits.registry.patterns.list()})
    log = tmp_path / "predictions.log"
    env = runner_env(
        url, tmp_path, COUNTED_LOG=str(log), COUNTED_PAUSE="0.2",
        PROBLEM_REGISTRY_LEASE_SECONDS="3",
    )  # fmt: skip
    args = [SCRIPT, "replay", "--model", "counted@c0", "--batch-size", "2"]
    doomed = subprocess.Popen(
        args, cwd=empty_folder(tmp_path, "doomed"), env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not log.exists() or sum(predictions(log).values()) < 4:  # it is predicting
        assert time.monotonic() < deadline and doomed.poll() is None
        time.sleep(0.05)
    doomed.send_signal(signal.SIGKILL)  # no cleanup: its lease stays until it expires
    doomed.wait()
    began = time.monotonic()

    rescuer = run(args, empty_folder(tmp_path, "rescuer"), {**env, "COUNTED_PAUSE": "0"})

    assert rescuer.returncode == 0, rescuer.stderr
    assert time.monotonic() - began >= 1.0  # it waited for the lease to expire
    with digits.registry.reading() as session:
        done = session.execute(
            sa.text(
                "SELECT count(*) FROM result r JOIN model_version v ON v.id = r.model_version_id "
                "WHERE v.name = 'counted'"
            )
        ).scalar_one()
    assert done == files
    # The rescuer predicted what the killed runner had not stored, not the whole version again.
    assert predictions(log)["c0"] < 2 * files


@pytest.mark.postgres
def test_plugin_shards_replay_their_share_and_the_gate_predicts_nothing(
    team: tuple[str, Digits], tmp_path: Path
) -> None:
    url, digits = team
    files = len({view.sha256 for view in digits.registry.patterns.list()})
    env = runner_env(url, tmp_path)
    pytest_args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--registry"]
    pytest_args += ["--candidate", "digits@v2"]
    predicted = 0
    for shard in ("1/2", "2/2"):
        folder = empty_folder(tmp_path, f"shard-{shard[0]}")
        ran = run([*pytest_args, "--registry-shard", shard], folder, env)
        assert ran.returncode == 0, ran.stdout + ran.stderr  # judged nothing: all skipped
        assert "4 skipped" in ran.stdout and f"shard {shard}: replayed only" in ran.stdout
        predicted += int(re.search(r"replay: (\d+) predicted", ran.stdout).group(1))  # type: ignore[union-attr]
    assert predicted == 2 * files  # digits@v1 (history) and the candidate, each pair once
    gated = run(pytest_args, empty_folder(tmp_path, "gate"), env)
    assert "replay: 0 predicted" in gated.stdout, gated.stdout
    assert "4 passed" in gated.stdout or "failed" in gated.stdout
