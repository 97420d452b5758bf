"""A focused timing of issue 7's first target alone: a cold ``replay --all`` against its floor.

The same measurements as ``run.py``'s (b), (c), the warm replay and the model's start-up, on one
registry, without the rest of the benchmark (storage, reports, history, pytest), so a change to
how replay calls models (issue 16: model code in worker processes) can be timed before and after
on the same settings in a minute or two::

    python benchmarks/cold_replay.py --problems 100 --versions 20 --repeats 3

Each cold replay runs on a fresh copy of the empty registry; the table gives every repeat and the
ratio ``((c) - warm replay - model start-up) / (b)`` with the median (c), the target being 1.15.
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
from measure import copy_sqlite, median_seconds
from run import _cold_replay, _model_startup, _warm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--versions", type=int, default=8)
    parser.add_argument("--cost-ms", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    os.chdir(folder)  # bench_model is imported from the working directory, as replay does
    sys.path.insert(0, str(folder))
    database = folder / "registry.db"
    built = replay.build(folder, f"sqlite:///{database}", args.problems, args.versions, args.cost_ms)
    empty = copy_sqlite(database, folder / "empty.db")
    floors = replay.floors(built.registry, folder, args.batch_size)
    built.registry.close()
    model = _model_startup(folder, args.repeats)
    colds = []
    for index in range(args.repeats):
        copy = copy_sqlite(empty, folder / f"cold-{index}.db")
        child = _cold_replay(f"sqlite:///{copy}", folder, args.batch_size)
        assert json.loads(child.stdout)["predicted"] == floors.predicted, child.stdout
        colds.append(child.seconds)
    warm = median_seconds(args.repeats, lambda: _warm(f"sqlite:///{copy}", folder))
    cold = statistics.median(colds)
    print(f"P={args.problems} M={args.versions} cost={args.cost_ms} ms/input")
    print(f"  results:               {floors.predicted}")
    print(f"  (b) decode + raw:      {floors.decode_plus_raw_s:.3f} s")
    print(f"  model start-up:        {model:.3f} s")
    print(f"  warm replay:           {warm:.3f} s")
    print(f"  (c) cold replay:       {cold:.3f} s  (repeats {', '.join(f'{c:.3f}' for c in colds)})")
    print(f"  ((c)-warm-model)/(b):  {(cold - warm - model) / floors.decode_plus_raw_s:.3f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
