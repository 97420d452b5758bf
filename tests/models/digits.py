"""Real scikit-learn digit classifiers, trained on ``load_digits`` (it ships with scikit-learn).

Patterns are the 8x8 digits written as PNGs with each pixel value (0..16) times 15, so
:func:`features` recovers scikit-learn's own feature vector exactly and a test can compare the
registry's numbers with ``model.predict`` on the same rows. ``CALLS`` counts what the loaders do,
so a test can prove that a replay with nothing missing loads and predicts nothing.

Replay runs these models in worker processes (issue 16), so ``CALLS`` and ``FRAGILE`` live in
files, in a folder named by ``$DIGITS_STATE_DIR``: each test process sets it on first import, and
each model worker, given that process's environment when it loads a version, finds the same files.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from PIL import Image

PIXEL_SCALE = 15  # 16 * 15 = 240 fits a byte, and the division back is exact
STATE_DIR_ENV = "DIGITS_STATE_DIR"


def _state_dir() -> Path:
    """A test process (each xdist worker too) makes its own folder; a model worker, started by
    multiprocessing, uses the one of the test process that started it."""
    import multiprocessing

    if multiprocessing.parent_process() is None or STATE_DIR_ENV not in os.environ:
        os.environ[STATE_DIR_ENV] = tempfile.mkdtemp(prefix="digit-models-")
    return Path(os.environ[STATE_DIR_ENV])


class SharedCounter(Mapping[str, int]):
    """A Counter the test process and every model worker add to: one appended line per add."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, key: str, count: int = 1) -> None:
        # One small O_APPEND write per line: concurrent workers never interleave within a line.
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(f"{key} {count}\n")

    def _counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                key, _, count = line.rpartition(" ")
                counts[key] = counts.get(key, 0) + int(count)
        return counts

    def __getitem__(self, key: str) -> int:
        return self._counts().get(key, 0)  # a Counter's 0 for what never happened

    def __iter__(self) -> Iterator[str]:
        return iter(self._counts())

    def __len__(self) -> int:
        return len(self._counts())

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class SharedSet:
    """A set of bytes the test process fills and model workers read."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, item: bytes) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(item.hex() + "\n")

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, bytes) or not self.path.exists():
            return False
        return item.hex() in self.path.read_text(encoding="utf-8").split()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class SharedMap:
    """A dict of bytes -> any picklable output the test process fills and model workers read."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[bytes, Any]:
        if not self.path.exists():
            return {}
        loaded: dict[bytes, Any] = pickle.loads(self.path.read_bytes())
        return loaded

    def __setitem__(self, key: bytes, value: Any) -> None:
        data = self._read()
        data[key] = value
        self.path.write_bytes(pickle.dumps(data))

    def get(self, key: bytes, default: Any = None) -> Any:
        return self._read().get(key, default)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


_STATE = _state_dir()
CALLS = SharedCounter(_STATE / "calls")
FRAGILE = SharedSet(_STATE / "fragile")  # raw pixels of inputs `load_fragile` refuses
HOSTILE = SharedMap(_STATE / "hostile")  # raw pixels -> the output `load_hostile_scores` gives


def features(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=float).reshape(-1) / PIXEL_SCALE


