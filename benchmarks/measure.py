"""How every timed command is run: as a child process, so start-up is counted honestly.

Wall time comes from ``perf_counter`` around the child; peak memory from ``os.wait4``, which gives
the rusage of that one child (``RUSAGE_CHILDREN`` would give the maximum over every child so far,
so a second, smaller run would report the first one's peak).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path


class ChildFailed(RuntimeError):
    """A benchmarked command exited with a status it should not have: its output says why."""


@dataclass(frozen=True)
class Child:
    """One finished child: wall seconds, CPU seconds, peak resident memory (MB), status, output."""

    seconds: float
    cpu_seconds: float  # user + system: what the child itself spent, whatever else ran
    max_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def cli() -> str:
    """The installed ``problem-registry`` script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "problem-registry"
    found = str(beside) if beside.is_file() else shutil.which("problem-registry")
    if found is None:
        raise ChildFailed(
            "problem-registry is not installed in this environment (pip install -e .)"
        )
    return found


def run_child(
    args: Sequence[str],
    *,
    cwd: Path,
    ok: Sequence[int] = (0,),
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> Child:
    """Run ``args`` in ``cwd``; :class:`ChildFailed` with its stderr if it exits outside ``ok``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(args), cwd=cwd, stdout=out, stderr=err, env={**os.environ, **(env or {})}
        )
        # A timer, not polling: polling would add its interval to every measured wall time.
        watchdog = threading.Timer(timeout, process.kill) if timeout else None
        if watchdog:
            watchdog.start()
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        if watchdog:
            watchdog.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        child = Child(
            seconds,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024,  # kilobytes on Linux
            process.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )
    if timeout and seconds >= timeout:
        raise ChildFailed(f"{' '.join(args)} took longer than {timeout} s and was stopped")
    if child.returncode not in ok:
        raise ChildFailed(
            f"{' '.join(args)} exited {child.returncode}:\n"
            f"{child.stderr[-3000:]}{child.stdout[-2000:]}"
        )
    return child


def median_seconds(repeats: int, run: Callable[[], float]) -> float:
    """The median of ``repeats`` timings: robust to the odd run slowed by a neighbour."""
    return statistics.median(run() for _ in range(max(repeats, 1)))


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def copy_sqlite(source: Path, destination: Path) -> Path:
    """A consistent copy of a SQLite registry (its WAL included), through SQLite's backup API."""
    destination.unlink(missing_ok=True)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(destination)) as dst:
        src.backup(dst)
    return destination
