"""Issue 15's benchmark: how often each gate rule fails real regressions and plain retrains.

Real MLPs on scikit-learn's digits: a history of ordinary retrains (the last is the baseline),
plain retrains and targeted regressions as candidates, 100+ digit problems with hundreds of
held-out cases each, and 10-15 patterns per problem drawn many times. Ground truth is each
problem's population error, candidate minus baseline. Run::

    python benchmarks/verdicts.py --quick                 # under a minute
    python benchmarks/verdicts.py --json-out verdicts.json  # the full run, ~10 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import numpy as np
from verdict_sim import evaluate, report
from verdict_sim.data import build
from verdict_sim.patterns import draw
from verdict_sim.train import Recipe, train_all

SIZES = {
    "full": {
        "history": 6,
        "plain": 24,
        "targeted": 48,
        "draws": 20,
        "replicates": 200,
        "epochs": 40,
    },
    "quick": {"history": 4, "plain": 3, "targeted": 5, "draws": 2, "replicates": 60, "epochs": 40},
    # for tests/test_verdict_benchmark.py: structure only, a few seconds
    "tiny": {"history": 3, "plain": 1, "targeted": 2, "draws": 2, "replicates": 10, "epochs": 5},
}
SHARES = (0.3, 0.5, 0.7, 0.9)


def recipes(sizes: dict[str, int], problems: list[Any], seed: int) -> list[Recipe]:
    """History (oldest first, the last is the baseline), plain retrains, targeted regressions."""
    rng = np.random.default_rng(seed)
    epochs = sizes["epochs"]
    out = [Recipe(f"v{i + 1}", seed * 1000 + i, epochs=epochs) for i in range(sizes["history"])]
    out += [
        Recipe(f"plain{i}", seed * 1000 + 100 + i, epochs=epochs) for i in range(sizes["plain"])
    ]
    for i in range(sizes["targeted"]):
        p = problems[int(rng.integers(len(problems)))]
        target = (p.positive, p.negative, p.transform)
        share = SHARES[i % len(SHARES)]
        out.append(Recipe(f"target{i}", seed * 1000 + 500 + i, target, share, epochs=epochs))
    return out


def pattern_sets(
    world_preds: dict[str, Any], history: list[str], data: Any, draws: int, seed: int
) -> list[list[Any]]:
    """Per problem, ``draws`` pattern sets; odd draws are hard-case draws."""
    rng = np.random.default_rng(seed + 1)
    sets = []
    for problem in data.problems:
        row = []
        for j in range(draws):
            registering = world_preds[history[int(rng.integers(len(history)))]]
            row.append(draw(problem, ~registering.correct, j % 2 == 1, rng))
        sets.append(row)
    return sets


def run(
    size: str,
    seed: int,
    workers: int,
    pairs: int | None = None,
    transforms: int | None = None,
    rules: list[str] | None = None,
) -> dict[str, Any]:
    """The whole benchmark at ``size`` (a key of SIZES); returns the JSON-able result."""
    sizes = SIZES[size]
    quick = size != "full"
    started = time.perf_counter()
    data = build(seed, **{k: v for k, v in (("pairs", pairs), ("transforms", transforms)) if v})
    all_recipes = recipes(sizes, data.problems, seed)
    preds = train_all(data, all_recipes, workers)
    trained = time.perf_counter()
    history = [r.name for r in all_recipes[: sizes["history"]]]
    candidates = [r.name for r in all_recipes[sizes["history"] :]]
    world = evaluate.World(
        data,
        preds,
        history,
        candidates,
        pattern_sets(preds, history, data, sizes["draws"], seed),
        [spec for spec in evaluate.rule_specs() if not rules or spec.name in rules],
        seed,
    )
    codes, groups, canary = evaluate.run_all(world, workers)
    decided = time.perf_counter()
    delta = report.truth(world)
    plain = np.array([c.startswith("plain") for c in candidates])
    specs = world.specs
    checked = (
        "default",
        "previous default: BH alpha 0.10, not moderated",
        "default, labels-only model",
        "flips vs history + Holm, alpha 0.05",
    )
    power = [
        report.power_check(world, spec, codes, delta, sizes["replicates"])
        for spec in specs
        if spec.name in checked
    ]
    timed = [spec for spec in specs if spec.name in ("default", "default, labels-only model")]
    random_draws = np.array([[not ps.hard for ps in row] for row in world.patterns])
    return {
        "meta": {
            "seed": seed,
            "quick": quick,
            "problems": len(data.problems),
            "pool_rows": len(data.pool_y),
            "population_per_problem": float(np.mean([len(p.rows) for p in data.problems])),
            "sizes": sizes,
            "history_versions": len(history),
            "workers": workers,
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus, Python "
            f"{platform.python_version()}",
            "truly_worse_share_plain": float((delta[plain] > report.NOT_WORSE).mean()),
            "seconds": {
                "train": trained - started,
                "decide": decided - trained,
                "total": time.perf_counter() - started,
            },
        },
        "rules": report.rule_rows(specs, codes, groups, delta, plain),
        "power": power,
        "power_timing": {s.name: report.power_timing(world, s, 20) for s in timed},
        "canary": report.canary_rows(world, canary, random_draws),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--json-out", type=Path, help="write the result as JSON here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--pairs", type=int, help="digit pairs (default: all 15)")
    parser.add_argument("--transforms", type=int, help="transformations (default: all 9)")
    parser.add_argument(
        "--rule", action="append", dest="rules", help="only this rule (repeatable; default: all)"
    )
    args = parser.parse_args(argv)
    result = run(
        "quick" if args.quick else "full",
        args.seed,
        args.workers,
        args.pairs,
        args.transforms,
        args.rules,
    )
    meta = result["meta"]
    print(
        f"# Verdict benchmark (seed {meta['seed']}, {meta['problems']} problems, "
        f"{meta['seconds']['total']:.0f} s)\n"
    )
    print(report.markdown(result))
    print(f"\npower estimate per problem: {json.dumps(result['power_timing'])}")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
