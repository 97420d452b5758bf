"""``replay --jobs N`` against the serial raw model loop on the same work (issue 17, item 3).

The registry is the replay benchmark's (``replay.build``: P problems x 15 patterns, M versions of
the numpy bench model with a busy cost per input). The floor is (a) of ``run.py``: every
version's batched predict over inputs already decoded, one version after another, in this
process, loads excluded. Against it, ``problem-registry replay --all --jobs N`` as a child
process, start-up, loading, decoding and storing included, each on a fresh copy of the empty
registry. The floor is measured again before every round of replays and every N is run once per
round, so a busy moment on a shared machine slows the floor and each N alike; the ratio is the
median replay over the median floor::

    python benchmarks/jobs.py --problems 100 --versions 20 --jobs 1 --jobs 2 --repeats 3

Two kinds of busy cost are timed: the bench model's own (a wall-clock spin, as in ``run.py``),
and ``--cpu-cost`` (``BENCH_MODEL_CPU=1``), a spin on the process's CPU time, which two processes
sharing one core cannot overlap: the honest measure of what a second core buys. ``--code A
--code B`` times the ``problem_registry`` found in each folder (put first on ``PYTHONPATH`` of
the replay), interleaved: before and after a change, e.g. a ``git archive`` of the base commit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
    parser.add_argument(
        "--code",
        action="append",
        default=[],
        help="a folder holding a problem_registry package to time (repeatable)",
    )
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    jobs = args.jobs or [1, 2]
    codes = args.code or [""]
    if args.cpu_cost:
        os.environ["BENCH_MODEL_CPU"] = "1"
    load_at_start = os.getloadavg()
    setup = replay.cold_setup(
        "bench-jobs-", args.problems, args.versions, args.cost_ms, args.batch_size
    )
    folder, expected = setup.folder, setup.floors.predicted
    raw = [setup.floors.raw_predict_s]
    runs = [(code, n) for code in codes for n in jobs]
    times: dict[tuple[str, int], list[float]] = {run: [] for run in runs}
    cpu: dict[tuple[str, int], list[float]] = {run: [] for run in runs}
    base = os.environ.get("PYTHONPATH", "")
    for index in range(args.repeats):
        if index:  # the floor again, beside this round of replays
            raw.append(replay.floors(setup.registry, folder, args.batch_size).raw_predict_s)
        for code, n in runs:
            copy = copy_sqlite(setup.empty, folder / f"cold-{index}-{codes.index(code)}-{n}.db")
            command = [cli(), "--url", f"sqlite:///{copy}", "replay", "--all", "--json"]
            command += ["--batch-size", str(args.batch_size), "--jobs", str(n)]
            path = os.pathsep.join(p for p in (code, base) if p)
            child = run_child(command, cwd=folder, env={"PYTHONPATH": path})
            assert json.loads(child.stdout)["predicted"] == expected, child.stdout
            times[code, n].append(child.seconds)
            cpu[code, n].append(child.cpu_seconds)  # the CLI and its reaped children
    setup.registry.close()
    floor = statistics.median(raw)
    cost = "CPU-time" if args.cpu_cost else "wall-clock"
    load_at_end = os.getloadavg()
    print(f"P={args.problems} M={args.versions} cost={args.cost_ms} ms/input ({cost} spin)")
    print(f"  load average: {_load(load_at_start)} at start, {_load(load_at_end)} at end")
    print(f"  results:                 {expected}")
    rounds = ", ".join(f"{t:.3f}" for t in raw)
    print(f"  (a) serial raw loop:     {floor:.3f} s  (median; {rounds})")
    document: dict[str, object] = {
        "problems": args.problems,
        "versions": args.versions,
        "cost_ms": args.cost_ms,
        "cost": cost,
        "raw_loop_s": floor,
        "raw_loop_repeats": raw,
        "jobs": {},
        "cores": os.cpu_count(),
        "load_average": load_at_start,
        "load_average_at_end": load_at_end,
    }
    for code, n in runs:
        if len(codes) > 1 and n == jobs[0]:
            print(f"  code: {code}")
        median = statistics.median(times[code, n])
        ratio = median / floor
        repeats = ", ".join(f"{t:.3f}" for t in times[code, n])
        print(f"  replay --jobs {n}:        {median:.3f} s  ({ratio:.2f}x raw; {repeats})")
        key = str(n) if len(codes) == 1 else f"{code}:{n}"
        document["jobs"][key] = {  # type: ignore[index]
            "median_s": median,
            "ratio": ratio,
            "repeats": times[code, n],
            "cpu_s": cpu[code, n],
        }
    if args.json_out:
        args.json_out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


def _load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{value:.2f}" for value in load)


if __name__ == "__main__":
    raise SystemExit(main())
