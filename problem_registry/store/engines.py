"""Engines for SQLite and PostgreSQL, set up so concurrent writers never see "database is locked".

SQLite: WAL, a busy timeout and foreign keys are set on every new connection; transactions opened
through :func:`writer` start with ``BEGIN IMMEDIATE``, because a deferred transaction that reads
first and writes later cannot wait for the lock and fails at once under contention (reproduced
here: 206-216 of 240 concurrent read-then-write transactions failed with deferred ``BEGIN``, none
with ``BEGIN IMMEDIATE``). PostgreSQL: psycopg 3 whatever driver the URL names.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.pool import NullPool

from problem_registry.errors import ConfigError, DatabaseUnavailable
from problem_registry.redaction import redact_text, redact_url

if TYPE_CHECKING:
    from sqlalchemy.sql.compiler import SQLCompiler

SQLITE_BUSY_TIMEOUT_MS = 60_000
_BEGIN_OPTION = "problem_registry_begin"


def parse_url(url: str) -> URL:
    """Parse and normalise a database URL; ``postgresql://`` means psycopg 3, the driver we ship."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            f"cannot parse database URL {redact(url)!r}; expected sqlite:///PATH or "
            "postgresql+psycopg://USER:PASSWORD@HOST/DB"
        ) from None
    if parsed.host and "@" in parsed.host:
        # SQLAlchemy ends the password at its first "@" and takes the rest as the host name
        # (issue 16: the tail of the password was printed in the "cannot resolve host" error).
        raise ConfigError(
            f"the password or user name in {redact(url)!r} holds an unescaped '@'; write it as "
            "%40 (percent-encode every special character of a password in a URL)"
        )
    _check_host_names(parsed, url)
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise ConfigError(
            f"unsupported database {backend!r} in {redact(url)!r}; use sqlite:///PATH or "
            "postgresql+psycopg://USER:PASSWORD@HOST/DB"
        )
    return parsed


def _check_host_names(parsed: URL, url: str) -> None:
    """Refuse a host name no resolver can encode: psycopg raised a bare UnicodeError, with a
    traceback, on one (found while fuzzing issue 16's passwords into every part of a URL)."""
    hosts = [parsed.host or ""]
    for key in ("host", "hostaddr"):
        value = parsed.query.get(key, "")
        hosts += [value] if isinstance(value, str) else list(value)
    for host in ",".join(hosts).split(","):
        if host and not host.startswith("/"):  # a folder: libpq's Unix socket, not a name
            try:
                host.encode("idna")
            except UnicodeError:
                raise ConfigError(
                    f"the host name in {redact(url)!r} holds characters no resolver accepts; "
                    "check the URL (percent-encode a password's special characters)"
                ) from None


def redact(url: str | URL) -> str:
    """The URL as it may be shown to anyone: every credential replaced by ``***``.

    Not ``hide_password`` alone, which leaves ``?password=`` and its kin in the query (issue 16):
    see :func:`~problem_registry.redaction.redact_url`.
    """
    if isinstance(url, URL):
        return redact_url(url.render_as_string(hide_password=False))
    try:
        make_url(url)
    except (ArgumentError, ValueError):
        # Not parseable, so we cannot find the password by structure: hide everything after "//".
        scheme, sep, _ = url.partition("://")
        return f"{scheme}{sep}***" if sep else "***"
    return redact_url(url)


def _plain(url: URL | str) -> str:
    """The URL with its password, to look for its secrets in a driver's text (never shown)."""
    return url.render_as_string(hide_password=False) if isinstance(url, URL) else url


def create_registry_engine(url: str) -> Engine:
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    except NoSuchModuleError as exc:  # pragma: no cover - psycopg is a dependency
        raise ConfigError(redact_text(f"no driver for {redact(parsed)}: {exc}", url)) from None
    return engine


# The query parameters SQLAlchemy's pysqlite dialect passes to the driver; it drops any other
# with a warning unless ``uri=true`` sends them to SQLite itself.
_SQLITE_DRIVER_OPTIONS = frozenset(
    {"uri", "timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements"}
)


