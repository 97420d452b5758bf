"""Model worker processes, seen from the replay: start, load, predict, and judge what happened.

Model code runs in worker processes (issue 16; the code they run is
:mod:`problem_registry.replay.worker_main`), so nothing a model does can end the replay, the gate
or another version's results: an exit, a segfault or a ``sys.exit`` is seen here as the worker's
death and raised as :class:`ModelCrashed` naming the model and what it was doing; a batch that
outlives ``timeout`` has its worker killed (:class:`~problem_registry.replay.calls.BatchTimeout`),
which a thread could never do; a broken contract is a
:class:`~problem_registry.adapters.ModelOutputError`. The replay decides what each means (a prior
version is reported unavailable; the candidate fails the replay).

Workers come from multiprocessing's ``forkserver`` (``spawn`` where there is none), never from a
plain fork: the replay holds database connections and threads that a forked copy would share.
The fork server starts once per process, imports :mod:`~problem_registry.replay.worker_main` and
the libraries most models use (numpy, Pillow) once, and then forks each worker from that clean
state in milliseconds. As everywhere multiprocessing starts fresh interpreters, a script that
calls replay must guard its top level with ``if __name__ == "__main__":``.

A :class:`WorkerPool` holds at most ``size`` workers, each hosting one loaded version at a time;
a worker whose version is done loads a later version in its place (dropping the old model first),
so a replay of many versions starts few processes and a worker goes from one version to the next
without an unloading round trip. Loading is begun on every worker of a group before the first is
waited for, so loads overlap; the replay begins the next group's loads on spare workers while a
group predicts, and keeps a worker's next batch queued behind its current one (issue 17).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import pickle
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from problem_registry.adapters import ModelOutputError, ModelUnavailable
from problem_registry.replay.calls import BatchTimeout
from problem_registry.replay.main_module import main_hidden
from problem_registry.replay.worker_main import serve

# Imported once by the fork server, so each worker starts with them: ours, and what most models
# import first (absent ones are skipped). "__main__" is multiprocessing's own default preload.
PRELOAD = ["__main__", "problem_registry.replay.worker_main", "numpy", "PIL.Image"]
STOP_GRACE_SECONDS = 2.0  # a worker asked to stop that has not after this is killed


class ModelCrashed(ModelUnavailable):
    """A model's worker died (exit, signal) while loading or predicting."""


class ModelRaised(Exception):
    """The model's own exception, re-created in the replay by its type name and text."""


class UnusableOutput(ModelRaised):
    """An output the worker could not turn into plain data: that input's answer is an error."""


@dataclass(frozen=True)
class LoadSpec:
    """What a worker needs to load one registered version."""

    ref: str
    loader_kind: str
    loader: str
    artifact_path: str | None
    artifact_sha256: str | None
    loader_options: str | None = None  # JSON text, as stored


@dataclass(frozen=True)
class Answer:
    """One batch's outputs (the model's exceptions among them) and the model's own seconds."""

    outputs: list[Any]
    seconds: float


