"""Issue 19, "the first hour", items 3, 9, 10 and 11: what a new user's run now does.

Each test starts from ``init`` in an empty folder and drives the real CLI in-process (typer's
runner) on a SQLite file, with models registered as predictions files (answers keyed by pattern
sha256, no worker process), so the whole file stays cheap. Where a class of input matters, a
Hypothesis property checks it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from problem_registry.cli import app
from problem_registry.replay.scopes import group_scopes
from problem_registry.store.content import sha256_of
from problem_registry.store.registry import Registry
from problem_registry.verdicts.gates import evaluate
from problem_registry.verdicts.results_csv import _cell
from tests.helpers import assert_one_clear_error, png_bytes, write_png, write_text


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
    """``problem-registry --url URL ARGS`` in-process, as user ``lead``, on SQLite and on a real
    PostgreSQL server (the new tables and queries must agree on both)."""
    runner = CliRunner()
    url = database_url
    store = tmp_path / "patterns"

    def run(*args: str, code: int = 0) -> Outcome:
        result = runner.invoke(
            app,
            ["--url", url, "--patterns-dir", str(store), "--user", "lead", *args],
            catch_exceptions=False,
        )
        outcome = Outcome(result.exit_code, result.stdout, result.stderr)
        assert outcome.exit_code == code, (args, outcome)
        if code == 1:
            assert_one_clear_error(outcome.stderr, outcome.stdout)
        assert "Traceback" not in outcome.stderr
        return outcome

    run("init")
    return run


def _predictions(path: Path, answers: dict[str, object]) -> Path:
    """A predictions file: ``answers`` maps a sha256 to a label or a {label: probability}."""
    lines = []
    for sha, answer in answers.items():
        if isinstance(answer, dict):
            lines.append(json.dumps({"sha256": sha, "scores": answer}))
        else:
            lines.append(json.dumps({"sha256": sha, "prediction": answer}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _sha(path: Path) -> str:
    return sha256_of(path.read_bytes())


# -- item 3: a problem names its models ----------------------------------------------------------


def test_a_problem_belongs_to_its_model_in_replay_reports_and_html(
    cli: Cli, tmp_path: Path
) -> None:
    red = write_png(tmp_path / "red.png", (255, 0, 0))
    blue = write_png(tmp_path / "blue.png", (0, 0, 255))
    review = write_text(tmp_path / "review.txt", "I loved it")
    cli("problem", "add", "colours", "--model", "vision", "--max-error-rate", "0.5")
    cli("problem", "add", "reviews", "--model", "nlp")
    cli("pattern", "add", "colours", str(red), "--expect", "red")
    cli("pattern", "add", "colours", str(blue), "--expect", "blue")
    cli("pattern", "add", "reviews", str(review), "--expect", "positive")
    # Each model's answers cover its own problems' patterns only: replayed on the other
    # model's patterns, a version would store "no prediction" errors (the 100% wrong of item 3).
    vision = _predictions(tmp_path / "vision.jsonl", {_sha(red): "red", _sha(blue): "red"})
    nlp = _predictions(tmp_path / "nlp.jsonl", {_sha(review): "positive"})
    cli("model", "register", "vision", "v1", "--predictions", str(vision), "--input-kind", "image")
    cli("model", "register", "nlp", "v1", "--predictions", str(nlp), "--input-kind", "text")

    replayed = cli("replay", "--json").json()
    assert isinstance(replayed, dict)
    counts = {v["ref"]: (v["predicted"], v["errored"]) for v in replayed["versions"]}
    assert counts == {"vision@v1": (2, 0), "nlp@v1": (1, 0)}

    rows = cli("report", "--json").json()
    assert isinstance(rows, list)
    assert sorted((r["problem"], r["model"]) for r in rows) == [
        ("colours", "vision"),
        ("reviews", "nlp"),
    ]
    listed = cli("problem", "list", "--json").json()
    assert isinstance(listed, list)
    assert {p["slug"]: p["models"] for p in listed} == {"colours": ["vision"], "reviews": ["nlp"]}

    # A model's declared input kind bounds its problems: an image is no review, and a problem
    # holding text cannot be moved to the image model.
    refused = cli("pattern", "add", "reviews", str(red), "--expect", "positive", code=1)
    assert "takes only text files" in refused.stderr and "model nlp" in refused.stderr
    moved = cli("problem", "edit", "reviews", "--model", "vision", code=1)
    assert "model vision takes images" in moved.stderr

    # The HTML report no longer refuses several models: one report per model, and an index.
    built = cli("report", "--html", str(tmp_path / "report"), "--jobs", "1")
    assert "one report per model" in built.stderr
    index = (tmp_path / "report" / "index.html").read_text()
    assert 'href="models/vision/index.html"' in index and 'href="models/nlp/index.html"' in index
    pages = sorted(p.name for p in (tmp_path / "report/models/nlp/problems").glob("*.html"))
    assert pages == ["reviews.html"]


@given(
    names=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=5),
    links=st.dictionaries(
        st.integers(1, 6), st.lists(st.sampled_from(["a", "b", "c", "z"]), max_size=2), max_size=6
    ),
    asked=st.none() | st.lists(st.integers(1, 6), unique=True, max_size=6),
)
def test_each_version_replays_exactly_the_problems_of_its_model(
    names: list[str], links: dict[int, list[str]], asked: list[int] | None
) -> None:
    """Whatever problems name whatever models: a version replays a problem iff the problem
    names no model or names the version's, each version in at most one scope."""
    versions = dict(enumerate(names, start=1))
    every = list(range(1, 7))
    scopes = group_scopes(versions, links, asked, every)
    pool = every if asked is None else asked
    got = set()
    seen_versions: list[int] = []
    for version_ids, problem_ids in scopes:
        seen_versions += version_ids
        for version_id in version_ids:
            for pid in pool if problem_ids is None else problem_ids:
                got.add((version_id, pid))
    assert len(seen_versions) == len(set(seen_versions))
    want = {
        (v, p) for v, name in versions.items() for p in pool if not links.get(p) or name in links[p]
    }
    assert got == want


