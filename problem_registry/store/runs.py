"""Runs: the record of each replay (who or what triggered it, on which commit, what it did).

:func:`problem_registry.replay.engine.replay` opens and closes its own Run unless handed one; the
pytest plugin opens one per session with :func:`start_run`, passes its id to every replay it makes
(which only add their counts) and closes it with :func:`finish_run`.

A Run still ``running`` holds ``running as pid N on HOST`` in its message (replaced when it is
closed). A process killed outright (kill -9, a lost machine) never closes its Run:
:func:`close_abandoned_runs`, called by every replay, marks ``interrupted`` the running Runs whose
process on this host no longer exists. Runs opened on another host are left alone.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from problem_registry.enums import RunStatus
from problem_registry.refs import ModelRef
from problem_registry.store.model_versions import version_ids
from problem_registry.store.registry import Registry
from problem_registry.store.tables import Result, Run, utcnow
from problem_registry.text import MAX_MESSAGE_LENGTH, MAX_USER_LENGTH, stored_text

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult


def start_run(
    registry: Registry,
    *,
    trigger: str,
    triggered_by: str | None = None,
    candidate: ModelRef | None = None,
    git_commit: str | None = None,
) -> int:
    """Open a Run (status ``running``); its id. The commit defaults to ``git rev-parse HEAD``.

    Written with Core, not as an ORM ``Run``: the ORM's first flush in a process configures every
    mapper, a measurable share of a warm replay, which otherwise uses no ORM object. The row is
    the one the ORM wrote: every column set, defaults included.
    """
    candidate_id = None
    if candidate is not None:
        with registry.reading() as session:
            candidate_id = version_ids(session, [candidate])[candidate]
    table = Run.__table__  # type: ignore[attr-defined]
    row = {
        "status": RunStatus.running.value,
        "trigger": trigger[:32],
        # Who ran it is a record, not content: a name that is not UTF-8 ($USER, --user) is kept
        # escaped rather than failing the replay with a traceback (issue 16, item 11).
        "triggered_by": stored_text(triggered_by or registry.user, MAX_USER_LENGTH),
        "git_commit": git_commit or current_git_commit(),
        "candidate_id": candidate_id,
        "started_at": utcnow(),
        "finished_at": None,
        "predicted": 0,
        "reused": 0,
        "errored": 0,
        "message": _running_as(os.getpid()),
    }
    with registry.writing() as session:
        # An INSERT's result is a CursorResult; Session.execute is typed for any statement.
        result = cast("CursorResult[Any]", session.execute(sa.insert(table).values(row)))
        key = result.inserted_primary_key
        assert key is not None  # a single-row INSERT always has its key row
        run_id = key[0]
        assert run_id is not None
        return int(run_id)


_RUNNING_AS = re.compile(r"^running as pid (\d+) on (.+)$")


def _running_as(pid: int) -> str:
    return f"running as pid {pid} on {socket.gethostname()}"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def close_abandoned_runs(registry: Registry) -> list[int]:
    """Mark ``interrupted`` every running Run whose process (on this host) is gone; their ids.

    Such a Run was left by a process killed before it could close it (SIGKILL, out of memory).
    What it predicted is stored and the next replay resumes after it, so it is resumable like
    any interrupted Run. A Run of another host, or of a live process, is left running.
    """
    table = Run.__table__  # type: ignore[attr-defined]
    host = socket.gethostname()
    with registry.reading() as session:
        rows = session.execute(
            sa.select(table.c.id, table.c.message).where(table.c.status == RunStatus.running.value)
        ).all()
    abandoned = []
    for run_id, message in rows:
        match = _RUNNING_AS.match(message or "")
        if match and match.group(2) == host and not _process_exists(int(match.group(1))):
            abandoned.append((run_id, int(match.group(1))))
    results = Result.__table__  # type: ignore[attr-defined]
    for run_id, pid in abandoned:
        with registry.writing() as session:
            # Its counts were to be added when it closed: a killed run recorded "predicted 0"
            # however much it stored (issue 16, item 13). Its stored rows carry its id.
            predicted, errored = session.execute(
                sa.select(sa.func.count(), sa.func.count(results.c.error)).where(
                    results.c.run_id == run_id
                )
            ).one()
            session.execute(
                sa.update(table)
                .where(table.c.id == run_id, table.c.status == RunStatus.running.value)
                .values(
                    predicted=predicted,
                    errored=errored,
                    status=RunStatus.interrupted.value,
                    message=f"interrupted: process {pid} on {host} ended without closing this "
                    "run (killed?); what it stored is kept, re-run to resume",
                    finished_at=utcnow(),
                )
            )
    return [run_id for run_id, _pid in abandoned]


def record_counts(
    registry: Registry, run_id: int, *, predicted: int = 0, reused: int = 0, errored: int = 0
) -> None:
    """Add to a Run's counts (several replays may feed one pytest session's Run)."""
    _update(registry, run_id, predicted=predicted, reused=reused, errored=errored)


def finish_run(
    registry: Registry,
    run_id: int,
    *,
    status: str,
    message: str = "",
    predicted: int = 0,
    reused: int = 0,
    errored: int = 0,
) -> None:
    """Close a Run: ``completed``, ``interrupted`` (resumable) or ``failed``, adding any counts."""
    _update(
        registry,
        run_id,
        predicted=predicted,
        reused=reused,
        errored=errored,
        status=RunStatus(status).value,
        # A reason can quote a model's exception: NUL or a lone surrogate must not lose the run.
        message=stored_text(message, MAX_MESSAGE_LENGTH),
        finished_at=utcnow(),
    )


def _update(
    registry: Registry, run_id: int, *, predicted: int, reused: int, errored: int, **values: object
) -> None:
    # Increments in SQL, not read-modify-write: xdist workers may add to one Run at once.
    table = Run.__table__  # type: ignore[attr-defined]
    with registry.writing() as session:
        session.execute(
            sa.update(table)
            .where(table.c.id == run_id)
            .values(
                predicted=table.c.predicted + predicted,
                reused=table.c.reused + reused,
                errored=table.c.errored + errored,
                **values,
            )
        )


def current_git_commit() -> str | None:
    """HEAD of the working directory's repository, else the CI's own variable, else None."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        commit = done.stdout.strip()
        if done.returncode == 0 and len(commit) in (40, 64):
            return commit
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("GITHUB_SHA") or os.environ.get("CI_COMMIT_SHA") or None
