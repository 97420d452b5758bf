"""Schema migrations run from code: create at head on first use, refuse what we do not know.

Several processes may open a new registry at once (CI runners, xdist workers), and Alembic has no
guard of its own against concurrent upgrades (MLflow users hit "duplicate column" that way). So an
upgrade runs under a lock: ``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite,
and re-reads the revision once it holds the lock.

Every command opens the registry, and almost always its schema is already at head. That check is
one plain ``SELECT`` against :data:`HEAD_REVISION`; Alembic (which pulls in Mako and Pygments, a
tenth of a second of start-up) is imported only when the schema is not current: to create,
upgrade, or explain a refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from problem_registry.errors import NoRegistry, SchemaMismatch
from problem_registry.store.engines import parse_url, redact, writer_engine

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# The newest revision in alembic/versions/, known without importing Alembic; a new migration must
# update it (tests/test_migrations.py holds it equal to the scripts' head).
HEAD_REVISION = "0009"

# Any constant works; it only has to be the same in every process that migrates this database.
_PG_MIGRATION_LOCK = 0x70726567  # "preg"


def alembic_dir() -> Path:
    """The migrations shipped in the wheel, or the checkout's top-level alembic/ when editable."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_alembic", package.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise SchemaMismatch(  # pragma: no cover - a broken installation
        f"problem-registry's migrations are missing (looked in {package / '_alembic'}); reinstall"
    )


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(alembic_dir()))
    return config


@cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str
    # Set by upgrade(): whether this call migrated, and from where (read under the lock, so of
    # several processes upgrading at once exactly one reports a migration).
    migrated: bool = False
    previous: str | None = None
    # Set by an upgrade through 0008: pattern files copied into the database, and those it
    # could not find intact in the pattern folder it was given (issue 17).
    content_copied: int = 0
    content_missing: int = 0

    @property
    def is_current(self) -> bool:
        return self.current == self.head


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def schema_state(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        stamped = _stamped_revisions(connection)
        if stamped == [HEAD_REVISION]:
            # The common case, answered without importing Alembic: nothing to refuse or migrate.
            return SchemaState(HEAD_REVISION, HEAD_REVISION)
        _refuse_several(stamped)
        state = SchemaState(current_revision(connection), head_revision())
    _refuse_unknown(state.current)
    return state


def _stamped_revisions(connection: Connection) -> list[str] | None:
    """The revisions in ``alembic_version``, read with plain SQL; None when there is no table."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return [row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")]


def _refuse_several(stamped: list[str] | None) -> None:
    """One revision, or none: Alembic's own refusal of more is a traceback (issue 16, item 11)."""
    if stamped is not None and len(stamped) > 1:
        raise SchemaMismatch(
            f"this registry's alembic_version table holds {len(stamped)} revisions "
            f"({', '.join(sorted(map(str, stamped)))}); a registry is stamped with exactly one: "
            f"delete the rows that are not its revision (this problem-registry's is "
            f"{HEAD_REVISION}), after a backup"
        )


def _refuse_unknown(revision: str | None) -> None:
    if revision is None:
        return
    try:
        known = _scripts().get_revision(revision)
    except Exception:
        known = None
    if known is None:
        raise SchemaMismatch(
            f"this registry's schema is at revision {revision}, written by a newer "
            "problem-registry; upgrade problem-registry (pip install -U problem-registry)"
        )


def has_user_tables(connection: Connection) -> bool:
    names = set(sa.inspect(connection).get_table_names()) - {"alembic_version"}
    return bool(names)


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction under the cross-process migration lock, with SQLite's
    foreign keys off: batch migrations rebuild tables (0004's downgrade rebuilds model_version),
    and with foreign keys on, ON DELETE CASCADE would silently empty their child tables."""
    sqlite = engine.dialect.name == "sqlite"
    with writer_engine(engine).connect() as connection:
        if sqlite:  # the pragma only takes effect outside a transaction
            _sqlite_pragma(connection, "foreign_keys = OFF")
        try:
            with connection.begin():
                if not sqlite:
                    connection.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                yield connection
        finally:
            if sqlite:
                _sqlite_pragma(connection, "foreign_keys = ON")


def upgrade(
    engine: Engine, revision: str = "head", *, patterns_dir: Path | None = None
) -> SchemaState:
    """Bring the schema to ``revision`` under a cross-process lock; a no-op when already there.

    ``patterns_dir``: the registry's pattern folder, whose files the upgrade to 0008 copies
    into the database (issue 17: the URL is the whole registry).
    """
    copied = missing = 0
    with _migrating(engine) as connection:
        _refuse_several(_stamped_revisions(connection))
        previous = current_revision(connection)
        _refuse_unknown(previous)
        target = head_revision() if revision == "head" else revision
        migrated = previous != target
        if migrated:
            from alembic import command

            config = alembic_config()
            config.attributes["connection"] = connection
            config.attributes["patterns_dir"] = patterns_dir
            command.upgrade(config, revision)
            copied = int(config.attributes.get("content_copied", 0))
            missing = int(config.attributes.get("content_missing", 0))
    return replace(
        schema_state(engine),
        migrated=migrated,
        previous=previous,
        content_copied=copied,
        content_missing=missing,
    )


def _sqlite_pragma(connection: Connection, pragma: str) -> None:
    """Run a pragma on the raw connection: SQLAlchemy would wrap it in a transaction, where
    ``foreign_keys`` is silently ignored."""
    connection.connection.driver_connection.execute(f"PRAGMA {pragma}")  # type: ignore[union-attr]


def downgrade(engine: Engine, revision: str) -> SchemaState:
    with _migrating(engine) as connection:
        from alembic import command

        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    return schema_state(engine)


# What every "there is no registry" message ends with: the two ways out (issue 19).
INIT_HINT = "run `problem-registry init` or set --url / PROBLEM_REGISTRY_URL"


def ensure_schema(engine: Engine, *, create: bool = True) -> SchemaState:
    """On first use create the schema at head; an older schema needs an explicit `db upgrade`.

    ``create=False`` refuses an empty database instead (:class:`NoRegistry`): the CLI's commands
    other than ``init`` must not turn a mistyped URL into a new registry.
    """
    state = schema_state(engine)
    if state.is_current:
        return state
    if state.current is None:
        with engine.connect() as connection:
            populated = has_user_tables(connection)
        if populated:
            raise SchemaMismatch(
                "this database holds tables but no problem-registry schema revision; "
                "point --url / PROBLEM_REGISTRY_URL at an empty database or a registry"
            )
        if not create:
            raise NoRegistry(
                f"no registry in {redact(engine.url)} (the database is empty); {INIT_HINT}"
            )
        return upgrade(engine)
    raise SchemaMismatch(
        f"this registry's schema is at revision {state.current}, this problem-registry needs "
        f"{state.head}; run `problem-registry db upgrade` (back up the database first)"
    )


def require_sqlite_file(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist, before connecting would create it."""
    parsed = parse_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    path = Path(database)
    if not path.is_file():
        raise NoRegistry(f"no registry here (looked for {_shown(path)}); {INIT_HINT}")


def _shown(path: Path) -> str:
    """``./registry.db`` for a file under the working directory, else the absolute path."""
    try:
        return f"./{path.resolve().relative_to(Path.cwd().resolve())}"
    except ValueError:
        return str(path)
