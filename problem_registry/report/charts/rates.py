"""Problems x versions as numbers: the error-rate matrix several charts draw.

Metric rows become a problems x versions array (NaN where nothing was answered), from which
the charts read which versions have no result at all and, when there are too many problems to
colour or to draw, which ones a lead must still see: those that got worse at the last version,
then the worst. Plain numpy, no drawing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from problem_registry.report.charts.axis import _Axis
from problem_registry.verdicts.metrics import ProblemVersionMetrics


def _problems_in_order(rows: Sequence[ProblemVersionMetrics]) -> list[str]:
    return list(dict.fromkeys(row.problem for row in rows))


def _rate_matrix(
    rows: Sequence[ProblemVersionMetrics], problems: list[str], axis: _Axis
) -> np.ndarray:
    """problems x versions array of error rates, NaN where nothing was answered."""
    matrix = np.full((len(problems), axis.size), np.nan)
    where = {slug: i for i, slug in enumerate(problems)}
    index = axis.index()
    for row in rows:
        column = index.get((row.model, row.version))
        if column is None or row.problem not in where:
            continue
        if row.error_rate is not None:
            matrix[where[row.problem], column] = row.error_rate
    return matrix


def _unanswered_columns(matrix: np.ndarray) -> list[int]:
    if matrix.size == 0:
        return []
    return [int(j) for j in np.flatnonzero(~np.isfinite(matrix).any(axis=0))]


def _telling(problems: list[str], matrix: np.ndarray, count: int) -> list[str]:
    """The problems a lead must see: worse at the last version first, then the worst ones."""
    last = np.full(len(problems), np.nan)
    change = np.zeros(len(problems))
    for i, rates in enumerate(matrix):
        finite = rates[np.isfinite(rates)]
        if finite.size:
            last[i] = finite[-1]
        if finite.size > 1:
            change[i] = finite[-1] - finite[-2]
    worse = [i for i in np.argsort(-change, kind="stable") if change[i] > 0][: max(1, count // 2)]
    ranked = [i for i in np.argsort(-np.nan_to_num(last, nan=-1), kind="stable") if i not in worse]
    picked = (worse + ranked)[:count]
    return [problems[i] for i in picked]
