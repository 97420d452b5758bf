"""``pytest --registry`` under ``-n 2`` against the same run serial (issue 17, item 3).

Before the gates were decided once per session, every pytest-xdist worker evaluated every gate,
and ``-n 2`` took 3-4x the serial run at 60 problems x 50 versions. The registry here is that
size, with every result stored (``synthetic.build_registry`` with the replay benchmark's model,
then one ``replay --all`` for the ~1% it leaves missing), so a run replays nothing and the
measure is the plugin's own work: opening the registry, collecting, gating, summarising. Each
run is a child ``python -m pytest --registry --candidate bench@v49`` in an empty folder, on a
fresh copy of the registry, serial and ``-n 2`` interleaved. The floor of each is the same
pytest with nothing to run (no ``--registry``, an empty test file): what pytest and xdist cost
by themselves, starting their processes and plugins, so ``registry - floor`` is what the plugin
adds in each mode::

    python benchmarks/xdist_gates.py --problems 60 --versions 50 --repeats 3

Exit 1 of pytest is expected (problems fail their gates with a random model); the work is the
same. ``--isolated`` loads no plugin but xdist and ours (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``):
Hypothesis's plugin alone imports Hypothesis in every process at the end of a run.
``--json-out`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import replay
from measure import Child, cli, copy_sqlite, run_child
from synthetic import build_registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=60)
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="-n of the parallel run")
    parser.add_argument("--isolated", action="store_true", help="no plugin but xdist and ours")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="bench-xdist-"))
    database = folder / "registry.db"
    weights = replay.write_model(folder, args.versions, cost_ms=0.0)
    built = build_registry(
        folder,
        f"sqlite:///{database}",
        args.problems,
        args.versions,
        model=replay.MODEL_NAME,
        loader="bench_model:load",
        artifact=lambda v: weights[v],
    )
    built.registry.close()
    # The ~1% the synthetic registry leaves missing, replayed once: the timed runs replay nothing.
    run_child([cli(), "--url", f"sqlite:///{database}", "replay", "--all"], cwd=folder)
    candidate = f"{replay.MODEL_NAME}@v{args.versions - 1}"
    parallel = f"-n {args.workers}"
    modes = {"serial": [], parallel: ["-n", str(args.workers)]}
    kinds = ("registry", "floor")
    runs: dict[tuple[str, str], list[Child]] = {(k, m): [] for k in kinds for m in modes}
    (folder / "test_nothing.py").write_text("", encoding="utf-8")
    for index in range(args.repeats):
        for mode, extra in modes.items():  # interleaved: a busy moment slows each alike
            for kind in kinds:
                name = f"{index}-{kind}-{mode.replace(' ', '')}"
                if kind == "registry":
                    copy = copy_sqlite(database, folder / f"run-{name}.db")
                    more = ["--registry", "--registry-url", f"sqlite:///{copy}"]
                    more += ["--candidate", candidate]
                else:
                    more = [str(folder / "test_nothing.py")]
                child = _pytest(folder, name, [*more, *extra], args.isolated)
                runs[kind, mode].append(child)
    load_at_end = os.getloadavg()
    medians = {key: statistics.median(c.seconds for c in runs[key]) for key in runs}
    print(f"pytest --registry, {args.problems} problems x {args.versions} versions, results stored")
    print(f"  load average: {_load(load_at_start)} at start, {_load(load_at_end)} at end")
    print(f"  {'':<8} {'registry':>10} {'floor':>10} {'added':>10}   (medians of {args.repeats})")
    document: dict[str, object] = {
        "problems": args.problems,
        "versions": args.versions,
        "workers": args.workers,
        "isolated": args.isolated,
        "cores": os.cpu_count(),
        "load_average": load_at_start,
        "load_average_at_end": load_at_end,
        "runs": {},
    }
    for mode in modes:
        registry, floor = medians["registry", mode], medians["floor", mode]
        print(f"  {mode:<8} {registry:9.3f}s {floor:9.3f}s {registry - floor:9.3f}s")
        document["runs"][mode] = {  # type: ignore[index]
            "registry_median_s": registry,
            "floor_median_s": floor,
            "added_s": registry - floor,
            "registry_repeats": [c.seconds for c in runs["registry", mode]],
            "floor_repeats": [c.seconds for c in runs["floor", mode]],
            "outcome": runs["registry", mode][-1].stdout.strip().splitlines()[-1:],
        }
    serial = medians["registry", "serial"]
    ratio = medians["registry", parallel] / serial
    added = medians["registry", parallel] - medians["floor", parallel]
    added_ratio = added / max(serial - medians["floor", "serial"], 1e-9)
    print(f"  {parallel} / serial: {ratio:.2f}x; what the plugin adds, {parallel} / serial: "
          f"{added_ratio:.2f}x")  # fmt: skip
    document["ratio"] = ratio
    document["added_ratio"] = added_ratio
    if args.json_out:
        args.json_out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


def _pytest(folder: Path, name: str, more: list[str], isolated: bool) -> Child:
    """One pytest in an empty folder of its own (it collects nothing else); the loader's module
    is found through ``PYTHONPATH``, prepended so a checkout under test wins."""
    empty = folder / f"pytest-{name}"
    empty.mkdir()
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    args += ["--rootdir", str(empty), *more]
    inherited = os.environ.get("PYTHONPATH")
    env = {"PYTHONPATH": os.pathsep.join([str(folder), *([inherited] if inherited else [])])}
    if isolated:
        args += ["-p", "xdist", "-p", "problem_registry.pytest_plugin.hooks"]
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # 0: passed; 1: problems failed their gates; 5: the floor collected no test.
    return run_child(args, cwd=empty, ok=(0, 1, 5), env=env)


def _load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{value:.2f}" for value in load)


if __name__ == "__main__":
    raise SystemExit(main())
