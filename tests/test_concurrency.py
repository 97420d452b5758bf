"""A team on one registry (issue 6, item 1): runners replay candidates while testers add patterns.

Eight separate interpreters, started together behind a shared start file, on SQLite and on
PostgreSQL: four replay one candidate each, again and again, while four add patterns, each its own
files plus, in ten lock-step rounds, the *same* file to the same problem at the same instant. 500
operations in all. Afterwards every pattern and every result exists exactly once, every pattern's
file is in the store, nobody saw "database is locked" or a serialization failure, and each raced
file was added once and refused three times with the one-line duplicate message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from problem_registry.replay.engine import replay
from problem_registry.store.integrity import check
from problem_registry.store.migrations import head_revision
from problem_registry.store.registry import Registry
from tests.models.digits import PIXEL_SCALE, Trained, write_digit

REPO = Path(__file__).resolve().parent.parent
SCRIPT = str(Path(sys.executable).parent / "problem-registry")

ADDERS = 4
REPLAYERS = 4
ADDS_PER_ADDER = 100  # 10 of them raced: the same file, same problem, all adders at once
RACE_EVERY = 10
REPLAYS_PER_REPLAYER = 25
OPERATIONS = ADDERS * ADDS_PER_ADDER + REPLAYERS * REPLAYS_PER_REPLAYER
VERSIONS = {  # four candidates, four different models or output shapes
    "v1": ("tests.models.digits:load", "v1"),
    "v2": ("tests.models.digits:load", "v2"),
    "v3": ("tests.models.digits:load", "v3"),
    "v4": ("tests.models.digits:load_with_confidence", "v3"),
}
DUPLICATE_MESSAGES = ("is already pattern", "by someone else meanwhile")
FORBIDDEN = ("database is locked", "could not serialize", "serialization", "deadlock", "Traceback")

_WORKER = r"""
import json, sys, time
from pathlib import Path
from problem_registry.errors import DuplicatePattern
from problem_registry.expectations import Expectation
from problem_registry.enums import Polarity
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from problem_registry.replay.engine import replay

plan = json.loads(Path(sys.argv[1]).read_text())
folder = Path(plan["folder"])
registry = Registry.open(url=plan["url"], patterns_dir=plan["patterns"], user=plan["name"])

def wait_for(flags):
    deadline = time.monotonic() + 60
    while not all(Path(flag).exists() for flag in flags):
        if time.monotonic() > deadline:
            sys.exit(f"{plan['name']}: waited 60 s for {flags}")
        time.sleep(0.001)

(folder / f"ready-{plan['name']}").touch()
wait_for([folder / "go"])
outcome = {"name": plan["name"], "added": 0, "refused": [], "replays": 0, "predicted": 0}
if plan["role"] == "replay":
    for _ in range(plan["replays"]):
        summary = replay(registry, candidate=plan["candidate"], versions=[], trigger="test")
        outcome["replays"] += 1
        outcome["predicted"] += summary.predicted
        time.sleep(0.02)  # spread the replays over the adders' work
else:
    for step in plan["steps"]:
        if step["race"] is not None:  # every adder reaches this add, then all go at once
            (folder / f"race-{step['race']}-{plan['name']}").touch()
            wait_for([folder / f"race-{step['race']}-{other}" for other in plan["adders"]])
        new = NewPattern(Path(step["file"]), Expectation.exact(step["label"]), Polarity.positive)
        try:
            registry.patterns.add(step["problem"], [new])
            outcome["added"] += 1
        except DuplicatePattern as exc:
            outcome["refused"].append([step["race"], str(exc)])
