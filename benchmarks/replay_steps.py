"""What each step of an endpoint replay costs per pattern, alone, beside the bare client's share.

``benchmarks/endpoint_replay.py`` times whole replays against a bare client loop on a shared
machine, where everything waits on everything. This times each step replay takes for one pattern
(single-threaded, the best of ``--repeats``, on ``--patterns`` digits as 8x8 PNGs), so the cost of
a step can be told from the machine's noise: the replay process's (reading and hash-checking,
decoding, pickling for the worker, reading answers, making and storing rows), the worker's
(unpickling, the endpoint adapter's rows, request and answers) and, among them, what the bare
client loop does too (the request body and parsing the answer)::

    python benchmarks/replay_steps.py --json-out steps.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import platform
import sqlite3
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from problem_registry.adapters.endpoint import _array, _tensor  # noqa: E402
from problem_registry.adapters.tensors import answers_from_outputs, input_row  # noqa: E402
from problem_registry.enums import PatternKind  # noqa: E402
from problem_registry.replay.results import COLUMNS, result_row  # noqa: E402
from problem_registry.replay.worker_main import _plain  # noqa: E402
from problem_registry.replay.workers import _restricted_loads  # noqa: E402
from problem_registry.store.content import (  # noqa: E402
    InspectedContent,
    PatternStore,
    decode,
    sha256_of,
)


def steps(folder: Path, count: int) -> dict[str, tuple[str, Callable[[], Any]]]:
    """Each step as (who does it, a call doing it for ``count`` patterns)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = (load_digits().data[:count] * 15).astype(np.uint8)
    store = PatternStore(folder / "patterns")
    hashes = []
    for row in pixels:
        buffer = io.BytesIO()
        Image.fromarray(row.reshape(8, 8), mode="L").save(buffer, format="PNG")
        data = buffer.getvalue()
        store.put(InspectedContent(data, sha256_of(data), PatternKind.image, "png"))
        hashes.append(sha256_of(data))
    contents = [store.read(sha, "png") for sha in hashes]
    images = [decode(data, PatternKind.image) for data in contents]
    payload = pickle.dumps(images, protocol=pickle.HIGHEST_PROTOCOL)
    rows = np.stack([input_row(image, [64], "float32", None) for image in images])
    probabilities = np.random.default_rng(0).dirichlet(np.ones(10), size=count)
    outputs = [
        {"name": "predict", "shape": [count, 1], "datatype": "INT64", "data": list(range(count))},
        {
            "name": "predict_proba",
            "shape": [count, 10],
            "datatype": "FP64",
            "data": probabilities.reshape(-1).tolist(),
        },
    ]
    reply = json.dumps({"outputs": outputs}).encode()
    options = {"input": "pixels", "outputs": ["predict", "predict_proba"]}

    def answered() -> list[Any]:
        named = {o["name"]: _array(o) for o in json.loads(reply)["outputs"]}
        return answers_from_outputs(named, count, options)

    def body() -> str:
        request = {
            "inputs": [_tensor("pixels", rows)],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        }
        return json.dumps(request, separators=(",", ":"))

    answers = answered()
    plain = [_plain(answer, 0) for answer in answers]
    sent_back = pickle.dumps(("outputs", plain, {}, 0.1), protocol=pickle.HIGHEST_PROTOCOL)
    database = sqlite3.connect(folder / "results.db", isolation_level=None)
    database.execute("PRAGMA journal_mode = WAL")
    database.execute("PRAGMA synchronous = NORMAL")
    database.execute(
        f"CREATE TABLE result ({', '.join(COLUMNS)}, PRIMARY KEY (model_version_id, file_id))"
    )
    stored = [result_row(1, i, answer, 0.1, 1) for i, answer in enumerate(plain)]
    insert = f"INSERT INTO result VALUES ({', '.join('?' for _ in COLUMNS)}) ON CONFLICT DO NOTHING"
    version = iter(range(2, 10**9))

    def store_rows() -> None:
        number = next(version)
        database.execute("BEGIN IMMEDIATE")
        database.executemany(insert, [(number, *row[1:]) for row in stored])
        database.execute("COMMIT")

    return {
        "read + sha256 check": ("replay", lambda: [store.read(sha, "png") for sha in hashes]),
        "PNG decode (Pillow)": (
            "replay",
            lambda: [decode(data, PatternKind.image, "png") for data in contents],
        ),
        "pickle for the worker": (
            "replay",
            lambda: pickle.dumps(images, protocol=pickle.HIGHEST_PROTOCOL),
        ),
        "unpickle the inputs": ("worker", lambda: pickle.loads(payload)),
        "image -> float32 row": (
            "worker",
            lambda: [input_row(image, [64], "float32", None) for image in images],
        ),
        "v2 request body (tolist, JSON)": ("worker, bare loop", body),
        "parse the answer (JSON)": ("worker, bare loop", lambda: json.loads(reply)),
        "answer tensors -> answers": ("worker", answered),
        "answers as plain data": ("worker", lambda: [_plain(a, 0) for a in answers]),
        "unpickle the answers (restricted)": ("replay", lambda: _restricted_loads(sent_back)),
        "result rows (checks, scores JSON)": (
            "replay",
            lambda: [result_row(1, i, a, 0.1, 1) for i, a in enumerate(plain)],
        ),
        "SQLite insert + commit": ("replay", store_rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-steps-"))
    load = os.getloadavg()
    micros: dict[str, float] = {}
    who: dict[str, str] = {}
    for name, (side, call) in steps(folder, args.patterns).items():
        best = min(timeit.repeat(call, number=3, repeat=args.repeats)) / 3
        micros[name] = round(best / args.patterns * 1e6, 2)
        who[name] = side
        print(f"{micros[name]:8.2f} us  {side:18} {name}")
    totals = {
        side: round(sum(m for n, m in micros.items() if side in who[n]), 2)
        for side in ("replay", "worker", "bare loop")
    }
    print(
        f"per pattern: replay process {totals['replay']:.1f} us, worker {totals['worker']:.1f} us "
        f"(of which the bare loop also does {totals['bare loop']:.1f} us); load average "
        f"{load[0]:.1f}, {platform.machine()} {platform.python_version()}"
    )
    if args.json_out:
        document = {
            "benchmark": "replay_steps",
            "machine": {
                "nproc": os.cpu_count(),
                "python": platform.python_version(),
                "load_average": [round(x, 2) for x in load],
            },
            "parameters": {"patterns": args.patterns, "repeats": args.repeats},
            "us_per_pattern": micros,
            "who": who,
            "totals_us": totals,
        }
        args.json_out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