# -- item 9: kinds, conflicts, prune ------------------------------------------------------------


def test_an_image_problem_refuses_a_python_file_in_one_line(cli: Cli, tmp_path: Path) -> None:
    cli("problem", "add", "muffins")
    cli("pattern", "add", "muffins", str(write_png(tmp_path / "m.png")), "--expect", "muffin")
    script = write_text(tmp_path / "train.py", "print('not a muffin')\n")
    refused = cli("pattern", "add", "muffins", str(script), "--expect", "muffin", code=1)
    assert "train.py is a text file, but problem muffins takes only images" in refused.stderr
    broken = tmp_path / "half.png"
    broken.write_bytes(png_bytes((1, 2, 3))[:40])
    cli("pattern", "add", "muffins", str(broken), "--expect", "muffin", code=1)
    patterns = cli("pattern", "list", "muffins", "--json").json()
    assert isinstance(patterns, list) and len(patterns) == 1


def test_a_reimport_with_a_changed_expectation_is_a_conflict_or_relabelled(
    cli: Cli, tmp_path: Path
) -> None:
    cli("problem", "add", "colours")
    write_png(tmp_path / "in" / "red.png", (255, 0, 0))
    write_png(tmp_path / "in" / "blue.png", (0, 0, 255))
    table = tmp_path / "in" / "labels.csv"
    table.write_text("path,expected\nred.png,red\nblue.png,blue\n")
    cli("pattern", "import", "colours", "--csv", str(table))
    again = cli("pattern", "import", "colours", "--csv", str(table))
    assert "skipped 2 already present" in again.stderr

    table.write_text('path,expected\nred.png,red\nblue.png,"any:blue,navy"\n')
    conflict = cli("pattern", "import", "colours", "--csv", str(table), code=1)
    assert "labels.csv line 3" in conflict.stderr and "--update" in conflict.stderr
    assert "expects blue, now one of blue, navy" in conflict.stderr
    updated = cli("pattern", "import", "colours", "--csv", str(table), "--update", "--json")
    document = updated.json()
    assert isinstance(document, dict)
    assert [p["original_name"] for p in document["relabelled"]] == ["blue.png"]
    shown = cli("pattern", "list", "colours", "--json").json()
    assert isinstance(shown, list)
    assert {p["original_name"]: p["expected"] for p in shown} == {
        "red.png": "red",
        "blue.png": "one of blue, navy",
    }


LABELS = st.text(alphabet="abcxyz", min_size=1, max_size=4)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=LABELS, second=LABELS)
def test_a_folder_reimport_conflicts_exactly_when_the_label_changed(
    tmp_path_factory: pytest.TempPathFactory, first: str, second: str
) -> None:
    root = tmp_path_factory.mktemp("reimport")
    with Registry.open(url=f"sqlite:///{root}/r.db", patterns_dir=root / "p", user="t") as reg:
        reg.problems.add("p")
        write_png(root / "a" / first / "x.png")
        reg.patterns.import_folder("p", root / "a")
        write_png(root / "b" / second / "x.png")
        if first == second:
            assert reg.patterns.import_folder("p", root / "b").skipped
        else:
            from problem_registry.errors import PatternConflict

            with pytest.raises(PatternConflict, match=f"expects {first}, now {second}"):
                reg.patterns.import_folder("p", root / "b")
            relabelled = reg.patterns.import_folder("p", root / "b", update=True).relabelled
            assert [v.expected for v in relabelled] == [second]


