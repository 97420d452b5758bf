"""``triage add``: a production batch's rows stored as queued cases, all or nothing.

Inputs go into the registry's one content store: their bytes into the database
(``pattern_blob``, the table pattern content uses, one copy per content) in the transaction that
writes the rows into ``triage_case``, and into the local cache (``registry.store``). Any runner
holding only the URL reads them (:func:`read_content`), and an accepted case's pattern reuses
the same content row. A
case's identity is its row's key (:attr:`~.batch_file.ProductionRow.key`), unique in the
database, so ingesting the same batch again, or two testers ingesting it at once, adds nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from problem_registry.enums import PatternKind
from problem_registry.store.blobs import cache_named, read_named, store_blobs
from problem_registry.store.content import InspectedContent, StoredFile
from problem_registry.store.registry import Registry, insert_ignoring_conflicts
from problem_registry.store.tables import TriageBatch, TriageCase, stored_id
from problem_registry.store.unreferenced import discard_unreferenced
from problem_registry.text import file_name, recording, user_name
from problem_registry.triage.batch_file import ProductionRow, read_batch
from problem_registry.triage.cases import chunks
from problem_registry.triage.similarity import fingerprint


@dataclass(frozen=True)
class Ingested:
    """What ``triage add`` did: ``batch`` is None when nothing was new."""

    file: str
    rows: int
    added: int
    already: int
    batch: int | None

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "rows": self.rows,
            "added": self.added,
            "already_known": self.already,
            "batch": self.batch,
        }


def ingest(registry: Registry, path: Path) -> Ingested:
    """Read, check and store the batch at ``path``; every row is checked before any write."""
    rows = read_batch(path)
    by_key: dict[str, ProductionRow] = {}
    for row in rows:
        by_key.setdefault(row.key, row)  # the same row twice in one file is one case
    digest = hashlib.sha256("\n".join(sorted(by_key)).encode("ascii")).hexdigest()
    who = user_name(registry.user)
    known: set[str] = set()
    with registry.reading() as session:
        for chunk in chunks(list(by_key)):
            known.update(session.exec(select(TriageCase.key).where(col(TriageCase.key).in_(chunk))))
    fresh = [row for key, row in by_key.items() if key not in known]
    if not fresh:
        return Ingested(str(path), len(rows), 0, len(by_key), None)
    recording(who)
    brought = put_contents(registry, [row.content for row in fresh if row.content is not None])
    try:
        batch_id, added = _insert(registry, path, digest, fresh, who)
    except BaseException:
        discard_unreferenced(registry, brought)
        raise
    return Ingested(str(path), len(rows), added, len(by_key) - added, batch_id)


def _insert(
    registry: Registry, path: Path, digest: str, fresh: Sequence[ProductionRow], who: str
) -> tuple[int | None, int]:
    try:
        with registry.writing() as session:
            batch = TriageBatch(digest=digest, name=file_name(path), ingested_by=who)
            session.add(batch)
            session.flush()
            batch_id = stored_id(batch)
            for chunk in chunks(list(fresh)):
                # The inputs' bytes, in this transaction: no case row without its content.
                store_blobs(session, [row.content.stored for row in chunk if row.content])
                insert_ignoring_conflicts(
                    session, TriageCase, [_case(row, batch_id) for row in chunk], ["key"]
                )
            added = len(
                session.exec(select(TriageCase.id).where(TriageCase.batch_id == batch_id)).all()
            )
            batch.cases = added
            session.add(batch)
    except IntegrityError:  # the same batch ingested by someone else meanwhile
        return None, 0
    return batch_id, added


def _case(row: ProductionRow, batch_id: int) -> dict[str, object]:
    assert row.content is not None
    return {
        "key": row.key,
        "batch_id": batch_id,
        "sha256": row.content.sha256,
        "kind": row.content.kind.value,
        "extension": row.content.extension,
        "size_bytes": len(row.content.data),
        "original_name": row.original_name[:255],
        "fingerprint": _fingerprint(row.content),
        "model": row.model,
        "predicted": row.predicted,
        "confidence": row.confidence,
        "scores": row.scores,
        "rating": row.rating,
        "correction": row.correction,
        "status": "queued",
        "reason": "",
    }


def _fingerprint(content: InspectedContent) -> str | None:
    if content.kind is not PatternKind.image:
        return None
    found = fingerprint(content.data, content.kind.value)
    return None if found is None else f"{found:016x}"


def put_contents(registry: Registry, contents: Sequence[InspectedContent]) -> list[StoredFile]:
    """Write case inputs into the local cache, where the ingest's transaction takes their bytes
    from (``store_blobs``); returns those it newly brought."""
    store = registry.store
    brought: dict[str, StoredFile] = {}
    for content in contents:
        if content.sha256 in brought:
            continue
        if not store.path_of(content.sha256, content.extension).is_file():
            brought[content.sha256] = content.stored
        store.put(content)
    return list(brought.values())


def read_content(registry: Registry, sha256: str, extension: str) -> bytes:
    """A case's input, verified against its hash: from the local cache, else the database
    (:class:`~problem_registry.errors.CorruptPattern` when missing or altered in both)."""
    return read_named(registry.store, sha256, extension)


def prefetch_contents(registry: Registry, files: Iterable[tuple[str, str]]) -> None:
    """Bring many inputs (sha256, extension) into the local cache in a few queries, before they
    are read one by one (a replay of the queue, fingerprints, a page of thumbnails)."""
    cache_named(registry.store, files)


@dataclass(frozen=True)
class ContentReader:
    """What the thumbnails of the triage page and the contact sheet read through
    (``report.gallery``'s ``FileReader``): any case's or pattern's content, from the database
    when this folder lacks it."""

    registry: Registry

    def read(self, sha256: str, extension: str) -> bytes:
        return read_content(self.registry, sha256, extension)
