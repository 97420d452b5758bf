"""A model worker dies with the replay that started it, even when the replay is SIGKILLed.

A worker blocked in model code (a hang, a sleep, a C call) never reads its pipe, so it cannot see
that the replay is gone: a ``replay`` killed with SIGKILL (an OOM kill, a cancelled CI job) left
it running for as long as the model hung (issue 16). Its parent is multiprocessing's fork
server, which was seen to outlive the replay too, so the worker watches the replay itself: a
daemon thread checks twice a second that the replay's process still exists, and ends the worker
(``os._exit``, which no model code can catch) when it does not. On Linux the kernel is also
asked to kill the worker when its parent ends (``prctl(PR_SET_PDEATHSIG)``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 0.5


def die_with(replay_pid: int) -> None:
    """End this process soon after ``replay_pid`` (the replay that asked for it) ends."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if not _exists(replay_pid):
        os._exit(1)
    watch = threading.Thread(target=_watch, args=(replay_pid,), name="replay-watch", daemon=True)
    watch.start()


def _watch(replay_pid: int) -> None:
    while _exists(replay_pid):
        time.sleep(POLL_SECONDS)
    os._exit(1)


def _exists(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie left unreaped is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:  # noqa: PTH123
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc: os.kill's answer stands
