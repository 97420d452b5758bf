"""Sign-offs: a lead accepts a problem at a version, and the numbers of that moment are kept.

"80% on problem X, accepted" (issue 19, item 10): who signed (the same user as ``pattern add``
records), which version, its error rate, wrong/answered and 95% interval then, a note, and when.
The numbers are computed by the caller (``verdicts.signoffs``: the store does not score) and kept
as they were signed. A later version of the same model that is confidently worse than the signed
one on the problem fails its gate (``verdicts.gates``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from problem_registry.refs import ModelRef, format_ref
from problem_registry.store.model_versions import version_ids
from problem_registry.store.problems import find_problem
from problem_registry.store.tables import ModelVersion, Problem, SignOff, stored_id
from problem_registry.store.views import iso
from problem_registry.text import recording, storable, user_name

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry

_SIGNOFF = SignOff.__table__  # type: ignore[attr-defined]
_VERSION = ModelVersion.__table__  # type: ignore[attr-defined]
_PROBLEM = Problem.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SignedNumbers:
    """A problem's numbers on a version, as they are signed."""

    answered: int
    wrong: int
    error_rate: float | None
    interval: tuple[float, float] | None


@dataclass(frozen=True)
class SignOffView:
    id: int
    problem: str
    model: str
    version: str
    version_id: int  # registration order: a later candidate has a larger id
    signed_by: str
    signed_at: str | None
    note: str
    answered: int
    wrong: int
    error_rate: float | None
    interval: tuple[float, float] | None

    @property
    def ref(self) -> str:
        return format_ref(self.model, self.version)

    @property
    def numbers(self) -> str:
        """``2 of 10 wrong (20%, 95% 6-51%)``."""
        if not self.answered or self.error_rate is None:
            return "no answers"
        text = f"{self.wrong} of {self.answered} wrong ({self.error_rate:.0%}"
        if self.interval is not None:
            text += f", 95% {self.interval[0]:.0%}-{self.interval[1]:.0%}"
        return text + ")"

    def describe(self) -> str:
        """One line: ``digits@v3 signed off by lead on 2026-12-07: 2 of 10 wrong (...); note``."""
        day = (self.signed_at or "")[:10]
        note = f": {self.note}" if self.note else ""
        return f"{self.ref} signed off by {self.signed_by} on {day}, {self.numbers}{note}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ref"] = self.ref
        data["interval"] = list(self.interval) if self.interval is not None else None
        del data["version_id"]
        return data


def record_signoff(
    registry: Registry, slug: str, ref: ModelRef, numbers: SignedNumbers, *, note: str = ""
) -> SignOffView:
    """Store a sign-off of ``slug`` at ``ref`` with the numbers of this moment."""
    storable(note, "the note")
    signed_by = user_name(registry.user)
    recording(signed_by)
    low, high = numbers.interval if numbers.interval is not None else (None, None)
    with registry.writing() as session:
        problem_id = stored_id(find_problem(session, slug))
        version_id = version_ids(session, [ref])[ref]
        row = SignOff(
            problem_id=problem_id,
            model_version_id=version_id,
            signed_by=signed_by,
            note=note,
            answered=numbers.answered,
            wrong=numbers.wrong,
            error_rate=numbers.error_rate,
            interval_low=low,
            interval_high=high,
        )
        session.add(row)
        session.flush()
        new_id = stored_id(row)
    return next(view for view in signoffs(registry, [slug]) if view.id == new_id)


def signoffs(registry: Registry, problems: Sequence[str] | None = None) -> list[SignOffView]:
    """Sign-offs by problem slug, then in the order they were made (the latest last)."""
    query = (
        sa.select(
            _SIGNOFF.c.id,
            _PROBLEM.c.slug,
            _VERSION.c.name,
            _VERSION.c.version,
            _VERSION.c.id,
            _SIGNOFF.c.signed_by,
            _SIGNOFF.c.signed_at,
            _SIGNOFF.c.note,
            _SIGNOFF.c.answered,
            _SIGNOFF.c.wrong,
            _SIGNOFF.c.error_rate,
            _SIGNOFF.c.interval_low,
            _SIGNOFF.c.interval_high,
        )
        .join(_PROBLEM, _PROBLEM.c.id == _SIGNOFF.c.problem_id)
        .join(_VERSION, _VERSION.c.id == _SIGNOFF.c.model_version_id)
        .order_by(_PROBLEM.c.slug, _SIGNOFF.c.id)
    )
    if problems is not None:
        query = query.where(_PROBLEM.c.slug.in_(list(problems)))
    with registry.reading() as session:
        rows = session.execute(query).all()
    return [
        SignOffView(
            id=row[0],
            problem=row[1],
            model=row[2],
            version=row[3],
            version_id=row[4],
            signed_by=row[5],
            signed_at=iso(row[6]),
            note=row[7],
            answered=row[8],
            wrong=row[9],
            error_rate=row[10],
            interval=(row[11], row[12]) if row[11] is not None and row[12] is not None else None,
        )
        for row in rows
    ]
