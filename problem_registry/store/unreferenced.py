"""Store files no committed row names any more: removed, and only those.

Pattern files are written before the rows that name them, so a crash in between leaves an unused
file rather than a row without its file. When the write is *refused* instead (a read-only
database, a concurrent import of the same content that committed first on PostgreSQL), the files
it brought were left as orphans for ``check`` to list (issue 16, item 13): the add, the import and
the production ingest call :func:`discard_unreferenced` then. A removed pattern's file goes the
same way (:func:`discard_unused`), unless a production case still needs it as its input; its
content in the database (``pattern_blob``) goes in the removal's own transaction under the same
rule (:func:`drop_unnamed_content`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, col, select

from problem_registry.store.content import StoredFile
from problem_registry.store.tables import PatternBlob, PatternFile, TriageCase

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry

_CHUNK = 500  # hashes per IN list: well under SQLite's bound on a statement's parameters


def discard_unreferenced(registry: Registry, brought: Sequence[StoredFile]) -> None:
    """Remove the files in ``brought`` (written by a write just refused) that no committed row
    names. A file another writer's row now names is kept."""
    discard_unused(registry, [(stored.sha256, stored.extension) for stored in brought])


def discard_unused(registry: Registry, files: Sequence[tuple[str, str]]) -> None:
    """Remove each ``(sha256, extension)`` file that neither a pattern file row nor a production
    case names. If the database cannot even be read, every file is kept: an orphan, which
    ``check`` lists, beats a row without its file."""
    if not files:
        return
    try:
        with registry.reading() as session:
            named = still_named(session, [sha256 for sha256, _ in files])
    except Exception:
        return
    for sha256, extension in files:
        if sha256 not in named:
            registry.store.discard(sha256, extension)


def still_named(session: Session, hashes: Iterable[str]) -> set[str]:
    """Which of ``hashes`` a committed row names: a pattern's content or a case's input."""
    wanted = sorted(set(hashes))
    named: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        for column in (PatternFile.sha256, TriageCase.sha256):
            named.update(session.exec(select(column).where(col(column).in_(chunk))))
    return named


def drop_unnamed_content(session: Session, hashes: Iterable[str]) -> None:
    """Delete the database's content of each of ``hashes`` that no pattern file row nor case
    names any more, in the session's transaction (called after the rows' deletion is flushed)."""
    candidates = set(hashes)
    gone = sorted(candidates - still_named(session, candidates))
    blob: sa.Table = PatternBlob.__table__  # type: ignore[attr-defined]
    for start in range(0, len(gone), _CHUNK):
        session.execute(sa.delete(blob).where(blob.c.sha256.in_(gone[start : start + _CHUNK])))
