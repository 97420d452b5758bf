"""`problem-registry demo` end to end, and the curated bundle in the repository's patterns/.

The demo trains real scikit-learn models and writes the HTML report, so its end-to-end test is
marked slow (10-35 s here, depending on load); the bundle tests read the committed files and take
about a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from problem_registry.cli import app
from problem_registry.demo.folder import MARKER, demo_patterns_dir
from problem_registry.store.bundle import export_bundle, import_bundle
from problem_registry.store.registry import Registry
from problem_registry.verdicts.metrics import problem_metrics

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = ROOT / "patterns"
NOT_EXPORTED = {"curate.py", "README.md"}  # the curation script and its note live beside it


def bundle_files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in NOT_EXPORTED and "__pycache__" not in path.parts
    }


def open_registry(folder: Path) -> Registry:
    return Registry.open(url=f"sqlite:///{folder / 'registry.db'}", patterns_dir=folder / "store")


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# --- the curated bundle --------------------------------------------------------------------


def test_the_checkout_patterns_are_the_bundle_the_demo_imports() -> None:
    assert demo_patterns_dir() == PATTERNS  # editable install: the checkout, not a stale copy


def test_curated_problems_have_10_to_15_patterns_of_both_polarities_with_provenance() -> None:
    index = json.loads((PATTERNS / "bundle.json").read_text())
    assert len(index["problems"]) >= 4
    for slug in index["problems"]:
        manifest = json.loads((PATTERNS / "problems" / f"{slug}.json").read_text())
        assert manifest["title"] and len(manifest["description"]) > 80, slug
        assert manifest["tags"] and manifest["max_error_rate"] is not None, slug
        assert manifest["allowed_regressions"] >= 0
        patterns = manifest["patterns"]
        assert 10 <= len(patterns) <= 15, slug
        assert {p["polarity"] for p in patterns} == {"positive", "negative"}, slug
        for pattern in patterns:
            assert pattern["source"] in {"contrived", "production"}
            assert "held-out load_digits row" in pattern["note"], pattern
            assert pattern["added_by"] == "patterns/curate.py"
            assert pattern["expect"]["kind"] == "exact"


def test_curated_bundle_round_trips_byte_for_byte(tmp_path: Path) -> None:
    with open_registry(tmp_path) as registry:
        imported = import_bundle(registry, PATTERNS)
        assert imported.problems_created >= 4
        assert not import_bundle(registry, PATTERNS).changed  # idempotent
        export_bundle(registry, tmp_path / "exported")

    assert bundle_files(tmp_path / "exported") == bundle_files(PATTERNS)


@pytest.mark.slow  # trains the four versions again: about 10 s
def test_curate_py_makes_exactly_the_committed_patterns(tmp_path: Path) -> None:
    outcome = subprocess.run(
        [sys.executable, str(PATTERNS / "curate.py"), str(tmp_path / "bundle")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert outcome.returncode == 0, outcome.stderr
    assert bundle_files(tmp_path / "bundle") == bundle_files(PATTERNS)
    assert "threes-read-as-nines" in outcome.stdout  # its table of errors per version


# --- the demo --------------------------------------------------------------------------------


@pytest.mark.slow  # trains four scikit-learn models and writes the report
def test_demo_builds_a_registry_whose_problems_come_from_real_model_errors(tmp_path: Path) -> None:
    folder = tmp_path / "demo"

    code, stdout, stderr = run_cli("demo", str(folder))

    assert code == 0, stderr
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("report: ")
    report = Path(last.removeprefix("report: "))
    assert report.is_file() and report.is_relative_to(folder.resolve())
    assert "Traceback" not in stderr
    assert (folder / MARKER).is_file()

    with Registry.open(
        url=f"sqlite:///{folder / 'registry.db'}", patterns_dir=folder / "patterns"
    ) as registry:
        versions = registry.models.list("digits")
        accuracy = {v.ref: v.metrics["accuracy"] for v in versions}
        assert len(versions) >= 4
        assert len(set(accuracy.values())) == len(versions)  # genuinely different models
        assert [v.ref for v in versions if v.is_champion] == ["digits@v3"]
        best = max(accuracy, key=accuracy.__getitem__)

        rows = problem_metrics(registry, model="digits")
        assert all(row.missing == 0 and row.errored == 0 for row in rows)  # everything replayed
        rates: dict[str, dict[str, float]] = {}
        positives_wrong: dict[str, int] = {}
        for row in rows:
            assert row.error_rate is not None
            rates.setdefault(row.problem, {})[row.ref] = row.error_rate
            positives_wrong[row.problem] = max(
                positives_wrong.get(row.problem, 0), row.positive.wrong
            )
        assert len(rates) >= 4
        for slug, by_version in rates.items():
            assert positives_wrong[slug] >= 1, slug  # some real model gets its positives wrong
            # Every problem tells versions apart: its best version does better than its worst.
            assert min(by_version.values()) < max(by_version.values()), (slug, by_version)
        # The seed's picture: the headline metric went up while a problem got worse.
        champion = "digits@v3"
        assert accuracy[best] > accuracy[champion]
        assert any(by_version[best] > by_version[champion] for by_version in rates.values())

    # The gates of the newest version against the champion are printed, with their verdicts.
    assert f"candidate {best} against {champion}" in stdout
    assert "FAIL: " in stdout and " pass\n" in stdout
    assert "trained and registered digits@v4" in stderr

    # problem show says what the problem's patterns can catch, from its gate on the newest
    # version against the champion (labels only here: weak, and flagged).
    url = f"sqlite:///{folder / 'registry.db'}"
    code, shown, _ = run_cli("--url", url, "problem", "show", "faint-strokes", "--json")
    assert code == 0
    gate = json.loads(shown)["gate"]
    assert gate["candidate"] == best and gate["champion"] == champion
    power = gate["verdict"]["power"]
    assert power["problems_in_run"] == len(rates) and power["adequate"] is False
    code, shown, _ = run_cli("--url", url, "problem", "show", "faint-strokes")
    assert code == 0
    assert f"{best} against {champion}" in shown and "cannot catch what the gate promises" in shown


def test_demo_refuses_a_folder_that_is_not_a_previous_demo_and_deletes_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")

    code, _stdout, stderr = run_cli("demo", str(tmp_path))

    assert code == 1
    assert stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1, stderr
    assert "not empty and not a previous demo" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_demo_refuses_a_previous_demo_folder_holding_someone_elses_file(tmp_path: Path) -> None:
    (tmp_path / MARKER).write_text("", encoding="utf-8")
    (tmp_path / "registry.db").write_bytes(b"")
    (tmp_path / "thesis.tex").write_text("mine", encoding="utf-8")

    code, _stdout, stderr = run_cli("demo", str(tmp_path))

    assert code == 1, stderr
    assert (tmp_path / "thesis.tex").read_text() == "mine"


def test_demo_rebuilds_a_previous_demo_folder_from_scratch(tmp_path: Path) -> None:
    from problem_registry.demo.folder import prepare_folder

    (tmp_path / MARKER).write_text("", encoding="utf-8")
    (tmp_path / "registry.db").write_bytes(b"old")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "index.html").write_text("old", encoding="utf-8")

    prepare_folder(tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER]
