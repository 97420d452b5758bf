"""Pattern content lives in the database; the files under ``patterns/`` are a verified local cache.

Issue 17: with pattern files only on the disk of the machine that added them, a CI runner holding
nothing but ``PROBLEM_REGISTRY_URL`` printed "0 predicted" and exited 0. Now every file's bytes are
a ``pattern_blob`` row keyed by its sha256 (one copy per content), written in the transaction that
writes its ``pattern_file`` row (:func:`store_blobs`, called by ``patterns.file_ids_for``, which
``pattern add`` and bundle import share). Reading goes through :class:`ContentStore`: the cache
file if present and intact, else the database row (hash-checked, then written to the cache for the
next read), else :class:`~problem_registry.errors.CorruptPattern` naming the file. A cache file
altered on disk is never scored: it fails its hash and is replaced from the database.

``ContentStore`` keeps :class:`~problem_registry.store.content.PatternStore`'s interface
(``root``, ``relative_path``, ``path_of``, ``put``, ``read``, ``discard``), so every reader of
pattern files (replay, export, check, the report's thumbnails) reads the database's content
unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from problem_registry.errors import CorruptPattern, RegistryError
from problem_registry.store.content import InspectedContent, PatternStore, StoredFile, sha256_of
from problem_registry.store.engines import translate_connection_errors
from problem_registry.store.tables import PatternBlob, PatternFile, TriageCase

_BLOB: sa.Table = PatternBlob.__table__  # type: ignore[attr-defined]
_FILE: sa.Table = PatternFile.__table__  # type: ignore[attr-defined]
_CASE: sa.Table = TriageCase.__table__  # type: ignore[attr-defined]
# Bytes fetched from the database per query when many files are read at once (a replay's
# chunk): bounded, so a chunk of large images never becomes one huge result set.
FETCH_BYTES = 32 * 1024 * 1024
SESSION_KEY = "problem_registry.content_store"  # where a write session finds the store


class ContentStore:
    """The registry's pattern content: database rows, read through a verified file cache."""

    def __init__(self, engine: Engine, cache: PatternStore) -> None:
        self._engine: Engine | None = engine
        self._url = engine.url
        self.cache = cache

    @property
    def engine(self) -> Engine:
        if self._engine is None:  # unpickled in a report's drawing worker: its own engine
            from problem_registry.store.engines import create_registry_engine

            self._engine = create_registry_engine(self._url.render_as_string(hide_password=False))
        return self._engine

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (the HTML report's workers read thumbnails through it): the engine, which
        holds connections and a local function, is made again on the other side."""
        return {"_engine": None, "_url": self._url, "cache": self.cache}

    @property
    def root(self) -> Path:
        return self.cache.root

    def relative_path(self, sha256: str, extension: str) -> str:
        return self.cache.relative_path(sha256, extension)

    def path_of(self, sha256: str, extension: str) -> Path:
        return self.cache.path_of(sha256, extension)

    def put(self, content: InspectedContent) -> Path:
        """Into the cache; the database row is written with the ``pattern_file`` row."""
        return self.cache.put(content)

    def discard(self, sha256: str, extension: str) -> None:
        """The cached file goes; the row went with the last row naming it (``unreferenced``)."""
        self.cache.discard(sha256, extension)

    def read(self, sha256: str, extension: str) -> bytes:
        """The content of ``sha256``, verified: from the cache, else from the database."""
        try:
            return self.cache.read(sha256, extension)
        except CorruptPattern:
            pass  # missing or altered here: the database holds the truth
        found = self._fetch([sha256])
        if sha256 not in found:
            raise CorruptPattern(
                f"the content of pattern file {self.relative_path(sha256, extension)} is not in "
                f"the database, nor intact in {self.root}; restore it (problem-registry import "
                "BUNDLE, or `problem-registry check` where the file is) or remove its patterns"
            )
        data = found[sha256]
        self._cache(sha256, extension, data)
        return data

    def read_many(self, files: Iterable[tuple[str, str]]) -> dict[str, bytes | CorruptPattern]:
        """What :meth:`read` gives each of many (sha256, extension), or the error it would
        raise: the cache files read (and hash-checked) one pass, what they lack or hold altered
        fetched from the database in a few queries. A replay's chunk: no stat per file first,
        no query per file."""
        out: dict[str, bytes | CorruptPattern] = {}
        wanted: dict[str, str] = {}  # not in the cache, or altered there
        for sha256, extension in files:
            try:
                out[sha256] = self.cache.read(sha256, extension)
            except CorruptPattern:
                wanted[sha256] = extension
        if not wanted:
            return out
        try:
            found = self._fetch(list(wanted))
        except CorruptPattern:  # content altered in the database: read() names its file
            found = None
        for sha256, extension in wanted.items():
            if found is None or sha256 not in found:
                try:
                    out[sha256] = self.read(sha256, extension)
                except CorruptPattern as exc:
                    out[sha256] = exc
                continue
            self._cache(sha256, extension, found[sha256])
            out[sha256] = found[sha256]
        return out

    def _fetch(self, hashes: Sequence[str]) -> dict[str, bytes]:
        """Rows of ``hashes`` that the database holds, each verified against its name."""
        found: dict[str, bytes] = {}
        for sha256, data in self._rows(hashes):
            if data is None:
                raise CorruptPattern(
                    f"the content of pattern file {sha256[:12]} in the database no "
                    "longer matches its sha256 (edited by hand); restore it "
                    "(problem-registry import BUNDLE) or remove its patterns"
                )
            found[sha256] = data
        return found

    def _rows(self, hashes: Sequence[str]) -> Iterator[tuple[str, bytes | None]]:
        """Each row of ``hashes`` the database holds, as (sha256, its bytes, or None when they
        no longer match it), fetched in queries of bounded bytes and IN-list length, so a caller
        that lets each go never holds many large files at once. Sized from the rows themselves:
        content a production case names may have no ``pattern_file`` row (issue 20)."""
        wanted = sorted(hashes)
        with translate_connection_errors(self.engine.url), self.engine.connect() as connection:
            sizes: dict[str, int] = {}
            for chunk in _in_lists(wanted):
                query = sa.select(_BLOB.c.sha256, sa.func.length(_BLOB.c.data))
                sizes.update(connection.execute(query.where(_BLOB.c.sha256.in_(chunk))).all())
            for group in _groups(sorted(sizes), sizes):
                for chunk in _in_lists(group):
                    query = sa.select(_BLOB.c.sha256, _BLOB.c.data)
                    for sha256, data in connection.execute(query.where(_BLOB.c.sha256.in_(chunk))):
                        data = bytes(data)
                        yield sha256, data if sha256_of(data) == sha256 else None

    def _cache(self, sha256: str, extension: str, data: bytes) -> bool:
        """Write ``data`` to the cache; False when the folder cannot take it (read-only, full):
        a cache is an optimisation, never a reason to fail a replay."""
        from problem_registry.enums import PatternKind

        try:
            # The kind is not needed to write a file: any member will do.
            self.cache.put(InspectedContent(data, sha256, PatternKind.text, extension))
        except (RegistryError, OSError):  # CorruptPattern, or UnsafePath: a link planted there
            return False
        return True


def _groups(hashes: list[str], sizes: dict[str, int]) -> Iterable[list[str]]:
    group: list[str] = []
    total = 0
    for sha in hashes:
        if group and total + sizes[sha] > FETCH_BYTES:
            yield group
            group, total = [], 0
        group.append(sha)
        total += sizes[sha]
    if group:
        yield group


def store_blobs(session: Session, files: Sequence[StoredFile]) -> None:
    """Write the content of ``files`` the database lacks, in the session's transaction.

    The bytes come from the write session's store (:data:`SESSION_KEY`, set by
    ``Registry.writing``), where ``pattern add`` and bundle import put them just before, and are
    hash-checked again. One file in memory at a time (issue 16, item 12). Two writers of the same
    content both succeed (``ON CONFLICT DO NOTHING``).
    """
    if not files:
        return
    store: ContentStore | None = session.info.get(SESSION_KEY)
    if store is None:
        raise RuntimeError("store_blobs needs a session from Registry.writing()")
    wanted = sorted({f.sha256: f for f in files}.values(), key=lambda f: f.sha256)
    present = set(
        session.execute(
            sa.select(_BLOB.c.sha256).where(_BLOB.c.sha256.in_([f.sha256 for f in wanted]))
        ).scalars()
    )
    for stored in wanted:
        if stored.sha256 in present:
            continue
        data = store.cache.read(stored.sha256, stored.extension)  # hash-checked
        insert_blob(session, stored.sha256, data)


def insert_blob(session: Session | Any, sha256: str, data: bytes) -> None:
    """One content row, idempotent: ``INSERT ... ON CONFLICT DO NOTHING`` on either backend."""
    from problem_registry.store.registry import insert_ignoring_conflicts

    insert_ignoring_conflicts(session, PatternBlob, [{"sha256": sha256, "data": data}], ["sha256"])


def missing_content(session: Session) -> list[tuple[str, str]]:
    """(sha256, extension) of every ``pattern_file``, and every production case's input (issue
    20), whose content the database lacks."""
    named = sa.union(
        sa.select(_FILE.c.sha256, _FILE.c.extension),
        sa.select(_CASE.c.sha256, _CASE.c.extension),
    ).subquery()
    query = (
        sa.select(named.c.sha256, named.c.extension)
        .where(~sa.exists().where(_BLOB.c.sha256 == named.c.sha256))
        .order_by(named.c.sha256)
    )
    found: dict[str, str] = {}
    for sha, ext in session.execute(query):
        found.setdefault(sha, ext)  # a case may name content under another extension: one copy
    return list(found.items())


def upload_cached(registry: Any) -> list[str]:
    """Put into the database the content it lacks but this machine's cache holds intact (a
    registry upgraded where its files were not); the hashes uploaded."""
    with registry.reading() as session:
        lacking = missing_content(session)
    uploaded: list[str] = []
    for sha256, extension in lacking:
        try:
            data = registry.store.cache.read(sha256, extension)
        except CorruptPattern:
            continue
        with registry.writing() as session:
            insert_blob(session, sha256, data)
        uploaded.append(sha256)
    return uploaded


# Content any row names, a production case's input too (issue 20): the same fetch as a pattern
# file's, with the case's own error message, and content altered in the database left unread.


def read_named(store: ContentStore, sha256: str, extension: str) -> bytes:
    """The content of ``sha256``, verified: the cache if intact, else the database's row (then
    cached); :class:`~problem_registry.errors.CorruptPattern` when neither holds it intact."""
    try:
        return store.cache.read(sha256, extension)
    except CorruptPattern:
        pass  # missing or altered here: the database holds the truth
    found = _fetch_named(store, {sha256: extension}, keep=True)
    if sha256 not in found:
        raise CorruptPattern(
            f"the content of {store.relative_path(sha256, extension)} is not intact in the "
            f"database, nor in {store.root}; run `problem-registry check` where the file is, "
            "or discard the cases that name it"
        )
    return found[sha256]


def cache_named(store: ContentStore, files: Iterable[tuple[str, str]]) -> None:
    """Bring the content of many (sha256, extension) the cache lacks into it, in few queries of
    a bounded size (many cases read from an empty folder); what is missing or altered is left
    for :func:`read_named` to report."""
    wanted = {sha: ext for sha, ext in files if not store.path_of(sha, ext).is_file()}
    if wanted:
        _fetch_named(store, wanted, keep=False)


def _fetch_named(store: ContentStore, wanted: dict[str, str], *, keep: bool) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for sha256, data in store._rows(list(wanted)):
        if data is None:
            continue  # altered in the database: never used
        store._cache(sha256, wanted[sha256], data)  # a read-only folder: not kept
        if keep:
            found[sha256] = data
    return found


def _in_lists(hashes: Sequence[str]) -> Iterable[Sequence[str]]:
    """``hashes`` in slices short enough for one IN list."""
    for start in range(0, len(hashes), _PER_QUERY):
        yield hashes[start : start + _PER_QUERY]


_PER_QUERY = 500  # hashes per IN list: well under SQLite's bound on parameters
