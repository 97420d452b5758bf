"""Cases and patterns as :class:`~.similarity.Item`: their labels, their scores in one
version's terms, and their fingerprints (read from the content store once per call)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from problem_registry.errors import CorruptPattern
from problem_registry.refs import ModelRef
from problem_registry.store.registry import Registry
from problem_registry.store.tables import ModelVersion, PatternFile, Result, TriageAnswer
from problem_registry.triage.cases import CaseView
from problem_registry.triage.ingest import prefetch_contents, read_content
from problem_registry.triage.similarity import Item, fingerprint, parse_scores
from problem_registry.verdicts.pattern_grid import pattern_results


def case_item(case: CaseView) -> Item:
    return Item(
        "case",
        case.id,
        case.sha256,
        case.extension,
        case.kind,
        case.predicted,
        case.original_name,
        scores=None,
        fingerprint=None if case.fingerprint is None else int(case.fingerprint, 16),
    )


def case_items(registry: Registry, cases: Sequence[CaseView], version: str | None) -> list[Item]:
    """Cases with their scores in ``version``'s terms: their own when that version answered them
    in production, else its cached triage answer's."""
    items = [case_item(case) for case in cases]
    if version is None:
        return items
    cached = _answer_scores(registry, version, [c.sha256 for c in cases if c.model != version])
    for case, item in zip(cases, items, strict=True):
        item.scores = (
            parse_scores(case.scores) if case.model == version else cached.get(case.sha256)
        )
    return items


def pattern_items(
    registry: Registry, version: str | None, *, only_failing: bool = False
) -> list[Item]:
    """Every pattern (or only those ``version`` gets wrong), with its scores on ``version``."""
    items: list[Item] = []
    if only_failing:
        if version is None:
            return []
        wrong = [r for r in pattern_results(registry, versions=[version]) if r.correct is False]
        views = {v.id: v for v in registry.patterns.list()}
        chosen = [views[r.pattern_id] for r in wrong if r.pattern_id in views]
    else:
        chosen = registry.patterns.list()
    scores = _result_scores(registry, version, [v.sha256 for v in chosen]) if version else {}
    for view in chosen:
        items.append(
            Item(
                "pattern",
                view.id,
                view.sha256,
                view.file.rsplit(".", 1)[-1],
                view.kind,
                view.expected,
                view.original_name,
                problem=view.problem,
                scores=scores.get(view.sha256),
            )
        )
    return items


def fingerprint_all(registry: Registry, items: Iterable[Item]) -> None:
    """Compute each item's fingerprint once per content (a missing file: none); one made at
    ingest is kept."""
    seen: dict[str, object] = {}
    items = list(items)
    prefetch_contents(registry, [(i.sha256, i.extension) for i in items if i.fingerprint is None])
    for item in items:
        if item.fingerprint is not None:
            seen.setdefault(item.sha256, item.fingerprint)
            continue
        if item.sha256 not in seen:
            try:
                seen[item.sha256] = fingerprint(
                    read_content(registry, item.sha256, item.extension), item.content_kind
                )
            except CorruptPattern:
                seen[item.sha256] = None
        item.fingerprint = seen[item.sha256]


def _version_id(registry: Registry, version: str) -> int | None:
    ref = ModelRef.parse(version)
    table = ModelVersion.__table__  # type: ignore[attr-defined]
    with registry.reading() as session:
        found = session.execute(
            sa.select(table.c.id).where(table.c.name == ref.name, table.c.version == ref.version)
        ).scalar()
    return None if found is None else int(found)


def _result_scores(
    registry: Registry, version: str, shas: Sequence[str]
) -> dict[str, dict[str, float]]:
    """A pattern's scores from ``version``'s stored results."""
    result = Result.__table__  # type: ignore[attr-defined]
    files = PatternFile.__table__  # type: ignore[attr-defined]
    query = sa.select(files.c.sha256, result.c.scores).join(result, result.c.file_id == files.c.id)
    return _scores(registry, version, shas, query, result)


def _answer_scores(
    registry: Registry, version: str, shas: Sequence[str]
) -> dict[str, dict[str, float]]:
    """A case's scores from ``version``'s cached answers on the queue."""
    table = TriageAnswer.__table__  # type: ignore[attr-defined]
    return _scores(registry, version, shas, sa.select(table.c.sha256, table.c.scores), table)


def _scores(
    registry: Registry, version: str, shas: Sequence[str], query: sa.Select[Any], table: sa.Table
) -> dict[str, dict[str, float]]:
    """(sha256, scores) rows of ``query`` for ``version`` in ``table``, those of ``shas`` only."""
    version_id = _version_id(registry, version)
    if version_id is None or not shas:
        return {}
    query = query.where(table.c.model_version_id == version_id, table.c.scores.is_not(None))
    wanted = set(shas)
    with registry.reading() as session:
        rows = session.execute(query).all()
    return {sha: s for sha, text in rows if sha in wanted and (s := parse_scores(text))}
