"""Digit problems with hundreds of cases each, from data that ships with scikit-learn.

A problem is a pair of digits seen through one transformation (shifted, faint, noisy, thick,
blurred or clean): its positive cases are held-out digits of the first class, its negative ones
(the near-miss contrast) of the second. Each transformation comes in two variants (without and
with mild noise), so a problem's population holds about 360 held-out cases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

TRANSFORMS = (
    "clean",
    "shift_l",
    "shift_r",
    "shift_u",
    "shift_d",
    "faint",
    "noise",
    "thick",
    "blur",
)
PAIRS = (
    (1, 8), (3, 8), (3, 5), (5, 9), (7, 9), (4, 9), (8, 9), (1, 7),
    (2, 8), (3, 9), (5, 6), (0, 6), (4, 7), (2, 3), (1, 4),
)  # fmt: skip
VARIANTS = 2


@dataclass(frozen=True)
class Problem:
    """A problem: positives are ``positive`` digits under ``transform``, negatives ``negative``."""

    name: str
    positive: int
    negative: int
    transform: str
    rows: np.ndarray  # indices into the pool (the problem's population)
    is_positive: np.ndarray  # per row of ``rows``


@dataclass(frozen=True)
class Dataset:
    train_x: np.ndarray  # clean training digits, images flattened
    train_y: np.ndarray
    pool_x: np.ndarray  # held-out digits under every transformation and variant
    pool_y: np.ndarray
    pool_transform: np.ndarray  # index into TRANSFORMS
    problems: list[Problem]


def transform(images: np.ndarray, name: str, variant: int, seed: int) -> np.ndarray:
    """``images``: (k, 8, 8) in [0, 16]; a deterministic transformation, then optional noise."""
    x = images.astype(float)
    shifts = {"shift_l": (0, -1), "shift_r": (0, 1), "shift_u": (-1, 0), "shift_d": (1, 0)}
    if name in shifts:
        x = ndimage.shift(x, (0, *shifts[name]), order=0, mode="constant")
    elif name == "faint":
        x = x * 0.45
    elif name == "noise":
        x = x + np.random.default_rng(seed + 17).normal(0, 3.0, x.shape)
    elif name == "thick":
        x = ndimage.grey_dilation(x, size=(1, 2, 2))
    elif name == "blur":
        x = ndimage.gaussian_filter(x, sigma=(0, 0.9, 0.9)) * 1.4
    if variant:
        x = x + np.random.default_rng(seed + 1000 * variant).normal(0, 1.0, x.shape)
    return np.clip(x, 0, 16).reshape(len(x), -1)


def augmented(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every transformation and variant of ``x`` (flattened 8x8): rows, labels, transform index."""
    images = x.reshape(-1, 8, 8)
    xs, ys, ts = [], [], []
    for t, name in enumerate(TRANSFORMS):
        for variant in range(VARIANTS):
            xs.append(transform(images, name, variant, seed + 31 * t))
            ys.append(y)
            ts.append(np.full(len(y), t))
    return np.vstack(xs), np.concatenate(ys), np.concatenate(ts)


def build(seed: int, pairs: int = len(PAIRS), transforms: int = len(TRANSFORMS)) -> Dataset:
    """The split, the held-out pool and the problems (``pairs`` x ``transforms`` of them)."""
    digits = load_digits()
    train_x, test_x, train_y, test_y = train_test_split(
        digits.data, digits.target, test_size=0.5, stratify=digits.target, random_state=seed
    )
    pool_x, pool_y, pool_t = augmented(test_x, test_y, seed + 7)
    problems = []
    for a, b in PAIRS[:pairs]:
        for t, name in enumerate(TRANSFORMS[:transforms]):
            rows = np.flatnonzero((pool_t == t) & np.isin(pool_y, (a, b)))
            problems.append(Problem(f"{a}-vs-{b}/{name}", a, b, name, rows, pool_y[rows] == a))
    return Dataset(train_x, train_y, pool_x, pool_y, pool_t, problems)
