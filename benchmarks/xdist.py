"""``pytest --registry`` under ``-n 2`` against the same run serial (issue 17, item 3).

Before the gates were decided once per session, every pytest-xdist worker evaluated every gate,
and ``-n 2`` took 3-4x the serial run at 60 problems x 50 versions. The registry here is that
size, with every result stored (``synthetic.build_registry`` with the replay benchmark's model,
then one ``replay --all`` for the ~1% it leaves missing), so a run replays nothing and the
measure is the plugin's own work: opening the registry, collecting, gating, summarising. Each
run is a child ``python -m pytest --registry --candidate bench@v49`` in an empty folder, on a
fresh copy of the registry, serial and ``-n 2`` interleaved; the floor is the serial run::

    python benchmarks/xdist.py --problems 60 --versions 50 --repeats 3

Exit 1 of pytest is expected (problems fail their gates with a random model); the work is the
same. ``--json-out`` writes the numbers.
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
    modes = {"serial": [], f"-n {args.workers}": ["-n", str(args.workers)]}
    runs: dict[str, list[Child]] = {mode: [] for mode in modes}
    for index in range(args.repeats):
        for mode, extra in modes.items():  # interleaved: a busy moment slows both alike
            name = f"{index}-{mode.replace(' ', '')}"
            copy = copy_sqlite(database, folder / f"run-{name}.db")
            runs[mode].append(_pytest(copy, folder, candidate, name, extra))
    load_at_end = os.getloadavg()
    medians = {
        mode: statistics.median(c.seconds for c in children) for mode, children in runs.items()
    }
    serial = medians["serial"]
    print(f"pytest --registry, {args.problems} problems x {args.versions} versions, results stored")
    print(f"  load average: {_load(load_at_start)} at start, {_load(load_at_end)} at end")
    document: dict[str, object] = {
        "problems": args.problems,
        "versions": args.versions,
        "workers": args.workers,
        "cores": os.cpu_count(),
        "load_average": load_at_start,
        "load_average_at_end": load_at_end,
        "runs": {},
    }
    for mode, children in runs.items():
        repeats = ", ".join(f"{c.seconds:.3f}" for c in children)
        ratio = medians[mode] / serial
        print(f"  {mode:<8} {medians[mode]:7.3f} s  ({ratio:.2f}x serial; {repeats})")
        document["runs"][mode] = {  # type: ignore[index]
            "median_s": medians[mode],
            "ratio_to_serial": ratio,
            "repeats": [c.seconds for c in children],
            "outcome": children[-1].stdout.strip().splitlines()[-1:],
        }
    if args.json_out:
        args.json_out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


def _pytest(database: Path, folder: Path, candidate: str, name: str, extra: list[str]) -> Child:
    """One ``pytest --registry`` in an empty folder of its own (it collects nothing else); the
    loader's module is found through ``PYTHONPATH``, prepended so a checkout under test wins."""
    empty = folder / f"pytest-{name}"
    empty.mkdir()
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--registry"]
    args += ["--registry-url", f"sqlite:///{database}", "--candidate", candidate]
    args += ["--rootdir", str(empty), *extra]
    inherited = os.environ.get("PYTHONPATH")
    env = {"PYTHONPATH": os.pathsep.join([str(folder), *([inherited] if inherited else [])])}
    return run_child(args, cwd=empty, ok=(0, 1), env=env)


def _load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{value:.2f}" for value in load)


if __name__ == "__main__":
    raise SystemExit(main())
