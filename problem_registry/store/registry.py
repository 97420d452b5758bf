"""The registry: one database (SQLite or PostgreSQL) plus its content-addressed pattern store.

``Registry`` owns the connection and the transactions; what you do with it is grouped by concept:
``registry.problems``, ``registry.patterns``, ``registry.models``. The CLI, the pytest plugin and
notebooks all go through it; none of them touches the tables directly::

    with Registry.open() as registry:
        registry.problems.add("chihuahua-vs-muffin", max_error_rate=0.2)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from problem_registry.config import Settings, resolve_settings
from problem_registry.errors import UNKNOWN_USER
from problem_registry.store.blobs import SESSION_KEY, ContentStore
from problem_registry.store.content import PatternStore
from problem_registry.store.engines import (
    create_registry_engine,
    redact,
    translate_connection_errors,
    writer_engine,
)
from problem_registry.store.migrations import ensure_schema, require_sqlite_file

if TYPE_CHECKING:
    from sqlalchemy.sql.base import Executable

    from problem_registry.store.model_versions import ModelVersions
    from problem_registry.store.patterns import Patterns
    from problem_registry.store.problems import Problems


class Registry:
    def __init__(
        self, engine: Engine, store: ContentStore | PatternStore, *, user: str = UNKNOWN_USER
    ) -> None:
        self.engine = engine
        # Pattern content is the database's; a folder given alone becomes its local cache.
        self.store = store if isinstance(store, ContentStore) else ContentStore(engine, store)
        self.user = user
        self._writer = writer_engine(engine)

    @classmethod
    def open(
        cls, settings: Settings | None = None, *, create: bool = True, **overrides: Any
    ) -> Registry:
        """Open the registry the settings name, creating it at the current schema on first use.

        ``overrides`` are :func:`~problem_registry.config.resolve_settings` arguments (``url``,
        ``patterns_dir``, ``user``), so a notebook can write ``Registry.open(url=...)``.
        ``create=False`` raises :class:`~problem_registry.errors.NoRegistry` where there is none
        yet, and writes nothing: the CLI opens every command but ``init`` this way (issue 19).
        """
        settings = settings or resolve_settings(**overrides)
        if not create:
            require_sqlite_file(settings.database_url)
        engine = create_registry_engine(settings.database_url)
        with translate_connection_errors(engine.url):
            ensure_schema(engine, create=create)
        return cls(engine, PatternStore(settings.patterns_dir), user=settings.user)

    @property
    def display_url(self) -> str:
        """The database URL with any password hidden: the only form ever printed."""
        return redact(self.engine.url)

    @cached_property
    def problems(self) -> Problems:
        from problem_registry.store.problems import Problems

        return Problems(self)

    @cached_property
    def patterns(self) -> Patterns:
        from problem_registry.store.patterns import Patterns

        return Patterns(self)

    @cached_property
    def models(self) -> ModelVersions:
        from problem_registry.store.model_versions import ModelVersions

        return ModelVersions(self)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with translate_connection_errors(self.engine.url), Session(self.engine) as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A write transaction, committed on success; holds SQLite's write lock from its start."""
        with (
            translate_connection_errors(self.engine.url),
            Session(self._writer, expire_on_commit=False) as session,
        ):
            session.info[SESSION_KEY] = self.store  # where store_blobs finds new content
            yield session
            session.commit()


def insert_ignoring_conflicts(
    session: Session, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    """Bulk ``INSERT ... ON CONFLICT DO NOTHING`` on whichever backend the session is bound to.

    Writes that may race (two testers adding the same file, two runners storing the same result)
    are made idempotent this way instead of by check-then-insert.
    """
    if not rows:
        return
    statement: Executable  # each dialect's Insert is its own class
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        statement = postgresql_insert(table).on_conflict_do_nothing(index_elements=list(keys))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=list(keys))
    session.execute(statement, list(rows))
