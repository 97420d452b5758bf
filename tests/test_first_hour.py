"""Issue 19, "the first hour": what a new user's run of the console script now does.

Each test starts in an empty folder, as the README's tutorial does, and runs the installed
``problem-registry`` script as separate processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import write_png

SCRIPT = str(Path(sys.executable).parent / "problem-registry")


def _run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
    return subprocess.run(
        [SCRIPT, *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _ok(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    outcome = _run(*args, cwd=cwd, env=env)
    assert outcome.returncode == 0, (args, outcome.stderr)
    assert "Traceback" not in outcome.stderr
    return outcome


BROKEN_MODEL = """
def load(artifact=None):
    def predict(images):
        raise ValueError("no weights at postgresql://bob:hunter2-secret@db/x\\nsecond line")
    return predict
"""

FIXED_MODEL = """
def load(artifact=None):
    return lambda images: ["red" for _ in images]
"""


def test_replay_names_the_first_error_and_retry_errored_replaces_it(tmp_path: Path) -> None:
    _ok("init", cwd=tmp_path)
    _ok("problem", "add", "colours", cwd=tmp_path)
    red = write_png(tmp_path / "red.png", color=(255, 0, 0))
    blue = write_png(tmp_path / "blue.png", color=(0, 0, 255))
    _ok("pattern", "add", "colours", str(red), "--expect", "red", cwd=tmp_path)
    _ok("pattern", "add", "colours", str(blue), "--expect", "blue", cwd=tmp_path)
    (tmp_path / "my_model.py").write_text(BROKEN_MODEL)
    _ok("model", "register", "m", "v1", "--loader", "my_model:load", cwd=tmp_path)

    first = _ok("replay", cwd=tmp_path)
    # One line, the exception's type and first line, the password hidden.
    assert (
        "m@v1: 2 predicted, 2 errored (first: ValueError: no weights at postgresql://bob:***@db/x)"
        in first.stderr
    )
    assert "hunter2" not in first.stderr and "second line" not in first.stderr

    # The loader is fixed: a plain replay has nothing missing, --retry-errored predicts again.
    (tmp_path / "my_model.py").write_text(FIXED_MODEL)
    assert json.loads(_ok("replay", "--json", cwd=tmp_path).stdout)["predicted"] == 0
    retried = json.loads(_ok("replay", "--retry-errored", "--json", cwd=tmp_path).stdout)
    assert (retried["predicted"], retried["errored"]) == (2, 0)
    assert retried["versions"][0]["first_error"] == ""
    (row,) = json.loads(_ok("report", "--json", cwd=tmp_path).stdout)
    assert (row["counts"]["errored"], row["counts"]["wrong"]) == (0, 1)
    # Nothing errored is left to retry.
    again = json.loads(_ok("replay", "--retry-errored", "--json", cwd=tmp_path).stdout)
    assert again["predicted"] == 0


def test_replay_json_gives_each_versions_first_error(tmp_path: Path) -> None:
    _ok("init", cwd=tmp_path)
    _ok("problem", "add", "colours", cwd=tmp_path)
    red = write_png(tmp_path / "red.png", color=(255, 0, 0))
    _ok("pattern", "add", "colours", str(red), "--expect", "red", cwd=tmp_path)
    (tmp_path / "my_model.py").write_text(BROKEN_MODEL)
    _ok("model", "register", "m", "v1", "--loader", "my_model:load", cwd=tmp_path)
    summary = json.loads(_ok("replay", "--json", cwd=tmp_path).stdout)
    (version,) = summary["versions"]
    assert version["errored"] == 1
    assert version["first_error"] == "ValueError: no weights at postgresql://bob:***@db/x"


def _every_command() -> list[list[str]]:
    """Every command line of the CLI, groups' subcommands included, as ``--help`` would list."""
    import typer

    from problem_registry.cli import COMMANDS, app

    root = typer.main.get_command(app)
    context = typer.Context(root)
    found: list[list[str]] = [[]]
    for name in COMMANDS:
        command = root.get_command(context, name)  # type: ignore[attr-defined]
        found.append([name])
        found += [[name, sub] for sub in getattr(command, "commands", {})]
    return found


