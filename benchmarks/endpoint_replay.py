"""Endpoint replay against a bare client loop on the same model server (issue 18, item 3).

A real MLServer (``mlserver-sklearn``, on loopback) serves a logistic regression on the digits'
pixels; a registry holds every distinct ``load_digits`` image as a pattern. Two things are timed,
interleaved, ``--repeats`` times each:

- **replay**: ``replay(registry, [NAME@VERSION])`` of an endpoint version with nothing stored
  yet: the worker process, reading, hash-checking and decoding every PNG, the v2 requests
  (``--batch`` rows each, ``--concurrency`` in flight), and storing every answer;
- **bare loop**: the same rows (already decoded, already float32), the same request bodies and
  the same concurrency over kept-alive ``http.client`` connections, the answers parsed and
  dropped: what the server alone allows a client.

Beside them, the floor, also interleaved: a replay of a model that costs nothing
(``tests.models.free``, answering a label and ten probabilities, as the served model does) on
the same patterns (**free model**: replay's own cost, reading to storing) and on one pattern
(**fixed**: the Run's records, the worker's start and load, the queries; what a replay costs
whatever the number of patterns).

The target is replay / bare <= 1.2 (the registry adds at most 20% to what serving costs)::

    python benchmarks/endpoint_replay.py --model svm --repeats 3 --json-out endpoint.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Only light imports at the top: multiprocessing re-runs this module in every model worker it
# starts (forkserver's main-module fix-up), so joblib, scikit-learn and MLServer's helpers are
# imported inside the functions that need them.
from problem_registry.enums import LoaderKind  # noqa: E402
from problem_registry.expectations import Expectation  # noqa: E402
from problem_registry.replay.engine import replay  # noqa: E402
from problem_registry.store.patterns import NewPattern  # noqa: E402
from problem_registry.store.registry import Registry  # noqa: E402

PIXEL_SCALE = 15  # as tests/models/digits.py writes digits: 0..16 -> 0..240
# A Python loader that answers at once, as the endpoint does (a label and ten probabilities),
# and imports nothing: replay's own cost, with no model to wait for.
FLOOR_LOADER = "tests.models.free:load"


def fit(kind: str, x: np.ndarray, y: np.ndarray) -> Any:
    """``logistic``: answers in microseconds, so the client is all that is timed; ``svm``: an RBF
    SVM with probabilities, ~0.1 ms a digit; ``forest``: 1,000 trees, ~1 ms a digit, the cost
    of a modest served model."""
    if kind == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=1000, max_depth=8, random_state=0).fit(x, y)
    if kind == "svm":
        from sklearn.svm import SVC

        return SVC(gamma=1e-5, probability=True, random_state=0).fit(x, y)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=3000).fit(x, y)


def build(
    folder: Path, kind: str | None, limit: int | None = None
) -> tuple[Registry, np.ndarray, object]:
    """A registry of the distinct digits (at most ``limit``), their rows, and the ``kind`` of
    model fitted (None: no model)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = (data.data * PIXEL_SCALE).astype(np.uint8)
    model = fit(kind, pixels[:1200].astype(float), data.target[:1200]) if kind else None
    folder.mkdir(parents=True, exist_ok=True)
    registry = Registry.open(
        url=f"sqlite:///{folder / 'registry.db'}", patterns_dir=folder / "patterns", user="bench"
    )
    seen: set[bytes] = set()
    new: list[NewPattern] = []
    rows: list[np.ndarray] = []
    for index, (row, label) in enumerate(zip(pixels, data.target, strict=True)):
        if row.tobytes() in seen or (limit is not None and len(rows) >= limit):
            continue
        seen.add(row.tobytes())
        path = folder / "inputs" / f"{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(row.reshape(8, 8), mode="L").save(path)
        new.append(NewPattern(path, Expectation.exact(str(label))))
        rows.append(row.astype(np.float32))
    registry.problems.add("digits-all")
    registry.patterns.add("digits-all", new)
    return registry, np.stack(rows), model


