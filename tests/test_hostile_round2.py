"""Issue 16, round 2 (items 7, 8, 9, 11, 12, 13): hostile text, files and structures end in one
line or are stored safely, never in a traceback, a hang, or a file outside the registry.

Each item has examples that failed on main, and each class of input a Hypothesis property driving
the real CLI (in process through Typer's runner, or as a real process where a hang or a signal is
the point) that asserts: exit code 0, 1 or 2, no traceback, nothing written outside the registry
and the named output folder, and ``check`` clean afterwards.

Real components throughout: SQLite files in tmp_path, the throwaway PostgreSQL server (these
tests fail rather than skip under ``CI``), real FIFOs, real worker processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from problem_registry.cli import app
from problem_registry.errors import RegistryError
from problem_registry.expectations import Expectation
from problem_registry.replay.engine import replay
from problem_registry.store.bundle import import_bundle
from problem_registry.store.content import PatternStore
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from problem_registry.text import MAX_ANSWER_LENGTH, MAX_ERROR_LENGTH, stored_text
from tests.helpers import stored_files, write_text
from tests.test_model_workers import stored as stored_rows
from tests.throwaway_postgres import PostgresServer

FUZZ = settings(
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MODELS = "tests.models.misbehaving"
SLUG = "p-one"
WORDS = ("alpha", "beta", "gamma")


def cli(*args: str) -> tuple[int, str, str]:
    """In-process; an exception the CLI let escape is raised here (it would be a traceback)."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def assert_no_traceback(code: int, out: str, err: str) -> None:
    assert code in (0, 1, 2), (code, out, err)
    assert "Traceback" not in out + err, out + err


class Project:
    """A registry (SQLite file or PostgreSQL database) with one problem of three text patterns."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder
        self.store = folder / "patterns"
        self.files = [write_text(folder / "in" / f"{w}.txt", w) for w in WORDS]
        with self.open() as registry:
            registry.problems.add(SLUG)
            registry.patterns.add(
                SLUG, [NewPattern(path, Expectation.exact(path.stem)) for path in self.files]
            )

    def open(self) -> Registry:
        return Registry.open(url=self.url, patterns_dir=self.store, user="tester")

    def cli(self, *args: str) -> tuple[int, str, str]:
        return cli("--url", self.url, "--patterns-dir", str(self.store), *args)

    def sha256s(self) -> list[str]:
        return [hashlib.sha256(path.read_bytes()).hexdigest() for path in self.files]

    def stored(self) -> dict[str, list[tuple[str | None, str | None]]]:
        """Each version's stored (label, error) pairs, sorted."""
        found = stored_rows(self.url)
        found.pop("runs")
        return {version: sorted(pairs, key=repr) for version, pairs in found.items()}

    def run_messages(self) -> list[tuple[str, str]]:
        return stored_rows(self.url)["runs"]  # type: ignore[return-value]

    def assert_check_clean(self) -> None:
        code, out, err = self.cli("check")
        assert code == 0, (out, err)


@pytest.fixture
def project(database_url: str, tmp_path: Path) -> Project:
    return Project(database_url, tmp_path)


@pytest.fixture
def sqlite_project(tmp_path: Path) -> Project:
    return Project(f"sqlite:///{tmp_path}/registry.db", tmp_path)


# --------------------------------------------------------------------------------------------
# Item 8: NUL and lone surrogates in what a model writes are stored escaped, never lost


def test_a_nul_or_surrogate_in_a_model_answer_is_stored_escaped_beside_other_versions(
    project: Project,
) -> None:
    """A label with a NUL or a lone surrogate, and an exception message with both, were a
    traceback (main: the version skipped, nothing stored); in one write with healthy versions."""
    with project.open() as registry:
        for version, behaviour in [
            ("v1", "healthy"),
            ("nul", "nul_label"),
            ("surrogate", "surrogate"),
            ("raises", "unstorable_error"),
            ("v2", "healthy"),
        ]:
            registry.models.register("m", version, loader=f"{MODELS}:{behaviour}")
        summary = replay(registry, batch_size=3)
    assert summary.unavailable == []
    rows = project.stored()
    assert rows["v1"] == rows["v2"] == [(w, None) for w in WORDS]
    assert rows["nul"] == [(f"nul\\x00{w}", None) for w in WORDS]
    assert rows["surrogate"] == [("bad \\udc80 label", None)] * 3
    assert rows["raises"] == [(None, "ValueError: bad \\x00 input \\udcff here")] * 3
    # Stored once: a rerun has nothing left to predict.
    code, out, err = project.cli("replay", "--all")
    assert code == 0 and "0 predicted" in out + err, out + err
    project.assert_check_clean()


def test_a_loader_error_with_a_nul_is_kept_in_the_run_message(project: Project) -> None:
    """The candidate's reason, quoting its loader's exception, is the failed run's message."""
    with project.open() as registry:
        registry.models.register("m", "bad", loader=f"{MODELS}:unstorable_loader")
    code, out, err = project.cli("replay", "--model", "m@bad")
    assert_no_traceback(code, out, err)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    ((status, message),) = project.run_messages()
    assert status == "failed"
    assert "weights \\x00 missing \\udcff" in message


def _predictions_file(folder: Path, lines: list[dict[str, object]], name: str) -> Path:
    # ensure_ascii: a lone surrogate travels as the JSON escape "\udcff", as a real file has it.
    path = folder / name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_predictions_file_with_nul_and_surrogates_is_stored_escaped(project: Project) -> None:
    a, b, c = project.sha256s()
    lines: list[dict[str, object]] = [
        {"sha256": a, "prediction": "x\x00y"},
        {"sha256": b, "prediction": "x\udcffy"},
        {"sha256": c, "prediction": "fine", "confidence": 0.5},
    ]
    path = _predictions_file(project.folder, lines, "answers.jsonl")
    code, out, err = project.cli("model", "register", "m", "file", "--predictions", str(path))
    assert code == 0, err
    code, out, err = project.cli("replay", "--model", "m@file")
    assert code == 0, out + err
    assert project.stored()["file"] == [("fine", None), ("x\\udcffy", None), ("x\\x00y", None)]
    project.assert_check_clean()


