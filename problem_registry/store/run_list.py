"""Recent replay runs, for ``run list`` (issue 19, item 11): what ran, on which versions, when.

Each run with its status, trigger, who, commit, candidate, start and end, its counts, its message
(the first reasons a version was unavailable, an interruption) and the versions it stored
results for, read from the results the run wrote (``result.run_id``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from problem_registry.redaction import redact_text
from problem_registry.refs import format_ref
from problem_registry.store.tables import ModelVersion, Result, Run
from problem_registry.store.views import iso

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry

_RUN = Run.__table__  # type: ignore[attr-defined]
_VERSION = ModelVersion.__table__  # type: ignore[attr-defined]
_RESULT = Result.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RunView:
    id: int
    status: str
    trigger: str
    triggered_by: str
    git_commit: str | None
    candidate: str | None
    started_at: str | None
    finished_at: str | None
    seconds: float | None
    predicted: int
    reused: int
    errored: int
    message: str
    versions: list[str]  # the versions this run stored results for, in registration order
    first_error: str  # one stored error of the run, one line ("digits@v2: ValueError: ..."), or ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recent_runs(registry: Registry, *, last: int = 20) -> list[RunView]:
    """The ``last`` most recent runs, newest first."""
    candidate = _VERSION.alias("candidate")
    query = (
        sa.select(
            _RUN.c.id,
            _RUN.c.status,
            _RUN.c.trigger,
            _RUN.c.triggered_by,
            _RUN.c.git_commit,
            candidate.c.name,
            candidate.c.version,
            _RUN.c.started_at,
            _RUN.c.finished_at,
            _RUN.c.predicted,
            _RUN.c.reused,
            _RUN.c.errored,
            _RUN.c.message,
        )
        .outerjoin(candidate, candidate.c.id == _RUN.c.candidate_id)
        .order_by(_RUN.c.id.desc())
        .limit(last)
    )
    with registry.reading() as session:
        rows = session.execute(query).all()
        ids = [row[0] for row in rows]
        touched = (
            session.execute(
                sa.select(
                    _RESULT.c.run_id,
                    _VERSION.c.name,
                    _VERSION.c.version,
                    sa.func.min(_RESULT.c.error),
                )
                .join(_VERSION, _VERSION.c.id == _RESULT.c.model_version_id)
                .where(_RESULT.c.run_id.in_(ids))
                .group_by(_RESULT.c.run_id, _VERSION.c.id, _VERSION.c.name, _VERSION.c.version)
                .order_by(_RESULT.c.run_id, _VERSION.c.id)
            ).all()
            if ids
            else []
        )
    versions: dict[int, list[str]] = {}
    errors: dict[int, str] = {}
    for run_id, name, version, error in touched:
        ref = format_ref(name, version)
        versions.setdefault(run_id, []).append(ref)
        if error is not None and run_id not in errors:
            errors[run_id] = f"{ref}: {_one_line(error)}"

    out = []
    for row in rows:
        started, finished = row[7], row[8]
        seconds = None
        if started is not None and finished is not None:
            seconds = round((_aware(finished) - _aware(started)).total_seconds(), 2)
        out.append(
            RunView(
                id=row[0],
                status=row[1],
                trigger=row[2],
                triggered_by=row[3],
                git_commit=row[4],
                candidate=format_ref(row[5], row[6]) if row[5] is not None else None,
                started_at=iso(started),
                finished_at=iso(finished),
                seconds=seconds,
                predicted=row[9],
                reused=row[10],
                errored=row[11],
                message=row[12] or "",
                versions=versions.get(row[0], []),
                first_error=errors.get(row[0], ""),
            )
        )
    return out


def _one_line(error: str, limit: int = 200) -> str:
    """A stored error's first line, credentials hidden, cut at ``limit`` characters."""
    lines = error.strip().splitlines()
    line = redact_text(lines[0].strip() if lines else "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _aware(moment: Any) -> Any:
    from datetime import timezone

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
