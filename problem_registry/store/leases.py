"""Replay leases in SQL: claim, renew, release and look at (version, block) work (issue 17).

A claim is one statement on both backends::

    INSERT INTO replay_lease (...) VALUES (...), (...)
    ON CONFLICT (model_version_id, block) DO UPDATE SET holder = excluded.holder, ...
    WHERE replay_lease.expires_at < :now OR replay_lease.holder = :me
    RETURNING model_version_id

It returns exactly the rows this runner now holds: new ones, its own renewed, and expired ones
taken over. On PostgreSQL, two runners claiming the same row at once serialise on its row lock
and the second re-reads the WHERE against the first's committed row, so it gets nothing: the
effect of ``SELECT ... FOR UPDATE SKIP LOCKED`` on pre-made work rows, without making the rows
first. On SQLite the writer lock (``BEGIN IMMEDIATE``) serialises claims. Time is the database's
clock, so runners on machines whose clocks disagree still agree on when a lease expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from problem_registry.store.tables import ReplayLease

_LEASE: sa.Table = ReplayLease.__table__  # type: ignore[attr-defined]
# Rows per INSERT: four bound values each, under SQLite's limit of 32,766 variables.
_ROWS_PER_STATEMENT = 4000


def database_now(session: Session) -> float:
    """The database server's clock, in epoch seconds."""
    if session.get_bind().dialect.name == "postgresql":
        query = "SELECT extract(epoch FROM clock_timestamp())"
    else:
        query = "SELECT (julianday('now') - 2440587.5) * 86400.0"
    return float(session.execute(sa.text(query)).scalar_one())


def claim(
    session: Session,
    version_ids: Sequence[int],
    blocks: Sequence[int],
    holder: str,
    seconds: float,
) -> set[tuple[int, int]]:
    """Claim every (version, block) of ``version_ids`` x ``blocks`` that no other runner holds
    a live lease on; the pairs this runner now holds."""
    if not version_ids or not blocks:
        return set()
    now = database_now(session)
    rows = [
        {"model_version_id": v, "block": b, "holder": holder, "expires_at": now + seconds}
        for v in version_ids
        for b in blocks
    ]
    insert: Any
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    held: set[tuple[int, int]] = set()
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        statement = insert(_LEASE).values(rows[start : start + _ROWS_PER_STATEMENT])
        statement = statement.on_conflict_do_update(
            index_elements=["model_version_id", "block"],
            set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
            where=sa.or_(_LEASE.c.expires_at < now, _LEASE.c.holder == holder),
        ).returning(_LEASE.c.model_version_id, _LEASE.c.block)
        held.update((int(v), int(b)) for v, b in session.execute(statement))
    return held


def renew(session: Session, holder: str, seconds: float) -> None:
    """Push back the expiry of every lease ``holder`` holds (the runner is alive)."""
    now = database_now(session)
    session.execute(
        sa.update(_LEASE).where(_LEASE.c.holder == holder).values(expires_at=now + seconds)
    )


def release(session: Session, holder: str, version_ids: Sequence[int] | None = None) -> None:
    """Drop ``holder``'s leases: on these versions, or all of them."""
    query = sa.delete(_LEASE).where(_LEASE.c.holder == holder)
    if version_ids is not None:
        query = query.where(_LEASE.c.model_version_id.in_(list(version_ids)))
    session.execute(query)


def live_leases(session: Session, keys: set[tuple[int, int]], holder: str) -> int:
    """How many of the (version, block) ``keys`` another runner holds a live lease on."""
    if not keys:
        return 0
    now = database_now(session)
    versions = sorted({version for version, _ in keys})
    rows = session.execute(
        sa.select(_LEASE.c.model_version_id, _LEASE.c.block).where(
            _LEASE.c.model_version_id.in_(versions),
            _LEASE.c.holder != holder,
            _LEASE.c.expires_at >= now,
        )
    )
    return sum(1 for version, block in rows if (version, block) in keys)
