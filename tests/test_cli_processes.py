"""The installed console script, as separate processes: exit codes, stderr, concurrency."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = str(Path(sys.executable).parent / "problem-registry")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
    return subprocess.run(
        [SCRIPT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "args",
    [
        ["problem", "list"],
        ["pattern", "list"],
        ["model", "list", "--json"],
        ["report"],
        ["chart", "--out", "x.png"],
        ["check"],
        ["replay"],
        ["db", "status"],
        ["problem", "add", "hat-bias"],
    ],
)
def test_a_command_in_a_folder_without_a_registry_says_so_and_creates_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    """Issue 19: reads and writes alike point at `init`; only `init` creates a registry."""
    outcome = _run(*args, cwd=tmp_path)
    assert outcome.returncode == 1, outcome.stderr
    assert outcome.stderr.splitlines() == [
        "error: no registry here (looked for ./registry.db); run `problem-registry init` or "
        "set --url / PROBLEM_REGISTRY_URL"
    ]
    assert outcome.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_init_creates_the_registry_a_read_then_finds(tmp_path: Path) -> None:
    assert _run("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "registry.db").is_file()
    listed = _run("problem", "list", cwd=tmp_path)
    assert (listed.returncode, listed.stdout) == (0, "")
    assert "no problems yet" in listed.stderr


def test_user_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    assert _run("init", cwd=tmp_path).returncode == 0
    outcome = _run("problem", "show", "nope", cwd=tmp_path)
    assert outcome.returncode == 1
    assert outcome.stderr.splitlines() == [
        "error: no problem 'nope'; see `problem-registry problem list`, or add it with "
        "`problem-registry problem add nope`"
    ]
    assert outcome.stdout == ""


def test_usage_error_exits_2(tmp_path: Path) -> None:
    assert _run("problem", "add", cwd=tmp_path).returncode == 2
    assert _run("no-such-command", cwd=tmp_path).returncode == 2


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://alice:hunter2-secret@127.0.0.1:9/registry",
        "postgresql+psycopg://alice:hunter2-secret@127.0.0.1:9/registry",
    ],
)
def test_unreachable_database_never_prints_the_password(url: str, tmp_path: Path) -> None:
    outcome = _run("--url", url, "problem", "list", cwd=tmp_path)
    assert outcome.returncode == 1
    assert "hunter2-secret" not in outcome.stderr + outcome.stdout
    assert "alice:***@127.0.0.1:9/registry" in outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://alice:hunter2-secret@h/db", "unsupported database"),
        ("not a url", "cannot parse database URL"),
    ],
)
def test_bad_url_is_a_user_error(url: str, message: str, tmp_path: Path) -> None:
    outcome = _run("--url", url, "init", cwd=tmp_path)
    assert outcome.returncode == 1
    assert message in outcome.stderr
    assert "hunter2-secret" not in outcome.stderr


def test_cli_finds_the_project_registry_from_a_subfolder(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.problem-registry]\nurl = "sqlite:///r.db"\n')
    deep = tmp_path / "src" / "deep"
    deep.mkdir(parents=True)
    assert _run("init", cwd=deep).returncode == 0
    assert (tmp_path / "r.db").is_file()
    assert _run("problem", "add", "from-deep", cwd=deep).returncode == 0
    listed = _run("problem", "list", "--json", cwd=tmp_path)
    assert '"from-deep"' in listed.stdout
