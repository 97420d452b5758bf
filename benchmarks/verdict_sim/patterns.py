"""Pattern sets as testers pick them: 10-15 cases per problem, random or biased to hard cases.

Half the draws are random; the other half pick part of the positives (and sometimes a negative)
among cases a registering version got wrong, as a tester adds the cases a model failed. Positives
are 50-75% of a set, so both polarities are always present.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import Problem


@dataclass(frozen=True)
class PatternSet:
    rows: np.ndarray  # pool rows
    positive: np.ndarray  # bool per pattern
    hard: bool


def draw(
    problem: Problem, registering_wrong: np.ndarray, hard: bool, rng: np.random.Generator
) -> PatternSet:
    """One pattern set; ``registering_wrong``: per pool row, did the registering version fail."""
    n = int(rng.integers(10, 16))
    n_pos = round(n * rng.uniform(0.5, 0.75))
    chosen: list[np.ndarray] = []
    for want, is_pos in ((n_pos, True), (n - n_pos, False)):
        rows = problem.rows[problem.is_positive == is_pos]
        hard_share = (rng.uniform(0.3, 0.7) if is_pos else rng.uniform(0.0, 0.3)) if hard else 0.0
        k_hard = round(want * hard_share)
        failed = rows[registering_wrong[rows]]
        first = rng.choice(failed, size=min(k_hard, len(failed)), replace=False)
        rest = np.setdiff1d(rows, first)
        chosen.append(np.concatenate([first, rng.choice(rest, want - len(first), replace=False)]))
    rows = np.concatenate(chosen)
    positive = np.concatenate([np.ones(len(chosen[0]), bool), np.zeros(len(chosen[1]), bool)])
    return PatternSet(rows, positive, hard)
