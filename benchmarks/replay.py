"""How close is `replay` to the model's own speed? Measured side by side, in one run.

Builds a throwaway registry (P problems x 15 small PNG patterns, M versions of a numpy linear
classifier over the 8x8 pixels, each version its own weights file), then times:

  (a) the raw model: its batched predict on the already-decoded inputs, every version;
  (b) reading + decoding the pattern files, plus (a): what any replay must at least do;
  (c) a cold `replay` of every version: load, decode, predict, store every result;
  (d) a warm `replay`: nothing missing, so no model may load and no file be read.

and prints the ratios. Run from anywhere::

    python benchmarks/replay.py                        # small defaults, a few seconds
    python benchmarks/replay.py --problems 100 --versions 20 --cost-ms 0.2
    python benchmarks/replay.py --url postgresql+psycopg://...   # a fresh, empty database

``--cost-ms`` adds a fixed busy cost per input to the model (a stand-in for a real one).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

PATTERNS_PER_PROBLEM = 15
LABELS = 10

# The loader, written beside the registry: replay imports it from the working directory, exactly
# as it would import a user's my_models.py.
MODEL_MODULE = """
import time
import numpy as np

LOADS = 0


def features(images):
    return np.stack([np.asarray(image, dtype=np.float32).reshape(-1) for image in images])


def load(artifact_path):
    global LOADS
    LOADS += 1
    data = np.load(artifact_path)
    weights, cost = data["weights"], float(data["cost_s"])

    def predict(images):
        scores = features(images) @ weights
        if cost:
            deadline = time.perf_counter() + cost * len(images)
            while time.perf_counter() < deadline:
                pass
        return scores.argmax(axis=1)

    return predict
"""


def build(workdir: Path, url: str, problems: int, versions: int, cost_ms: float) -> object:
    from problem_registry.expectations import Expectation
    from problem_registry.patterns import NewPattern
    from problem_registry.registry import Registry

    (workdir / "bench_model.py").write_text(MODEL_MODULE, encoding="utf-8")
    registry = Registry.open(url=url, patterns_dir=workdir / "patterns", user="bench")
    rng = np.random.default_rng(4)
    inputs = workdir / "inputs"
    inputs.mkdir()
    for p in range(problems):
        slug = f"problem-{p:04d}"
        registry.problems.add(slug, max_error_rate=0.5)
        new = []
        for i in range(PATTERNS_PER_PROBLEM):
            path = inputs / f"{slug}-{i:02d}.png"
            pixels = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(path, format="PNG")
            new.append(NewPattern(path, Expectation.exact(str(int(rng.integers(LABELS))))))
        registry.patterns.add(slug, new)
    for v in range(versions):
        artifact = workdir / f"weights-v{v}.npz"
        weights = rng.normal(size=(64, LABELS)).astype(np.float32)
        np.savez(artifact, weights=weights, cost_s=np.float64(cost_ms / 1000))
        registry.models.register("bench", f"v{v}", loader="bench_model:load", artifact=artifact)
    return registry


def raw_predict(registry: object, batch_size: int) -> tuple[float, float, int]:
    """(a) and (b): the floor any replay stands on."""
    import bench_model  # type: ignore[import-not-found]

    from problem_registry.files import decode
    from problem_registry.models import PatternKind

    views = {view.sha256: view for view in registry.patterns.list()}  # type: ignore[attr-defined]
    started = time.perf_counter()
    images = [
        decode(registry.store.read(sha, view.file.rsplit(".", 1)[1]), PatternKind.image)  # type: ignore[attr-defined]
        for sha, view in sorted(views.items())
    ]
    decoding = time.perf_counter() - started
    models = [
        bench_model.load(v.artifact_path)
        for v in registry.models.list("bench")  # type: ignore[attr-defined]
    ]
    bench_model.LOADS = 0
    started = time.perf_counter()
    predicted = 0
    for model in models:
        for start in range(0, len(images), batch_size):
            predicted += len(model(images[start : start + batch_size]))
    return time.perf_counter() - started, decoding, predicted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--cost-ms", type=float, default=0.0, help="busy time per input")
    parser.add_argument("--url", help="an empty database to use (default: a temporary SQLite)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    url = args.url or f"sqlite:///{workdir / 'registry.db'}"
    previous = Path.cwd()
    os.chdir(workdir)  # replay imports bench_model from the working directory
    sys.path.insert(0, str(workdir))
    try:
        from problem_registry.replay import replay

        started = time.perf_counter()
        registry = build(workdir, url, args.problems, args.versions, args.cost_ms)
        setup = time.perf_counter() - started
        raw, decoding, predicted = raw_predict(registry, args.batch_size)

        import bench_model  # type: ignore[import-not-found]

        started = time.perf_counter()
        cold = replay(registry, batch_size=args.batch_size, trigger="benchmark")  # type: ignore[arg-type]
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        warm = replay(registry, batch_size=args.batch_size, trigger="benchmark")  # type: ignore[arg-type]
        warm_s = time.perf_counter() - started
        assert cold.predicted == predicted and warm.predicted == 0
        results = {
            "problems": args.problems,
            "patterns": args.problems * PATTERNS_PER_PROBLEM,
            "versions": args.versions,
            "results": cold.predicted,
            "batch_size": args.batch_size,
            "cost_ms_per_input": args.cost_ms,
            "backend": url.split(":", 1)[0],
            "setup_s": setup,
            "a_raw_predict_s": raw,
            "b_decode_plus_raw_s": decoding + raw,
            "c_cold_replay_s": cold_s,
            "d_warm_replay_s": warm_s,
            "cold_over_raw": cold_s / raw if raw else None,
            "cold_over_decode_plus_raw": cold_s / (decoding + raw),
            "overhead_us_per_result": (cold_s - decoding - raw) / cold.predicted * 1e6,
            "models_loaded_by_warm_replay": bench_model.LOADS - args.versions,
        }
        registry.close()  # type: ignore[attr-defined]
    finally:
        os.chdir(previous)
        shutil.rmtree(workdir, ignore_errors=True)
    _print(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def _print(r: dict[str, object]) -> None:
    print(
        f"{r['problems']} problems x {PATTERNS_PER_PROBLEM} patterns = {r['patterns']} files, "
        f"{r['versions']} versions, {r['results']} results, batch {r['batch_size']}, "
        f"{r['backend']}, model cost {r['cost_ms_per_input']} ms/input"
    )
    print(f"  (a) raw batched predict, decoded inputs  {r['a_raw_predict_s']:8.3f} s")
    print(f"  (b) read + decode files, plus (a)        {r['b_decode_plus_raw_s']:8.3f} s")
    print(
        f"  (c) cold replay, every result stored     {r['c_cold_replay_s']:8.3f} s"
        f"   = {r['cold_over_decode_plus_raw']:.2f} x (b), {r['cold_over_raw']:.1f} x (a)"
    )
    print(
        f"  (d) warm replay, nothing missing         {r['d_warm_replay_s']:8.3f} s"
        f"   models loaded: {r['models_loaded_by_warm_replay']}"
    )
    print(f"  replay's own cost per stored result: {r['overhead_us_per_result']:.0f} us")


if __name__ == "__main__":
    sys.exit(main())
