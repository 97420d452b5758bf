"""``replay --jobs N`` against the serial raw model loop on the same work (issue 17, item 3).

The registry is the replay benchmark's (``replay.build``: P problems x 15 patterns, M versions of
the numpy bench model with a busy cost per input). The floor is (a) of ``run.py``: every
version's batched predict over inputs already decoded, one version after another, in this
process, loads excluded. Against it, ``problem-registry replay --all --jobs N`` as a child
process, start-up, loading, decoding and storing included, each on a fresh copy of the empty
registry, interleaved across N so a busy moment slows each alike::

    python benchmarks/jobs.py --problems 100 --versions 20 --jobs 1 --jobs 2 --repeats 3

Two kinds of busy cost are timed: the bench model's own (a wall-clock spin, as in ``run.py``),
and ``--cpu-cost`` (``BENCH_MODEL_CPU=1``), a spin on the process's CPU time, which two processes
sharing one core cannot overlap: the honest measure of what a second core buys.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import replay
from measure import cli, copy_sqlite, run_child


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--cost-ms", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--jobs", type=int, action="append", default=[])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpu-cost", action="store_true", help="busy cost in CPU time")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    jobs = args.jobs or [1, 2]
    if args.cpu_cost:
        os.environ["BENCH_MODEL_CPU"] = "1"
    folder = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    os.chdir(folder)  # bench_model is imported from the working directory, as replay does
    sys.path.insert(0, str(folder))
    database = folder / "registry.db"
    built = replay.build(
        folder, f"sqlite:///{database}", args.problems, args.versions, args.cost_ms
    )
    empty = copy_sqlite(database, folder / "empty.db")
    started = time.process_time()
    floors = replay.floors(built.registry, folder, args.batch_size)
    floor_cpu = time.process_time() - started  # decoding included: a bound, not (a) alone
    built.registry.close()
    times: dict[int, list[float]] = {n: [] for n in jobs}
    cpu: dict[int, list[float]] = {n: [] for n in jobs}
    for index in range(args.repeats):
        for n in jobs:
            copy = copy_sqlite(empty, folder / f"cold-{index}-{n}.db")
            command = [cli(), "--url", f"sqlite:///{copy}", "replay", "--all", "--json"]
            command += ["--batch-size", str(args.batch_size), "--jobs", str(n)]
            child = run_child(command, cwd=folder)
            assert json.loads(child.stdout)["predicted"] == floors.predicted, child.stdout
            times[n].append(child.seconds)
            cpu[n].append(child.cpu_seconds)  # the CLI and its model workers, user + system
    cost = "CPU-time" if args.cpu_cost else "wall-clock"
    print(f"P={args.problems} M={args.versions} cost={args.cost_ms} ms/input ({cost} spin)")
    print(f"  results:                 {floors.predicted}")
    print(f"  (a) serial raw loop:     {floors.raw_predict_s:.3f} s")
    print(f"    CPU, (a) and decoding: {floor_cpu:.3f} s")
    document: dict[str, object] = {
        "problems": args.problems,
        "versions": args.versions,
        "cost_ms": args.cost_ms,
        "cost": cost,
        "raw_loop_s": floors.raw_predict_s,
        "jobs": {},
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    for n in jobs:
        median = statistics.median(times[n])
        ratio = median / floors.raw_predict_s
        repeats = ", ".join(f"{t:.3f}" for t in times[n])
        spent = statistics.median(cpu[n])
        print(f"  replay --jobs {n}:        {median:.3f} s  ({ratio:.2f}x raw; {repeats})")
        print(f"    CPU, CLI + workers:    {spent:.3f} s")
        document["jobs"][str(n)] = {  # type: ignore[index]
            "median_s": median,
            "ratio": ratio,
            "repeats": times[n],
            "cpu_s": cpu[n],
        }
    if args.json_out:
        args.json_out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
