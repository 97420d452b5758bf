"""Start a model worker without re-running the caller's ``__main__`` in it.

multiprocessing tells every child it starts (spawn, and forkserver alike) the parent's main
script or module, and the child runs it again (``spawn._fixup_main_from_path``): that is the
entry point of whoever called replay, ``problem-registry`` (the whole CLI), ``pytest`` or a
user's script, imported afresh in every worker. forkserver's ``"__main__"`` preload was meant to
spare this, but CPython 3.8-3.13 never passes it the main path (python/cpython#137996), so each
worker paid it: 0.3-0.6 s of CPU per worker under ``benchmarks/endpoint_replay.py``'s main,
which imports the engine. A worker needs nothing of ``__main__``: its target is
:func:`~problem_registry.replay.worker_main.serve` and everything it is sent (load specs, decoded
patterns) names importable modules only.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import types
from collections.abc import Iterator

_LOCK = threading.Lock()


@contextlib.contextmanager
def main_hidden() -> Iterator[None]:
    """While a child process is started: ``__main__`` is a bare module, so the child is told no
    main to run (multiprocessing reads it only in ``Process.start``)."""
    with _LOCK:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is None:
                sys.modules.pop("__main__", None)
            else:
                sys.modules["__main__"] = main
