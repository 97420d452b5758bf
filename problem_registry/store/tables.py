"""The registry's tables, and nothing else: no I/O, no queries.

The rules that keep the registry consistent live in the database itself (unique keys, foreign keys,
check constraints, a partial unique index for the champion), so a second writer, a script with raw
SQL or an interrupted command cannot break them either.

Results are the big table (1,000 problems x 15 patterns x 100 versions = 1.5 M rows): they are keyed
by two integers, the model version and the pattern *content* (``pattern_file``), not by the 64-byte
hash, and on SQLite the table is ``WITHOUT ROWID`` so the primary key is the table.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from problem_registry.enums import (
    ExpectKind,
    LoaderKind,
    PatternKind,
    Polarity,
    ProblemStatus,
    RunStatus,
    Source,
)

# Deterministic constraint names: Alembic needs them to alter tables (SQLite batch mode rebuilds
# tables by name) and they keep PostgreSQL and SQLite schemas identical.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _Keyed(Protocol):
    id: int | None


def stored_id(row: _Keyed) -> int:
    """The id of a row read from the database or flushed to it: ``id`` is None only before that."""
    if row.id is None:
        raise RuntimeError(f"{type(row).__name__} has no id: it was never flushed to the database")
    return row.id


def _one_of(column: str, enum: type[Enum]) -> sa.CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return sa.CheckConstraint(f"{column} IN ({values})", name=f"{column}_valid")


def _partial_unique_index(name: str, *columns: str, where: str) -> sa.Index:
    """A unique index over the rows where ``where`` holds, on SQLite and PostgreSQL alike.

    The clause reaches the backend's DDL when the index is created (``before_create``), not at
    construction: ``postgresql_where=`` there makes SQLAlchemy import its PostgreSQL dialect to
    validate the name, a share of every command's start-up for SQLite users too. The
    DDL is unchanged; the registry's own schema comes from the Alembic migrations, which name
    both clauses themselves.
    """
    index = sa.Index(name, *columns, unique=True)

    @sa.event.listens_for(index, "before_create")
    def _add_where(target: sa.Index, connection: Any, **_kw: Any) -> None:
        dialect = connection.dialect.name
        if dialect in ("sqlite", "postgresql"):
            target.dialect_options[dialect]["where"] = sa.text(where)

    return index


def _timestamp(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), **kwargs)


class Problem(SQLModel, table=True):
    __tablename__ = "problem"
    __table_args__ = (
        _one_of("status", ProblemStatus),
        sa.CheckConstraint(
            "max_error_rate IS NULL OR (max_error_rate >= 0 AND max_error_rate <= 1)",
            name="max_error_rate_range",
        ),
        sa.CheckConstraint("allowed_regressions >= 0", name="allowed_regressions_range"),
    )

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=100, unique=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_type=sa.Text)
    status: str = Field(default=ProblemStatus.open.value, max_length=16)
    tags: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    max_error_rate: float | None = Field(default=None)
    allowed_regressions: int = Field(default=0)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class PatternFile(SQLModel, table=True):
    """One stored input file, shared by every pattern (in any problem) with the same content."""

    __tablename__ = "pattern_file"
    __table_args__ = (_one_of("kind", PatternKind),)

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, unique=True)
    kind: str = Field(max_length=8)
    extension: str = Field(max_length=8)
    size_bytes: int


class Pattern(SQLModel, table=True):
    __tablename__ = "pattern"
    __table_args__ = (
        sa.UniqueConstraint("problem_id", "file_id"),
        _one_of("expect_kind", ExpectKind),
        _one_of("polarity", Polarity),
        _one_of("source", Source),
        sa.CheckConstraint(
            "(expect_kind = 'range') = (expect_min IS NOT NULL AND expect_max IS NOT NULL"
            " AND expect_min <= expect_max)",
            name="expect_range_bounds",
        ),
        # Everything scoring reads from a pattern, in problem order: SQLite's error-rate query
        # walks versions x this index and looks each result up by its primary key, so it needs
        # neither a table lookup per pattern nor a sort of 1.5 M rows.
        sa.Index(
            "ix_pattern_scoring",
            "problem_id",
            "polarity",
            "file_id",
            "id",
            "expect_kind",
            "expect_min",
            "expect_max",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    problem_id: int = Field(foreign_key="problem.id", ondelete="CASCADE")
    file_id: int = Field(foreign_key="pattern_file.id", ondelete="RESTRICT", index=True)
    original_name: str = Field(max_length=255)
    expect_kind: str = Field(max_length=8)
    expect_min: float | None = None
    expect_max: float | None = None
    polarity: str = Field(max_length=8)
    source: str = Field(default=Source.contrived.value, max_length=16)
    note: str = Field(default="", sa_type=sa.Text)
    added_by: str = Field(max_length=100)
    added_at: datetime = _timestamp()


class ExpectedLabel(SQLModel, table=True):
    """Labels of an exact / any-of / forbidden expectation: a table, so SQL can score results."""

    __tablename__ = "expected_label"

    pattern_id: int = Field(foreign_key="pattern.id", ondelete="CASCADE", primary_key=True)
    label: str = Field(max_length=200, primary_key=True)


class ModelVersion(SQLModel, table=True):
    __tablename__ = "model_version"
    __table_args__ = (
        sa.UniqueConstraint("name", "version"),
        _one_of("loader_kind", LoaderKind),
        # At most one champion per model name, enforced by the database on both backends.
        _partial_unique_index("uq_model_version_champion", "name", where="is_champion"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    version: str = Field(max_length=100)
    loader_kind: str = Field(default=LoaderKind.python.value, max_length=16)
    loader: str = Field(sa_type=sa.Text)
    artifact_path: str | None = Field(default=None, sa_type=sa.Text)
    artifact_sha256: str | None = Field(default=None, max_length=64)
    # The adapter's settings as compact JSON (an ONNX class list, an endpoint's batch size...):
    # never credentials, which come from the environment when the version loads.
    loader_options: str | None = Field(default=None, sa_type=sa.Text)
    # How many times replay asks the model for each pattern: above 1 for a model whose answers
    # vary (sampling, dropout at inference), so its gates judge the rate, not one draw.
    repeats: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    # The pattern kind its model takes ("image", "text", "json"), when the registrar declared it:
    # a problem of this model refuses patterns of another kind (issue 19, item 3).
    input_kind: str | None = Field(default=None, max_length=8)
    is_champion: bool = Field(default=False)
    note: str = Field(default="", sa_type=sa.Text)
    registered_by: str = Field(max_length=100)
    registered_at: datetime = _timestamp()


class ResultRepeat(SQLModel, table=True):
    """A non-deterministic version's further answers on one pattern content (repeat 1, 2...): the
    first is its :class:`Result`, written in the same transaction as these."""

    __tablename__ = "result_repeat"
    __table_args__ = ({"sqlite_with_rowid": False},)

    model_version_id: int = Field(
        foreign_key="model_version.id", ondelete="CASCADE", primary_key=True
    )
    file_id: int = Field(foreign_key="pattern_file.id", ondelete="CASCADE", primary_key=True)
    repeat: int = Field(primary_key=True)
    predicted: str | None = Field(default=None, sa_type=sa.Text)
    value: float | None = None
    error: str | None = Field(default=None, sa_type=sa.Text)
    scores: str | None = Field(default=None, sa_type=sa.Text)


class ModelMetric(SQLModel, table=True):
    """A version's headline metric (``auc=0.91``), drawn beside the problems' error rates."""

    __tablename__ = "model_metric"

    model_version_id: int = Field(
        foreign_key="model_version.id", ondelete="CASCADE", primary_key=True
    )
    name: str = Field(max_length=100, primary_key=True)
    value: float


class Run(SQLModel, table=True):
    __tablename__ = "run"
    __table_args__ = (_one_of("status", RunStatus),)

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=RunStatus.running.value, max_length=16)
    trigger: str = Field(max_length=32)
    triggered_by: str = Field(max_length=100)
    git_commit: str | None = Field(default=None, max_length=64)
    candidate_id: int | None = Field(
        default=None, foreign_key="model_version.id", ondelete="SET NULL"
    )
    started_at: datetime = _timestamp()
    finished_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    predicted: int = 0
    reused: int = 0
    errored: int = 0
    message: str = Field(default="", sa_type=sa.Text)


class Result(SQLModel, table=True):
    """A model version's stored answer on one pattern content; correctness is derived, never stored.

    ``predicted`` is the label as text; ``value`` is the same answer as a number when it is one, so
    range expectations are scored in SQL. ``error`` holds the exception when the model raised.
    ``scores`` holds the model's per-label probabilities when it gave them, as compact JSON with
    sorted keys (``adapters.scores_json``), read back against the *current* expectation.
    """

    __tablename__ = "result"
    __table_args__ = ({"sqlite_with_rowid": False},)

    model_version_id: int = Field(
        foreign_key="model_version.id", ondelete="CASCADE", primary_key=True
    )
    # Indexed on its own too: the per-problem history reads every version's answer on one content.
    file_id: int = Field(
        foreign_key="pattern_file.id", ondelete="CASCADE", primary_key=True, index=True
    )
    predicted: str | None = Field(default=None, sa_type=sa.Text)
    value: float | None = None
    confidence: float | None = None
    latency_ms: float | None = None
    error: str | None = Field(default=None, sa_type=sa.Text)
    run_id: int | None = Field(default=None, foreign_key="run.id", ondelete="SET NULL")
    scores: str | None = Field(default=None, sa_type=sa.Text)


class ProblemModel(SQLModel, table=True):
    """A model, by name, that a problem belongs to: replayed and judged against its versions only.

    A problem naming no model belongs to every model (as before issue 19, item 3). By name, not by
    version: every later version of the model inherits the problem.
    """

    __tablename__ = "problem_model"

    problem_id: int = Field(foreign_key="problem.id", ondelete="CASCADE", primary_key=True)
    model_name: str = Field(max_length=100, primary_key=True)


class SignOff(SQLModel, table=True):
    """A lead's acceptance of a problem at a version, with the numbers as they were then.

    A later version of the same model that is confidently worse than this one on the problem
    fails its gate (``verdicts.signoffs``). The numbers are kept as signed, not recomputed: a
    relabel later changes the live numbers, never what was accepted.
    """

    __tablename__ = "signoff"

    id: int | None = Field(default=None, primary_key=True)
    problem_id: int = Field(foreign_key="problem.id", ondelete="CASCADE", index=True)
    model_version_id: int = Field(foreign_key="model_version.id", ondelete="CASCADE")
    signed_by: str = Field(max_length=100)
    signed_at: datetime = _timestamp()
    note: str = Field(default="", sa_type=sa.Text)
    answered: int
    wrong: int
    error_rate: float | None = None
    interval_low: float | None = None
    interval_high: float | None = None


class TriageBatch(SQLModel, table=True):
    """One production batch as ingested (issue 20): its cases' identity, so re-ingesting adds
    nothing, and the unit the drift signal compares."""

    __tablename__ = "triage_batch"

    id: int | None = Field(default=None, primary_key=True)
    # sha256 over its cases' sorted keys: the same rows, in any order or format, are one batch.
    digest: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=255)
    cases: int = 0
    ingested_by: str = Field(max_length=100)
    ingested_at: datetime = _timestamp()


class TriageCase(SQLModel, table=True):
    """One production prediction awaiting a tester: its input (content-addressed in the pattern
    store, not yet a pattern), who answered what, and what a user said of it."""

    __tablename__ = "triage_case"
    __table_args__ = (
        _one_of("kind", PatternKind),
        sa.CheckConstraint("status IN ('queued', 'accepted', 'discarded')", name="status_valid"),
        sa.Index("ix_triage_case_status_model", "status", "model"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # sha256 of the row's identity (input, version, answer, confidence, scores, rating,
    # correction): ingesting the same row twice finds it here.
    key: str = Field(max_length=64, unique=True)
    batch_id: int = Field(foreign_key="triage_batch.id", ondelete="CASCADE", index=True)
    sha256: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=8)
    extension: str = Field(max_length=8)
    size_bytes: int
    original_name: str = Field(max_length=255)
    # An image's 64-bit perceptual hash (imagehash.dhash) as 16 hex digits, made at ingest so
    # ranking and "more like this" never decode the inputs again; NULL for text and JSON.
    fingerprint: str | None = Field(default=None, max_length=16)
    model: str = Field(max_length=201)  # NAME@VERSION that answered in production
    predicted: str = Field(sa_type=sa.Text)
    confidence: float | None = None
    scores: str | None = Field(default=None, sa_type=sa.Text)  # compact JSON, sorted keys
    rating: int | None = None  # 1 (bad) .. 5 (good)
    correction: str | None = Field(default=None, max_length=200)
    status: str = Field(default="queued", max_length=16)
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    reason: str = Field(default="", sa_type=sa.Text)  # why discarded, or where accepted
    pattern_id: int | None = Field(default=None, foreign_key="pattern.id", ondelete="SET NULL")


class TriageAnswer(SQLModel, table=True):
    """A registered version's answer on a case's input, replayed for the queue's disagreement
    reason: cached like a result, keyed by content, so no (version, input) is predicted twice.

    Its own table rather than ``result``: a result's file must be a ``pattern_file`` row, and
    content rows no pattern uses would cost every warm replay its one-``count(*)`` completeness
    check (replay.missing).
    """

    __tablename__ = "triage_answer"
    __table_args__ = ({"sqlite_with_rowid": False},)

    model_version_id: int = Field(
        foreign_key="model_version.id", ondelete="CASCADE", primary_key=True
    )
    sha256: str = Field(max_length=64, primary_key=True)
    predicted: str | None = Field(default=None, sa_type=sa.Text)
    confidence: float | None = None
    scores: str | None = Field(default=None, sa_type=sa.Text)
    error: str | None = Field(default=None, sa_type=sa.Text)


class PatternBlob(SQLModel, table=True):
    """Stored content's bytes, in the database itself (issue 17): the URL is the whole registry.

    Keyed by the content's sha256, so one copy per content whatever the number of patterns,
    problems and production cases using it, and written in the transaction that writes the
    first row naming it: a ``pattern_file`` row or a ``triage_case`` (issue 20; no foreign key,
    since either may name it). It goes when neither does (``store.unreferenced``). The files
    under ``patterns/`` are a local cache of these rows, verified by the same hash.
    """

    __tablename__ = "pattern_blob"

    sha256: str = Field(max_length=64, primary_key=True)
    data: bytes = Field(sa_type=sa.LargeBinary)


class ReplayLease(SQLModel, table=True):
    """A runner's claim on one block of pattern files for one version while it predicts them.

    Concurrent replays claim disjoint (version, block) pairs, so no pair is predicted twice; a
    lease that is not renewed (its runner was killed) expires and another runner takes the work
    over. ``expires_at`` is the database's clock in epoch seconds, so runners' clocks never
    disagree about it. A lease is deleted once its block's results are stored.
    """

    __tablename__ = "replay_lease"

    model_version_id: int = Field(
        foreign_key="model_version.id", ondelete="CASCADE", primary_key=True
    )
    block: int = Field(primary_key=True)
    holder: str = Field(max_length=100, index=True)
    expires_at: float
