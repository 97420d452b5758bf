"""The run's gates decided once per session, whatever ``-n`` is.

Under pytest-xdist every worker runs some of the problems and the controller writes the
summaries, but a run's verdicts are one decision over all its problems (false alarms are
controlled across them). The first process that needs them decides; the others read that
decision from a file in a private folder the controller made for the session, under a lock.
"""

from __future__ import annotations

import fcntl
import pickle
import shutil
import tempfile
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

Decided = TypeVar("Decided")
FILE = "gates.pickle"


class SharedGates:
    """One decision per key, shared by the processes given the same ``folder``."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self._mine: tuple[Hashable, object] | None = None

    @classmethod
    def for_workers(cls) -> SharedGates:
        """The controller's: a private folder (0700) its workers are told about."""
        return cls(Path(tempfile.mkdtemp(prefix="problem-registry-gates-")))

    def get(self, key: Hashable, decide: Callable[[], Decided]) -> Decided:
        """The decision for ``key``: made by ``decide`` here, or read from whoever made it."""
        if self._mine is not None and self._mine[0] == key:
            return self._mine[1]  # type: ignore[return-value]
        decided = decide() if self.folder is None else self._shared(key, decide)
        self._mine = (key, decided)
        return decided

    def _shared(self, key: Hashable, decide: Callable[[], Decided]) -> Decided:
        assert self.folder is not None
        path = self.folder / FILE
        with (self.folder / "lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if path.exists():
                # Written by this session's own processes into a folder only they know: trusted.
                stored_key, stored = pickle.loads(path.read_bytes())
                if stored_key == key:
                    return stored  # type: ignore[no-any-return]
            decided = decide()
            partial = path.with_suffix(".partial")
            partial.write_bytes(pickle.dumps((key, decided)))
            partial.replace(path)
            return decided

    def remove(self) -> None:
        """The controller's clean-up at session end."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