# Hostile pieces of text: every code point (NUL, lone surrogates, controls, RTL marks) and the
# fragments that broke something before: rich markup, terminal escapes, a written-out escape.
HOSTILE_PIECES = st.one_of(
    st.characters(exclude_categories=()),
    st.sampled_from(
        [
            "\x00",
            "\udcff",
            "\ud800",
            "\x1b[31m",
            "\x1b]8;;http://x\x07",
            "\x9b2J",
            "[/x]",
            "[red]",
            "[link=file:///etc]",
            "\\x00",
            "\u202e",
            "\r",
            "\x7f",
        ]
    ),
)
HOSTILE_TEXT = st.lists(HOSTILE_PIECES, max_size=12).map("".join)


@FUZZ
@given(labels=st.lists(HOSTILE_TEXT, min_size=3, max_size=3))
def test_no_label_in_a_predictions_file_fails_the_replay_or_is_lost(
    project: Project, labels: list[str]
) -> None:
    """Any text a predictions file can carry is stored, escaped as ``stored_text`` says, on both
    backends; the registry stays consistent. One database per test: each example is a version."""
    version = f"x{len(project.stored())}"
    lines = [
        {"sha256": sha, "prediction": label}
        for sha, label in zip(project.sha256s(), labels, strict=True)
    ]
    path = _predictions_file(project.folder, lines, f"{version}.jsonl")
    code, out, err = project.cli("model", "register", "m", version, "--predictions", str(path))
    assert_no_traceback(code, out, err)
    assert code == 0, err
    code, out, err = project.cli("replay", "--model", f"m@{version}")
    assert_no_traceback(code, out, err)
    assert code == 0, out + err
    # As the file carries it: JSON joins an escaped surrogate pair ("\ud800\udc00") into one
    # character, which is then no longer a lone surrogate.
    carried = [json.loads(json.dumps(label)) for label in labels]
    expected = sorted(
        ((stored_text(label, MAX_ANSWER_LENGTH), None) for label in carried), key=repr
    )
    assert project.stored()[version] == expected
    project.assert_check_clean()


@settings(FUZZ, max_examples=8)
@given(text=HOSTILE_TEXT, raises=st.booleans())
def test_no_text_a_model_writes_fails_the_replay_or_is_lost(
    sqlite_project: Project, text: str, raises: bool
) -> None:
    """A real model in its worker answers (or raises with) any text: the replay stores it as
    ``stored_text`` says and the registry stays consistent."""
    project = sqlite_project
    with project.open() as registry:
        if not registry.models.list():
            registry.models.register("m", "echo", loader=f"{MODELS}:echoes")
    key = "raise" if raises else "answer"
    # ASCII JSON: NUL and lone surrogates travel as escapes, as a JSON pattern holds them.
    body = json.dumps({key: text, "n": len(project.stored().get("echo", []))})
    path = write_text(
        project.folder / "in" / f"e{hashlib.sha256(body.encode()).hexdigest()}.json", body
    )
    code, out, err = project.cli("pattern", "add", SLUG, str(path), "--expect", "x")
    assert_no_traceback(code, out, err)
    if code:  # the same content twice: already a pattern
        return
    code, out, err = project.cli("replay", "--model", "m@echo")
    assert_no_traceback(code, out, err)
    assert code == 0, out + err
    text = json.loads(body)[key]  # as the model reads it: JSON joins an escaped surrogate pair
    expected = (
        (None, stored_text(f"ValueError: {text}" if text else "ValueError", MAX_ERROR_LENGTH))
        if raises
        else (stored_text(text, MAX_ANSWER_LENGTH), None)
    )
    assert expected in project.stored()["echo"]
    project.assert_check_clean()


def test_stored_text_escapes_only_what_cannot_be_stored() -> None:
    assert stored_text("plain", 10) == "plain"
    assert stored_text("a\x00b\udcffc\u00e9\U0001f600", 100) == "a\\x00b\\udcffc\u00e9\U0001f600"
    assert stored_text("x" * 60, 50) == "x" * 20 + "... [60 characters, cut to 50]"
    assert stored_text("x" * 12, 10) == "x" * 10  # no room for the marker: cut alone


@FUZZ
@given(text=st.text(alphabet=st.characters(exclude_categories=())), cap=st.integers(1, 50))
def test_stored_text_is_always_storable(text: str, cap: int) -> None:
    """Any text comes out encodable as UTF-8, free of NUL, and within cap plus the marker."""
    out = stored_text(text, cap)
    out.encode("utf-8")
    assert "\x00" not in out
    assert len(out) <= cap


# --------------------------------------------------------------------------------------------
# Item 7: user text is shown as text: never rich markup, never a terminal control sequence

# What a terminal acts on: C0 and C1 controls, DEL, bidirectional overrides and isolates.
TERMINAL_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
READ_COMMANDS = (
    ("problem", "list"),
    ("problem", "list", "--json"),
    ("problem", "show", SLUG),
    ("problem", "show", SLUG, "--json"),
    ("pattern", "list"),
    ("pattern", "list", "--json"),
    ("pattern", "show", "1"),
    ("pattern", "show", "1", "--json"),
    ("report",),
)


def assert_shown_safely(project: Project, *must_show: str) -> str:
    """Every read command works, prints no terminal control, and shows ``must_show`` as is."""
    shown = ""
    for command in READ_COMMANDS:
        code, out, err = project.cli(*command)
        assert code == 0, (command, out, err)
        assert "Traceback" not in out + err
        assert not TERMINAL_CONTROLS.search(out + err), (command, out + err)
        shown += out + err
    for text in must_show:
        assert text in shown, (text, shown)
    return shown


def test_rich_markup_in_titles_labels_and_names_is_shown_as_written(tmp_path: Path) -> None:
    """main: MarkupError after the pattern was committed, then every list and show crashed."""
    project = Project(f"sqlite:///{tmp_path}/registry.db", tmp_path)
    path = write_text(tmp_path / "[red]x.txt", "markup")
    assert project.cli("problem", "edit", SLUG, "--title", "[/title]")[0] == 0
    code, out, err = project.cli(
        "pattern", "add", SLUG, str(path), "--expect", "[/oops]", "--note", "[bold]n[/bold]"
    )
    assert code == 0, out + err
    assert_shown_safely(project, "[/title]", "[/oops]", "[red]x.txt", "[bold]n[/bold]")
    project.assert_check_clean()