def test_import_prune_says_what_it_removes_and_dry_run_removes_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    cli("problem", "add", "colours")
    red = write_png(tmp_path / "red.png", (255, 0, 0))
    blue = write_png(tmp_path / "blue.png", (0, 0, 255))
    cli("pattern", "add", "colours", str(red), str(blue), "--expect", "red")
    bundle = tmp_path / "bundle"
    cli("export", str(bundle))
    manifest = bundle / "problems" / "colours.json"
    document = json.loads(manifest.read_text())
    document["patterns"] = [p for p in document["patterns"] if p["sha256"] != _sha(blue)]
    manifest.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")

    plain = cli("import", str(bundle))  # additive: the deleted pattern stays
    assert "0 removed" not in plain.stderr
    dry = cli("import", str(bundle), "--prune", "--dry-run")
    assert "would remove pattern 2 of colours (blue.png" in dry.stderr
    assert len(cli("pattern", "list", "--json").json()) == 2  # type: ignore[arg-type]
    pruned = cli("import", str(bundle), "--prune")
    lines = pruned.stderr.splitlines()
    assert lines[0].startswith("removing pattern 2 of colours (blue.png")
    assert "1 removed" in lines[-1]
    assert [p["original_name"] for p in cli("pattern", "list", "--json").json()] == ["red.png"]  # type: ignore[union-attr]
    cli("check")  # the pruned file left the store with its row
    cli("import", str(bundle), "--dry-run", code=2)


# -- item 10: sign-offs -------------------------------------------------------------------------


def _scored_versions(cli: Cli, tmp_path: Path, probabilities: dict[str, list[float]]) -> None:
    """A problem of 12 text patterns expecting "yes", and a version per entry whose scores give
    "yes" the probabilities listed (a pattern is right when "yes" scores over 0.5)."""
    cli("problem", "add", "tone")
    files = [write_text(tmp_path / "t" / f"{i}.txt", f"sentence {i}") for i in range(12)]
    cli("pattern", "add", "tone", *map(str, files), "--expect", "yes")
    for version, probs in probabilities.items():
        answers: dict[str, object] = {
            _sha(f): {"yes": p, "no": round(1 - p, 6)} for f, p in zip(files, probs, strict=True)
        }
        path = _predictions(tmp_path / f"{version}.jsonl", answers)
        cli("model", "register", "m", version, "--predictions", str(path))
    cli("replay")


GOOD = [0.9, 0.88, 0.92, 0.91, 0.87, 0.9, 0.89, 0.93, 0.9, 0.86, 0.91, 0.9]


def test_a_candidate_below_a_signed_off_result_fails_naming_the_sign_off(
    cli: Cli, tmp_path: Path, database_url: str
) -> None:
    near = [round(p + d, 3) for p, d in zip(GOOD, [0.01, -0.01] * 6, strict=True)]
    worse = [0.3] * 8 + [0.8] * 4
    _scored_versions(cli, tmp_path, {"v1": GOOD, "v2": near, "v3": GOOD, "v4": worse})
    signed = cli("problem", "signoff", "tone", "--version", "m@v1", "--note", "all right, accepted")
    assert "m@v1 signed off by lead on" in signed.stderr
    assert "0 of 12 wrong (0%" in signed.stderr

    # Without a champion the plain gate has no baseline: only the sign-off can catch v4.
    shown = cli("problem", "show", "tone", "--json").json()
    assert isinstance(shown, dict)
    gate = shown["gate"]
    assert (gate["candidate"], gate["outcome"], gate["below_signoff"]) == ("m@v4", "fail", True)
    assert gate["verdict"]["rule"].startswith("signoff")
    assert "below the sign-off of m@v1 signed off by lead" in gate["verdict"]["reason"]
    (signoff,) = shown["signoffs"]
    assert (signoff["ref"], signoff["signed_by"], signoff["wrong"], signoff["answered"]) == (
        "m@v1",
        "lead",
        0,
        12,
    )
    assert signoff["note"] == "all right, accepted" and signoff["interval"][0] == 0.0
    # The history marks the signed-off version and tells the story.
    (history,) = shown["history"]
    assert history["story"] == "passing in v1, broken in v4"
    assert [s["version"] for s in history["signoffs"]] == ["v1"]
    text = cli("problem", "show", "tone").stdout
    assert "history on m: passing in v1, broken in v4" in text and "by lead" in text

    # In the report: a line in the terminal, a field on the signed-off row of --json.
    assert "tone: m@v1 signed off by lead" in cli("report").stdout
    rows = cli("report", "--json").json()
    assert isinstance(rows, list)
    assert [r["version"] for r in rows if "signoff" in r] == ["v1"]

    # A version as good as the signed-off one is not held back, and the sign-off applies
    # only to later versions.
    with Registry.open(url=database_url, patterns_dir=tmp_path / "patterns") as reg:
        (v3,) = evaluate(reg, "m@v3", power=False)
        assert v3.passed and v3.signoff is not None and not v3.below_signoff
        (v4,) = evaluate(reg, "m@v4", power=False)
        assert not v4.passed and "below the sign-off of m@v1" in v4.message


