"""``import --prune``: the patterns a bundle no longer holds, found and removed (issue 19, item 9).

Import is additive, so a pattern deleted from a bundle kept in git stayed in the database. With
``--prune``, the patterns of the bundle's problems whose content the bundle's manifest no longer
lists are removed in the import's own transaction, with their results and stored files once no
other pattern uses the content (as ``pattern remove`` does). Problems the bundle does not hold at
all are left alone: a missing manifest is more often a partial checkout than a decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from problem_registry.store.bundle_format import BundledProblem
from problem_registry.store.tables import Pattern, PatternFile, Problem
from problem_registry.store.unreferenced import drop_unnamed_content

_PATTERN = Pattern.__table__  # type: ignore[attr-defined]
_FILE = PatternFile.__table__  # type: ignore[attr-defined]
_PROBLEM = Problem.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Pruned:
    """A pattern the bundle no longer holds."""

    pattern_id: int
    problem: str
    original_name: str
    sha256: str

    def describe(self) -> str:
        name, sha = self.original_name, self.sha256[:12]
        return f"pattern {self.pattern_id} of {self.problem} ({name}, {sha})"


def prunable(session: Session, problems: Sequence[BundledProblem]) -> list[Pruned]:
    """The patterns of these problems whose content their manifest no longer lists."""
    listed = {p.slug: {entry.sha256 for entry in p.patterns} for p in problems}
    if not listed:
        return []
    query = (
        sa.select(_PATTERN.c.id, _PROBLEM.c.slug, _PATTERN.c.original_name, _FILE.c.sha256)
        .join(_PROBLEM, _PROBLEM.c.id == _PATTERN.c.problem_id)
        .join(_FILE, _FILE.c.id == _PATTERN.c.file_id)
        .where(_PROBLEM.c.slug.in_(sorted(listed)))
        .order_by(_PROBLEM.c.slug, _PATTERN.c.id)
    )
    return [Pruned(*row) for row in session.execute(query) if row[3] not in listed[row[1]]]


def remove_patterns(session: Session, pruned: Sequence[Pruned]) -> list[tuple[str, str]]:
    """Delete the patterns, and the content rows no other pattern uses (their results go with
    them); the (sha256, extension) of the files to discard from the store after the commit."""
    if not pruned:
        return []
    ids = [p.pattern_id for p in pruned]
    file_ids = [
        file_id
        for (file_id,) in session.execute(
            sa.select(_PATTERN.c.file_id).where(_PATTERN.c.id.in_(ids)).distinct()
        )
    ]
    session.execute(sa.delete(_PATTERN).where(_PATTERN.c.id.in_(ids)))
    used = sa.select(_PATTERN.c.file_id).where(_PATTERN.c.file_id.in_(file_ids))
    orphans = list(
        session.execute(
            sa.select(_FILE.c.id, _FILE.c.sha256, _FILE.c.extension).where(
                _FILE.c.id.in_(file_ids), _FILE.c.id.not_in(used)
            )
        )
    )
    if orphans:
        session.execute(sa.delete(_FILE).where(_FILE.c.id.in_([row[0] for row in orphans])))
        drop_unnamed_content(session, [sha for _id, sha, _ext in orphans])  # unless a case names it
    return [(sha, extension) for _id, sha, extension in orphans]