def _sqlite_engine(url: URL) -> Engine:
    ignored = sorted(set(url.query) - _SQLITE_DRIVER_OPTIONS)
    if ignored and "uri" not in url.query:
        # Refused, not ignored: a warning line before the command's own output (or its error)
        # and a setting that seems to apply but does not (issue 16: a SQLite URL has no password).
        names = ", ".join(repr(name) for name in ignored)
        raise ConfigError(
            f"a SQLite registry URL takes no query parameter {names}: SQLite would ignore it; "
            "remove it from --url / PROBLEM_REGISTRY_URL"
        )
    database = url.database
    if database and database != ":memory:":
        folder = Path(database).parent
        if not folder.is_dir():
            raise DatabaseUnavailable(
                f"cannot create the SQLite registry {database}: folder {folder} does not exist"
            )
    # NullPool: a CLI command opens one or two connections; pooling only keeps files open across
    # forks (pytest-xdist, multiprocessing) where SQLite connections must not travel.
    engine = sa.create_engine(
        url, poolclass=NullPool, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so we can say BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        try:
            _enable_wal(cursor)
        except UnicodeDecodeError:
            # A damaged page can answer the pragma with bytes that are not text (Hypothesis
            # found one): the same "damaged" error as sqlite3's own, not a traceback.
            raise sqlite3.DatabaseError("database disk image is malformed") from None
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def held_open(engine: Engine) -> Iterator[None]:
    """SQLite: one idle connection kept open for the block, so the many short sessions inside
    it (a replay's: a few per chunk) do not each end as the file's last connection. SQLite
    checkpoints the WAL and removes it when its last connection closes: with NullPool that was
    every session, ~5-10 ms each on this project's machine (issue 18's benchmark); with one held
    open, SQLite checkpoints as the WAL grows instead. The idle connection holds no transaction,
    so no lock. Other backends: nothing."""
    if engine.dialect.name != "sqlite":
        yield
        return
    with translate_connection_errors(engine.url):
        connection = engine.connect()
    try:
        yield
    finally:
        connection.close()


def _enable_wal(cursor: Any) -> None:
    """Switch a new database file to WAL, retrying while another process holds it.

    The switch needs a moment of exclusive access, and SQLite does not apply the busy timeout to
    it: with several processes opening a fresh registry at once, 3 of 80 failed at once with
    "database is locked" (reproduced here). Once one process has switched, the mode is stored in
    the file and the pragma no longer needs the lock.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def driver_rows(connection: Connection, statement: sa.ClauseElement) -> list[tuple[Any, ...]]:
    """Every row of ``statement`` as the driver's own tuples, on ``connection``'s transaction.

    For the few queries whose rows outnumber everything else a command does (the error
    rates, 100,000 rows at 1,000 problems x 100 versions): SQLAlchemy's result processing costs
    more per row than the driver's fetch. The statement is compiled by SQLAlchemy as usual (IN
    lists expanded), so only plain column values can come back: no ORM entities, no type
    conversion beyond the driver's.
    """
    # A statement compiled for a SQL dialect is a SQLCompiler; compile() is typed for any.
    compiled = cast(
        "SQLCompiler",
        statement.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True}),
    )
    parameters: Any = compiled.params
    if compiled.positional:
        parameters = tuple(parameters[name] for name in compiled.positiontup or ())
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), parameters)
        # DB-API cursors are untyped: both drivers' fetchall() is a list of plain tuples.
        return cast("list[tuple[Any, ...]]", cursor.fetchall())
    finally:
        cursor.close()


def writer_engine(engine: Engine) -> Engine:
    """The same engine, but its transactions take SQLite's write lock up front."""
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})


@contextmanager
def translate_connection_errors(url: URL | str) -> Iterator[None]:
    """Turn "cannot connect" and "database is locked" into one clear line naming the database."""
    try:
        yield
    except OperationalError as exc:
        reason = _first_line(exc)
        if "locked" in reason:
            hint = "another process holds the write lock; retry, or raise busy_timeout"
        elif reason.startswith("Could not decode to UTF-8"):
            # A damaged page's bytes where text was stored: not repeated (they are garbage).
            reason = reason.split(" with text ", 1)[0] + ": the file is damaged"
            hint = "restore the file from a backup, or point --url at another registry"
        elif make_url(url).get_backend_name() == "sqlite":
            hint = "check the path in PROBLEM_REGISTRY_URL or --url"
        else:
            hint = "check PROBLEM_REGISTRY_URL or --url, and that the server is running"
        raise DatabaseUnavailable(
            redact_text(f"cannot use database {redact(url)}: {reason} ({hint})", _plain(url))
        ) from None
    except DBAPIError as exc:
        # sqlite3 raises its base DatabaseError (not a subclass such as IntegrityError, which
        # would be a bug of ours) for a file that is not a database or is damaged beyond use.
        # Raised while connecting (no statement), a driver error means it refused the URL itself:
        # psycopg's 'invalid connection option "passwd"' for a parameter libpq does not know.
        if type(exc.orig) is sqlite3.DatabaseError:
            hint = "point --url at a registry file, or at a new path to create one"
        elif exc.statement is None and make_url(url).get_backend_name() != "sqlite":
            hint = "check the query parameters of PROBLEM_REGISTRY_URL or --url"
        else:
            raise
        raise DatabaseUnavailable(
            redact_text(
                f"cannot use database {redact(url)}: {_first_line(exc)} ({hint})", _plain(url)
            )
        ) from None
    except sqlite3.DatabaseError as exc:
        # The driver's own error, unwrapped: driver_rows bypasses SQLAlchemy. A page damaged
        # past the schema shows only when a query reaches it (issue 16, item 11: report, chart).
        if type(exc) is not sqlite3.DatabaseError:
            raise
        reason = str(exc).strip().splitlines()[0]
        raise DatabaseUnavailable(
            f"cannot use database {redact(url)}: {reason} (restore the file from a backup, or "
            "point --url at another registry)"
        ) from None


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