def context() -> BaseContext:
    """forkserver where the platform has it, else spawn; never fork (see the module's note)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        forkserver = multiprocessing.get_context("forkserver")
        forkserver.set_forkserver_preload(PRELOAD)  # no effect once the server runs: harmless
        return forkserver
    return multiprocessing.get_context("spawn")


@dataclass
class _Flight:
    """A batch sent to a worker: its answer, once read, waits here for ``finish_predict``."""

    count: int
    timeout: float | None
    deadline: float | None  # None while a batch before it on the same worker is unanswered
    doing: str
    reply: tuple[Any, ...] | None = None
    error: ModelUnavailable | ModelOutputError | None = None


class ModelWorker:
    """One worker process, hosting at most one loaded version at a time."""

    needs_inputs = True  # as a LoadedModel says: a Python model is given the decoded inputs

    def __init__(self) -> None:
        ctx = context()
        self._connection, child = ctx.Pipe(duplex=True)
        # Not a daemon: a daemonic process may not start processes, and a model may (joblib,
        # a DataLoader's workers). WorkerPool.close, in replay's finally, stops every worker.
        self._process = ctx.Process(  # type: ignore[attr-defined]
            target=serve,
            args=(child, os.getpid()),
            name="problem-registry model worker",
            daemon=False,
        )
        with main_hidden():  # the caller's script is not run again in the worker
            self._process.start()
        child.close()
        self.ref: str | None = None
        self.alive = True
        self._flights: deque[_Flight] = deque()  # batches sent, oldest first
        self._gone: ModelUnavailable | None = None  # why the worker can answer no more

    # -- loading ---------------------------------------------------------------------------------

    def begin_load(self, spec: LoadSpec) -> None:
        self.ref = spec.ref
        self._send(
            (
                "load",
                spec.ref,
                spec.loader_kind,
                spec.loader,
                spec.artifact_path,
                spec.artifact_sha256,
                spec.loader_options,
                dict(os.environ),
                str(Path.cwd()),
            ),
            "while loading",
        )

    def finish_load(self) -> None:
        """Wait for the load begun; :class:`ModelUnavailable` (or :class:`ModelCrashed`) if not."""
        reply = self._receive(None, "while loading")
        if reply[0] == "unavailable":
            self.ref = None
            raise ModelUnavailable(str(reply[1]))

    def unload(self) -> None:
        """Drop the hosted version (its memory goes), keeping the process for the next one."""
        self.begin_unload()
        self.finish_unload()

    def begin_unload(self) -> None:
        self._send(("unload",), "while unloading")

    def finish_unload(self) -> None:
        self._receive(None, "while unloading")
        self.ref = None

    # -- predicting ------------------------------------------------------------------------------

    def predict(self, payload: bytes, keys: list[str], count: int, timeout: float | None) -> Answer:
        """One batch (``count`` inputs, pickled in ``payload``) through the hosted model.

        Raises :class:`ModelRaised` when the batch raised (the caller may retry its inputs one by
        one), :class:`~problem_registry.adapters.ModelOutputError` when the model broke its
        contract, :class:`BatchTimeout` or :class:`ModelCrashed` when the worker is gone. Batches
        :meth:`begin_predict` sent before it are answered first and kept for
        :meth:`finish_predict`.
        """
        self.begin_predict(payload, keys, count, timeout)
        own = self._flights.pop()
        for flight in self._flights:
            self._stash(flight)
        return self._answer(own, self._read(own))

    def begin_predict(
        self, payload: bytes, keys: list[str], count: int, timeout: float | None
    ) -> None:
        """Send a batch and return at once: the worker predicts while the replay decodes the
        next chunk and stores the last (issue 18: an endpoint's replay keeps pace with its
        server). Several may be sent: the worker answers them in order, going from one to the
        next without waiting for the replay (issue 17); each :meth:`finish_predict` waits for
        the oldest answer not yet returned. A batch's timeout counts from when it is sent or,
        behind another, from when that one's answer was read."""
        doing = f"while predicting a batch of {count} input{'s' if count != 1 else ''}"
        waiting = any(f.reply is None and f.error is None for f in self._flights)
        deadline = None if timeout is None or waiting else time.monotonic() + timeout
        self._flights.append(_Flight(count, timeout, deadline, doing))
        self._send(("predict", payload, keys), doing)

    def finish_predict(self) -> Answer:
        """The answer of the oldest batch :meth:`begin_predict` sent; raises as :meth:`predict`
        does."""
        flight = self._flights.popleft()
        if flight.error is not None:
            raise flight.error
        return self._answer(
            flight, flight.reply if flight.reply is not None else self._read(flight)
        )

    def _stash(self, flight: _Flight) -> None:
        """Read ``flight``'s answer now (or the error reading it met), for later."""
        if flight.reply is None and flight.error is None:
            try:
                flight.reply = self._read(flight)
            except (ModelUnavailable, ModelOutputError) as exc:
                flight.error = exc

    def _read(self, flight: _Flight) -> tuple[Any, ...]:
        """The next reply on the pipe, which is ``flight``'s (answers come in order)."""
        if self._gone is not None:
            raise type(self._gone)(str(self._gone))
        if flight.deadline is None and flight.timeout is not None:
            flight.deadline = time.monotonic() + flight.timeout
        remaining = None if flight.deadline is None else max(flight.deadline - time.monotonic(), 0)
        try:
            reply = self._receive(remaining, flight.doing)
        except _TimedOut:
            self._gone = BatchTimeout(
                f"model {self.ref} timed out: a batch of {flight.count} input(s) took longer than "
                f"the batch timeout of {flight.timeout:g} s; its worker was stopped and its "
                "remaining patterns left unpredicted (re-run replay to retry, or raise "
                "--batch-timeout)"
            )
            raise self._gone from None
        except ModelCrashed as exc:
            self._gone = exc
            raise
        for later in self._flights:  # the next batch starts on the worker now: its clock too
            if later.reply is None and later.error is None and later is not flight:
                if later.timeout is not None and later.deadline is None:
                    later.deadline = time.monotonic() + later.timeout
                break
        return reply

    def _answer(self, flight: _Flight, reply: tuple[Any, ...]) -> Answer:
        count = flight.count
        kind = reply[0]
        if kind == "outputs":
            _kind, outputs, errors, seconds = reply
            if not isinstance(outputs, list) or len(outputs) != count:
                raise ModelOutputError(f"model {self.ref}: its worker answered out of protocol")
            for index, (name, text) in errors.items():
                outputs[index] = model_exception(name, text)
            return Answer(outputs, float(seconds))
        if kind == "raised":
            raise model_exception(reply[1], reply[2])
        if kind == "unsendable":
            return Answer([UnusableOutput(reply[1]) for _ in range(count)], 0.0)
        raise ModelOutputError(str(reply[1]))  # "contract"

    # -- the process -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to end; kill it if it does not, promptly. Safe to call twice."""
        if self.alive:
            with contextlib.suppress(OSError, ValueError):
                self._connection.send(("stop",))
            self._process.join(STOP_GRACE_SECONDS)
        self.kill()

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._connection.close()
        self.alive = False

    def _send(self, message: tuple[Any, ...], doing: str) -> None:
        try:
            self._connection.send(message)
        except (OSError, EOFError):
            raise self._died(doing) from None

    def _receive(self, timeout: float | None, doing: str) -> tuple[Any, ...]:
        ready = wait([self._connection, self._process.sentinel], timeout)
        if not ready:
            self.kill()
            raise _TimedOut
        if self._connection in ready:
            try:
                reply = _restricted_loads(self._connection.recv_bytes())
            except (EOFError, OSError):
                pass
            else:
                if isinstance(reply, tuple) and reply:
                    return reply
                raise ModelOutputError(f"model {self.ref}: its worker answered out of protocol")
        raise self._died(doing)

    def _died(self, doing: str) -> ModelCrashed:
        self._process.join(STOP_GRACE_SECONDS)
        code = self._process.exitcode
        self.kill()
        if code is None or code >= 0:
            what = f"exited (code {code if code is not None else 'unknown'})"
        else:
            try:
                what = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                what = f"was killed by signal {-code}"
        return ModelCrashed(
            f"model {self.ref} {what} {doing}; its remaining patterns were left unpredicted "
            "(model code must not exit the process; re-run replay once it is fixed)"
        )


