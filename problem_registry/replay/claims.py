"""How concurrent replays share the work: each claims (version, block of files) before predicting.

Issue 17: four runners replaying into one registry together predicted ~4x the pairs, each doing
the same missing ones. Now a replay claims the blocks (``BLOCK_FILES`` consecutive file ids each)
it is about to predict for the next group of versions, in one statement, and works only on what
it got (:mod:`problem_registry.store.leases`); what another runner holds is left to it, and
once this runner has done all it could, it waits for those leases to end: released (their
results are stored: nothing is left to do) or expired (their runner died: this one takes the
work over). A lease lasts ``$PROBLEM_REGISTRY_LEASE_SECONDS`` (default 60) and a thread renews
this runner's leases every third of that while it works, so a slow model never loses its lease,
and a killed runner's work waits at most that long.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from problem_registry.errors import ConfigError
from problem_registry.store import leases
from problem_registry.store.registry import Registry

BLOCK_FILES = 256  # file ids per claimed block: a claim per 256 files x version
ENV_LEASE_SECONDS = "PROBLEM_REGISTRY_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 60.0


def block_of(file_id: int) -> int:
    return file_id // BLOCK_FILES


def lease_seconds() -> float:
    """``$PROBLEM_REGISTRY_LEASE_SECONDS``, or 60."""
    raw = os.environ.get(ENV_LEASE_SECONDS, "").strip()
    if not raw:
        return DEFAULT_LEASE_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0.5 <= seconds <= 86400:
        raise ConfigError(
            f"${ENV_LEASE_SECONDS} is {raw!r}; give the seconds a replay lease lasts, 0.5 to 86400"
        )
    return seconds


class Claims:
    """One replay's leases: what it holds, what it left to others, and the renewing thread."""

    def __init__(self, registry: Registry, seconds: float | None = None) -> None:
        self.registry = registry
        self.seconds = seconds if seconds is not None else lease_seconds()
        host = socket.gethostname()[:40]
        self.holder = f"{host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.deferred: set[tuple[int, int]] = set()  # (version, block) another runner holds
        self._held: set[tuple[int, int]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self, version_ids: list[int], blocks: list[int]) -> dict[int, set[int]]:
        """Claim ``blocks`` for each of ``version_ids`` in one statement; per version, the
        blocks this runner now holds (a version absent holds none: other runners have it)."""
        with self.registry.writing() as session:
            got = leases.claim(session, version_ids, blocks, self.holder, self.seconds)
        held: dict[int, set[int]] = {}
        for version in version_ids:
            for block in blocks:
                key = (version, block)
                if key in got:
                    held.setdefault(version, set()).add(block)
                    self._held.add(key)
                    self.deferred.discard(key)
                else:
                    self.deferred.add(key)
        if held:
            self._start_renewing()
        return held

    def release(self, version_ids: list[int]) -> None:
        """These versions' results are stored: let their leases go."""
        if not version_ids:
            return
        with self.registry.writing() as session:
            leases.release(session, self.holder, version_ids)
        wanted = set(version_ids)
        self._held = {key for key in self._held if key[0] not in wanted}

    def wait_for_others(self, tick: Callable[[], None]) -> None:
        """Until no other runner holds a live lease on the work deferred to it; ``tick`` is
        called between looks (progress, and a chance for Ctrl-C to stop the replay)."""
        pause = min(1.0, self.seconds / 4)
        while True:
            with self.registry.reading() as session:
                if not leases.live_leases(session, self.deferred, self.holder):
                    break
            tick()
            time.sleep(pause)
        self.deferred.clear()

    def close(self) -> None:
        """Stop renewing and drop every lease still held (a replay that failed or was
        interrupted leaves its unfinished work to the others at once, not after expiry)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._held:
            with contextlib.suppress(Exception), self.registry.writing() as session:
                leases.release(session, self.holder)
            self._held.clear()

    def _start_renewing(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._renew, name="problem-registry lease renewal", daemon=True
            )
            self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            # A missed renewal only risks another runner taking the work over: never fatal.
            with contextlib.suppress(Exception), self.registry.writing() as session:
                leases.renew(session, self.holder, self.seconds)
