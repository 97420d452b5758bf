"""A pattern's expectation to and from its rows: ``pattern``'s expect_* columns and its labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from problem_registry.enums import ExpectKind
from problem_registry.expectations import Expectation
from problem_registry.store.tables import ExpectedLabel, Pattern


def expectation_of(pattern: Pattern | sa.Row[Any], labels: Sequence[str]) -> Expectation:
    """A pattern's expectation from its row (a mapped :class:`Pattern` or a row of its columns)."""
    return expectation_from(pattern.expect_kind, pattern.expect_min, pattern.expect_max, labels)


_KINDS = {kind.value: kind for kind in ExpectKind}


def expectation_from(
    kind: str, low: float | None, high: float | None, labels: Sequence[str]
) -> Expectation:
    """A pattern's expectation from its stored columns and labels."""
    expect = _KINDS.get(kind) or ExpectKind(kind)  # a dict: enum lookups were 15 k calls a gate
    if expect is ExpectKind.range:
        return Expectation(expect, (), low, high)
    return Expectation(expect, tuple(sorted(labels)))


def expectation_columns(expectation: Expectation) -> dict[str, Any]:
    return {
        "expect_kind": expectation.kind.value,
        "expect_min": expectation.low,
        "expect_max": expectation.high,
    }


def write_labels(session: Session, pattern_id: int | None, expectation: Expectation) -> None:
    session.add_all(
        ExpectedLabel(pattern_id=pattern_id, label=label) for label in expectation.labels
    )
