"""HTTP model servers: KServe v2 / Open Inference Protocol, or plain JSON (issue 18, item 3).

``model register NAME V --endpoint http://host:8080/v2/models/digits`` replays against a model
that is served, not loaded: the registry never hosts big inference itself.

- **v2** (the default for a ``/v2/models/NAME`` URL): ``POST {URL}/infer`` with one FP32 (or the
  metadata's datatype) tensor holding a batch of rows; the input's name, shape and datatype, and
  the outputs to ask for, come from the model's metadata (``GET {URL}``) at registration. The
  answer's tensors go through :func:`~problem_registry.adapters.tensors.answers_from_outputs`:
  a ``[N, C]`` float tensor (``predict_proba``) gives the scores, a ``[N]`` one (``predict``) the
  label.
- **json** (``--protocol json``): ``POST {URL}`` with ``{"instances": [row, ...]}`` and an answer
  ``{"predictions": [...]}``, each prediction a label, a number, ``{"label", "scores"}`` or a row
  of probabilities (keyed by ``--classes``).

Patterns are sent ``--batch`` at a time with at most ``--concurrency`` requests in flight, one
kept-alive connection per request slot. A request that times out (``--timeout``) or fails makes
an error answer for each of its patterns, recorded like a model's exception, never fatal; a batch
refused outright (a 400, 422 or 500) is sent again pattern by pattern, so one bad input fails
alone; a 401, 403 or 404 is no input's fault and is recorded as is.
429, 502, 503, 504 and dropped connections are retried ``--retries`` times with exponential
backoff (honouring ``Retry-After`` up to :data:`MAX_BACKOFF`).

Credentials never touch the registry: ``$PROBLEM_REGISTRY_ENDPOINT_TOKEN``, read when the version
loads, is sent as ``Authorization: Bearer ...``; a URL with ``user:password@`` is refused.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import threading
import time
import urllib.parse
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from problem_registry.adapters import LoadedModel, ModelUnavailable
from problem_registry.adapters.tensors import (
    answers,
    answers_from_outputs,
    input_row,
    per_row,
    preprocess_of,
    stack,
)
from problem_registry.errors import InvalidValue

if TYPE_CHECKING:
    from problem_registry.adapters.sources import SourceSettings

TOKEN_ENV = "PROBLEM_REGISTRY_ENDPOINT_TOKEN"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
SERVER_WIDE_STATUSES = RETRY_STATUSES | {401, 403, 404, 405}  # no one input's fault
BASE_BACKOFF = 0.1  # seconds before the first retry; doubled (with jitter) each time
MAX_BACKOFF = 10.0
MAX_ERROR_BODY = 200  # characters of a server's error text kept in a pattern's error
V2_DATATYPES = {"FP32": "float32", "FP64": "float64", "INT64": "int64", "INT32": "int32"}


class EndpointError(Exception):
    """A request failed for good (after any retries): each of its patterns gets this error."""


class _ServerWide(EndpointError):
    """A failure no single pattern caused (a timeout, no connection, overload, credentials,
    no such model): its batch is never re-sent pattern by pattern."""


def endpoint_options(url: str, settings: SourceSettings, base: Mapping[str, Any]) -> dict[str, Any]:
    """The options stored for an endpoint version; for v2, read from the model's metadata now,
    so a server that does not answer is refused at registration (:class:`InvalidValue`)."""
    parts = _parse(url, InvalidValue)
    protocol = settings.protocol or ("v2" if "/v2/models/" in parts.path else "json")
    if protocol not in ("v2", "json"):
        raise InvalidValue(f"--protocol {protocol!r} is not v2 or json")
    options: dict[str, Any] = dict(base)
    options.update(
        protocol=protocol,
        batch=settings.batch,
        concurrency=settings.concurrency,
        timeout=settings.timeout,
        retries=settings.retries,
    )
    if protocol == "v2":
        options.update(_v2_metadata(url, settings.timeout))
        if settings.outputs:  # a server whose metadata declares none (MLServer's default)
            options["outputs"] = [o.strip() for o in settings.outputs.split(",") if o.strip()]
    elif settings.outputs:
        raise InvalidValue("--outputs names v2 outputs; this endpoint speaks plain JSON")
    return options


def check_endpoint(url: str, options: Mapping[str, Any]) -> None:
    """At registration: the server answers (v2: the model is ready), and the preprocess
    function imports. :class:`InvalidValue` with the reason."""
    preprocess_of(options, InvalidValue)
    client = _Client(url, options, InvalidValue)
    if options.get("protocol") == "v2":
        status, _body = client.request("GET", _v2_base(url) + "/ready", None, retry=False)
        if status != 200:
            raise InvalidValue(f"endpoint {url} says the model is not ready (HTTP {status})")
    else:
        client.connect_only()


def load_endpoint(ref: str, url: str, options: Mapping[str, Any]) -> LoadedModel:
    """A batch model that sends patterns to the server; nothing is contacted until predicting."""
    _parse(url, ModelUnavailable)
    client = _Client(url, options, ModelUnavailable)
    batch = int(options.get("batch", 32))
    concurrency = int(options.get("concurrency", 4))
    preprocess = preprocess_of(options, ModelUnavailable)
    shape = [d if isinstance(d, int) and d > 0 else None for d in options.get("shape", [])]
    dtype = V2_DATATYPES.get(str(options.get("datatype", "FP32")), "float32")
    v2 = options.get("protocol") == "v2"
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="endpoint")

    def send(rows: list[Any]) -> list[Any]:
        try:
            return client.v2(rows) if v2 else client.json(rows)
        except EndpointError as exc:
            if isinstance(exc, _ServerWide) or len(rows) == 1:
                return [exc] * len(rows)
            return [_alone(row) for row in rows]  # which pattern did the server refuse?

    def _alone(row: Any) -> Any:
        try:
            return (client.v2([row]) if v2 else client.json([row]))[0]
        except EndpointError as exc:
            return exc

    def answer(rows: list[Any]) -> list[Any]:
        chunks = [rows[i : i + batch] for i in range(0, len(rows), batch)]
        return [output for part in pool.map(send, chunks) for output in part]

    def predict(inputs: Sequence[Any], _keys: Sequence[str]) -> list[Any]:
        return per_row(inputs, lambda item: _row(item, shape, dtype, preprocess, v2), answer)

    loaded = LoadedModel(ref=ref, predict=predict, needs_inputs=True)
    # A worker hosts one version after another: the request threads go with their version.
    weakref.finalize(loaded, pool.shutdown, wait=False)
    return loaded


def _row(item: Any, shape: list[int | None], dtype: str, preprocess: Any, v2: bool) -> Any:
    if v2 or preprocess is not None or hasattr(item, "convert"):
        return input_row(item, shape, dtype, preprocess)
    return item  # plain JSON: a JSON pattern or a text is sent as it is


@dataclass(frozen=True)
class _Parts:
    scheme: str
    host: str
    port: int
    path: str


def _parse(url: str, error: type[Exception]) -> _Parts:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise error(f"--endpoint {url!r} is not an http:// or https:// URL")
    if parts.username or parts.password:
        raise error(
            f"--endpoint must not hold credentials (user:password@); put a token in ${TOKEN_ENV}"
        )
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path.rstrip("/") or "/"
    if parts.query:
        path += "?" + parts.query
    return _Parts(parts.scheme, parts.hostname, port, path)


def _v2_base(url: str) -> str:
    path = _parse(url, InvalidValue).path
    return path[: -len("/infer")] if path.endswith("/infer") else path


def _v2_metadata(url: str, timeout: float) -> dict[str, Any]:
    """The input to fill and the outputs to ask for, from ``GET /v2/models/NAME``."""
    client = _Client(url, {"timeout": timeout, "retries": 1}, InvalidValue)
    status, body = client.request("GET", _v2_base(url), None, retry=True)
    if status != 200:
        raise InvalidValue(f"endpoint {url} has no such model (HTTP {status} for its metadata)")
    try:
        metadata = json.loads(body)
    except ValueError:
        raise InvalidValue(f"endpoint {url} answered its metadata with no JSON") from None
    found: dict[str, Any] = {"input": "input-0"}
    inputs = metadata.get("inputs") or []
    if inputs and isinstance(inputs[0], dict):
        first = inputs[0]
        found["input"] = str(first.get("name", "input-0"))
        if isinstance(first.get("shape"), list):
            found["shape"] = [int(d) for d in first["shape"][1:]]
        if first.get("datatype") in V2_DATATYPES:
            found["datatype"] = first["datatype"]
    outputs = [o["name"] for o in metadata.get("outputs") or [] if isinstance(o, dict)]
    if outputs:
        found["outputs"] = outputs
    return found


class _Client:
    """One server: kept-alive connections (one per thread), retries, and the token."""

    def __init__(self, url: str, options: Mapping[str, Any], error: type[Exception]) -> None:
        self.url = url
        self.parts = _parse(url, error)
        self.error = error
        self.timeout = float(options.get("timeout", 30.0))
        self.retries = int(options.get("retries", 3))
        self.options = options
        self.local = threading.local()
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        token = os.environ.get(TOKEN_ENV)
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    # -- protocols -------------------------------------------------------------------------

    def v2(self, rows: list[Any]) -> list[Any]:
        array = stack(rows)
        if isinstance(array, dict):
            inputs = [_tensor(name, value) for name, value in array.items()]
        else:
            inputs = [_tensor(str(self.options.get("input", "input-0")), array)]
        body: dict[str, Any] = {"inputs": inputs}
        if self.options.get("outputs"):
            body["outputs"] = [{"name": name} for name in self.options["outputs"]]
        reply = self._post(_v2_base(self.url) + "/infer", body)
        named: dict[str, Any] = {}
        for output in reply.get("outputs") or []:
            named[str(output.get("name"))] = _array(output)
        try:
            return answers_from_outputs(named, len(rows), self.options)
        except ValueError as exc:
            raise EndpointError(f"endpoint answer unusable: {exc}") from None

    def json(self, rows: list[Any]) -> list[Any]:
        instances = [row.tolist() if hasattr(row, "tolist") else row for row in rows]
        reply = self._post(self.parts.path, {"instances": instances})
        predictions = reply.get("predictions")
        if not isinstance(predictions, list) or len(predictions) != len(rows):
            raise EndpointError(
                f'endpoint answered {_short(reply)}; expected {{"predictions": [...]}} with '
                f"{len(rows)} item(s)"
            )
        classes = self.options.get("classes")
        return [
            answers(1, probabilities=[p], classes=classes)[0] if _is_score_row(p, classes) else p
            for p in predictions
        ]

    # -- HTTP --------------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body, separators=(",", ":")).encode()
        status, text = self.request("POST", path, payload, retry=True)
        if status != 200:
            message = f"endpoint answered HTTP {status}: {_short(text.decode('utf-8', 'replace'))}"
            if status in RETRY_STATUSES:
                raise _ServerWide(message + f" (after {self.retries} retries)")
            if status in SERVER_WIDE_STATUSES:
                raise _ServerWide(message)
            raise EndpointError(message)
        try:
            reply = json.loads(text)
        except ValueError:
            raise EndpointError(f"endpoint answered with no JSON: {_short(text)}") from None
        if not isinstance(reply, dict):
            raise EndpointError(f"endpoint answered {_short(reply)}, not a JSON object")
        return reply

    def request(
        self, method: str, path: str, payload: bytes | None, *, retry: bool
    ) -> tuple[int, bytes]:
        """One request, retried on 429/5xx-unavailable and dropped connections; the status and
        body of the last try. A timeout or a refused connection after the retries raises."""
        attempts = self.retries + 1 if retry else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                connection = self._connection()
                connection.request(method, path, body=payload, headers=self.headers)
                response = connection.getresponse()
                body = response.read()
            except TimeoutError:
                self._drop()
                # A stalled server is not retried: each try would cost the whole timeout again.
                raise self._failure(
                    f"endpoint {self.url} timed out after {self.timeout:g} s"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                if last:
                    raise self._unreachable(exc) from None
                time.sleep(_backoff(attempt, None))
                continue
            if response.status in RETRY_STATUSES and not last:
                if response.getheader("Connection", "").lower() == "close":
                    self._drop()
                time.sleep(_backoff(attempt, response.getheader("Retry-After")))
                continue
            return response.status, body
        raise AssertionError("unreachable")  # pragma: no cover

    def connect_only(self) -> None:
        try:
            self._connection().connect()
        except OSError as exc:
            raise self._unreachable(exc) from None
        finally:
            self._drop()

    def _unreachable(self, exc: BaseException) -> Exception:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return self._failure(f"endpoint {self.url} is unreachable ({reason})")

    def _failure(self, message: str) -> Exception:
        """At registration, the user's error; while replaying, the error of these patterns."""
        return self.error(message) if self.error is InvalidValue else _ServerWide(message)

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self.local, "connection", None)
        if connection is None:
            kind = (
                http.client.HTTPSConnection
                if self.parts.scheme == "https"
                else http.client.HTTPConnection
            )
            connection = kind(self.parts.host, self.parts.port, timeout=self.timeout)
            self.local.connection = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self.local, "connection", None)
        if connection is not None:
            connection.close()
            self.local.connection = None


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), MAX_BACKOFF)
        except ValueError:
            pass  # an HTTP date: fall back to our own backoff
    delay: float = BASE_BACKOFF * 2**attempt * (1 + random.random() / 2)
    return min(delay, MAX_BACKOFF)


def _tensor(name: str, array: Any) -> dict[str, Any]:
    kind = {"f": "FP32" if array.dtype.itemsize == 4 else "FP64", "i": "INT64", "u": "UINT8"}
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": kind.get(array.dtype.kind, "FP32"),
        "data": array.reshape(-1).tolist(),
    }


def _array(output: Mapping[str, Any]) -> Any:
    import numpy as np

    data = output.get("data")
    shape = output.get("shape") or []
    if output.get("datatype") == "BYTES":
        return data
    array = np.asarray(data)
    if shape and math.prod(shape) == array.size:
        array = array.reshape(shape)
    return array


def _is_score_row(value: Any, classes: Sequence[str] | None) -> bool:
    """A row of probabilities: as many numbers as --classes names, or (without it) more than
    two floats, since a pair reads as (label, confidence)."""
    if not isinstance(value, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        return False
    if classes:
        return len(value) == len(classes)
    return len(value) > 2 and all(isinstance(v, float) for v in value)


def _short(value: Any, limit: int = MAX_ERROR_BODY) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