def write_digit(path: Path, row: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (row.reshape(8, 8) * PIXEL_SCALE).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(path, format="PNG")
    return path


def load(artifact_path: str) -> Any:
    """The loader a version registers: a batch function over PIL images."""
    model = joblib.load(artifact_path)
    CALLS.add("loads")

    def predict(images: Sequence[Image.Image]) -> Any:
        CALLS.add("batches")
        CALLS.add("items", len(images))
        return model.predict(np.stack([features(image) for image in images]))

    return predict


def load_with_confidence(artifact_path: str) -> Any:
    """Answers as {"label", "confidence"} mappings, the richest output shape."""
    model = joblib.load(artifact_path)

    def predict(images: Sequence[Image.Image]) -> list[dict[str, Any]]:
        probabilities = model.predict_proba(np.stack([features(image) for image in images]))
        best = probabilities.argmax(axis=1)
        return [
            {"label": model.classes_[i], "confidence": float(row[i])}
            for i, row in zip(best, probabilities, strict=True)
        ]

    return predict


def load_with_scores(artifact_path: str) -> Any:
    """Answers as {"label", "scores"}: the label and every class's ``predict_proba``."""
    model = joblib.load(artifact_path)
    CALLS.add("loads")

    def predict(images: Sequence[Image.Image]) -> list[dict[str, Any]]:
        CALLS.add("batches")
        CALLS.add("items", len(images))
        probabilities = model.predict_proba(np.stack([features(image) for image in images]))
        return [
            {
                "label": model.classes_[row.argmax()],
                "scores": dict(zip(model.classes_, row, strict=True)),
            }
            for row in probabilities
        ]

    return predict


def load_noisy(artifact_path: str) -> Any:
    """A non-deterministic model: a real classifier on its inputs plus fresh noise at each call
    (as sampling or dropout at inference would), with or without scores per $NOISY_SCORES."""
    model = joblib.load(artifact_path)
    rng = np.random.default_rng(int(os.environ.get("NOISY_SEED", "0")))
    scored = os.environ.get("NOISY_SCORES") == "1"

    def predict(images: Sequence[Image.Image]) -> Any:
        CALLS.add("noisy_items", len(images))
        x = np.stack([features(image) for image in images])
        x = np.clip(x + rng.normal(0.0, 4.0, x.shape), 0.0, 16.0)
        if not scored:
            return model.predict(x)
        labels = model.classes_
        return [
            {"label": labels[row.argmax()], "scores": dict(zip(labels, row, strict=True))}
            for row in model.predict_proba(x)
        ]

    return predict


def load_hostile_scores(artifact_path: str) -> Any:
    """Like :func:`load_with_scores`, but an input listed in HOSTILE gets that output instead."""
    scored = load_with_scores(artifact_path)

    def predict(images: Sequence[Image.Image]) -> list[Any]:
        outputs = scored(images)
        return [
            HOSTILE.get(image.tobytes(), out) for image, out in zip(images, outputs, strict=True)
        ]

    return predict


def load_fragile(artifact_path: str) -> Any:
    """Raises on a whole batch whenever it holds an input listed in FRAGILE."""
    model = joblib.load(artifact_path)

    def predict(images: Sequence[Image.Image]) -> Any:
        CALLS.add("fragile_batches")
        for image in images:
            if image.tobytes() in FRAGILE:
                raise ValueError("cannot read this digit")
        return model.predict(np.stack([features(image) for image in images]))

    return predict


def load_wrong_count(artifact_path: str) -> Any:
    model = joblib.load(artifact_path)

    def predict(images: Sequence[Image.Image]) -> Any:
        return model.predict(np.stack([features(image) for image in images]))[:-1]

    return predict


SLOW_SECONDS_ENV = "DIGITS_SLOW_SECONDS"


def load_slow(artifact_path: str | None = None) -> Any:
    """Sleeps ``$DIGITS_SLOW_SECONDS`` (default 0.01) per batch: a replay long enough to kill.

    A toy rule in numpy (ink mod 10) rather than a scikit-learn model, so a process using it
    starts without importing scikit-learn."""
    import os
    import time

    pause = float(os.environ.get(SLOW_SECONDS_ENV, "0.01"))

    def predict(images: Sequence[Image.Image]) -> list[int]:
        time.sleep(pause)
        return [int(features(image).sum()) % 10 for image in images]

    return predict


def load_hanging(artifact_path: str | None = None) -> Any:
    """Never answers (a model stuck on a lock or a network call): for the batch timeout."""
    import time

    def predict(images: Sequence[Image.Image]) -> Any:
        CALLS.add("hanging_batches")
        time.sleep(3600)

    return predict


def load_broken(artifact_path: str | None = None) -> Any:
    raise RuntimeError("CUDA driver not found")


@dataclass(frozen=True)
class Trained:
    """Three genuinely different versions and the held-out digits the patterns come from."""

    artifacts: dict[str, Path]  # version -> joblib file
    models: dict[str, Any]
    test_x: np.ndarray
    test_y: np.ndarray


def train(folder: Path) -> Trained:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    digits = load_digits()
    x, y = digits.data, digits.target
    train_x, train_y, test_x, test_y = x[:1200], y[:1200], x[1200:], y[1200:]
    models = {
        "v1": GaussianNB().fit(train_x[:150], train_y[:150]),
        "v2": LogisticRegression(C=1e-4, max_iter=2000).fit(train_x[:300], train_y[:300]),
        "v3": make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=1000)).fit(
            train_x, train_y
        ),
    }
    folder.mkdir(parents=True, exist_ok=True)
    artifacts = {}
    for version, model in models.items():
        artifacts[version] = folder / f"digits-{version}.joblib"
        joblib.dump(model, artifacts[version])
    return Trained(artifacts, models, test_x, test_y)
