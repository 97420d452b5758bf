"""Issue 7's benchmark: replay against its floors, the hand-written way, storage, reports, memory.

Measures, in one run and side by side (each row of the table states its parameters):

  (a) the model's batched predict on already-decoded inputs, every version (the floor);
  (b) reading, hash-checking and decoding every pattern file once, plus (a);
  (c) a cold ``problem-registry replay --all`` (a child process: start-up counted);
  (d) a warm replay of the big history (nothing missing, no model loaded);
  (e) hand-written pytest tests, one per pattern per version, run on a slice and scaled;
  (f) raw ``sqlite3`` ``executemany`` of the rows (c) stored, in one transaction;
  (g) the raw SQL GROUP BY of error rates, against ``problem-registry report --json``; on SQLite,
      and on a throwaway PostgreSQL server holding a copy of the same history when PostgreSQL is
      installed (``postgres.py``; --no-postgres skips it);
  (h) ``problem-registry report --html`` of the big history;
  (i) ``pytest --registry`` against (c), from the same empty registry;
  (j) peak memory (max RSS) of a cold replay at two numbers of versions, each version of the
      model holding --model-mb of memory, as a real model holds its parameters;

plus start-up (bare Python, Python + SQLAlchemy, the CLI, the model's own load) and the pytest
plugin's cost when installed but unused; then the issue's targets (``targets.py``), each computed
from this run. Run::

    python benchmarks/run.py                       # small sizes, well under a minute
    python benchmarks/run.py --full --json-out benchmarks/results.json   # the issue's sizes

Every size has its own flag (see --help); a flag given overrides --full's size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import handwritten
import history
import postgres
import replay
import startup
import storage
import targets
from measure import Child, cli, copy_sqlite, median_seconds, run_child
from results import Measurement, document, machine, table, write_json

# name: (small default, --full). The second column is the sizes.
SIZES: dict[str, tuple[Any, Any]] = {
    "problems": (6, 100),
    "versions": (3, 20),
    "cost_ms": (0.2, 0.2),
    "history_problems": (10, 1000),
    "history_versions": (5, 100),
    "memory_problems": (5, 100),
    "memory_versions": ("2,10", "10,100"),
    "model_mb": (2.0, 8.0),
    "slice_problems": (1, 2),
    "slice_versions": (2, 10),
    "repeats": (2, 5),
    "plugin_runs": (4, 31),
}


class Run:
    """The measurements, in the order they were taken, and the parameters of the whole run."""

    def __init__(self, parameters: dict[str, Any]) -> None:
        self.parameters = parameters
        self.measurements: list[Measurement] = []

    def add(self, key: str, value: float | None, unit: str, note: str, **params: Any) -> None:
        self.measurements.append(Measurement(key, LABELS[key], value, unit, params, note))

    def values(self) -> dict[str, float | None]:
        return {m.key: m.value for m in self.measurements}


LABELS = {
    "startup_python": "start-up: python -c pass",
    "startup_sqlalchemy": "start-up: python -c 'import sqlalchemy, sqlmodel'",
    "startup_cli": "start-up: problem-registry --version",
    "startup_cli_import": "start-up: python -c 'import problem_registry.cli'",
    "startup_model": "start-up of the model: import bench_model, load every version",
    "a_raw_predict": "(a) raw batched predict, decoded inputs",
    "b_decode_plus_raw": "(b) read + verify + decode every file once, plus (a)",
    "c_cold_replay": "(c) cold replay --all, every result stored",
    "warm_replay_same": "warm replay of (c)'s registry: the tool's start-up",
    "b0_decode_plus_raw": "(b) again, the model without its busy cost",
    "c0_cold_replay": "(c) again, the model without its busy cost",
    "i_pytest_registry": "(i) pytest --registry, the same work as (c), no other plugin",
    "i_pytest_registry_all": "(i) the same, every installed plugin loaded",
    "f_executemany": "(f) raw sqlite3 executemany of (c)'s rows, one transaction",
    "f_per_row_us": "(f) per row",
    "e_handwritten_slice": "(e) hand-written pytest tests, the slice",
    "e_handwritten_scaled": "(e) hand-written pytest tests, SCALED to (c)'s results",
    "history_build": "building the history (not a target)",
    "d_warm_replay": "(d) warm replay --all of the history, nothing missing",
    "g_raw_group_by": "(g) raw SQL GROUP BY of error rates",
    "g_report_json": "(g) problem-registry report --json",
    "h_report_html": "(h) problem-registry report --html",
    "g_pg_copy": "PostgreSQL: copying the history in (not a target)",
    "g_pg_raw_group_by": "(g) PostgreSQL: raw SQL GROUP BY of error rates",
    "g_pg_report_json": "(g) PostgreSQL: problem-registry report --json",
    "g_pg_report_json_empty": "(g) PostgreSQL: report --json of an empty registry (start-up)",
    "g_pg_imports": "(g) PostgreSQL: python -c 'import sqlalchemy, sqlmodel, psycopg'",
    "plugin_unused": "pytest: plugin installed, unused (vs -p no:problem_registry)",
    "plugin_unused_isolated": "pytest: plugin alone, unused (autoload off, vs bare pytest)",
}


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    info = machine()
    run = Run({name: getattr(args, name) for name in (*SIZES, "batch_size", "full")})
    try:
        _startup(args, workdir, run)
        _replay_side(args, workdir / "replay", run)
        _memory(args, workdir, run)
        _history_side(args, workdir / "history", run)
        _plugin(args, workdir, run)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    found = targets.evaluate(run.values(), args)
    headline = targets.headline(run.values())
    print(table(run.measurements, found, headline))
    if args.json_out:
        write_json(document(run.parameters, run.measurements, found, headline, info), args.json_out)
    return 0


def _startup(args: argparse.Namespace, workdir: Path, run: Run) -> None:
    su = startup.measure(workdir, args.repeats)
    note = f"median of {args.repeats}"
    run.add("startup_python", su.python_s, "s", note)
    run.add("startup_sqlalchemy", su.sqlalchemy_s, "s", f"{note}; the library's floor")
    run.add("startup_cli", su.cli_version_s, "s", note)
    run.add("startup_cli_import", su.cli_import_s, "s", note)


def _replay_side(args: argparse.Namespace, folder: Path, run: Run) -> None:
    """(a), (b), (c), its warm replay, (i), (f), (e): one registry and copies of it."""
    folder.mkdir(parents=True)
    database = folder / "registry.db"
    url = f"sqlite:///{database}"
    params = {"P": args.problems, "M": args.versions, "cost_ms": args.cost_ms}
    previous = Path.cwd()
    os.chdir(folder)  # bench_model is imported from the working directory, as replay does
    sys.path.insert(0, str(folder))
    try:
        built = replay.build(folder, url, args.problems, args.versions, args.cost_ms)
        empty = copy_sqlite(database, folder / "empty.db")
        floors = replay.floors(built.registry, folder, args.batch_size)
        run.add(
            "startup_model", _model_startup(folder, args.repeats), "s", "child, median", **params
        )
        run.add("a_raw_predict", floors.raw_predict_s, "s", "in-process", **params)
        decoding = f"decoding alone {floors.decode_s:.3f} s for {floors.files} files"
        run.add("b_decode_plus_raw", floors.decode_plus_raw_s, "s", decoding, **params)
        cold = _cold_replay(url, folder, args.batch_size)
        results = json.loads(cold.stdout)["predicted"]
        note = f"CLI child; {results} results; batch {args.batch_size}"
        run.add("c_cold_replay", cold.seconds, "s", note, **params)
        warm = median_seconds(args.repeats, lambda: _warm(url, folder))
        run.add("warm_replay_same", warm, "s", "CLI; median; no model loaded", **params)
        _without_cost(args, folder, built.registry, empty, run)
        for key, isolated in (("i_pytest_registry", True), ("i_pytest_registry_all", False)):
            copy = copy_sqlite(empty, folder / f"{key}.db")
            gate = _pytest_registry(copy, folder, args.versions, isolated=isolated)
            note = "child; candidate: newest version, history: the others"
            run.add(key, gate.seconds, "s", note, **params)
        rows = storage.stored_rows(database)
        floor = storage.measure(rows, copy_sqlite(empty, folder / "executemany.db"))
        run.add("f_executemany", floor.seconds, "s", "same schema and pragmas", rows=floor.rows)
        run.add("f_per_row_us", floor.per_row_us, "us", "(f) / rows", rows=floor.rows)
        copy = copy_sqlite(empty, folder / "handwritten.db")
        by_hand = handwritten.measure(
            built.registry, folder, copy, args.slice_problems, args.slice_versions
        )
        note = (
            f"{by_hand.slice_results} tests; the same file without tests: {by_hand.empty_s:.3f} s"
        )
        run.add(
            "e_handwritten_slice",
            by_hand.slice_s,
            "s",
            note,
            P=by_hand.problems,
            M=by_hand.versions,
        )
        note = "scaled: no-test run + per-test time x results (handwritten.py)"
        run.add("e_handwritten_scaled", by_hand.scaled_s(results), "s", note, results=results)
        built.registry.close()
    finally:
        os.chdir(previous)


def _without_cost(
    args: argparse.Namespace, folder: Path, registry: Any, empty: Path, run: Run
) -> None:
    """(b) and (c) again with no busy cost: the tool's own cost per result, out of the noise.

    At 0.2 ms/input the model's 6 s dwarf the tool's own ~0.3 s, and a few per cent of noise in
    the model's share would swamp it; without the busy wait the same work is measured closer.
    """
    params = {"P": args.problems, "M": args.versions, "cost_ms": 0.0}
    os.environ["BENCH_MODEL_COST_MS"] = "0"
    try:
        floors = replay.floors(registry, folder, args.batch_size)
        database = copy_sqlite(empty, folder / "cold-no-cost.db")
        cold = _cold_replay(f"sqlite:///{database}", folder, args.batch_size)
    finally:
        del os.environ["BENCH_MODEL_COST_MS"]
    run.add("b0_decode_plus_raw", floors.decode_plus_raw_s, "s", "in-process", **params)
    run.add("c0_cold_replay", cold.seconds, "s", "CLI child", **params)


def _memory(args: argparse.Namespace, workdir: Path, run: Run) -> None:
    """(j): the same cold replay at each number of versions; peak RSS of the CLI child."""
    for versions in (int(v) for v in args.memory_versions.split(",")):
        folder = workdir / f"memory-{versions}"
        folder.mkdir()
        database = folder / "registry.db"
        url = f"sqlite:///{database}"
        built = replay.build(folder, url, args.memory_problems, versions, 0.0, args.model_mb)
        built.registry.close()
        child = _cold_replay(f"sqlite:///{database}", folder, args.batch_size)
        note = f"os.wait4 of the CLI child; {child.seconds:.2f} s"
        params = {"P": args.memory_problems, "M": versions, "model_mb": args.model_mb}
        run.measurements.append(
            Measurement(
                f"j_peak_rss_m{versions}",
                f"(j) peak RSS of a cold replay, M={versions}",
                child.max_rss_mb,
                "MB",
                params,
                note,
            )
        )
        shutil.rmtree(folder, ignore_errors=True)


def _history_side(args: argparse.Namespace, folder: Path, run: Run) -> None:
    previous = Path.cwd()
    os.chdir(folder.parent)  # the completing replay imports bench_model from its folder
    try:
        built = history.build(folder, args.history_problems, args.history_versions)
    finally:
        os.chdir(previous)
    params = {"P": built.problems, "M": built.versions, "results": built.results}
    times = history.measure(built, args.repeats, not args.no_html, args.html_timeout)
    run.add(
        "history_build",
        built.build_s,
        "s",
        "synthetic.py, then replay of the ~1% missing",
        **params,
    )
    run.add(
        "d_warm_replay", times.warm_replay_s, "s", "CLI; median; checked: none loaded", **params
    )
    note = f"sqlite3, in-process; median; {times.groups} groups"
    run.add("g_raw_group_by", times.raw_group_by_s, "s", note, **params)
    run.add("g_report_json", times.report_json_s, "s", "CLI; median; start-up included", **params)
    run.add("h_report_html", times.report_html_s, "s", f"CLI; once; {times.html_note}", **params)
    if args.no_postgres:
        _postgres_missing(run, "skipped (--no-postgres)", params)
    else:
        _postgres_side(built, args.repeats, run, params)


def _postgres_side(built: history.History, repeats: int, run: Run, params: dict[str, Any]) -> None:
    """(g) again on PostgreSQL, the same history copied into a throwaway server."""
    found = postgres.measure(built, repeats)
    if isinstance(found, str):
        _postgres_missing(run, found, params)
        return
    server = f"PostgreSQL {found.server_version}"
    run.add("g_pg_copy", found.copy_s, "s", f"{server}; COPY of {found.rows_copied} rows", **params)
    note = f"{server}; psycopg, in-process; median; {found.groups} groups; same work_mem as the CLI"
    run.add("g_pg_raw_group_by", found.raw_group_by_s, "s", note, **params)
    load = "load {:.2f} before, {:.2f} after".format(*found.load)
    note = f"{server}; CLI; median, interleaved with the raw GROUP BY; start-up included; {load}"
    run.add("g_pg_report_json", found.report_json_s, "s", note, **params)
    note = f"{server}; CLI; median; the same command, the same server, no rows"
    run.add("g_pg_report_json_empty", found.report_json_empty_s, "s", note, P=0, M=0)
    note = "child; median, in the same rounds; the libraries' own start-up"
    run.add("g_pg_imports", found.imports_s, "s", note)


def _postgres_missing(run: Run, why: str, params: dict[str, Any]) -> None:
    for key in ("g_pg_raw_group_by", "g_pg_report_json"):
        run.add(key, None, "s", why, **params)
    run.add("g_pg_report_json_empty", None, "s", why, P=0, M=0)
    run.add("g_pg_imports", None, "s", why)


def _plugin(args: argparse.Namespace, workdir: Path, run: Run) -> None:
    for key, isolated in (("plugin_unused", False), ("plugin_unused_isolated", True)):
        cost = startup.plugin_cost(workdir, args.plugin_runs, isolated=isolated)
        note = (
            f"median of {cost.runs} paired differences of CPU time; medians "
            f"{cost.with_plugin_s:.3f} s vs {cost.without_plugin_s:.3f} s"
        )
        run.add(key, cost.difference_s * 1000, "ms", note, runs=cost.runs)


def _model_startup(folder: Path, repeats: int) -> float:
    """What the model costs before its first prediction: importing it, loading every version."""
    code = "import glob, bench_model\nfor p in glob.glob('weights-v*.npz'): bench_model.load(p)"
    bare = median_seconds(
        repeats, lambda: run_child([sys.executable, "-c", "pass"], cwd=folder).seconds
    )
    load = median_seconds(
        repeats, lambda: run_child([sys.executable, "-c", code], cwd=folder).seconds
    )
    return max(load - bare, 0.0)


def _cold_replay(url: str, folder: Path, batch_size: int) -> Child:
    args = [cli(), "--url", url, "replay", "--all", "--json", "--batch-size", str(batch_size)]
    return run_child(args, cwd=folder)


def _warm(url: str, folder: Path) -> float:
    return run_child([cli(), "--url", url, "replay", "--all", "--json"], cwd=folder).seconds


def _pytest_registry(database: Path, folder: Path, versions: int, *, isolated: bool) -> Child:
    """``pytest --registry``; ``isolated``: with no other plugin (Hypothesis's alone imports for
    about a second here, a cost of the environment, not of the work compared with replay)."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--registry"]
    args += ["--registry-url", f"sqlite:///{database}"]
    # An empty folder to run in, so pytest collects nothing but the problems; the loader's
    # module is found through PYTHONPATH instead of the working directory.
    empty = folder / f"pytest-{database.stem}"
    empty.mkdir()
    args += ["--candidate", f"{replay.MODEL_NAME}@v{versions - 1}", "--rootdir", str(empty)]
    # Prepended, not replaced: a PYTHONPATH naming the checkout under test must still win over
    # the venv's own install (else a new migration's registry is refused by the old code).
    inherited = os.environ.get("PYTHONPATH")
    env = {"PYTHONPATH": os.pathsep.join([str(folder), *([inherited] if inherited else [])])}
    if isolated:
        args += ["-p", "problem_registry.pytest_plugin.hooks"]
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # Exit 1: problems fail their gates, as they do with a random model; the work is the same.
    return run_child(args, cwd=empty, ok=(0, 1), env=env)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes")
    parser.add_argument("--quick", action="store_true", help="the small sizes (the default)")
    for name, (small, full) in SIZES.items():
        flag = f"--{name.replace('_', '-')}"
        parser.add_argument(flag, type=type(small), help=f"default {small}, --full {full}")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--no-html", action="store_true", help="skip (h)")
    parser.add_argument(
        "--no-postgres", action="store_true", help="skip (g) on PostgreSQL (a throwaway server)"
    )
    parser.add_argument("--html-timeout", type=float, default=1800.0, metavar="SECONDS")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--workdir", type=Path, help="build here and keep it (default: temporary)")
    args = parser.parse_args(argv)
    if args.full and args.quick:
        parser.error("--full or --quick, not both")
    for name, (small, full) in SIZES.items():
        if getattr(args, name) is None:
            setattr(args, name, full if args.full else small)
    return args


if __name__ == "__main__":
    sys.exit(main())
