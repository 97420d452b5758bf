"""A tester's decision on cases: ``accept`` turns them into patterns of a problem, ``discard``
says why not; both are recorded on the case, so it is never proposed again.

An accepted case goes through the one way patterns are added
(:meth:`~problem_registry.store.patterns.Patterns.add`, all or nothing), with source
``production`` and a note holding the production answer and who accepted it; ``added_by`` is
the accepter too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from problem_registry.enums import Polarity, Source
from problem_registry.errors import InvalidValue
from problem_registry.expectations import Expectation
from problem_registry.plain_files import write_atomically
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from problem_registry.store.tables import Pattern, Problem, TriageCase, utcnow
from problem_registry.store.views import PatternView
from problem_registry.text import storable, user_name
from problem_registry.triage.cases import CaseView, get_case
from problem_registry.triage.ingest import read_content


@dataclass(frozen=True)
class Accepted:
    cases: list[CaseView]
    patterns: list[PatternView]

    def to_dict(self) -> dict[str, object]:
        return {
            "cases": [c.to_dict() for c in self.cases],
            "patterns": [p.model_dump(mode="json") for p in self.patterns],
        }


def accept(
    registry: Registry,
    refs: Sequence[str | int],
    problem: str,
    expectation: Expectation,
    *,
    polarity: Polarity = Polarity.positive,
    note: str = "",
    open_title: str | None = None,
) -> Accepted:
    """Add the cases' inputs to ``problem`` as patterns (all or none); ``open_title`` first
    opens the problem, for a group of cases that shows a new weakness."""
    storable(note, "the note")
    cases = [_undecided(registry, ref) for ref in dict.fromkeys(str(r) for r in refs)]
    who = user_name(registry.user)
    if open_title is not None:
        registry.problems.add(problem, title=open_title)
    else:
        registry.problems.get(problem)  # an unknown slug is refused before any file is written
    try:
        with tempfile.TemporaryDirectory(prefix="problem-registry-accept-") as folder:
            new = []
            for case in cases:
                path = Path(folder) / str(case.id) / _name(case)
                write_atomically(path, read_content(registry, case.sha256, case.extension))
                new.append(
                    NewPattern(
                        path, expectation, polarity, Source.production, _note(case, who, note)
                    )
                )
            added = registry.patterns.add(problem, new).added
    except BaseException:
        if open_title is not None:  # all or none: the problem opened for them goes too
            _remove_if_empty(registry, problem)
        raise
    by_sha = {view.sha256: view for view in added}
    now = utcnow()
    with registry.writing() as session:
        for case in cases:
            view = by_sha[case.sha256]
            session.execute(
                sa.update(TriageCase)
                .where(TriageCase.id == case.id)  # type: ignore[arg-type]
                .values(
                    status="accepted",
                    decided_by=who,
                    decided_at=now,
                    pattern_id=view.id,
                    reason=f"accepted into {problem} as pattern {view.id}",
                )
            )
    return Accepted([get_case(registry, c.id) for c in cases], added)


def discard(registry: Registry, ref: str | int, reason: str) -> CaseView:
    """Record that a case is not worth a pattern, and why; it leaves the queue for good."""
    reason = storable(reason.strip(), "the reason", max_length=2000)
    if not reason:
        raise InvalidValue("give --reason: why this case is not worth a pattern")
    case = _undecided(registry, ref)
    with registry.writing() as session:
        session.execute(
            sa.update(TriageCase)
            .where(TriageCase.id == case.id)  # type: ignore[arg-type]
            .values(
                status="discarded",
                decided_by=user_name(registry.user),
                decided_at=utcnow(),
                reason=reason,
            )
        )
    return get_case(registry, case.id)


def _remove_if_empty(registry: Registry, slug: str) -> None:
    """Delete the problem ``slug`` if no pattern was added to it (an ``accept --open`` refused)."""
    problems, patterns = Problem.__table__, Pattern.__table__  # type: ignore[attr-defined]
    with registry.writing() as session:
        problem_id = session.execute(
            sa.select(problems.c.id).where(problems.c.slug == slug)
        ).scalar()
        used = sa.select(sa.func.count()).where(patterns.c.problem_id == problem_id)
        if problem_id is not None and not session.execute(used).scalar():
            session.execute(sa.delete(problems).where(problems.c.id == problem_id))


def _undecided(registry: Registry, ref: str | int) -> CaseView:
    case = get_case(registry, ref)
    if case.status != "queued":
        raise InvalidValue(
            f"case {case.id} was already {case.status} by {case.decided_by} ({case.reason}); "
            "a case is decided once"
        )
    return case


def _name(case: CaseView) -> str:
    """The name the pattern remembers: the production file's, with the stored extension."""
    stem = Path(case.original_name.replace("\\", "/")).name.rsplit(".", 1)[0].strip(". ")
    return f"{stem or f'case-{case.id}'}.{case.extension}"


def _note(case: CaseView, who: str, note: str) -> str:
    answer = f"{case.model} answered {case.predicted!r}"
    if case.confidence is not None:
        answer += f" (confidence {case.confidence:.2f})"
    said = []
    if case.correction is not None:
        said.append(f"user corrected it to {case.correction!r}")
    if case.rating is not None:
        said.append(f"user rated it {case.rating}/5")
    told = f"; {', '.join(said)}" if said else ""
    extra = f". {note}" if note else ""
    return (
        f"production case {case.id} (batch {case.batch}): {answer}{told}; accepted by {who}{extra}"
    )
