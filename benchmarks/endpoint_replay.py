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

The target is replay / bare <= 1.2 (the registry adds at most 20% to what serving costs)::

    python benchmarks/endpoint_replay.py --batch 32 --concurrency 4 --repeats 5
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
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
# A Python loader that answers at once (ink mod 10): replay's own cost, with no model to wait for.
FLOOR_LOADER = "tests.models.digits:load_slow"


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


def build(folder: Path, kind: str, limit: int | None = None) -> tuple[Registry, np.ndarray, object]:
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = (data.data * PIXEL_SCALE).astype(np.uint8)
    model = fit(kind, pixels[:1200].astype(float), data.target[:1200])
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
    args = parser.parse_args(argv)
    from tests.model_server import mlserver

    folder = Path(tempfile.mkdtemp(prefix="bench-endpoint-"))
    registry, rows, model = build(folder, args.model, args.patterns)
    print(
        f"{len(rows)} patterns, {args.model} model, batch {args.batch}, "
        f"concurrency {args.concurrency}"
    )
    os.environ["DIGITS_SLOW_SECONDS"] = "0"  # the floor's model answers at once
    replays: list[float] = []
    bares: list[float] = []
    floors: list[float] = []
    with mlserver(model, folder / "server") as server:
        bare_loop(server.model_url, rows, args.batch, args.concurrency)  # warm the server
        for repeat in range(args.repeats + 1):
            version = f"r{repeat}"
            from problem_registry.adapters.endpoint import endpoint_options
            from problem_registry.adapters.sources import SourceSettings

            settings = SourceSettings(batch=args.batch, concurrency=args.concurrency)
            registry.models.register(
                "bench",
                version,
                loader=server.model_url,
                loader_kind=LoaderKind.endpoint,
                options=endpoint_options(server.model_url, settings, {}),
            )
            began = time.perf_counter()
            summary = replay(registry, [f"bench@{version}"])
            seconds = time.perf_counter() - began
            assert summary.versions[0].errored == 0, summary.versions[0]
            bare = bare_loop(server.model_url, rows, args.batch, args.concurrency)
            registry.models.register("floor", version, loader=FLOOR_LOADER)
            began = time.perf_counter()
            replay(registry, [f"floor@{version}"])
            floor = time.perf_counter() - began
            if repeat == 0:
                continue  # the first replay also starts the fork server: not counted
            replays.append(seconds)
            bares.append(bare)
            floors.append(floor)
            print(
                f"  repeat {repeat}: replay {seconds:.3f} s, bare loop {bare:.3f} s, "
                f"replay of a free local model {floor:.3f} s"
            )
    registry.close()
    replay_s, bare_s = statistics.median(replays), statistics.median(bares)
    floor_s = statistics.median(floors)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"{when}, {platform.machine()} {platform.python_version()}: median replay "
        f"{replay_s:.3f} s ({len(rows) / replay_s:,.0f} patterns/s), bare loop {bare_s:.3f} s "
        f"({len(rows) / bare_s:,.0f}/s): ratio {replay_s / bare_s:.2f} (target <= 1.2); "
        f"replay of a free local model {floor_s:.3f} s, so the endpoint adds "
        f"{replay_s - floor_s:.3f} s to replay's own cost, {(replay_s - floor_s) / bare_s:.2f}x "
        "the bare loop"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
