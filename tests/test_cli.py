"""Every command through the real CLI, on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from problem_registry.cli import app
from tests.helpers import assert_one_clear_error, write_json, write_png, write_text


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)


Cli = Callable[..., Outcome]


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    """Run ``problem-registry --url ... ARGS`` in-process; ``code`` is the exit code expected."""
    runner = CliRunner()
    store = tmp_path / "patterns"

    def run(*args: str, code: int = 0, one_line: bool = True) -> Outcome:
        result = runner.invoke(
            app,
            ["--url", database_url, "--patterns-dir", str(store), "--user", "tess", *args],
            catch_exceptions=False,
        )
        outcome = Outcome(result.exit_code, result.stdout, result.stderr)
        assert outcome.exit_code == code, (args, outcome)
        if code == 1 and one_line:
            # A user error: exactly one line, naming the problem, and never a traceback.
            assert_one_clear_error(outcome.stderr, outcome.stdout)
        return outcome

    run("init")  # as a user starts: only init creates a registry (issue 19)
    return run


def _snapshot(cli: Cli, store: Path) -> tuple[object, object, object, list[str]]:
    """Everything a refused command must leave unchanged: rows and files."""
    files = sorted(str(p.relative_to(store)) for p in store.rglob("*")) if store.exists() else []
    return (
        cli("problem", "list", "--json").json(),
        cli("pattern", "list", "--json").json(),
        cli("model", "list", "--json").json(),
        files,
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    inputs = tmp_path / "inputs"
    return {
        "red": write_png(inputs / "red.png", color=(255, 0, 0)),
        "blue": write_png(inputs / "blue.png", color=(0, 0, 255)),
        "green": write_png(inputs / "green.png", color=(0, 255, 0)),
        "text": write_text(inputs / "review.txt", "the soup was cold"),
        "json": write_json(inputs / "row.json", {"age": 41, "income": 52000}),
    }


def test_init_creates_the_registry_and_is_repeatable(cli: Cli, tmp_path: Path) -> None:
    first = cli("init", "--json").json()
    assert first["problems"] == 0
    assert (tmp_path / "patterns").is_dir()
    assert cli("init", "--json").json() == first


def test_problem_lifecycle(cli: Cli) -> None:
    cli("problem", "add", "chihuahua-vs-muffin", "--max-error-rate", "0.2", "-t", "Vision")
    shown = cli("problem", "show", "chihuahua-vs-muffin", "--json").json()
    assert shown["problem"]["max_error_rate"] == 0.2
    assert shown["problem"]["tags"] == ["vision"]
    assert shown["problem"]["title"] == "Chihuahua vs muffin"
    assert shown["patterns"] == []

    cli("problem", "edit", "chihuahua-vs-muffin", "--allowed-regressions", "2", "--title", "Dogs")
    edited = cli("problem", "show", "chihuahua-vs-muffin", "--json").json()["problem"]
    assert (edited["allowed_regressions"], edited["title"]) == (2, "Dogs")
    assert edited["max_error_rate"] == 0.2  # untouched fields stay

    cli("problem", "edit", "chihuahua-vs-muffin", "--no-max-error-rate")
    assert (
        cli("problem", "show", "chihuahua-vs-muffin", "--json").json()["problem"]["max_error_rate"]
        is None
    )

    cli("problem", "add", "hat-bias")
    cli("problem", "retire", "hat-bias")
    listed = cli("problem", "list", "--json").json()
    assert [p["slug"] for p in listed] == ["chihuahua-vs-muffin", "hat-bias"]
    assert [p["slug"] for p in cli("problem", "list", "--status", "retired", "--json").json()] == [
        "hat-bias"
    ]
    table = cli("problem", "list").stdout
    assert "chihuahua-vs-muffin" in table and "hat-bias" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["problem", "add", "Bad Slug"], "not a valid problem slug"),
        (["problem", "add", "ok-slug", "--max-error-rate", "1.5"], "outside 0..1"),
        (["problem", "add", "ok-slug", "--allowed-regressions", "-1"], "negative"),
        (["problem", "show", "nope"], "no problem 'nope'"),
        (["problem", "edit", "nope", "--title", "x"], "no problem 'nope'"),
        (["problem", "edit", "muffins", "--status", "done"], "not a problem status"),
        (["problem", "add", "muffins"], "already exists"),
    ],
)
def test_problem_mistakes_are_one_line_and_change_nothing(
    cli: Cli, tmp_path: Path, args: list[str], message: str
) -> None:
    cli("problem", "add", "muffins")
    before = _snapshot(cli, tmp_path / "patterns")
    outcome = cli(*args, code=1)
    assert message in outcome.stderr
    assert _snapshot(cli, tmp_path / "patterns") == before


def test_pattern_add_list_show_relabel_remove(cli: Cli, files: dict[str, Path]) -> None:
    cli("problem", "add", "colours")
    added = cli(
        "pattern",
        "add",
        "colours",
        str(files["red"]),
        str(files["blue"]),
        "--expect",
        "warm",
        "--polarity",
        "negative",
        "--source",
        "production",
        "--note",
        "from ticket 12",
        "--json",
    ).json()["added"]
    assert [p["kind"] for p in added] == ["image", "image"]
    assert {p["polarity"] for p in added} == {"negative"}
    assert {p["added_by"] for p in added} == {"tess"}
    # A problem keeps to one kind of input (issue 19, item 9): text and JSON go to their own.
    cli("problem", "add", "reviews")
    cli("pattern", "add", "reviews", str(files["text"]), "--expect-not", "positive")
    cli("problem", "add", "scores")
    cli("pattern", "add", "scores", str(files["json"]), "--expect-range", "3.5:4")

    listed = cli("pattern", "list", "--json").json()
    assert [p["kind"] for p in listed] == ["image", "image", "text", "json"]
    assert [p["expected"] for p in listed] == ["warm", "warm", "not positive", "3.5 to 4"]

    red = added[0]
    shown = cli("pattern", "show", red["sha256"][:10], "--json").json()
    assert shown["note"] == "from ticket 12" and shown["source"] == "production"

    relabelled = cli(
        "pattern", "relabel", str(red["id"]), "--expect-any", "warm,hot", "--json"
    ).json()
    assert relabelled["expect"] == {"kind": "any", "labels": ["hot", "warm"]}

    cli("pattern", "remove", str(red["id"]))
    assert [p["id"] for p in cli("pattern", "list", "--json").json()] == [
        p["id"] for p in listed[1:]
    ]
    cli("pattern", "show", str(red["id"]), code=1)


@pytest.mark.parametrize(
    ("make_file", "extra", "message"),
    [
        (lambda d: write_text(d / "fake.png", "not an image"), ["--expect", "x"], "not one Pillow"),
        (lambda d: _truncated_png(d), ["--expect", "x"], "not a readable image"),
        (lambda d: _bytes(d / "latin1.txt", "café".encode("latin-1")), ["--expect", "x"], "UTF-8"),
        (lambda d: _bytes(d / "empty.txt", b""), ["--expect", "x"], "empty"),
        (lambda d: write_text(d / "bad.json", "{nope"), ["--expect", "x"], "not valid JSON"),
        (lambda d: d / "missing.png", ["--expect", "x"], "missing"),
        (lambda d: write_text(d / "a.txt", "a"), ["--expect-range", "4:3"], "empty"),
        (lambda d: write_text(d / "a.txt", "a"), ["--expect-range", "x"], "LOW:HIGH"),
        (lambda d: write_text(d / "a.txt", "a"), [], "exactly one of --expect"),
        (lambda d: write_text(d / "a.txt", "a"), ["--expect", "a", "--expect-not", "b"], "exactly"),
    ],
)
def test_bad_pattern_input_is_refused_and_nothing_written(
    cli: Cli,
    tmp_path: Path,
    files: dict[str, Path],
    make_file: Callable[[Path], Path],
    extra: list[str],
    message: str,
) -> None:
    cli("problem", "add", "colours")
    cli("pattern", "add", "colours", str(files["red"]), "--expect", "warm")
    before = _snapshot(cli, tmp_path / "patterns")
    bad = make_file(tmp_path)
    # The good file beside the bad one is not added either: all or nothing.
    outcome = cli("pattern", "add", "colours", str(files["blue"]), str(bad), *extra, code=1)
    assert message in outcome.stderr
    assert _snapshot(cli, tmp_path / "patterns") == before


@pytest.mark.parametrize(
    ("name", "shown"),
    [("two\nlines.png", "two\\nlines.png"), ("\x1b[2Jwiped.png", "\\x1b[2Jwiped.png"),
     ("\u202egnp.txt", "\\u202egnp.txt")],
)  # fmt: skip
def test_an_error_quoting_a_hostile_file_name_stays_one_line_and_inert(
    cli: Cli, tmp_path: Path, name: str, shown: str
) -> None:
    """Found by the hostile-input fuzz: a file name with a newline split the error in two lines;
    an escape sequence or a right-to-left override would act on the terminal. Shown escaped."""
    cli("problem", "add", "p")
    bad = tmp_path / name
    bad.write_bytes(b"")

    outcome = cli("pattern", "add", "p", str(bad), "--expect", "x", code=1)

    assert shown in outcome.stderr and "the file is empty" in outcome.stderr


def test_duplicate_pattern_is_refused_and_nothing_written(
    cli: Cli, tmp_path: Path, files: dict[str, Path]
) -> None:
    cli("problem", "add", "colours")
    cli("pattern", "add", "colours", str(files["red"]), "--expect", "warm")
    before = _snapshot(cli, tmp_path / "patterns")
    copy = tmp_path / "copy-of-red.png"
    copy.write_bytes(files["red"].read_bytes())
    outcome = cli(
        "pattern", "add", "colours", str(files["blue"]), str(copy), "--expect", "w", code=1
    )
    assert "already pattern" in outcome.stderr and "relabel" in outcome.stderr
    twice = cli(
        "pattern", "add", "colours", str(files["blue"]), str(files["blue"]), "--expect", "w", code=1
    )
    assert "same content" in twice.stderr
    assert _snapshot(cli, tmp_path / "patterns") == before


def test_same_file_in_two_problems_is_stored_once(
    cli: Cli, tmp_path: Path, files: dict[str, Path]
) -> None:
    cli("problem", "add", "one")
    cli("problem", "add", "two")
    cli("pattern", "add", "one", str(files["red"]), "--expect", "a")
    cli("pattern", "add", "two", str(files["red"]), "--expect", "b")
    stored = [p for p in (tmp_path / "patterns").rglob("*") if p.is_file()]
    assert len(stored) == 1
    sha = cli("pattern", "list", "one", "--json").json()[0]["sha256"]
    ambiguous = cli("pattern", "show", sha[:8], code=1)
    assert "matches several" in ambiguous.stderr
    assert cli("pattern", "show", sha[:8], "--problem", "two", "--json").json()["expected"] == "b"
    # Removing it from one problem keeps the file for the other.
    cli("pattern", "remove", sha[:8], "--problem", "one")
    assert [p for p in (tmp_path / "patterns").rglob("*") if p.is_file()] == stored
    cli("pattern", "remove", sha[:8])
    assert [p for p in (tmp_path / "patterns").rglob("*") if p.is_file()] == []


def test_pattern_import_from_folder_is_idempotent(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "triage"
    write_png(folder / "muffin" / "m1.png", color=(200, 150, 100))
    write_png(folder / "muffin" / "m2.png", color=(210, 150, 100))
    write_png(folder / "chihuahua" / "c1.png", color=(90, 60, 30))
    cli("problem", "add", "chihuahua-vs-muffin")
    first = cli("pattern", "import", "chihuahua-vs-muffin", str(folder), "--json").json()
    assert sorted(p["expected"] for p in first["added"]) == ["chihuahua", "muffin", "muffin"]
    again = cli("pattern", "import", "chihuahua-vs-muffin", str(folder), "--json").json()
    assert again["added"] == [] and len(again["skipped"]) == 3


def test_pattern_import_from_csv(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    write_png(folder / "img" / "a.png", color=(1, 2, 3))
    write_text(folder / "b.txt", "great value")
    write_json(folder / "c.json", {"rooms": 3})
    csv_file = folder / "patterns.csv"
    csv_file.write_text(
        "path,expected,polarity,note\n"
        "img/a.png,muffin,positive,from prod\n"
        "b.txt,not:negative,negative,\n"
        "c.json,range:3.5:4.0,positive,regressor\n",
        encoding="utf-8",
    )
    cli("problem", "add", "mixed")
    added = cli("pattern", "import", "mixed", "--csv", str(csv_file), "--json").json()["added"]
    assert [(p["expected"], p["polarity"], p["note"]) for p in added] == [
        ("muffin", "positive", "from prod"),
        ("not negative", "negative", ""),
        ("3.5 to 4", "positive", "regressor"),
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("../outside.png,x,positive,", "resolves outside"),
        ("/etc/hostname,x,positive,", "absolute"),
        ("a.png,x,sideways,", "line 2"),
    ],
)
def test_csv_import_refuses_paths_outside_and_bad_rows(
    cli: Cli, tmp_path: Path, row: str, message: str
) -> None:
    folder = tmp_path / "batch"
    write_png(folder / "a.png")
    write_png(tmp_path / "outside.png", color=(9, 9, 9))
    csv_file = folder / "patterns.csv"
    csv_file.write_text(f"path,expected,polarity,note\n{row}\n", encoding="utf-8")
    cli("problem", "add", "mixed")
    before = _snapshot(cli, tmp_path / "patterns")
    assert message in cli("pattern", "import", "mixed", "--csv", str(csv_file), code=1).stderr
    assert _snapshot(cli, tmp_path / "patterns") == before


def test_folder_import_refuses_symlinks(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "triage"
    write_png(folder / "muffin" / "m1.png")
    secret = write_text(tmp_path / "secret.txt", "do not import me")
    (folder / "muffin" / "link.txt").symlink_to(secret)
    cli("problem", "add", "p")
    assert "symbolic link" in cli("pattern", "import", "p", str(folder), code=1).stderr
    assert cli("pattern", "list", "--json").json() == []


def test_pattern_import_needs_exactly_one_source(cli: Cli, tmp_path: Path) -> None:
    cli("problem", "add", "p")
    cli("pattern", "import", "p", code=2)


def test_model_register_list_promote(cli: Cli, tmp_path: Path) -> None:
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights")
    cli(
        "model",
        "register",
        "digits",
        "v1",
        "--loader",
        "tests.models.digits:load",
        "-m",
        "accuracy=0.9",
    )
    cli(
        "model",
        "register",
        "digits",
        "v2",
        "--loader",
        "tests.models.digits:load",
        "--artifact",
        str(artifact),
        "-m",
        "accuracy=0.93",
        "-m",
        "auc=0.97",
    )
    listed = cli("model", "list", "--json").json()
    assert [m["ref"] for m in listed] == ["digits@v1", "digits@v2"]
    assert listed[1]["metrics"] == {"accuracy": 0.93, "auc": 0.97}
    assert listed[1]["artifact_sha256"] == hashlib.sha256(b"weights").hexdigest()
    cli("model", "promote", "digits", "v1")
    cli("model", "promote", "digits", "v2")
    assert [m["is_champion"] for m in cli("model", "list", "digits", "--json").json()] == [
        False,
        True,
    ]
    assert "digits" in cli("model", "list").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model", "register", "digits", "v1", "--loader", "x:y"], "already registered"),
        (["model", "register", "digits", "v2", "--loader", "nocolon"], "module:callable"),
        (["model", "register", "digits", "v 2", "--loader", "a:b"], "not valid"),
        (["model", "register", "digits", "v2", "--loader", "a:b", "-m", "auc"], "KEY=NUMBER"),
        (
            ["model", "register", "digits", "v2", "--loader", "a:b", "--artifact", "/nope"],
            "not a file",
        ),
        (["model", "promote", "digits", "v9"], "no model version digits@v9"),
        (["model", "list", "other"], "no model named"),
    ],
)
def test_model_mistakes_are_one_line_and_change_nothing(
    cli: Cli, tmp_path: Path, args: list[str], message: str
) -> None:
    cli("model", "register", "digits", "v1", "--loader", "tests.models.digits:load")
    before = _snapshot(cli, tmp_path / "patterns")
    assert message in cli(*args, code=1).stderr
    assert _snapshot(cli, tmp_path / "patterns") == before


def test_usage_errors_exit_2(cli: Cli) -> None:
    cli("problem", "frobnicate", code=2)
    cli("pattern", "add", "p", "x.png", "--polarity", "sideways", "--expect", "x", code=2)
    cli("problem", "add", code=2)


def test_db_upgrade_twice_and_status(cli: Cli) -> None:
    cli("db", "upgrade")
    second = cli("db", "upgrade")
    assert "already at revision" in second.stderr
    status = cli("db", "status", "--json").json()
    assert status["up_to_date"] is True and status["revision"] == status["head"]


def _truncated_png(folder: Path) -> Path:
    whole = write_png(folder / "whole.png", size=(64, 64), color=(10, 20, 30))
    data = whole.read_bytes()
    broken = folder / "truncated.png"
    broken.write_bytes(data[: len(data) // 2])
    return broken


def _bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_export_import_round_trip_through_the_cli(
    cli: Cli, tmp_path: Path, files: dict[str, Path]
) -> None:
    cli("problem", "add", "colours", "--max-error-rate", "0.25", "-t", "vision")
    cli("pattern", "add", "colours", str(files["red"]), "--expect", "warm", "--note", "n1")
    cli("problem", "add", "ratings")  # one kind of input per problem (issue 19, item 9)
    cli("pattern", "add", "ratings", str(files["json"]), "--expect-range", "1:2")
    cli("problem", "add", "reviews")
    cli("pattern", "add", "reviews", str(files["text"]), "--expect-not", "positive")

    first, second = tmp_path / "bundle-1", tmp_path / "bundle-2"
    cli("export", str(first))
    cli("export", str(second))
    assert _tree(first) == _tree(second)  # deterministic: identical bytes
    again = cli("export", str(first), "--json").json()
    assert again["written"] == [] and again["removed"] == []

    runner = CliRunner()
    fresh = ["--url", f"sqlite:///{tmp_path / 'fresh.db'}", "--patterns-dir", str(tmp_path / "p2")]
    assert runner.invoke(app, [*fresh, "init"]).exit_code == 0
    imported = runner.invoke(app, [*fresh, "import", str(first), "--json"])
    assert imported.exit_code == 0, imported.stderr
    assert json.loads(imported.stdout)["patterns_created"] == 3
    repeat = runner.invoke(app, [*fresh, "import", str(first), "--json"])
    assert json.loads(repeat.stdout)["changed"] is False  # idempotent
    theirs = json.loads(runner.invoke(app, [*fresh, "pattern", "list", "--json"]).stdout)
    ours = cli("pattern", "list", "--json").json()
    keys = ("problem", "sha256", "kind", "expect", "polarity", "source", "note", "original_name")
    assert [{k: p[k] for k in keys} for p in theirs] == [{k: p[k] for k in keys} for p in ours]
    problems = json.loads(runner.invoke(app, [*fresh, "problem", "list", "--json"]).stdout)
    assert [(p["slug"], p["max_error_rate"], p["tags"]) for p in problems] == [
        ("colours", 0.25, ["vision"]),
        ("ratings", None, []),
        ("reviews", None, []),
    ]


def test_import_of_a_tampered_bundle_is_refused_and_changes_nothing(
    cli: Cli, tmp_path: Path, files: dict[str, Path]
) -> None:
    cli("problem", "add", "colours")
    cli("pattern", "add", "colours", str(files["red"]), "--expect", "warm")
    bundle = tmp_path / "bundle"
    cli("export", str(bundle))
    cli("pattern", "add", "colours", str(files["blue"]), "--expect", "cold")
    before = _snapshot(cli, tmp_path / "patterns")
    (stored,) = (bundle / "files").rglob("*.png")
    stored.chmod(0o644)
    stored.write_bytes(files["green"].read_bytes())
    outcome = cli("import", str(bundle), code=1)
    assert stored.name[:12] in outcome.stderr or "sha256" in outcome.stderr
    assert _snapshot(cli, tmp_path / "patterns") == before


def test_check_catches_tampered_and_missing_content(
    cli: Cli, tmp_path: Path, files: dict[str, Path], database_url: str
) -> None:
    cli("problem", "add", "colours")
    cli("pattern", "add", "colours", str(files["red"]), str(files["blue"]), "--expect", "x")
    assert cli("check", "--json").json()["ok"] is True
    red, blue = sorted((tmp_path / "patterns").rglob("*.png"))
    red.chmod(0o644)
    red.write_bytes(files["green"].read_bytes())
    blue.unlink()
    engine = sa.create_engine(database_url)  # the database's copies: tampered, and lost
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE pattern_blob SET data = :d WHERE sha256 = :s"),
            {"d": files["green"].read_bytes(), "s": red.name.split(".")[0]},
        )
        connection.execute(
            sa.text("DELETE FROM pattern_blob WHERE sha256 = :s"), {"s": blue.name.split(".")[0]}
        )
    engine.dispose()
    report = cli("check", "--json", code=1, one_line=False).json()
    assert report["ok"] is False
    assert sorted(e["code"] for e in report["errors"]) == ["altered-file", "missing-file"]
    shown = cli("check", code=1, one_line=False)
    assert "2 error(s)" in shown.stderr
    # Issue 19: one line per finding, wrapped by the terminal, not a table's narrow column.
    lines = shown.stdout.splitlines()
    assert len([line for line in lines if line.startswith("error: ")]) == 2
    assert [line.split(" ")[1] for line in lines if line.startswith("warning: ")] == [
        "altered-cache-file:"
    ]
    assert any(line.startswith("error: missing-file (colours; pattern ") for line in lines)
    assert "┃" not in shown.stdout and "│" not in shown.stdout


@pytest.mark.parametrize(
    ("content", "command"),
    [
        (b"hello, not a database\n", ["problem", "list"]),
        (bytes(range(256)) * 8, ["db", "upgrade"]),
        (b"SQLite format 3\x00" + b"\xff" * 200, ["pattern", "add", "x", "y", "--expect", "z"]),
    ],
)
def test_a_file_that_is_not_a_registry_is_one_line_and_left_as_it_was(
    tmp_path: Path, content: bytes, command: list[str]
) -> None:
    # A --url mistyped onto some other file: a clear refusal, and never a write to that file.
    other = tmp_path / "notes.db"
    other.write_bytes(content)
    result = CliRunner().invoke(app, ["--url", f"sqlite:///{other}", *command])
    assert result.exit_code == 1, result.output
    assert_one_clear_error(result.stderr, result.stdout)
    assert "file is not a database" in result.stderr and str(other) in result.stderr
    assert other.read_bytes() == content


def test_a_long_table_is_printed_as_plain_aligned_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rich's boxes cost ~1 ms a row: 95 s for a report of 100,000 rows. Past the limit the same
    # cells come out as plain columns, every row, aligned under their headers.
    from problem_registry.cli import context

    monkeypatch.setattr(context, "PLAIN_TABLE_ROWS", 2)
    context.print_table(None, ["problem", "error"], [["a", "10%"], ["long-slug", None], ["c", 1]])
    assert capsys.readouterr().out.splitlines() == [
        "problem    error",
        "a          10%",
        "long-slug",
        "c          1",
    ]


def test_a_read_of_an_empty_database_says_run_init_and_creates_no_tables(
    database_url: str, tmp_path: Path
) -> None:
    """Issue 19: a reachable but empty database (a new PostgreSQL one) is not migrated by a read."""
    import sqlalchemy as sa

    runner = CliRunner()
    result = runner.invoke(app, ["--url", database_url, "problem", "list"])
    assert result.exit_code == 1
    assert_one_clear_error(result.stderr, result.stdout)
    assert "run `problem-registry init`" in result.stderr
    if database_url.startswith("sqlite"):
        assert not (tmp_path / "registry.db").exists()
    else:
        engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as connection:
                assert sa.inspect(connection).get_table_names() == []
        finally:
            engine.dispose()
