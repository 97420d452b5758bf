"""Is the hand-built JSON of ``report --json`` worth its code? Timed against :mod:`json` itself.

``problem_metrics_json`` writes each row's text directly (``verdicts/json_text.py``); the plain
way is ``json.dumps`` of each row's ``to_dict()``. Both run here on the same registry, in the same
process, interleaved, and must give the same lines; the minimum of ``--repeats`` is reported::

    python benchmarks/json_rows.py --problems 300 --versions 100    # 30,000 rows
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from synthetic import build_registry

from problem_registry.verdicts.metrics import problem_metrics, problem_metrics_json


def _plain(registry: object) -> list[str]:
    encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
    return [encode(row.to_dict()) for row in problem_metrics(registry)]  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=300)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'registry.db'}"
        registry = build_registry(Path(folder), url, args.problems, args.versions).registry
        timings: dict[str, list[float]] = {"hand-built": [], "json.dumps": []}
        outputs = {}
        for _ in range(args.repeats):
            for name, how in (("hand-built", problem_metrics_json), ("json.dumps", _plain)):
                started = time.perf_counter()
                outputs[name] = how(registry)
                timings[name].append(time.perf_counter() - started)
        registry.close()
    assert outputs["hand-built"] == outputs["json.dumps"], "the two ways must give the same lines"
    rows = len(outputs["hand-built"])
    best = {name: min(times) for name, times in timings.items()}
    print(
        f"{rows:,} rows ({args.problems} problems x {args.versions} versions), min of "
        f"{args.repeats}, query included in both:"
    )
    for name, seconds in best.items():
        print(f"  {name:<11} {seconds * 1000:7.0f} ms")
    print(f"  json.dumps / hand-built: {best['json.dumps'] / best['hand-built']:.2f}x")


if __name__ == "__main__":
    main()