registry.close()
print(json.dumps(outcome))
"""


def _distinct_rows(trained: Trained) -> list[int]:
    """Held-out rows whose pixels differ from every other kept row: one content, one file."""
    seen: set[bytes] = set()
    kept = []
    for index, row in enumerate(trained.test_x):
        key = (row * PIXEL_SCALE).astype(np.uint8).tobytes()
        if key not in seen:
            seen.add(key)
            kept.append(index)
    return kept


def _plans(url: str, tmp_path: Path, trained: Trained) -> list[dict[str, object]]:
    rows = iter(_distinct_rows(trained))
    inputs = tmp_path / "inputs"
    adders = [f"adder-{i}" for i in range(ADDERS)]
    races = {}  # round -> the one file every adder adds to "contested" in that round
    for round_ in range(ADDS_PER_ADDER // RACE_EVERY):
        index = next(rows)
        races[round_] = (write_digit(inputs / f"race-{index}.png", trained.test_x[index]), index)
    common = {"url": url, "patterns": str(tmp_path / "patterns"), "folder": str(tmp_path)}
    plans: list[dict[str, object]] = []
    for number, name in enumerate(adders):
        steps = []
        for step in range(ADDS_PER_ADDER):
            if step % RACE_EVERY == 0:
                path, index = races[step // RACE_EVERY]
                steps.append(
                    {"race": step // RACE_EVERY, "problem": "contested", "file": str(path)}
                    | {"label": str(trained.test_y[index])}
                )
            else:
                index = next(rows)
                path = write_digit(inputs / f"{name}-{index}.png", trained.test_x[index])
                steps.append(
                    {"race": None, "problem": f"problem-{number}", "file": str(path)}
                    | {"label": str(trained.test_y[index])}
                )
        plans.append(common | {"name": name, "role": "add", "steps": steps, "adders": adders})
    for version in VERSIONS:
        plans.append(
            common
            | {"name": f"replayer-{version}", "role": "replay", "candidate": f"digits@{version}"}
            | {"replays": REPLAYS_PER_REPLAYER}
        )
    return plans


def _seed(url: str, tmp_path: Path, trained: Trained) -> None:
    """Five problems and four registered versions; the adders bring every pattern."""
    with Registry.open(url=url, patterns_dir=tmp_path / "patterns", user="setup") as registry:
        for number in range(ADDERS):
            registry.problems.add(f"problem-{number}")
        registry.problems.add("contested")
        for version, (loader, trained_as) in VERSIONS.items():
            registry.models.register(
                "digits", version, loader=loader, artifact=trained.artifacts[trained_as]
            )


def _start(plans: list[dict[str, object]], tmp_path: Path) -> list[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    processes = []
    for plan in plans:
        plan_file = tmp_path / f"plan-{plan['name']}.json"
        plan_file.write_text(json.dumps(plan))
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", _WORKER, str(plan_file)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=REPO,
            )
        )
    return processes


def _finish(
    processes: list[subprocess.Popen[str]], names: list[str], tmp_path: Path
) -> list[tuple[int, str, str]]:
    try:
        deadline = time.monotonic() + 60
        ready = [tmp_path / f"ready-{name}" for name in names]
        while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
            if any(p.poll() is not None for p in processes):
                break
            time.sleep(0.01)
        (tmp_path / "go").touch()  # everyone has imported and opened the registry: start together
        return [(p.wait(timeout=180), *p.communicate()) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


def _scalar(registry: Registry, sql: str) -> object:
    with registry.engine.connect() as connection:
        return connection.exec_driver_sql(sql).scalar_one()


@pytest.mark.slow  # eight interpreters, 500 operations: ~15-25 s per backend on 2 cores
def test_replayers_and_pattern_adders_at_once_lose_and_duplicate_nothing(
    database_url: str, tmp_path: Path, trained: Trained
) -> None:
    _seed(database_url, tmp_path, trained)
    plans = _plans(database_url, tmp_path, trained)
    outcomes = _finish(_start(plans, tmp_path), [str(p["name"]) for p in plans], tmp_path)

    for code, out, err in outcomes:
        assert code == 0, (code, out, err)
        assert not [word for word in FORBIDDEN if word.lower() in (out + err).lower()], (out, err)
    reports = [json.loads(out.splitlines()[-1]) for _code, out, _err in outcomes]
    adders = [r for r in reports if r["name"].startswith("adder")]
    replayers = [r for r in reports if r["name"].startswith("replayer")]
    rounds = ADDS_PER_ADDER // RACE_EVERY
    distinct_adds = ADDERS * (ADDS_PER_ADDER - rounds)
    assert (
        sum(r["replays"] for r in replayers) + sum(r["added"] + len(r["refused"]) for r in adders)
        == OPERATIONS
    )
    # Each raced file: added by exactly one adder, refused with one clear line to the three others.
    refusals = [(race, message) for r in adders for race, message in r["refused"]]
    assert Counter(race for race, _ in refusals) == {race: ADDERS - 1 for race in range(rounds)}
    for _race, message in refusals:
        assert any(text in message for text in DUPLICATE_MESSAGES), message
        assert "\n" not in message
    assert sum(r["added"] for r in adders) == distinct_adds + rounds

    with Registry.open(url=database_url, patterns_dir=tmp_path / "patterns") as registry:
        patterns = _scalar(registry, "SELECT count(*) FROM pattern")
        assert patterns == distinct_adds + rounds
        assert _scalar(registry, "SELECT count(*) FROM pattern p JOIN problem r ON "
                       "r.id = p.problem_id WHERE r.slug = 'contested'") == rounds  # fmt: skip
        assert (
            _scalar(
                registry,
                "SELECT count(*) FROM (SELECT problem_id, file_id FROM pattern "
                "GROUP BY problem_id, file_id HAVING count(*) > 1) AS twice",
            )
            == 0
        )
        files = _scalar(registry, "SELECT count(DISTINCT file_id) FROM pattern")
        assert files == patterns  # every add was a distinct content
        # Every pattern's file is in the store, with the content its name promises.
        report = check(registry)
        assert report.ok, [finding.message for finding in report.errors]
        assert report.files_checked >= files

        # What the replayers stored is kept, once; a last replay only fills what was added after
        # their last turn, and then every version has exactly one result per file.
        during = _scalar(registry, "SELECT count(*) FROM result")
        assert during == sum(r["predicted"] for r in replayers) > 0
        final = replay(registry, trigger="test")
        assert final.predicted == len(VERSIONS) * files - during
        assert _scalar(registry, "SELECT count(*) FROM result") == len(VERSIONS) * files
        assert (
            _scalar(
                registry,
                "SELECT count(*) FROM (SELECT model_version_id, file_id FROM result "
                "GROUP BY model_version_id, file_id HAVING count(*) > 1) AS twice",
            )
            == 0
        )
        assert _scalar(registry, "SELECT count(*) FROM result WHERE error IS NOT NULL") == 0
        # Every Run closed as completed: none left running, none failed.
        with registry.engine.connect() as connection:
            statuses = dict(
                connection.exec_driver_sql("SELECT status, count(*) FROM run GROUP BY status").all()
            )
        assert statuses == {"completed": REPLAYERS * REPLAYS_PER_REPLAYER + 1}


@pytest.mark.slow  # six interpreters importing SQLAlchemy and Alembic
def test_six_processes_upgrading_an_empty_database_all_succeed_and_one_migrates(
    database_url: str, tmp_path: Path
) -> None:
    count = 6
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
    processes = [
        subprocess.Popen(
            [SCRIPT, "--url", database_url, "db", "upgrade"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        outcomes = [(p.wait(timeout=120), *p.communicate()) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()

    assert [code for code, _out, _err in outcomes] == [0] * count, outcomes
    for _code, out, err in outcomes:
        assert not [word for word in FORBIDDEN if word.lower() in (out + err).lower()], err
    upgraded = [err for _code, _out, err in outcomes if "upgraded" in err]
    assert len(upgraded) == 1, outcomes  # one migrated, the others waited and found it done
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    finally:
        engine.dispose()
    assert versions == [(head_revision(),)]