def bare_loop(url: str, rows: np.ndarray, batch: int, concurrency: int) -> float:
    """Seconds for the same v2 requests from plain http.client threads, answers parsed."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1] + "/infer"
    local = threading.local()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def send(chunk: np.ndarray) -> int:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection(host, int(port))
        body = {
            "inputs": [
                {
                    "name": "pixels",
                    "shape": list(chunk.shape),
                    "datatype": "FP32",
                    "data": chunk.reshape(-1).tolist(),
                }
            ],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        }
        connection.request("POST", path, json.dumps(body, separators=(",", ":")), headers)
        response = connection.getresponse()
        answer = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(answer)
        return len(answer["outputs"][0]["data"])

    chunks = [rows[i : i + batch] for i in range(0, len(rows), batch)]
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        answered = sum(pool.map(send, chunks))
    seconds = time.perf_counter() - began
    assert answered == len(rows), answered
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", choices=["logistic", "svm", "forest"], default="logistic")
    parser.add_argument("--patterns", type=int, default=None, help="at most this many digits")
    parser.add_argument("--json-out", type=Path, help="also write the results here, as JSON")
    args = parser.parse_args(argv)
    from problem_registry.adapters.endpoint import endpoint_options
    from problem_registry.adapters.sources import SourceSettings
    from tests.model_server import mlserver

    folder = Path(tempfile.mkdtemp(prefix="bench-endpoint-"))
    registry, rows, model = build(folder, args.model, args.patterns)
    one, _rows, _none = build(folder / "one", None, 1)  # the fixed cost's registry
    print(
        f"{len(rows)} patterns, {args.model} model, batch {args.batch}, "
        f"concurrency {args.concurrency}"
    )
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {"replay": [], "bare": [], "free": [], "fixed": []}
    # The replay process's own CPU seconds in the free model's replays: what the machine's load
    # does not inflate (the worker's and the server's are not counted).
    cpu: dict[str, list[float]] = {"free": [], "fixed": []}
    spent: dict[str, float] = {}

    def timed(target: Registry, ref: str, cpu_key: str | None = None) -> float:
        began, cpu_began = time.perf_counter(), time.process_time()
        summary = replay(target, [ref])
        seconds = time.perf_counter() - began
        if cpu_key:
            spent[cpu_key] = time.process_time() - cpu_began
        assert summary.versions[0].errored == 0, summary.versions[0]
        return seconds

    with mlserver(model, folder / "server") as server:
        bare_loop(server.model_url, rows, args.batch, args.concurrency)  # warm the server
        settings = SourceSettings(batch=args.batch, concurrency=args.concurrency)
        options = endpoint_options(server.model_url, settings, {})
        for repeat in range(args.repeats + 1):
            version = f"r{repeat}"
            registry.models.register(
                "bench",
                version,
                loader=server.model_url,
                loader_kind=LoaderKind.endpoint,
                options=options,
            )
            registry.models.register("free", version, loader=FLOOR_LOADER)
            one.models.register("free", version, loader=FLOOR_LOADER)
            measured = {
                "replay": timed(registry, f"bench@{version}"),
                "bare": bare_loop(server.model_url, rows, args.batch, args.concurrency),
                "free": timed(registry, f"free@{version}", "free"),
                "fixed": timed(one, f"free@{version}", "fixed"),
            }
            if repeat == 0:
                continue  # the first replay also starts the fork server: not counted
            for key, seconds in measured.items():
                times[key].append(seconds)
            for key, seconds in spent.items():
                cpu[key].append(seconds)
            print(
                f"  repeat {repeat}: replay {measured['replay']:.3f} s, bare loop "
                f"{measured['bare']:.3f} s, free model's replay {measured['free']:.3f} s "
                f"(of one pattern: {measured['fixed']:.3f} s)"
            )
    registry.close()
    one.close()
    load_after = os.getloadavg()
    median = {key: statistics.median(values) for key, values in times.items()}
    n = len(rows)
    ratio = median["replay"] / median["bare"]
    per_pattern_ms = (median["free"] - median["fixed"]) / max(n - 1, 1) * 1000
    cpu_median = {key: statistics.median(values) for key, values in cpu.items()}
    cpu_per_pattern_us = (cpu_median["free"] - cpu_median["fixed"]) / max(n - 1, 1) * 1e6
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"{when}, {platform.machine()} {platform.python_version()}, load average "
        f"{load_before[0]:.1f} -> {load_after[0]:.1f}:\n"
        f"  median replay {median['replay']:.3f} s ({n / median['replay']:,.0f} patterns/s), "
        f"bare loop {median['bare']:.3f} s ({n / median['bare']:,.0f}/s): "
        f"ratio {ratio:.2f} (target <= 1.2)\n"
        f"  floor: free model's replay {median['free']:.3f} s = fixed {median['fixed']:.3f} s "
        f"(one pattern) + {per_pattern_ms:.3f} ms a pattern; the free model's replay alone is "
        f"{median['free'] / median['bare']:.2f}x the bare loop, its fixed cost "
        f"{median['fixed'] / median['bare']:.2f}x\n"
        f"  the replay process's own CPU in it: {cpu_median['free']:.3f} s = "
        f"{cpu_median['fixed']:.3f} s + {cpu_per_pattern_us:.1f} us a pattern"
    )
    if args.json_out:
        document = {
            "benchmark": "endpoint_replay",
            "when": when,
            "machine": {
                "nproc": os.cpu_count(),
                "machine": platform.machine(),
                "python": platform.python_version(),
                "sqlite": sqlite3.sqlite_version,
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in load_after],
            },
            "parameters": {
                "patterns": n,
                "model": args.model,
                "batch": args.batch,
                "concurrency": args.concurrency,
                "repeats": args.repeats,
            },
            "seconds": {key: [round(x, 4) for x in values] for key, values in times.items()},
            "median_seconds": {key: round(value, 4) for key, value in median.items()},
            "ratio": round(ratio, 3),
            "target_ratio": 1.2,
            "free_per_pattern_ms": round(per_pattern_ms, 4),
            "free_cpu_seconds": {key: [round(x, 4) for x in v] for key, v in cpu.items()},
            "free_cpu_per_pattern_us": round(cpu_per_pattern_us, 2),
        }
        args.json_out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