def test_help_shows_words_not_python_types() -> None:
    """Issue 19 item 7: no `<bool>`, `<list[Path]>` or `<int range>` in any command's help."""
    import re

    from typer.testing import CliRunner

    from problem_registry.cli import app

    runner = CliRunner()
    commands = _every_command()
    assert ["pattern", "add"] in commands and ["replay"] in commands
    for words in commands:
        result = runner.invoke(app, [*words, "--help"], terminal_width=200)
        assert result.exit_code == 0, (words, result.output)
        assert not re.search(r"<[a-z]", result.output), (words, result.output)
    shown = runner.invoke(app, ["pattern", "add", "--help"], terminal_width=200).output
    assert "{FILE}..." in shown and "LOW:HIGH" in shown and "[positive|negative]" in shown
    shown = runner.invoke(app, ["replay", "--help"], terminal_width=200).output
    assert "NAME@VERSION" in shown and "--batch-size" in shown
    # A paragraph is one line for the terminal to wrap, not broken where the docstring was.
    shown = runner.invoke(app, ["report", "--help"], terminal_width=200).output
    assert "pattern shows here at once, without any model being run" in shown


def test_a_mistyped_command_gets_a_suggestion_and_exit_2(tmp_path: Path) -> None:
    outcome = _run("problme", "list", cwd=tmp_path)
    assert outcome.returncode == 2
    assert "did you mean 'problem'?" in outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_chart_example_names_a_problem_the_demo_has() -> None:
    import re

    from problem_registry.cli.charts import chart

    examples = re.findall(r"chart ([a-z0-9-]+) --kind", chart.__doc__ or "")
    assert examples
    demo_problems = Path(__file__).parents[1] / "patterns" / "problems"
    for slug in examples:
        assert (demo_problems / f"{slug}.json").is_file(), slug


def test_writing_with_no_user_known_warns_once(tmp_path: Path) -> None:
    """Issue 19 item 12: a container without $USER records 'unknown', and now says so, once."""
    nobody = {
        "USER": "",
        "LOGNAME": "",
        "GITHUB_ACTOR": "",
        "GITLAB_USER_LOGIN": "",
        "USERNAME": "",
    }
    _ok("init", cwd=tmp_path, env=nobody)
    _ok("problem", "add", "colours", cwd=tmp_path, env=nobody)
    red = write_png(tmp_path / "red.png", color=(255, 0, 0))
    blue = write_png(tmp_path / "blue.png", color=(0, 0, 255))
    added = _ok(
        "pattern", "add", "colours", str(red), str(blue), "--expect", "x", cwd=tmp_path, env=nobody
    )
    warnings = [line for line in added.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: nothing says who is writing (no --user, $PROBLEM_REGISTRY_USER, $GITHUB_ACTOR "
        "or $USER), so this is recorded as added by 'unknown'; set one, e.g. export "
        "PROBLEM_REGISTRY_USER=$(whoami)"
    ]
    listed = json.loads(_ok("pattern", "list", "--json", cwd=tmp_path, env=nobody).stdout)
    assert {p["added_by"] for p in listed} == {"unknown"}
    # A refused write records nothing, so it warns of nothing: one line, the error.
    refused = _run("pattern", "add", "colours", str(red), "--expect", "x", cwd=tmp_path, env=nobody)
    assert refused.returncode == 1
    assert [line.split(":")[0] for line in refused.stderr.splitlines()] == ["error"]
    # Named, no warning.
    green = write_png(tmp_path / "green.png", color=(0, 255, 0))
    named = _ok(
        "pattern", "add", "colours", str(green), "--expect", "x", cwd=tmp_path, env={"USER": "tess"}
    )
    assert "warning" not in named.stderr


def test_help_names_every_source_of_the_user_name() -> None:
    from typer.testing import CliRunner

    from problem_registry.cli import app

    shown = CliRunner().invoke(app, ["--help"], terminal_width=200).output
    for source in ("$PROBLEM_REGISTRY_USER", "$GITHUB_ACTOR", "$USER"):
        assert source in shown
