"""docs/ci/github-actions.yml (issue 17): valid against GitHub's workflow schema, and its steps'
commands, run in order, work against a real PostgreSQL registry.

The commands are read from the workflow itself: every ``run:`` step of the register job, then the
three replay shards at once (each a process in an empty folder of its own), then the gate job.
Steps that only set up a machine (``uses:``, the ``Install`` step: this environment is installed)
and the pull-request comment (needs GitHub) are left out; ``${{ matrix.shard }}`` and the
workflow's ``env:`` are given their values here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from problem_registry.store.registry import Registry
from tests.digit_registry import build
from tests.models.digits import Trained
from tests.throwaway_postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "docs" / "ci" / "github-actions.yml"
BIN = Path(sys.executable).parent


def _workflow() -> dict[str, Any]:
    from ruamel.yaml import YAML

    loaded: dict[str, Any] = YAML(typ="safe").load(WORKFLOW.read_text(encoding="utf-8"))
    return loaded


def test_the_workflow_passes_githubs_workflow_schema() -> None:
    tool = shutil.which("check-jsonschema", path=str(BIN)) or shutil.which("check-jsonschema")
    if tool is None:
        message = "check-jsonschema is not installed (pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    checked = subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _commands(job: dict[str, Any], shard: int | None = None) -> list[str]:
    commands = []
    for step in job["steps"]:
        if "run" not in step or step.get("name") == "Install":
            continue
        if "github.event_name" in str(step.get("if", "")):
            continue  # the pull-request comment: GitHub's
        command = str(step["run"])
        if shard is not None:
            command = command.replace("${{ matrix.shard }}", str(shard))
        assert "${{" not in command, command  # every expression is given a value here
        commands.append(command)
    return commands


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    # GitHub's default shell for `run:` on Linux: bash -e {0}.
    return subprocess.Popen(
        ["bash", "-e", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.postgres
def test_the_workflows_commands_run_in_order_against_postgresql(
    postgres_server: PostgresServer, trained: Trained, tmp_path: Path
) -> None:
    url = postgres_server.create_database()
    try:
        tester = Registry.open(url=url, patterns_dir=tmp_path / "tester" / "patterns", user="tess")
        digits = build(tester, trained, tmp_path / "tester" / "inputs")  # the team's problems
        files = len({view.sha256 for view in digits.registry.patterns.list()})
        tester.close()
        workflow = _workflow()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
        env.update({k: str(v) for k, v in workflow["env"].items()})
        env.update(
            PROBLEM_REGISTRY_URL=url,
            MODEL_LOADER="tests.models.digits:load",
            MODEL_ARTIFACT=str(trained.artifacts["v3"]),
            CANDIDATE_VERSION="ci-0123abc",
            PYTHONPATH=str(ROOT),  # the models' code, as `pip install -e .` gives a project
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            GITHUB_STEP_SUMMARY=str(tmp_path / "step-summary.md"),
        )
        jobs = workflow["jobs"]
        assert list(jobs) == ["register", "replay", "gate"]

        register = tmp_path / "register"
        register.mkdir()
        for command in _commands(jobs["register"]):
            out, err = (done := _run(command, register, env)).communicate(timeout=300)
            assert done.returncode == 0, (command, out, err)

        shards = jobs["replay"]["strategy"]["matrix"]["shard"]
        assert shards == [1, 2, 3]
        predicted = 0
        for step in range(len(_commands(jobs["replay"], 1))):
            running = []
            for shard in shards:  # the matrix: three runners at once, each in its own folder
                folder = tmp_path / f"shard-{shard}"
                folder.mkdir(exist_ok=True)
                running.append(_run(_commands(jobs["replay"], shard)[step], folder, env))
            for process in running:
                out, err = process.communicate(timeout=300)
                assert process.returncode == 0, (out, err)
                predicted += sum(int(n) for n in re.findall(r"run #\d+: (\d+) predicted", err))
        assert predicted == 4 * files  # v1, v2, v3 and the candidate; each pair once

        gate = tmp_path / "gate"
        gate.mkdir()
        outputs = []
        for command in _commands(jobs["gate"]):
            out, err = (done := _run(command, gate, env)).communicate(timeout=300)
            assert done.returncode == 0, (command, out, err)
            outputs.append(out)
        assert "replay: 0 predicted" in outputs[0]  # the shards stored everything
        assert (gate / "registry-report" / "index.html").is_file()
        assert "digits@ci-0123abc" in (gate / "registry-comment.md").read_text(encoding="utf-8")
        assert (tmp_path / "step-summary.md").read_text(encoding="utf-8").strip()
    finally:
        postgres_server.drop_database(url)
