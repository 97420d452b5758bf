"""Real model versions: ordinary retrains and targeted regressions, predictions cached in memory.

Every version is a scikit-learn MLPClassifier trained on the clean training digits under every
transformation. An ordinary retrain changes only the seed and a 90% subsample; a targeted
regression also mislabels a share of one problem's training slice (positive digits under its
transformation, relabelled as its negative digit), which raises that problem's population error
by an amount the share only roughly controls, so ground truth is measured, never assumed.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from .data import TRANSFORMS, Dataset, augmented


@dataclass(frozen=True)
class Recipe:
    """How to train one version; ``target`` None is an ordinary retrain."""

    name: str
    seed: int
    target: tuple[int, int, str] | None = None  # (positive digit, negative digit, transform)
    share: float = 0.0  # of the target slice's training cases mislabelled
    hidden: int = 48
    epochs: int = 40


@dataclass(frozen=True)
class Predictions:
    """Per pool row: was the answer right, and the probability given to the expected digit."""

    name: str
    recipe: Recipe
    correct: np.ndarray  # bool
    prob: np.ndarray  # float32


def _training_set(data: Dataset, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(recipe.seed)
    x, y, t = augmented(data.train_x, data.train_y, seed=3)
    keep = rng.random(len(y)) < 0.9
    y = y.copy()
    if recipe.target is not None:
        a, b, name = recipe.target
        slice_rows = np.flatnonzero((y == a) & (t == TRANSFORMS.index(name)))
        flip = slice_rows[rng.random(len(slice_rows)) < recipe.share]
        y[flip] = b
    return x[keep] / 16.0, y[keep]


def train(data: Dataset, recipe: Recipe) -> Predictions:
    """Fit one version and keep only its answers on the pool."""
    x, y = _training_set(data, recipe)
    model = MLPClassifier(
        hidden_layer_sizes=(recipe.hidden,),
        max_iter=recipe.epochs,
        random_state=recipe.seed,
        alpha=1e-3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    proba = model.predict_proba(data.pool_x / 16.0)
    column = np.searchsorted(model.classes_, data.pool_y)
    prob = proba[np.arange(len(proba)), column].astype(np.float32)
    correct = model.classes_[proba.argmax(axis=1)] == data.pool_y
    return Predictions(recipe.name, recipe, correct, prob)


_DATA: Dataset | None = None


def _init(data: Dataset) -> None:
    global _DATA
    _DATA = data
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _train_cached(recipe: Recipe) -> Predictions:
    assert _DATA is not None
    return train(_DATA, recipe)


def train_all(data: Dataset, recipes: list[Recipe], workers: int) -> dict[str, Predictions]:
    """Every recipe, on ``workers`` processes; the predictions stay in memory."""
    if workers <= 1:
        return {r.name: train(data, r) for r in recipes}
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(data,)) as pool:
        return {p.name: p for p in pool.map(_train_cached, recipes)}
