"""A focused timing of issue 7's first target alone: a cold ``replay --all`` against its floor.

The same measurements as ``run.py``'s (b), (c), the warm replay and the model's start-up, on one
registry, without the rest of the benchmark (storage, reports, history, pytest), so a change to
how replay calls models (issue 16: model code in worker processes) can be timed before and after
on the same settings in a minute or two::

    python benchmarks/cold_replay.py --problems 100 --versions 20 --repeats 3

Each cold replay runs on a fresh copy of the empty registry; the table gives every repeat and the
ratio ``((c) - warm replay - model start-up) / (b)`` with the median (c), the target being 1.15.

``--code A --code B`` times the ``problem_registry`` found in each folder (put first on
``PYTHONPATH``), their cold replays interleaved on the same registry, so a shared or busy machine
slows both alike: before and after a change, e.g. a ``git archive`` of the base commit in one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import replay
from measure import copy_sqlite
from run import _cold_replay, _model_startup, _warm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--versions", type=int, default=8)
    parser.add_argument("--cost-ms", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--code",
        action="append",
        default=[],
        help="a folder holding a "
        "problem_registry package to time (repeatable); default: the installed",
    )
    args = parser.parse_args(argv)
    codes = args.code or [""]
    setup = replay.cold_setup(
        "bench-cold-", args.problems, args.versions, args.cost_ms, args.batch_size
    )
    setup.registry.close()
    folder, empty, floors = setup.folder, setup.empty, setup.floors
    model = _model_startup(folder, args.repeats)
    print(f"P={args.problems} M={args.versions} cost={args.cost_ms} ms/input")
    print(f"  results:               {floors.predicted}")
    print(f"  (b) decode + raw:      {floors.decode_plus_raw_s:.3f} s")
    print(f"  model start-up:        {model:.3f} s")
    colds: dict[str, list[float]] = {code: [] for code in codes}
    warms: dict[str, list[float]] = {code: [] for code in codes}
    base = os.environ.get("PYTHONPATH", "")
    for index in range(args.repeats):
        for code in codes:  # interleaved: a busy moment slows each code alike
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (code, base) if p)
            copy = copy_sqlite(empty, folder / f"cold-{index}-{codes.index(code)}.db")
            child = _cold_replay(f"sqlite:///{copy}", folder, args.batch_size)
            assert json.loads(child.stdout)["predicted"] == floors.predicted, child.stdout
            colds[code].append(child.seconds)
            warms[code].append(_warm(f"sqlite:///{copy}", folder))
    os.environ["PYTHONPATH"] = base
    for code in codes:
        cold, warm = statistics.median(colds[code]), statistics.median(warms[code])
        repeats = ", ".join(f"{c:.3f}" for c in colds[code])
        print(f"  code: {code or '(installed)'}")
        print(f"    warm replay:           {warm:.3f} s")
        print(f"    (c) cold replay:       {cold:.3f} s  (repeats {repeats})")
        ratio = (cold - warm - model) / floors.decode_plus_raw_s
        print(f"    ((c)-warm-model)/(b):  {ratio:.3f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
