"""Replay's answers as stored rows, and their bulk insert: the hot path of a cold replay.

A cold replay stores one row per (version, pattern file), 1.5 M at full scale, so each row costs
only what it must (the benchmark holds the tool's own cost per stored result within 3x a raw
``executemany`` of the same rows). Rows are plain tuples in :data:`COLUMNS` order, and a flush is
one ``executemany`` of one prepared ``INSERT ... ON CONFLICT DO NOTHING`` through the driver:
SQLAlchemy's Core insert of dicts cost twice the raw call and the ORM far more. ``ON CONFLICT DO
NOTHING`` keeps two runners replaying the same version at once from storing a pair twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from problem_registry.adapters import normalise, scores_json
from problem_registry.redaction import redact_text
from problem_registry.text import MAX_ANSWER_LENGTH, MAX_ERROR_LENGTH, stored_text

COLUMNS = (
    "model_version_id",
    "file_id",
    "predicted",
    "value",
    "confidence",
    "latency_ms",
    "error",
    "run_id",
    "scores",
)
Row = tuple[Any, ...]
# A non-deterministic version's answers after the first (``result_repeat``): the first's columns
# a repeat keeps, and its number.
REPEAT_COLUMNS = ("model_version_id", "file_id", "repeat", "predicted", "value", "error", "scores")
_KEPT = [COLUMNS.index(name) for name in REPEAT_COLUMNS if name != "repeat"]


def result_row(version_id: int, file_id: int, output: Any, latency_ms: float, run_id: int) -> Row:
    """One answer as stored; an exception (the model's) or an unusable output is an error row.

    ``latency_ms`` is stored as given: the caller rounds it once per batch, not once per row.
    Every text the model wrote passes :func:`~problem_registry.text.stored_text` here, the one
    place rows are made: a NUL or lone surrogate in a label or an exception message is stored
    escaped, and an overlong label cut, rather than failing the write (issue 16, items 8, 12).
    """
    latency = latency_ms
    kind = type(output)
    # The common case first: a classifier's label (numpy's tolist() gives int).
    if kind is int and -(2**53) < output < 2**53:
        return (version_id, file_id, str(output), float(output), None, latency, None, run_id, None)
    if isinstance(output, BaseException):
        return (version_id, file_id, None, None, None, latency, error_text(output), run_id, None)
    try:
        predicted, value, confidence, scores = normalise(output)
    except ValueError as exc:
        error = stored_text(f"unusable output: {exc}", MAX_ERROR_LENGTH)
        return (version_id, file_id, None, None, None, latency, error, run_id, None)
    text = None if scores is None else scores_json(scores)
    predicted = stored_text(predicted, MAX_ANSWER_LENGTH)
    return (version_id, file_id, predicted, value, confidence, latency, None, run_id, text)


def is_error(row: Row) -> bool:
    return row[6] is not None


def error_text(exc: BaseException) -> str:
    text = str(exc)
    if type(exc).__name__ != "MissingPrediction":
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return stored_text(text, MAX_ERROR_LENGTH)


MAX_ERROR_LINE = 200


def error_line(text: str) -> str:
    """A stored error as one short line for a summary: its first line, credentials hidden."""
    lines = text.strip().splitlines()
    line = redact_text(lines[0].strip() if lines else "")
    return line if len(line) <= MAX_ERROR_LINE else line[: MAX_ERROR_LINE - 3] + "..."


def repeat_row(row: Row, repeat: int) -> Row:
    """A :func:`result_row` as answer number ``repeat`` (1, 2...), in :data:`REPEAT_COLUMNS`."""
    version_id, file_id, *rest = (row[i] for i in _KEPT)
    return (version_id, file_id, repeat, *rest)


def insert_results(session: Session, rows: Sequence[Row], *, replace_errored: bool = False) -> None:
    """Insert ``rows`` (tuples in :data:`COLUMNS` order), skipping pairs already stored.

    ``replace_errored`` (``replay --retry-errored``): a stored result that is an error is
    replaced by the new answer; a stored answer is still never touched, so two runners retrying
    at once agree.
    """
    _insert(session, "result", COLUMNS, 2, rows, replace_errored)


def insert_repeats(session: Session, rows: Sequence[Row], *, replace_errored: bool = False) -> None:
    """Insert :func:`repeat_row` rows as :func:`insert_results` does its own."""
    _insert(session, "result_repeat", REPEAT_COLUMNS, 3, rows, replace_errored)


def _insert(
    session: Session,
    table: str,
    columns: Sequence[str],
    key_width: int,
    rows: Sequence[Row],
    replace_errored: bool,
) -> None:
    """One prepared ``INSERT ... ON CONFLICT`` on the key (the first ``key_width`` columns)."""
    if not rows:
        return
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    conflict = "DO NOTHING"
    if replace_errored:
        # The same ON CONFLICT ... DO UPDATE ... WHERE on SQLite (3.24+) and PostgreSQL.
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[key_width:])
        conflict = f"DO UPDATE SET {updates} WHERE {table}.error IS NOT NULL"
    statement = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(mark for _ in columns)})"
        f" ON CONFLICT ({', '.join(columns[:key_width])}) {conflict}"
    )
    connection.exec_driver_sql(statement, list(rows))
