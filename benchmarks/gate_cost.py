"""What the gates cost at scale: ``gates.evaluate`` on P problems x M versions, against its floor.

The floor is what any gate must read: the candidate's and the champion's per-problem metrics
(``problem_metrics`` for two versions). The gates also read the patterns' answers of the recent
history and decide every problem, with power estimates or without. Run in one process,
interleaved, minimum of ``--repeats``; the registry is synthetic (labels only, see synthetic.py)::

    python benchmarks/gate_cost.py --problems 1000 --versions 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from synthetic import build_registry

from problem_registry.verdicts.gates import evaluate
from problem_registry.verdicts.metrics import problem_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'registry.db'}"
        started = time.perf_counter()
        registry = build_registry(Path(folder), url, args.problems, args.versions).registry
        built = time.perf_counter() - started
        names = [v.ref for v in registry.models.list()]
        candidate, champion = names[-1], names[-2]
        registry.models.promote(*champion.split("@"))
        work: dict[str, Callable[[], object]] = {
            "floor: metrics of 2 versions": lambda: problem_metrics(
                registry, versions=[candidate, champion]
            ),
            "gates, no power": lambda: evaluate(registry, candidate, power=False),
            "gates with power": lambda: evaluate(registry, candidate),
        }
        best = {name: float("inf") for name in work}
        for _ in range(args.repeats):
            for name, call in work.items():
                started = time.perf_counter()
                call()
                best[name] = min(best[name], time.perf_counter() - started)
        registry.close()
    print(
        f"{args.problems} problems x {args.versions} versions (built in {built:.0f} s), "
        f"min of {args.repeats}:"
    )
    floor = best["floor: metrics of 2 versions"]
    for name, seconds in best.items():
        print(f"  {name:<30} {seconds:7.2f} s  (+{seconds - floor:.2f} s over the floor)")


if __name__ == "__main__":
    main()