def test_terminal_escapes_in_user_text_are_shown_written_out(tmp_path: Path) -> None:
    """main: an OSC retitling the terminal and a CSI clearing it were printed raw."""
    project = Project(f"sqlite:///{tmp_path}/registry.db", tmp_path)
    code, out, err = project.cli(
        "problem", "edit", SLUG, "--title", "t\x1b[2J", "--description", "d\x9b31m"
    )
    assert code == 0, out + err
    path = write_text(tmp_path / "e\x1b[31m.txt", "escape")
    code, out, err = project.cli(
        "pattern", "add", SLUG, str(path), "--expect", "x\u202ey", "--note", "\x1b]0;pwned\x07"
    )
    assert code == 0, out + err
    assert_shown_safely(project, "t\\x1b[2J", "e\\x1b[31m.txt", "\\x1b]0;pwned\\x07")


def test_markup_from_a_csv_import_is_shown_as_written(tmp_path: Path) -> None:
    project = Project(f"sqlite:///{tmp_path}/registry.db", tmp_path)
    write_text(tmp_path / "c.txt", "from csv")
    table = tmp_path / "patterns.csv"
    table.write_text('path,expected,polarity,note\nc.txt,[/csv],positive,"[link=x]n\x1b[0m"\n')
    code, out, err = project.cli("pattern", "import", SLUG, "--csv", str(table))
    assert code == 0, out + err
    assert_shown_safely(project, "[/csv]", "[link=x]n\\x1b[0m")


