"""The benchmark of issue 7 keeps working: a tiny run, checked for structure, never for speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.model_sources import require
from tests.throwaway_postgres import unavailable_reason

REPO = Path(__file__).resolve().parent.parent
TINY = {
    "--problems": 2,
    "--versions": 2,
    "--history-problems": 2,
    "--history-versions": 2,
    "--memory-problems": 1,
    "--memory-versions": "1,2",
    "--model-mb": 1.0,
    "--slice-problems": 1,
    "--slice-versions": 1,
    "--repeats": 1,
    "--plugin-runs": 1,
}
MEASURED = [
    "startup_python",
    "startup_sqlalchemy",
    "startup_cli",
    "startup_model",
    "a_raw_predict",
    "b_decode_plus_raw",
    "c_cold_replay",
    "b0_decode_plus_raw",
    "c0_cold_replay",
    "d_warm_replay",
    "e_handwritten_slice",
    "e_handwritten_scaled",
    "f_executemany",
    "g_raw_group_by",
    "g_report_json",
    "h_report_html",
    "i_pytest_registry",
    "j_peak_rss_m1",
    "j_peak_rss_m2",
    "plugin_unused",
    "plugin_unused_isolated",
]

# (g) on PostgreSQL, measured where it is installed: CI installs it, so CI must measure it.
ON_POSTGRES = unavailable_reason() is None or bool(os.environ.get("CI"))
if ON_POSTGRES:
    MEASURED += ["g_pg_raw_group_by", "g_pg_report_json", "g_pg_report_json_empty", "g_pg_imports"]

DIFFERENCES = {"plugin_unused", "plugin_unused_isolated", "e_handwritten_scaled"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    args = [str(item) for pair in TINY.items() for item in pair]
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), *args, "--json-out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| (c) cold replay" in done.stdout  # the table went to stdout
    return json.loads(out.read_text(encoding="utf-8"))


def test_every_measurement_is_present_with_its_parameters(document: dict) -> None:
    measurements = document["measurements"]
    assert set(MEASURED) <= set(measurements)
    for key in MEASURED:
        m = measurements[key]
        assert m["key"] == key and m["label"] and m["unit"] in {"s", "ms", "MB", "us"}
        assert isinstance(m["value"], (int, float)), m
        # A difference of two timings (the plugin's cost; the per-test time of a 15-test slice
        # over the same file without tests) may come out below zero in a tiny run's noise.
        assert m["value"] >= 0 or key in DIFFERENCES, m
    assert measurements["c_cold_replay"]["parameters"] == {"P": 2, "M": 2, "cost_ms": 0.2}
    assert "SCALED" in measurements["e_handwritten_scaled"]["label"]


def test_every_target_has_a_verdict_computed_from_the_run(document: dict) -> None:
    targets = document["targets"]
    assert len(targets) >= 11
    for target in targets:
        if target["name"].endswith("PostgreSQL") and not ON_POSTGRES:
            assert target["met"] is None, target  # said "not measured", never a verdict
            continue
        assert target["name"] and target["detail"] and target["limit"] > 0
        assert target["met"] in (True, False), target
        assert target["met"] == (target["measured"] <= target["limit"])
    assert isinstance(document["headline_times_faster_than_handwritten"], float)


def test_the_machine_and_the_sizes_are_recorded(document: dict) -> None:
    machine = document["machine"]
    assert machine["nproc"] >= 1 and machine["python"] and machine["sqlite"]
    assert document["parameters"]["problems"] == 2
    assert document["parameters"]["memory_versions"] == "1,2"


def run_benchmark(tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python benchmarks/SCRIPT ARGS`` in ``tmp_path``, which must exit 0."""
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_the_endpoint_benchmark_runs(tmp_path: Path) -> None:
    """benchmarks/endpoint_replay.py keeps working: a tiny run, its structure checked, never its
    speed (measure, don't assert timings)."""
    require("mlserver_sklearn", "mlserver-sklearn")
    result = run_benchmark(tmp_path, "endpoint_replay.py", "--repeats", "1", "--patterns", "40")
    assert "40 patterns" in result.stdout
    assert "ratio" in result.stdout and "bare loop" in result.stdout


def test_the_report_rebuild_benchmark_runs(tmp_path: Path) -> None:
    """benchmarks/report_rebuild.py keeps working (issue 19 item 13): a tiny run with one
    drawing process, its JSON's structure checked, never its timings."""
    out = tmp_path / "rebuild.json"
    run_benchmark(
        tmp_path, "report_rebuild.py", "--problems", "3", "--versions", "3", "--repeats", "1",
        "--jobs", "1", "--json-out", str(out),
    )  # fmt: skip
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["problems"] == 3 and document["versions"] == 3
    new = document["new_version"]
    assert new["peak_mb_summed"] > 0 and new["peaks_mb"] and new["index_written_s"] is not None
    assert "files drawn" in new["said"]
    assert len(document["unchanged_s"]) == len(document["report_json_s"]) == 1
    assert [name for name, *_ in document["verdicts"]] == [
        "after one new version: wall",
        "after one new version: peak memory, summed over processes",
        "nothing changed: x report --json",
    ]


def test_the_text_similarity_benchmark_runs(tmp_path: Path) -> None:
    """benchmarks/text_similarity.py keeps working (issue 20): a tiny run, its JSON's structure
    checked, never its timings."""
    out = tmp_path / "text.json"
    result = run_benchmark(
        tmp_path, "text_similarity.py", "--cases", "60", "--patterns", "10", "--old-cases", "6",
        "--json-out", str(out),
    )  # fmt: skip
    document = json.loads(out.read_text(encoding="utf-8"))
    assert (document["cases"], document["patterns"], document["old_measured_cases"]) == (60, 10, 6)
    assert 0 <= document["same_near_call"] <= 1 and document["new_seconds"] > 0
    assert "floor" in result.stdout and "difflib" in result.stdout