class WorkerPool:
    """Up to ``size`` workers; each version is hosted by one, reused for later versions."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: list[ModelWorker] = []
        self._busy: dict[str, ModelWorker] = {}  # ref -> the worker hosting it

    def begin_load(self, spec: LoadSpec) -> None:
        """Start loading ``spec`` on an idle worker (which drops the model it kept first) or a
        new one; see :meth:`finish_load`."""
        worker = self._idle.pop() if self._idle else ModelWorker()
        self._busy[spec.ref] = worker
        try:
            worker.begin_load(spec)
        except ModelCrashed:
            self._busy.pop(spec.ref)
            raise

    def finish_load(self, ref: str) -> ModelWorker:
        worker = self._busy[ref]
        try:
            worker.finish_load()
        except ModelCrashed:
            del self._busy[ref]
            raise
        except ModelUnavailable:
            del self._busy[ref]
            self._idle.append(worker)  # the loader failed cleanly: the process is fine
            raise
        return worker

    def release(self, ref: str, *, reuse: bool = True) -> None:
        """The version is done: unload it and keep its worker for another, if still healthy
        and ``reuse``; else the worker is kept idle with its model, which goes when it loads
        another version or when the pool closes (no unloading round trip)."""
        worker = self._busy.pop(ref, None)
        if worker is None or not worker.alive:
            return
        if not reuse:
            self._idle.append(worker)  # stopped by close(), with the others at once
            return
        try:
            worker.unload()
        except ModelCrashed:
            return
        self._idle.append(worker)

    def discard(self, ref: str) -> None:
        """The version broke (timed out, crashed, broke its contract): its worker goes too."""
        worker = self._busy.pop(ref, None)
        if worker is not None:
            worker.kill()

    def close(self) -> None:
        """Stop every worker, hung ones killed: nothing a model does outlives the replay."""
        workers = [*self._busy.values(), *self._idle]
        self._busy.clear()
        self._idle.clear()
        for worker in workers:
            if worker.alive:
                with contextlib.suppress(OSError, ValueError):
                    worker._connection.send(("stop",))
        for worker in workers:
            worker.stop()


class _TimedOut(Exception):
    pass


_EXCEPTION_TYPES: dict[str, type[ModelRaised]] = {"UnusableOutput": UnusableOutput}
_MAX_EXCEPTION_TYPES = 256


def model_exception(name: object, text: object) -> ModelRaised:
    """The model's exception as the replay stores it: ``"ValueError: cannot read this digit"``.

    A subclass of :class:`ModelRaised` named as the model's exception was, so the stored error
    reads as it did when models ran in the replay's own process.
    """
    name = name if isinstance(name, str) and name.isidentifier() else "ModelError"
    kind = _EXCEPTION_TYPES.get(name)
    if kind is None:
        if len(_EXCEPTION_TYPES) >= _MAX_EXCEPTION_TYPES:
            kind = ModelRaised
        else:
            kind = _EXCEPTION_TYPES[name] = type(name, (ModelRaised,), {})
    return kind(text if isinstance(text, str) else "")


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles builtins only: the worker sends nothing else, and no model class may load here."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def _restricted_loads(data: bytes) -> Any:
    try:
        return _PlainUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, RecursionError):
        return None