def test_markup_and_escapes_from_a_bundle_are_shown_as_written(
    sqlite_project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A bundle is someone else's text: its title and labels reach every list and show."""
    bundle = sqlite_project.folder / "bundle"
    assert sqlite_project.cli("export", str(bundle))[0] == 0
    manifest = bundle / "problems" / f"{SLUG}.json"
    document = json.loads(manifest.read_text())
    document["title"] = "[/title]\x1b]0;owned\x07"
    document["patterns"][0]["expect"] = {"kind": "exact", "labels": ["[/label]"]}
    manifest.write_text(json.dumps(document))
    target = Project(
        f"sqlite:///{tmp_path_factory.mktemp('target')}/registry.db",
        tmp_path_factory.mktemp("target-files"),
    )
    code, out, err = target.cli("import", str(bundle))
    assert code == 0, out + err
    assert_shown_safely(target, "[/title]\\x1b]0;owned\\x07", "[/label]")
    target.assert_check_clean()


def test_the_pytest_gate_shows_model_answers_without_their_escapes(tmp_path: Path) -> None:
    """A failing gate lists what the model answered: an OSC or CSI in it reached the terminal
    raw through pytest's failure text and summary (main); now written out."""
    project = Project(f"sqlite:///{tmp_path}/registry.db", tmp_path)
    assert project.cli("problem", "edit", SLUG, "--max-error-rate", "0")[0] == 0
    lines = [
        {"sha256": sha, "prediction": "\x1b]0;owned\x07\x1b[2Jgot"} for sha in project.sha256s()
    ]
    answers = _predictions_file(project.folder, lines, "answers.jsonl")
    assert project.cli("model", "register", "m", "v1", "--predictions", str(answers))[0] == 0
    write_text(tmp_path / "test_nothing.py", "def test_nothing():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
    env["PROBLEM_REGISTRY_PATTERNS"] = str(project.store)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--registry",
         "--registry-url", project.url, "--candidate", "m@v1", "-rf"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    shown = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, shown
    assert "\\x1b]0;owned\\x07" in shown, shown
    assert not TERMINAL_CONTROLS.search(shown.replace("\n", "")), shown


@FUZZ
@given(title=HOSTILE_TEXT, label=HOSTILE_TEXT, note=HOSTILE_TEXT, name=HOSTILE_TEXT)
def test_no_user_text_breaks_or_escapes_the_terminal(
    sqlite_project: Project, title: str, label: str, note: str, name: str
) -> None:
    """Whatever a title, label, note or file name holds: each write is stored or refused in one
    line, and every read command then works and prints no control character."""
    project = sqlite_project
    project.cli("problem", "edit", SLUG, "--title", title)
    file_name = _file_name(name)
    before = set(project.folder.parent.iterdir())
    if file_name is not None:
        path = project.folder / "in" / file_name
        path.write_bytes(os.urandom(8).hex().encode())
        code, out, err = project.cli(
            "pattern", "add", SLUG, str(path), "--expect", label, "--note", note
        )
        assert_no_traceback(code, out, err)
        if code:
            assert len(err.strip().splitlines()) == 1, err
            assert not TERMINAL_CONTROLS.search(out + err), err
    assert set(project.folder.parent.iterdir()) == before  # nothing beside the project
    assert_shown_safely(project)
    project.assert_check_clean()


def _file_name(name: str) -> str | None:
    """``name`` as a file system takes it (no '/', no NUL, at most 200 bytes), or None."""
    name = name.replace("/", "").replace("\x00", "")
    try:
        encoded = os.fsencode(name + ".txt")
    except UnicodeEncodeError:  # a surrogate outside \udc80-\udcff has no bytes
        return None
    return name + ".txt" if len(encoded) <= 200 and name not in ("", ".", "..") else None


# --------------------------------------------------------------------------------------------
# Item 9: a FIFO or a device where a file is read is refused in one line, never waited on

REPO = Path(__file__).resolve().parent.parent
SCRIPT = str(Path(sys.executable).parent / "problem-registry")


def run_cli(project: Project, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The CLI as a real process: a hang fails the test (killed at ``timeout``), never hangs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    command = [SCRIPT, "--url", project.url, "--patterns-dir", str(project.store), *args]
    return subprocess.run(
        command, cwd=project.folder, env=env, capture_output=True, text=True, timeout=timeout
    )


@contextlib.contextmanager
def hang_guard(seconds: int) -> Iterator[list[bool]]:
    """Interrupt whatever blocks past ``seconds`` (a FIFO's open included); the flag tells."""
    fired: list[bool] = []

    def alarm(_signum: int, _frame: object) -> None:
        fired.append(True)
        raise TimeoutError("hung")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield fired
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def guarded(project: Project, *args: str, seconds: int = 60) -> tuple[int, str, str]:
    """The CLI in process, failed (not hung) if it blocks past ``seconds``."""
    with hang_guard(seconds) as fired:
        result = project.cli(*args)
    assert not fired, f"{args} hung"
    return result


def plant(path: Path, kind: str) -> None:
    """Replace ``path`` with something that is not a plain file."""
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    else:
        raise AssertionError(kind)


def stored_pattern(project: Project) -> Path:
    (path,) = [p for p in project.store.rglob("*") if p.is_file() and WORDS[0] in p.read_text()]
    return path


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
@pytest.mark.parametrize("command", ["replay", "export", "report"])
def test_a_store_file_swapped_for_a_fifo_or_dev_zero_is_never_read(
    sqlite_project: Project, kind: str, command: str
) -> None:
    """main: replay, export and report --html hung on a FIFO (deaf to SIGTERM) and read
    /dev/zero without end."""
    project = sqlite_project
    with project.open() as registry:
        registry.models.register("m", "v1", loader=f"{MODELS}:healthy")
    plant(stored_pattern(project), kind)
    args = {
        "replay": ["replay", "--all"],
        "export": ["export", str(project.folder / "bundle")],
        "report": ["report", "--html", str(project.folder / "report")],
    }[command]
    code, out, err = guarded(project, *args)
    assert "Traceback" not in out + err
    # Issue 17: the store is a cache of the database's content, so the planted file is refused
    # (never opened blocking, never read past its cap) and the content read from the database.
    assert code == 0, err
    if command == "replay":
        assert "3 predicted" in err, err


def test_a_replay_meeting_a_fifo_ends_as_a_real_process(sqlite_project: Project) -> None:
    """The hang of main as users met it: a real process, blocked in open(), deaf to SIGTERM."""
    project = sqlite_project
    with project.open() as registry:
        registry.models.register("m", "v1", loader=f"{MODELS}:healthy")
    plant(stored_pattern(project), "fifo")
    planted = next(p for p in project.store.rglob("*") if p.is_fifo())
    done = run_cli(project, "replay", "--all", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "3 predicted" in done.stderr and "Traceback" not in done.stderr
    # The cache is repaired from the database (issue 17): a real file where the FIFO was.
    assert planted.is_file() and not planted.is_fifo()


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder"])
@pytest.mark.parametrize("what", ["csv", "predictions", "artifact", "manifest", "pattern"])
def test_a_named_input_that_is_not_a_plain_file_is_refused_in_one_line(
    sqlite_project: Project, kind: str, what: str
) -> None:
    """``--csv FIFO`` hung; so would any reader that opened before looking."""
    project = sqlite_project
    target = _named_input(project, what)
    plant(target, kind)
    code, out, err = guarded(project, *_reading(project, what, target))
    assert "Traceback" not in out + err
    if what == "manifest" and kind != "folder":  # unreadable: as no manifest, the report is written
        assert code == 0, err
    else:
        assert code == 1, err
        assert len(err.strip().splitlines()) == 1, err
    project.assert_check_clean()


def _named_input(project: Project, what: str) -> Path:
    """Where a command reads the file the user names (or the report folder's manifest)."""
    if what == "manifest":
        (project.folder / "report").mkdir()
        return project.folder / "report" / ".report-manifest.json"
    name = {"csv": "in.csv", "predictions": "in.jsonl", "artifact": "model.bin"}.get(what, "x.txt")
    return project.folder / name


def _reading(project: Project, what: str, target: Path) -> list[str]:
    """The command that reads ``target`` as ``what``."""
    return {
        "csv": ["pattern", "import", SLUG, "--csv", str(target)],
        "predictions": ["model", "register", "m", "p", "--predictions", str(target)],
        "artifact": ["model", "register", "m", "a", "--loader", f"{MODELS}:healthy",
                     "--artifact", str(target)],
        "manifest": ["report", "--html", str(target.parent)],
        "pattern": ["pattern", "add", SLUG, str(target), "--expect", "x"],
    }[what]  # fmt: skip


@settings(FUZZ, max_examples=15)
@given(
    what=st.sampled_from(["store", "csv", "predictions", "artifact", "manifest", "pattern"]),
    kind=st.sampled_from(["fifo", "dev-zero", "folder", "dangling"]),
    command=st.sampled_from(["replay", "export", "report"]),
)
def test_no_planted_fifo_device_or_folder_hangs_or_breaks_a_reader(
    what: str, kind: str, command: str
) -> None:
    """Whatever a reader meets where a file should be: done within the guard, exit 0/1/2, no
    traceback, nothing written beside the project, ``check`` clean once the file is restored."""
    with tempfile.TemporaryDirectory(prefix="round2-") as folder:
        project = Project(f"sqlite:///{folder}/registry.db", Path(folder))
        if what == "store":
            with project.open() as registry:
                registry.models.register("m", "v1", loader=f"{MODELS}:healthy")
            victim = stored_pattern(project)
            original = victim.read_bytes()
        else:
            victim = _named_input(project, what)
        if kind == "dangling":
            victim.unlink(missing_ok=True)
            victim.symlink_to(project.folder / "nowhere")
        else:
            plant(victim, kind)
        if what == "store":
            args = {
                "replay": ["replay", "--all"],
                "export": ["export", str(project.folder / "bundle")],
                "report": ["report", "--html", str(project.folder / "out")],
            }[command]
        else:
            args = _reading(project, what, victim)
        before = set(project.folder.iterdir())
        code, out, err = guarded(project, *args)
        assert_no_traceback(code, out, err)
        made = {p.name for p in set(project.folder.iterdir()) - before}
        assert made <= {"bundle", "out", "registry.db-wal", "registry.db-shm"}, made
        if what == "store":
            victim.unlink() if not victim.is_dir() else victim.rmdir()
            victim.write_bytes(original)
        project.assert_check_clean()


# --------------------------------------------------------------------------------------------
# Item 11: what was a traceback is one line, exit 1 (user error) or 2 (usage)


def assert_one_line(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 1, (code, out, err)
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


def nested(depth: int, kind: str = "[") -> str:
    """JSON (or a TOML value) nested ``depth`` deep."""
    if kind == "{":
        return '{"a":' * depth + "1" + "}" * depth
    return "[" * depth + "]" * depth


def _nested_carrier(project: Project, carrier: str, text: str) -> tuple[str, ...]:
    """Plant ``text`` where ``carrier`` reads JSON; the command that reads it."""
    folder = project.folder
    if carrier == "pattern":
        return (
            "pattern",
            "add",
            SLUG,
            str(write_text(folder / "deep.json", text)),
            "--expect",
            "x",
        )
    if carrier == "folder":
        write_text(folder / "tree" / "x" / "deep.json", text)
        return ("pattern", "import", SLUG, str(folder / "tree"))
    if carrier == "csv":
        write_text(folder / "deep.json", text)
        table = write_text(folder / "list.csv", "path,expected\ndeep.json,x\n")
        return ("pattern", "import", SLUG, "--csv", str(table))
    if carrier == "bundle":
        bundle = folder / "bundle"
        assert project.cli("export", str(bundle))[0] == 0
        write_text(bundle / "problems" / f"{SLUG}.json", text)
        return ("import", str(bundle))
    if carrier == "predictions":
        line = json.dumps({"sha256": project.sha256s()[0], "prediction": "x"})
        predictions = write_text(folder / "p.jsonl", line[:-1] + f', "extra": {text}}}\n')
        return ("model", "register", "m", "p", "--predictions", str(predictions))
    if carrier == "scores":
        cell = text.replace('"', '""')
        predictions = write_text(
            folder / "p.csv", f'sha256,prediction,scores\n{project.sha256s()[0]},x,"{cell}"\n'
        )
        return ("model", "register", "m", "s", "--predictions", str(predictions))
    raise AssertionError(carrier)


NESTED_CARRIERS = ["pattern", "folder", "csv", "bundle", "predictions", "scores"]


@pytest.mark.parametrize("carrier", NESTED_CARRIERS)
def test_json_nested_100k_deep_is_refused_in_one_line(
    sqlite_project: Project, carrier: str
) -> None:
    """main: RecursionError tracebacks from pattern add, folder and CSV import, predictions."""
    args = _nested_carrier(sqlite_project, carrier, nested(100_000))
    assert_one_line(*sqlite_project.cli(*args))
    sqlite_project.assert_check_clean()


@settings(FUZZ, max_examples=25)
@given(
    carrier=st.sampled_from(NESTED_CARRIERS),
    depth=st.one_of(st.integers(1, 50), st.integers(900, 1100), st.integers(5_000, 200_000)),
    kind=st.sampled_from(["[", "{"]),
)
def test_no_nesting_depth_is_a_traceback(carrier: str, depth: int, kind: str) -> None:
    with tempfile.TemporaryDirectory(prefix="round2-") as folder:
        project = Project(f"sqlite:///{folder}/registry.db", Path(folder))
        code, out, err = project.cli(*_nested_carrier(project, carrier, nested(depth, kind)))
        assert_no_traceback(code, out, err)
        if code:
            assert len(err.strip().splitlines()) == 1, err
        project.assert_check_clean()


def test_a_deeply_nested_pyproject_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_text(tmp_path / "pyproject.toml", f"a = {nested(100_000)}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROBLEM_REGISTRY_URL", raising=False)
    assert_one_line(*cli("problem", "list"), "nested too deeply")


def _damage_table(url: str, table: str) -> None:
    """Overwrite the root page of ``table`` in a SQLite file: the schema still reads, the rows
    do not, so the damage shows only when a query reaches them."""
    path = sa.make_url(url).database
    assert path is not None
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (page,) = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
        (size,) = connection.execute("PRAGMA page_size").fetchone()
    with Path(path).open("r+b") as handle:
        handle.seek((page - 1) * size)
        handle.write(b"\xa5" * size)


def _with_results(project: Project) -> None:
    lines = [{"sha256": sha, "prediction": "alpha"} for sha in project.sha256s()]
    path = _predictions_file(project.folder, lines, "answers.jsonl")
    assert project.cli("model", "register", "m", "v1", "--predictions", str(path))[0] == 0
    assert project.cli("replay", "--all")[0] == 0


@pytest.mark.parametrize(
    "command",
    [("report",), ("report", "--json"), ("report", "--html", "out"), ("chart", "--out", "c.png")],
)
def test_a_damaged_sqlite_page_is_one_line_in_report_and_chart(
    sqlite_project: Project, command: tuple[str, ...]
) -> None:
    """main: ``DatabaseError: database disk image is malformed`` as a traceback."""
    _with_results(sqlite_project)
    _damage_table(sqlite_project.url, "result")
    args = [str(sqlite_project.folder / a) if a in ("out", "c.png") else a for a in command]
    assert_one_line(*sqlite_project.cli(*args), "malformed")
    assert not (sqlite_project.folder / "c.png").exists()


def test_text_a_damaged_page_garbled_is_named_damaged_not_repeated(
    sqlite_project: Project,
) -> None:
    """A title's bytes no longer UTF-8: one line saying the file is damaged, without the
    garbage itself (it was printed after an unrelated "check the path" hint)."""
    project = sqlite_project
    assert project.cli("problem", "add", "hats", "--title", "ZZZZZQQQQQZZZZZQQQQQ")[0] == 0
    database = Path(sa.make_url(project.url).database or "")
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(database.read_bytes())
    at = data.find(b"ZZZZZQQQQQ")
    data[at : at + 4] = b"\xff\xfe\xfd\xfc"
    database.write_bytes(bytes(data))
    for command in (("problem", "list"), ("report", "--json")):
        code, out, err = project.cli(*command)
        assert_one_line(code, out, err, "the file is damaged")
        assert "\ufffd" not in out + err and "QQQQQ" not in out + err


@settings(FUZZ, max_examples=15)
@given(
    offset=st.integers(0, 200_000),
    garbage=st.binary(min_size=1, max_size=4096),
    command=st.sampled_from(
        [("report",), ("report", "--json"), ("chart", "--out", "c.png"), ("problem", "list")]
    ),
)
# Found by Hypothesis: the WAL pragma answered with bytes that are not UTF-8 (a traceback).
@example(offset=65079, garbage=b"\x80", command=("report",))
def test_no_damage_to_the_sqlite_file_is_a_traceback(
    offset: int, garbage: bytes, command: tuple[str, ...]
) -> None:
    with tempfile.TemporaryDirectory(prefix="round2-") as folder:
        project = Project(f"sqlite:///{folder}/registry.db", Path(folder))
        _with_results(project)
        database = Path(folder) / "registry.db"
        with sqlite3.connect(database) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = database.stat().st_size
        with database.open("r+b") as handle:
            handle.seek(offset % size)
            handle.write(garbage)
        args = [str(Path(folder) / a) if a == "c.png" else a for a in command]
        assert_no_traceback(*project.cli(*args))


def test_two_rows_in_alembic_version_are_one_line(project: Project) -> None:
    engine = sa.create_engine(project.url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO alembic_version VALUES ('0001')")
    finally:
        engine.dispose()
    for command in (("problem", "list"), ("db", "status"), ("db", "upgrade")):
        assert_one_line(*project.cli(*command), "alembic_version table holds 2 revisions")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u@localhost:abc/db",
        "postgresql+psycopg://u@[::1/db",
        "postgresql+psycopg://u@[zz::1]:5432/db",
        "sqlite://:abc/x.db",
    ],
)
def test_a_url_with_a_bad_port_or_ipv6_host_is_one_line(url: str) -> None:
    """Already one line before this round (item 3's parse_url); kept so it stays one."""
    code, out, err = cli("--url", url, "problem", "list")
    assert_one_line(code, out, err)


def test_report_and_chart_onto_a_file_or_through_one_are_one_line(
    sqlite_project: Project,
) -> None:
    """main: ``report --html FILE`` and ``chart --out FILE/c.png`` were tracebacks."""
    _with_results(sqlite_project)
    a_file = write_text(sqlite_project.folder / "a-file", "not a folder")
    assert_one_line(*sqlite_project.cli("report", "--html", str(a_file)), "cannot write")
    assert_one_line(*sqlite_project.cli("chart", "--out", str(a_file / "c.png")), "cannot write")
    assert a_file.read_text() == "not a folder"


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 KB tmpfs: a real file system that fills up (needs root, as CI runs)."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode:
        reason = f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_report_and_chart_onto_a_full_disk_are_one_line_and_leave_no_empty_file(
    sqlite_project: Project, full_disk: Path
) -> None:
    """main: a traceback, and ``chart`` left a 0-byte PNG under the name asked for."""
    _with_results(sqlite_project)
    chart = full_disk / "c.png"
    assert_one_line(*sqlite_project.cli("chart", "--out", str(chart)), "No space left")
    assert not chart.exists()
    code, out, err = sqlite_project.cli("report", "--html", str(full_disk / "report"))
    assert_one_line(code, out, err, "No space left")
    # Pages written before the disk filled are whole; nothing is empty or half written.
    left = [p for p in full_disk.rglob("*") if p.is_file()]
    assert not [p for p in left if p.stat().st_size == 0 or p.name.startswith(".tmp-")], left


def test_a_predictions_csv_with_an_extra_or_a_huge_field_is_one_line(
    sqlite_project: Project,
) -> None:
    """main: AttributeError on the extra field, csv.Error past field_size_limit (128 KB)."""
    sha = sqlite_project.sha256s()[0]
    extra = write_text(sqlite_project.folder / "extra.csv", f"sha256,prediction\n{sha},x,y\n")
    huge = write_text(
        sqlite_project.folder / "huge.csv", f"sha256,prediction\n{sha},{'x' * 200_000}\n"
    )
    for path, fragment in ((extra, "more fields than the header"), (huge, "field larger")):
        args = ("model", "register", "m", path.stem, "--predictions", str(path))
        assert_one_line(*sqlite_project.cli(*args), fragment)


def test_a_user_name_that_is_not_utf8_does_not_break_a_replay(sqlite_project: Project) -> None:
    """main: UnicodeEncodeError storing the run's ``triggered_by``; kept escaped now."""
    _with_results(sqlite_project)
    code, out, err = sqlite_project.cli("--user", "ci\udcff", "replay", "--all")
    assert code == 0, out + err
    engine = sa.create_engine(sqlite_project.url)
    try:
        with engine.connect() as connection:
            users = connection.exec_driver_sql("SELECT triggered_by FROM run").scalars().all()
    finally:
        engine.dispose()
    assert "ci\\udcff" in users


# --------------------------------------------------------------------------------------------
# Item 12: memory and storage are bounded: streamed hashing, capped labels, pattern size limits


def test_a_csv_naming_one_big_file_many_times_is_refused_before_loading_it(
    sqlite_project: Project,
) -> None:
    """main: every copy was read and verified first (30 x 20 MB held at once, > 600 MB)."""
    project = sqlite_project
    big = project.folder / "big.txt"
    with big.open("w") as handle:
        for _ in range(20 * 1024):
            handle.write(("abcdefgh" * 128)[:1023] + "\n")
    table = write_text(project.folder / "dup.csv", "path,expected\n" + "big.txt,x\n" * 30)
    measure = (
        "import resource, subprocess, sys; "
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stderr.write(done.stderr); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    command = [SCRIPT, "--url", project.url, "--patterns-dir", str(project.store)]
    done = subprocess.run(
        [sys.executable, "-c", measure, *command, "pattern", "import", SLUG, "--csv", str(table)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "has the same content as" in done.stderr, done.stderr
    peak_mb = int(done.stdout) / 1024
    assert peak_mb < 250, f"peak RSS {peak_mb:.0f} MB"


def test_an_overlong_label_is_stored_cut_with_a_marker(project: Project) -> None:
    """main: 5 MB labels were stored whole (50 MB outputs made a 200 MB database)."""
    lines = [{"sha256": sha, "prediction": "y" * 5_000_000} for sha in project.sha256s()]
    path = _predictions_file(project.folder, lines, "long.jsonl")
    assert project.cli("model", "register", "m", "long", "--predictions", str(path))[0] == 0
    code, out, err = project.cli("replay", "--all")
    assert code == 0, out + err
    for label, error in project.stored()["long"]:
        assert error is None and label is not None
        assert len(label) == MAX_ANSWER_LENGTH
        assert label.endswith("... [5,000,000 characters, cut to 1,000]")


def test_a_model_answering_huge_labels_is_stored_within_the_cap(sqlite_project: Project) -> None:
    with sqlite_project.open() as registry:
        registry.models.register("m", "huge", loader=f"{MODELS}:huge_label")
        replay(registry)
    labels = [label for label, _ in sqlite_project.stored()["huge"]]
    assert labels and all(label is not None and len(label) == MAX_ANSWER_LENGTH for label in labels)


def test_pattern_size_limits_are_documented_configurable_and_one_line(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = sqlite_project
    big_json = project.folder / "big.json"
    big_json.write_text(json.dumps(["x" * 1000] * 9000))  # ~9 MB of JSON
    assert_one_line(
        *project.cli("pattern", "add", SLUG, str(big_json), "--expect", "x"), "JSON pattern"
    )
    two_mb = write_text(project.folder / "two.txt", "z" * (2 * 1024 * 1024))
    monkeypatch.setenv("PROBLEM_REGISTRY_MAX_PATTERN_MB", "1")
    assert_one_line(
        *project.cli("pattern", "add", SLUG, str(two_mb), "--expect", "x"), "1,048,576-byte"
    )
    monkeypatch.setenv("PROBLEM_REGISTRY_MAX_PATTERN_MB", "lots")
    assert_one_line(
        *project.cli("pattern", "add", SLUG, str(two_mb), "--expect", "x"),
        "PROBLEM_REGISTRY_MAX_PATTERN_MB",
    )
    monkeypatch.delenv("PROBLEM_REGISTRY_MAX_PATTERN_MB")
    assert project.cli("pattern", "add", SLUG, str(two_mb), "--expect", "x")[0] == 0
    project.assert_check_clean()


@settings(FUZZ, max_examples=25)
@given(picks=st.lists(st.integers(0, 3), min_size=1, max_size=8))
def test_no_list_of_files_with_repeats_is_half_added(picks: list[int]) -> None:
    """Any CSV, repeats included: all added or refused in one line, the store holding exactly
    the rows' files, and nothing written beside it."""
    with tempfile.TemporaryDirectory(prefix="round2-") as folder:
        project = Project(f"sqlite:///{folder}/registry.db", Path(folder))
        for i in range(4):
            write_text(project.folder / f"f{i}.txt", f"file {i}")
        table = write_text(
            project.folder / "list.csv",
            "path,expected\n" + "".join(f"f{i}.txt,x\n" for i in picks),
        )
        before = stored_files(project.store)
        code, out, err = project.cli("pattern", "import", SLUG, "--csv", str(table))
        assert_no_traceback(code, out, err)
        if len(set(picks)) < len(picks):
            assert code == 1 and "same content" in err, err
            assert stored_files(project.store) == before
        else:
            assert code == 0, err
            assert len(stored_files(project.store)) == len(before) + len(picks)
        project.assert_check_clean()


# --------------------------------------------------------------------------------------------
# A hung model worker dies with a replay killed by SIGKILL


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to watch the worker")
def test_a_hung_worker_dies_when_the_replay_is_killed(sqlite_project: Project) -> None:
    """main: the worker, blocked in the model, ran on for its hour after ``kill -9`` of replay."""
    project = sqlite_project
    with project.open() as registry:
        registry.models.register("m", "hangs", loader=f"{MODELS}:hangs_telling_pid")
    pid_file = project.folder / "worker.pid"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["HANG_PID_FILE"] = str(pid_file)
    command = [SCRIPT, "--url", project.url, "--patterns-dir", str(project.store)]
    replaying = subprocess.Popen(
        [*command, "replay", "--model", "m@hangs", "--batch-timeout", "3600"],
        cwd=project.folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = 0
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            assert replaying.poll() is None, "the replay ended before its model hung"
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        assert _alive(worker)
        replaying.send_signal(signal.SIGKILL)
        replaying.wait(timeout=30)
        deadline = time.monotonic() + 15
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker), "the hung worker outlived the killed replay"
    finally:
        if replaying.poll() is None:
            replaying.kill()
            replaying.wait()
        if worker and _alive(worker):
            os.kill(worker, signal.SIGKILL)  # the one process this test started and recorded


# --------------------------------------------------------------------------------------------
# Item 13: leftovers and wrong words


def test_a_refused_add_on_a_read_only_database_leaves_no_file_in_the_store(
    sqlite_project: Project,
) -> None:
    """main: the files were written before the rows, and stayed when the write was refused."""
    project = sqlite_project
    path = sa.make_url(project.url).database
    engine = sa.create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    )
    registry = Registry(engine, PatternStore(project.store), user="tester")
    before = stored_files(project.store)
    new = [write_text(project.folder / f"new{i}.txt", f"new {i}") for i in range(3)]
    try:
        with pytest.raises(RegistryError, match=r"readonly|read-only"):
            registry.patterns.add(SLUG, [NewPattern(p, Expectation.exact("x")) for p in new])
    finally:
        registry.close()
    assert stored_files(project.store) == before
    project.assert_check_clean()


def test_a_refused_bundle_import_leaves_no_file_in_the_store(
    sqlite_project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The import path of the same leftover (PostgreSQL refusing a concurrent import ends in the
    same cleanup): a bundle of new files onto a registry that cannot be written."""
    source = Project(
        f"sqlite:///{tmp_path_factory.mktemp('source')}/registry.db",
        tmp_path_factory.mktemp("source-files"),
    )
    only_here = write_text(source.folder / "only-here.txt", "in the bundle alone")
    assert source.cli("pattern", "add", SLUG, str(only_here), "--expect", "x")[0] == 0
    bundle = source.folder / "bundle"
    assert source.cli("export", str(bundle))[0] == 0
    project = sqlite_project
    path = sa.make_url(project.url).database
    engine = sa.create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    )
    registry = Registry(engine, PatternStore(project.store / "other"), user="tester")
    try:
        with pytest.raises(RegistryError, match=r"readonly|read-only"):
            import_bundle(registry, bundle)
    finally:
        registry.close()
    # The files the target's rows already name may stay; the bundle's own new file may not.
    left = stored_files(project.store / "other")
    assert not [name for name in left if hashlib.sha256(b"in the bundle alone").hexdigest() in name]
    assert all(any(sha in name for sha in project.sha256s()) for name in left), left
    project.assert_check_clean()


@pytest.mark.postgres
def test_an_import_refused_by_a_concurrent_import_on_postgresql_leaves_no_file(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """main: the loser of two imports creating the same problem kept the files it wrote.

    Deterministic: the test holds a transaction that inserts the bundle's problem; the import,
    in a real process, writes its files, then waits on the unique slug, and fails when the test
    commits."""
    url = postgres_server.create_database()
    try:
        project = Project(url, tmp_path_factory.mktemp("pg"))
        source = Project(
            f"sqlite:///{tmp_path_factory.mktemp('source')}/registry.db",
            tmp_path_factory.mktemp("source-files"),
        )
        assert source.cli("problem", "add", "raced")[0] == 0
        only_here = write_text(source.folder / "only-here.txt", "raced content")
        assert source.cli("pattern", "add", "raced", str(only_here), "--expect", "x")[0] == 0
        bundle = source.folder / "bundle"
        assert source.cli("export", str(bundle))[0] == 0

        engine = sa.create_engine(url)
        try:
            with engine.connect() as connection:
                transaction = connection.begin()
                connection.exec_driver_sql(
                    "INSERT INTO problem (slug, title, description, status, tags, "
                    "allowed_regressions, created_at, updated_at) VALUES "
                    "('raced', 'Raced', '', 'open', '[]', 0, now(), now())"
                )
                importing = subprocess.Popen(
                    [SCRIPT, "--url", url, "--patterns-dir", str(project.store), "import",
                     str(bundle)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                )  # fmt: skip
                sha = hashlib.sha256(b"raced content").hexdigest()
                deadline = time.monotonic() + 60
                while not any(sha in name for name in stored_files(project.store)):
                    assert importing.poll() is None, importing.communicate()
                    assert time.monotonic() < deadline, "the import never wrote its file"
                    time.sleep(0.05)
                _wait_for_a_lock_wait(engine, importing)  # its INSERT waits on the slug
                transaction.commit()
            out, err = importing.communicate(timeout=60)
        finally:
            engine.dispose()
        assert importing.returncode == 1, out + err
        assert "changed while importing" in err and "Traceback" not in err
        assert not [name for name in stored_files(project.store) if sha in name]
    finally:
        postgres_server.drop_database(url)


def _wait_for_a_lock_wait(engine: sa.Engine, importing: subprocess.Popen[str]) -> None:
    """Until another session waits on a lock (the import's INSERT behind the test's)."""
    deadline = time.monotonic() + 60
    with engine.connect() as watcher:
        while not watcher.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        ).scalar_one():
            assert importing.poll() is None, importing.communicate()
            assert time.monotonic() < deadline, "the import never waited on the slug"
            time.sleep(0.05)


def test_a_range_too_big_for_a_float_is_named_as_the_range(sqlite_project: Project) -> None:
    """main: ``10**400`` in a bundle's range was refused as a bad ``added_at``."""
    bundle = _exported_with_range(sqlite_project)
    manifest = bundle / "problems" / f"{SLUG}.json"
    manifest.write_text(manifest.read_text().replace('"high": 2.0', '"high": 1' + "0" * 400))
    assert_one_line(*sqlite_project.cli("import", str(bundle)), "range bounds must be finite")


def test_an_unknown_key_inside_expect_is_refused(sqlite_project: Project) -> None:
    """main: ``{"kind": "range", "low": 1, "high": 2, "hihg": 3}`` was imported silently."""
    bundle = _exported_with_range(sqlite_project)
    manifest = bundle / "problems" / f"{SLUG}.json"
    document = json.loads(manifest.read_text())
    document["patterns"][0]["expect"]["hihg"] = 3
    manifest.write_text(json.dumps(document))
    assert_one_line(*sqlite_project.cli("import", str(bundle)), "unknown key 'hihg'")


def _exported_with_range(project: Project) -> Path:
    path = write_text(project.folder / "ranged.txt", "ranged")
    assert project.cli("pattern", "add", SLUG, str(path), "--expect-range", "1:2")[0] == 0
    bundle = project.folder / "bundle"
    assert project.cli("export", str(bundle))[0] == 0
    document = json.loads((bundle / "problems" / f"{SLUG}.json").read_text())
    ranged = [p for p in document["patterns"] if p["expect"]["kind"] == "range"]
    document["patterns"] = ranged + [p for p in document["patterns"] if p not in ranged]
    (bundle / "problems" / f"{SLUG}.json").write_text(json.dumps(document, indent=2))
    return bundle


def test_pytest_registry_in_an_empty_folder_creates_nothing(tmp_path: Path) -> None:
    """main: ``pytest --registry`` there created ``registry.db`` and then failed on it."""
    write_text(tmp_path / "test_x.py", "def test_x():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--registry",
         "--candidate", "m@v1", "-q"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "no registry here" in done.stderr and "problem-registry init" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test_x.py"]


def test_a_killed_run_records_what_it_stored(sqlite_project: Project) -> None:
    """main: a run killed mid-replay was closed as interrupted with ``predicted 0``."""
    project = sqlite_project
    _with_results(project)
    engine = sa.create_engine(project.url)
    try:
        with engine.begin() as connection:
            # The state a kill -9 leaves: running, as a pid that no longer exists, with results.
            connection.exec_driver_sql(
                "UPDATE run SET status = 'running', predicted = 0, errored = 0, "
                "message = 'running as pid 999999999 on ' || ?",
                (socket.gethostname(),),
            )
    finally:
        engine.dispose()
    assert project.cli("replay", "--all")[0] == 0
    assert ("interrupted", 3) in [
        (status, predicted) for status, predicted, _ in _runs(project.url)
    ]


def _runs(url: str) -> list[tuple[str, int, int]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT status, predicted, errored FROM run ORDER BY id"
            ).all()
            return [(status, predicted, errored) for status, predicted, errored in rows]
    finally:
        engine.dispose()
