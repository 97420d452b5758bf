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
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from problem_registry.store.tables import ReplayLease

_LEASE: sa.Table = ReplayLease.__table__  # type: ignore[attr-defined]


def database_now(session: Session) -> float:
    """The database server's clock, in epoch seconds."""
    if session.get_bind().dialect.name == "postgresql":
        query = "SELECT extract(epoch FROM clock_timestamp())"
    else:
        query = "SELECT (julianday('now') - 2440587.5) * 86400.0"
    return float(session.execute(sa.text(query)).scalar_one())


@dataclass(frozen=True)
class Claimed:
    """The versions now held for a block, and those of them taken over from another runner
    (whose lease expired: it may have stored part of the block)."""

    versions: list[int]
    taken_over: set[int]


def claim(
    session: Session, version_ids: Sequence[int], block: int, holder: str, seconds: float
) -> Claimed:
    """Claim ``block`` for each of ``version_ids`` that no other runner holds a live lease on."""
    if not version_ids:
        return Claimed([], set())
    now = database_now(session)
    before = {
        version: owner
        for version, owner, expires in session.execute(
            sa.select(_LEASE.c.model_version_id, _LEASE.c.holder, _LEASE.c.expires_at).where(
                _LEASE.c.block == block, _LEASE.c.model_version_id.in_(list(version_ids))
            )
        )
        if owner != holder and expires < now  # expired: ours to take over, with a re-check
    }
    rows = [
        {"model_version_id": v, "block": block, "holder": holder, "expires_at": now + seconds}
        for v in version_ids
    ]
    insert: Any
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(_LEASE).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["model_version_id", "block"],
        set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
        where=sa.or_(_LEASE.c.expires_at < now, _LEASE.c.holder == holder),
    ).returning(_LEASE.c.model_version_id)
    held = sorted(int(v) for v in session.execute(statement).scalars())
    return Claimed(held, {v for v in held if v in before})


def renew(session: Session, holder: str, seconds: float) -> None:
    """Push back the expiry of every lease ``holder`` holds (the runner is alive)."""
    now = database_now(session)
    session.execute(
        sa.update(_LEASE).where(_LEASE.c.holder == holder).values(expires_at=now + seconds)
    )


def release(
    session: Session,
    holder: str,
    version_ids: Sequence[int] | None = None,
    block: int | None = None,
) -> None:
    """Drop ``holder``'s leases: of one block's versions, or all of them."""
    query = sa.delete(_LEASE).where(_LEASE.c.holder == holder)
    if block is not None:
        query = query.where(_LEASE.c.block == block)
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
