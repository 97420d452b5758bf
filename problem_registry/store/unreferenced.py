"""Store files a refused write brought: removed unless a committed row names them.

Pattern files are written before the rows that name them, so a crash in between leaves an unused
file rather than a row without its file. When the write is *refused* instead (a read-only
database, a concurrent import of the same content that committed first on PostgreSQL), the files
it brought were left as orphans for ``check`` to list (issue 16, item 13). The add and the import
call :func:`discard_unreferenced` then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlmodel import col, select

from problem_registry.store.content import StoredFile
from problem_registry.store.tables import PatternFile

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry


def discard_unreferenced(registry: Registry, brought: Sequence[StoredFile]) -> None:
    """Remove the files in ``brought`` (written by a write just refused) that no committed row
    names. A file another writer's row now names is kept; and if the database cannot even be
    read, every file is kept: an orphan, which ``check`` lists, beats a row without its file."""
    if not brought:
        return
    try:
        with registry.reading() as session:
            query = select(PatternFile.sha256).where(
                col(PatternFile.sha256).in_([stored.sha256 for stored in brought])
            )
            named = set(session.exec(query).all())
    except Exception:
        return
    for stored in brought:
        if stored.sha256 not in named:
            registry.store.discard(stored.sha256, stored.extension)
