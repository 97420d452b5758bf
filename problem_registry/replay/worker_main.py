"""What runs inside a model worker process: load one version at a time, answer its batches.

Model code is trusted but not well-behaved (issue 16): it may exit, crash, hang, print to stdout
or edit its inputs. So it runs here, in a process of its own, and the parent
(:mod:`problem_registry.replay.workers`) decides what each outcome means. This side only:

* sends stdout to stderr before any model code runs, so a model's ``print`` cannot corrupt the
  parent's ``replay --json`` (issue 16, item 10), and ignores SIGINT, so Ctrl-C reaches the
  parent, which records the Run as interrupted and stops its workers;
* holds the model to its contract with :func:`~problem_registry.replay.calls.call_model`;
* turns each output into plain Python data (str, numbers, bool, None, bytes, and lists, tuples
  and dicts of them) before it is pickled back, so the parent never unpickles, and so never
  imports, a class of the model's code. An output that cannot be made plain is an error for that
  input; the model's own exceptions travel as their type name and text.

Every batch arrives pickled and is unpickled here, afresh for each call: a model that edits its
inputs edits its own copy, never another version's (issue 16, item 6).

Messages (tuples, pickled by :mod:`multiprocessing.connection`), parent to worker:
``("load", ref, loader_kind, loader, artifact_path, artifact_sha256, loader_options, environ,
cwd)``,
``("predict", payload, keys)``, ``("unload",)``, ``("stop",)``; worker to parent: ``("ok",)``,
``("unavailable", reason)``, ``("outputs", outputs, errors, seconds)``, ``("raised", type name,
text)``, ``("contract", reason)``, ``("unsendable", reason)``.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import signal
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from problem_registry.adapters import LoadedModel, ModelOutputError, ModelUnavailable, load_model
from problem_registry.replay.calls import call_model
from problem_registry.replay.parent_death import die_with

MAX_DEPTH = 32  # nesting of one output: far beyond (label, confidence) or a dict of scores
_PLAIN = frozenset({str, int, float, bool, type(None), bytes})

Message = tuple[Any, ...]


class _Unusable(Exception):
    """An output this side cannot turn into plain data: that input's answer is an error."""


def serve(connection: Connection, replay_pid: int | None = None) -> None:
    """The worker's main loop: one request in, one reply out, until told to stop or orphaned."""
    if replay_pid is not None:
        die_with(replay_pid)  # before any model code: a hung model must not outlive the replay
    _isolate()
    model: LoadedModel | None = None
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return  # the parent is gone: nothing left to answer
        operation = message[0]
        if operation == "stop":
            return
        try:
            if operation == "load":
                if model is not None:
                    model = None
                    gc.collect()  # the previous version's memory goes before the next loads
                model, reply = _load(*message[1:])
            elif operation == "unload":
                model = None
                gc.collect()
                reply = ("ok",)
            elif operation == "predict" and model is not None:
                reply = _predict(model, message[1], message[2])
            else:
                reply = ("contract", f"worker got {operation!r} with no model loaded")
        except SystemExit as exc:
            # sys.exit() in model code ends this process as it asked: the parent reports the exit.
            _exit(exc.code)
        _send(connection, reply)


def _isolate() -> None:
    """Before any model code: stdout goes to stderr, and Ctrl-C is the parent's to handle."""
    sys.stdout.flush()
    os.dup2(2, 1)  # the file descriptor too, for C extensions and child processes of the model
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _load(
    ref: str,
    loader_kind: str,
    loader: str,
    artifact_path: str | None,
    artifact_sha256: str | None,
    loader_options: str | None,
    environ: dict[str, str],
    cwd: str,
) -> tuple[LoadedModel | None, Message]:
    # The parent's environment and working directory now, as an in-process load would see them
    # (a forkserver's child inherits the server's, from whenever it started).
    if os.environ != environ:
        os.environ.clear()
        os.environ.update(environ)
    if str(Path.cwd()) != cwd:
        os.chdir(cwd)
    try:
        # Parsed here, not with the store's helper: the fork server stays free of SQLAlchemy.
        options = json.loads(loader_options) if loader_options else {}
        model = load_model(ref, loader_kind, loader, artifact_path, artifact_sha256, options)
        return model, ("ok",)
    except ModelUnavailable as exc:
        return None, ("unavailable", str(exc))
    except Exception as exc:  # a loader is checked by load_model; this is a last resort
        return None, ("unavailable", f"{ref}: loading failed ({_describe(exc)})")


def _predict(model: LoadedModel, payload: bytes, keys: list[str]) -> Message:
    batch = pickle.loads(payload)  # fresh objects for this call alone
    began = time.perf_counter()
    try:
        outputs = call_model(model, batch, keys)
    except ModelOutputError as exc:
        return ("contract", str(exc))
    except SystemExit:
        raise
    except BaseException as exc:  # the model's own error, KeyboardInterrupt it raised included
        return ("raised", _type_name(exc), _text(exc))
    seconds = time.perf_counter() - began
    plain: list[Any] = []
    errors: dict[int, tuple[str, str]] = {}
    for index, output in enumerate(outputs):
        if type(output) in _PLAIN:
            plain.append(output)
            continue
        if isinstance(output, BaseException):
            errors[index] = (_type_name(output), _text(output))
        else:
            try:
                plain.append(_plain(output, 0))
                continue
            except _Unusable as exc:
                errors[index] = ("UnusableOutput", str(exc))
            except SystemExit:
                raise
            except BaseException as exc:  # a tolist() or __str__ of the model's that raised
                errors[index] = ("UnusableOutput", f"reading the output raised {_describe(exc)}")
        plain.append(None)
    return ("outputs", plain, errors, seconds)


def _plain(value: Any, depth: int) -> Any:
    """``value`` as builtins only, read as :func:`~problem_registry.adapters.normalise` would."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if depth >= MAX_DEPTH:
        raise _Unusable(f"output nested more than {MAX_DEPTH} deep")
    if isinstance(value, (list, tuple)):
        items = [_plain(item, depth + 1) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes(value)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy scalars and arrays, without importing numpy
        return _plain(tolist(), depth + 1)
    raise _Unusable(
        f"cannot read output {_short(value)} of type {kind.__name__}; return a label, a number, "
        '(label, confidence) or {"label": ..., "confidence": ...}'
    )


def _send(connection: Connection, reply: Message) -> None:
    try:
        connection.send(reply)
    except (OSError, EOFError):
        _exit(0)  # the parent is gone
    except Exception as exc:  # an answer pickle cannot carry (too deep, too big): say so
        connection.send(("unsendable", f"its answer could not be sent back ({_describe(exc)})"))


def _exit(code: object) -> None:
    for stream in (sys.stderr, sys.__stdout__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    if code is None:
        os._exit(0)
    if isinstance(code, int):
        os._exit(code & 0xFF)
    print(code, file=sys.stderr)  # sys.exit("message") prints it and exits 1, as Python does
    os._exit(1)


def _type_name(exc: BaseException) -> str:
    return type(exc).__name__


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "(its message could not be read)"


def _describe(exc: BaseException) -> str:
    text = _text(exc)
    return f"{_type_name(exc)}: {text}" if text else _type_name(exc)


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