def test_signing_off_a_version_with_no_answers_is_refused(cli: Cli, tmp_path: Path) -> None:
    cli("problem", "add", "tone")
    cli("pattern", "add", "tone", str(write_text(tmp_path / "a.txt", "a")), "--expect", "yes")
    path = _predictions(tmp_path / "p.jsonl", {"0" * 64: "yes"})
    cli("model", "register", "m", "v1", "--predictions", str(path))
    refused = cli("problem", "signoff", "tone", "--version", "m@v1", code=1)
    assert "no answer on tone yet" in refused.stderr and "replay" in refused.stderr
    cli("problem", "signoff", "tone", "--version", "m@v9", code=1)
    cli("problem", "signoff", "nope", "--version", "m@v1", code=1)


# -- item 11: a problem's story, runs, CSV ------------------------------------------------------


def test_run_list_and_report_csv_for_a_notebook(cli: Cli, tmp_path: Path) -> None:
    cli("problem", "add", "colours")
    red = write_png(tmp_path / "red.png", (255, 0, 0))
    blue = write_png(tmp_path / "blue.png", (0, 0, 255))
    cli("pattern", "add", "colours", str(red), "--expect", "red")
    cli("pattern", "add", "colours", str(blue), "--expect", "blue")
    v1 = _predictions(tmp_path / "v1.jsonl", {_sha(red): "=HYPERLINK(1)"})  # blue: no answer
    v2 = _predictions(tmp_path / "v2.jsonl", {_sha(red): "red", _sha(blue): {"blue": 0.75}})
    cli("model", "register", "m", "v1", "--predictions", str(v1))
    cli("replay")
    cli("model", "register", "m", "v2", "--predictions", str(v2))
    cli("replay")

    runs = cli("run", "list", "--json").json()
    assert isinstance(runs, list)
    assert [(r["id"], r["versions"], r["predicted"], r["errored"]) for r in runs] == [
        (2, ["m@v2"], 2, 0),
        (1, ["m@v1"], 2, 1),
    ]
    assert runs[1]["first_error"].startswith("m@v1: ") and runs[1]["started_at"]
    table = cli("run", "list", "--last", "1").stdout
    assert "m@v2" in table and "m@v1" not in table

    target = tmp_path / "out" / "results.csv"
    target.parent.mkdir()
    written = cli("report", "--csv", str(target))
    assert "wrote 4 result row(s)" in written.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    got = {(r["pattern"], r["version"]): (r["answer"], r["correct"], r["score"]) for r in rows}
    assert got == {
        ("1", "v1"): ("'=HYPERLINK(1)", "false", ""),  # a formula is never run by a spreadsheet
        ("2", "v1"): ("", "false", ""),  # errored: no answer, counted wrong
        ("1", "v2"): ("red", "true", ""),
        ("2", "v2"): ("blue", "true", "0.75"),
    }
    assert rows[0].keys() >= {"problem", "expected", "model", "error"}
    cli("report", "--csv", str(tmp_path / "missing-folder" / "r.csv"), code=1)
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.csv"]


@given(st.text(max_size=20))
def test_a_csv_cell_reads_back_as_written_or_defused(text: str) -> None:
    """Any answer text survives the CSV; one a spreadsheet would run as a formula gets a leading
    quote unless it is a number."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([_cell(text)])
    (back,) = next(csv.reader(io.StringIO(buffer.getvalue())))
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(text)
            assert back == text
        except ValueError:
            assert back == "'" + text
    else:
        assert back == text.replace("\r\n", "\n") or back == text
