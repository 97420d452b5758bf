"""Confusion matrix and precision / recall / F1 over labels, per problem and model version.

Only patterns with an **exact** expectation take part: an any-of, forbidden or range expectation
has no single true label to put on a row. An errored result sits in the ``None`` ("error")
column: it lowers the recall of its true label and no label's precision. Scores follow
scikit-learn's ``precision_recall_fscore_support(..., zero_division=0)`` over the labels that
occur as expected or predicted, so they can be checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from problem_registry.enums import ExpectKind
from problem_registry.store.tables import ExpectedLabel, Pattern, Result

_pattern = Pattern.__table__  # type: ignore[attr-defined]
_result = Result.__table__  # type: ignore[attr-defined]
_label = ExpectedLabel.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LabelScores:
    precision: float
    recall: float
    f1: float
    support: int  # patterns expecting this label


@dataclass
class Confusion:
    """``cells[(expected, predicted)]`` = how many patterns; ``predicted`` None = errored."""

    cells: dict[tuple[str, str | None], int] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Confusion:
        return cls({})

    @property
    def labels(self) -> list[str]:
        found = {expected for expected, _ in self.cells}
        found |= {predicted for _, predicted in self.cells if predicted is not None}
        return sorted(found, key=label_order)

    @property
    def errored(self) -> int:
        return sum(n for (_, predicted), n in self.cells.items() if predicted is None)

    def scores(self) -> dict[str, LabelScores]:
        out = {}
        for label in self.labels:
            hits = self.cells.get((label, label), 0)
            predicted = sum(n for (_, p), n in self.cells.items() if p == label)
            support = sum(n for (e, _), n in self.cells.items() if e == label)
            precision = hits / predicted if predicted else 0.0
            recall = hits / support if support else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            out[label] = LabelScores(precision, recall, f1, support)
        return out

    @property
    def macro_f1(self) -> float | None:
        scores = self.scores()
        return sum(s.f1 for s in scores.values()) / len(scores) if scores else None

    def matrix(self) -> list[list[int]]:
        """Rows: expected labels; columns: the same labels, then one for errored results."""
        columns: list[str | None] = [*self.labels, None]
        return [[self.cells.get((row, column), 0) for column in columns] for row in self.labels]

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "matrix": self.matrix(),  # last column: errored
            "errored": self.errored,
            "per_label": {label: vars(s) for label, s in self.scores().items()},
            "macro_f1": self.macro_f1,
        }


def label_order(label: str) -> tuple[int, float, str]:
    """Numbers in numeric order ("2" before "10"), then text in text order."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def confusions(
    session: Session, version_ids: list[int], problem_ids: list[int] | None
) -> dict[tuple[int, int], Confusion]:
    """(problem id, version id) -> its confusion matrix, in one GROUP BY."""
    if not version_ids:
        return {}
    predicted = sa.case((_result.c.error.is_(None), _result.c.predicted), else_=None)
    query = (
        sa.select(
            _pattern.c.problem_id,
            _result.c.model_version_id,
            _label.c.label,
            predicted,
            sa.func.count(),
        )
        .select_from(
            _result.join(_pattern, _pattern.c.file_id == _result.c.file_id).join(
                _label, _label.c.pattern_id == _pattern.c.id
            )
        )
        .where(_pattern.c.expect_kind == ExpectKind.exact.value)
        .where(_result.c.model_version_id.in_(version_ids))
        .group_by(_pattern.c.problem_id, _result.c.model_version_id, _label.c.label, predicted)
    )
    if problem_ids is not None:
        query = query.where(_pattern.c.problem_id.in_(problem_ids))
    out: dict[tuple[int, int], Confusion] = {}
    for problem_id, version_id, expected, answer, count in session.execute(query):
        out.setdefault((problem_id, version_id), Confusion()).cells[(expected, answer)] = int(count)
    return out
