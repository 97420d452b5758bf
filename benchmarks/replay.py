"""The replay workload: a cheap numpy model, its weights, and the floor any replay stands on.

The model is a linear classifier over an input's numbers (an 8x8 PNG's pixels, or a JSON input's
``features`` tiled to 64), plus an optional busy cost per input that stands in for a real model.
With ``ballast_mb`` each loaded version also holds that much memory, as a real model holds its
parameters, so peak memory shows how many versions a replay keeps loaded. It is written beside
the registry as ``bench_model.py`` and registered as ``bench_model:load``,
so replay imports it from the working directory exactly as it would import a user's
``my_models.py``. The registry itself comes from ``synthetic.build_registry`` (patterns through
the API, results left to replay).

(a) and (b), the floors, are measured here in-process: (a) the model's batched predict on inputs
already decoded, every version; (b) reading and decoding every pattern file once, plus (a).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "bench"
LABELS = 10

MODEL_MODULE = """
import json
import os
import time

import numpy as np

LOADS = 0


def features(inputs):
    rows = []
    for item in inputs:
        if isinstance(item, dict):  # a JSON pattern: {"features": [...]}
            rows.append(np.resize(np.asarray(item["features"], dtype=np.float32), 64))
        else:  # an 8x8 greyscale PIL image
            rows.append(np.asarray(item, dtype=np.float32).reshape(-1))
    return np.stack(rows)


def load(artifact_path):
    global LOADS
    LOADS += 1
    data = np.load(artifact_path)
    weights, cost = data["weights"], float(data["cost_s"])
    if "BENCH_MODEL_COST_MS" in os.environ:  # the same versions, with another busy cost
        cost = float(os.environ["BENCH_MODEL_COST_MS"]) / 1000
    # What a real model holds in memory (its parameters), touched so the pages are resident.
    ballast = np.ones(int(float(data["ballast_mb"]) * 2**20 / 8))

    # BENCH_MODEL_CPU=1: the busy cost is CPU time, not wall time, so processes sharing a core
    # each take their full cost (a real model's arithmetic does; benchmarks/jobs.py, issue 17).
    clock = time.process_time if os.environ.get("BENCH_MODEL_CPU") == "1" else time.perf_counter

    count_log = os.environ.get("BENCH_MODEL_COUNT")  # a line per batch: predictions counted

    def predict(inputs):
        if count_log:
            with open(count_log, "a", encoding="utf-8") as log:
                log.write(f"{len(inputs)}\\n")
        scores = features(inputs) @ weights
        if cost:
            deadline = clock() + cost * len(inputs)
            while clock() < deadline:
                pass
        return scores.argmax(axis=1)

    predict.parameters = ballast  # held as long as the model is
    return predict
"""


@dataclass(frozen=True)
class Floors:
    """(a) and (b) of one registry, with what they covered."""

    raw_predict_s: float
    decode_s: float
    predicted: int
    files: int

    @property
    def decode_plus_raw_s(self) -> float:
        return self.decode_s + self.raw_predict_s


def write_model(
    workdir: Path, versions: int, cost_ms: float, ballast_mb: float = 0.0, seed: int = 4
) -> list[Path]:
    """``bench_model.py`` and one weights file per version in ``workdir``; the weights' paths."""
    (workdir / "bench_model.py").write_text(MODEL_MODULE, encoding="utf-8")
    rng = np.random.default_rng(seed)
    paths = []
    for v in range(versions):
        path = workdir / f"weights-v{v}.npz"
        weights = rng.normal(size=(64, LABELS)).astype(np.float32)
        np.savez(
            path,
            weights=weights,
            cost_s=np.float64(cost_ms / 1000),
            ballast_mb=np.float64(ballast_mb),
        )
        paths.append(path)
    return paths


def build(
    workdir: Path,
    url: str,
    problems: int,
    versions: int,
    cost_ms: float,
    ballast_mb: float = 0.0,
) -> Any:
    """A registry of ``problems`` x 15 patterns and ``versions`` versions of the bench model,
    with no result stored: what a cold replay starts from. Returns ``SyntheticRegistry``."""
    from synthetic import build_registry

    weights = write_model(workdir, versions, cost_ms, ballast_mb)
    return build_registry(
        workdir,
        url,
        problems,
        versions,
        results=False,
        model=MODEL_NAME,
        loader="bench_model:load",
        artifact=lambda v: weights[v],
    )


def floors(registry: Any, workdir: Path, batch_size: int) -> Floors:
    """(a) and (b): decode every pattern file once, then every version predicts every input.

    Imports ``bench_model`` from ``workdir`` (the caller's working directory must be on
    ``sys.path``), loads each version outside the timed part, as a replay's model load is not
    part of the model's own speed either.
    """
    import bench_model  # type: ignore[import-not-found]

    from problem_registry.enums import PatternKind
    from problem_registry.store.content import decode

    views = {view.sha256: view for view in registry.patterns.list()}
    started = time.perf_counter()
    inputs = [
        decode(registry.store.read(sha, view.file.rsplit(".", 1)[1]), PatternKind(view.kind))
        for sha, view in sorted(views.items())
    ]
    decoding = time.perf_counter() - started
    models = [bench_model.load(v.artifact_path) for v in registry.models.list(MODEL_NAME)]
    started = time.perf_counter()
    predicted = 0
    for model in models:
        for start in range(0, len(inputs), batch_size):
            predicted += len(model(inputs[start : start + batch_size]))
    return Floors(time.perf_counter() - started, decoding, predicted, len(inputs))


@dataclass(frozen=True)
class ColdSetup:
    """A built registry with no result, its empty copy for each cold replay, and its floors."""

    folder: Path
    empty: Path  # copied afresh for every cold replay
    floors: Floors
    registry: Any  # open: the caller closes it (``floors`` may be measured again meanwhile)


def cold_setup(
    prefix: str, problems: int, versions: int, cost_ms: float, batch_size: int
) -> ColdSetup:
    """What ``cold_replay.py`` and ``jobs.py`` both start from: a fresh folder, made the working
    directory (``bench_model`` is imported from it, as replay does) and put on ``sys.path``, the
    registry built there, an empty copy, and (a), (b) measured once."""
    from measure import copy_sqlite

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    database = folder / "registry.db"
    built = build(folder, f"sqlite:///{database}", problems, versions, cost_ms)
    empty = copy_sqlite(database, folder / "empty.db")
    measured = floors(built.registry, folder, batch_size)
    return ColdSetup(folder, empty, measured, built.registry)
