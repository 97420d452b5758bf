"""Cases read back: one shape for the queue, review, similarity and the report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import col, select

from problem_registry.errors import InvalidValue, NotFound
from problem_registry.store.registry import Registry
from problem_registry.store.tables import Pattern, PatternFile, TriageCase
from problem_registry.store.views import iso

T = TypeVar("T")


class CaseNotFound(NotFound):
    """A triage case id that the registry does not hold."""


@dataclass
class CaseView:
    id: int
    batch: int
    model: str
    predicted: str
    confidence: float | None
    scores: str | None
    rating: int | None
    correction: str | None
    sha256: str
    kind: str
    extension: str
    original_name: str
    fingerprint: str | None
    status: str
    decided_by: str | None
    decided_at: str | None
    reason: str
    pattern_id: int | None
    reasons: list[str] = field(default_factory=list)  # why it is queued (queue.rank)
    priority: float = 0.0
    answers: dict[str, str | None] = field(default_factory=dict)  # ref -> answer (disagreement)
    near: dict[str, Any] | None = None  # the nearest failing pattern, when close

    @property
    def file(self) -> str:
        return f"{self.sha256[:2]}/{self.sha256}.{self.extension}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "batch": self.batch,
            "version": self.model,
            "prediction": self.predicted,
            "confidence": self.confidence,
            "rating": self.rating,
            "correction": self.correction,
            "sha256": self.sha256,
            "kind": self.kind,
            "name": self.original_name,
            "status": self.status,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "reason": self.reason,
            "pattern_id": self.pattern_id,
            "reasons": self.reasons,
            "priority": round(self.priority, 4),
            "answers": self.answers,
            "near": self.near,
        }


def read_cases(
    registry: Registry,
    *,
    ids: Sequence[int] | None = None,
    status: str | None = None,
    model: str | None = None,
    batch: int | None = None,
) -> list[CaseView]:
    table = TriageCase.__table__  # type: ignore[attr-defined]
    query = sa.select(table).order_by(table.c.id)
    if ids is not None:
        query = query.where(table.c.id.in_(list(ids)))
    if status is not None:
        query = query.where(table.c.status == status)
    if model is not None:
        query = query.where(table.c.model == model)
    if batch is not None:
        query = query.where(table.c.batch_id == batch)
    with registry.reading() as session:
        rows = session.execute(query).mappings().all()
    return [
        CaseView(
            id=row["id"],
            batch=row["batch_id"],
            model=row["model"],
            predicted=row["predicted"],
            confidence=row["confidence"],
            scores=row["scores"],
            rating=row["rating"],
            correction=row["correction"],
            sha256=row["sha256"],
            kind=row["kind"],
            extension=row["extension"],
            original_name=row["original_name"],
            fingerprint=row["fingerprint"],
            status=row["status"],
            decided_by=row["decided_by"],
            decided_at=iso(row["decided_at"]),
            reason=row["reason"],
            pattern_id=row["pattern_id"],
        )
        for row in rows
    ]


def get_case(registry: Registry, ref: str | int) -> CaseView:
    text = str(ref).strip()
    if not (text.isascii() and text.isdigit()):
        raise InvalidValue(f"{ref!r} is not a case id; see `problem-registry triage list`")
    found = read_cases(registry, ids=[int(text)])
    if not found:
        raise CaseNotFound(f"no triage case {text}; see `problem-registry triage list`")
    return found[0]


CHUNK = 500  # values per IN list: SQLite caps bound parameters, a batch may hold 100,000 rows


def chunks(items: Sequence[T]) -> list[list[T]]:
    return [list(items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]


def pattern_contents(registry: Registry, shas: Sequence[str]) -> set[str]:
    """Which of these contents some pattern already uses."""
    found: set[str] = set()
    with registry.reading() as session:
        for chunk in chunks(list(dict.fromkeys(shas))):
            query = (
                select(PatternFile.sha256)
                .join(Pattern, col(Pattern.file_id) == PatternFile.id)
                .where(col(PatternFile.sha256).in_(chunk))
            )
            found.update(session.exec(query))
    return found
