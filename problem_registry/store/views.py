"""Read-only shapes the library hands out: detached from any session, ready for ``--json``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlmodel import SQLModel


def iso(moment: datetime | None) -> str | None:
    """UTC, second precision, ``Z`` suffix: the same text on SQLite (naive) and PostgreSQL."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ProblemView(SQLModel):
    slug: str
    title: str
    description: str
    status: str
    tags: list[str]
    # The models it belongs to, by name; empty: every model (issue 19, item 3).
    models: list[str] = []
    max_error_rate: float | None
    allowed_regressions: int
    patterns: int
    positives: int
    negatives: int
    created_at: str | None
    updated_at: str | None


class PatternView(SQLModel):
    id: int
    problem: str
    sha256: str
    kind: str
    file: str
    original_name: str
    expect: dict[str, Any]
    expected: str
    polarity: str
    source: str
    note: str
    added_by: str
    added_at: str | None


class ModelVersionView(SQLModel):
    name: str
    version: str
    ref: str
    loader_kind: str
    loader: str
    artifact_path: str | None
    artifact_sha256: str | None
    loader_options: dict[str, Any] = {}
    repeats: int = 1  # answers asked per pattern: above 1 for a non-deterministic model
    input_kind: str | None = None  # the pattern kind the model takes, when declared
    is_champion: bool
    metrics: dict[str, float]
    note: str
    registered_by: str
    registered_at: str | None
