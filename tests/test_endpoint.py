"""Endpoint versions (issue 18, item 3): a real MLServer serving a scikit-learn digits model over
KServe v2, and a stdlib server that rate-limits, fails and stalls, to prove the retries, timeouts
and per-pattern error records. Every server listens on loopback only."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from problem_registry.replay.engine import replay
from tests.digit_registry import Digits
from tests.model_server import ModelServer, ServerUnavailable, mlserver
from tests.model_sources import (
    assert_same_answers,
    gate,
    pattern_rows,
    require,
    run_cli,
    sklearn_answers,
    stored_answers,
    stored_errors,
)
from tests.models.digits import PIXEL_SCALE

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
TOKEN = "s3cret-token-never-stored"


@pytest.fixture(scope="module")
def pixel_model() -> Any:
    """A digits classifier on the patterns' own pixel values (0..240): the default input."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    data = load_digits()
    return LogisticRegression(max_iter=2000).fit(data.data[:1200] * PIXEL_SCALE, data.target[:1200])


@pytest.fixture(scope="module")
def served(pixel_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    """One MLServer for the module: it takes seconds to start."""
    require("mlserver", "mlserver")
    require("mlserver_sklearn", "mlserver-sklearn")
    try:
        with mlserver(pixel_model, tmp_path_factory.mktemp("mlserver")) as server:
            yield server
    except ServerUnavailable as exc:
        pytest.fail(str(exc))


def test_mlserver_version_gives_scikit_learns_answers_and_scores(
    digits: Digits, database_url: str, served: ModelServer, pixel_model: Any
) -> None:
    run_cli(
        digits,
        database_url,
        "model",
        "register",
        "digits",
        "served",
        "--endpoint",
        served.model_url,
        "--batch",
        "8",
        "--concurrency",
        "2",
    )
    view = digits.registry.models.get("digits", "served")
    assert view.loader_kind == "endpoint"
    assert view.loader_options["protocol"] == "v2"
    assert view.loader_options["input"] == "pixels"  # from the model's v2 metadata
    shown = run_cli(digits, database_url, "model", "show", "digits@served", "--json")
    assert json.loads(shown.stdout)["loads"] is True
    assert json.loads(shown.stdout)["location"] == served.model_url
    summary = replay(digits.registry, ["digits@served"])
    assert summary.versions[0].errored == 0
    expected = sklearn_answers(pixel_model, pattern_rows(digits), scale=PIXEL_SCALE)
    assert_same_answers(stored_answers(digits, "digits@served"), expected, tolerance=1e-9)


def test_mlserver_candidate_gates_with_pytest_registry(
    digits: Digits,
    database_url: str,
    served: ModelServer,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_cli(
        digits,
        database_url,
        "model",
        "register",
        "digits",
        "served",
        "--endpoint",
        served.model_url,
    )
    result = gate(digits, database_url, "digits@served", pytester, monkeypatch)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*candidate digits@served against digits@v2*"])


def test_unreachable_endpoint_is_refused_at_registration(digits: Digits, database_url: str) -> None:
    from tests.model_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v2/models/digits"
    result = run_cli(
        digits, database_url, "model", "register", "digits", "x", "--endpoint", url, code=1
    )
    assert "unreachable" in result.stderr
    result = run_cli(
        digits,
        database_url,
        "model",
        "register",
        "digits",
        "x",
        "--endpoint",
        f"http://user:{TOKEN}@127.0.0.1:1/v2/models/digits",
        code=1,
    )
    assert TOKEN not in result.stderr
    assert "PROBLEM_REGISTRY_ENDPOINT_TOKEN" in result.stderr


# -- a server that misbehaves on purpose ---------------------------------------------------------


class Faulty:
    """What the faulty server does, per path, and what it saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.authorization: set[str] = set()
        self.refused_ink: float | None = None  # /bad-item refuses a batch holding this pattern

    def count(self, path: str) -> int:
        with self.lock:
            self.requests[path] = self.requests.get(path, 0) + 1
            return self.requests[path]


def _answer(instances: list[Any]) -> list[Any]:
    """A toy rule: the label is the ink (sum of pixels) mod 10, with made-up scores."""
    out = []
    for row in instances:
        label = int(sum(row)) % 10
        scores = [0.02] * 10
        scores[label] = 0.82
        out.append({"label": label, "scores": {str(i): s for i, s in enumerate(scores)}})
    return out


@pytest.fixture
def faulty() -> Iterator[tuple[str, Faulty]]:
    state = Faulty()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(
            self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            state.authorization.add(self.headers.get("Authorization", ""))
            seen = state.count(self.path)
            instances = body["instances"]
            if self.path == "/rate-limited" and seen <= 2:
                self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
            elif self.path == "/auth" and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"error": "who are you?"})
            elif self.path == "/unavailable":
                self._send(503, {"error": "warming up"})
            elif self.path == "/stall":
                time.sleep(1.5)
                self._send(200, {"predictions": _answer(instances)})
            elif self.path == "/bad-item" and any(sum(r) == state.refused_ink for r in instances):
                self._send(400, {"error": "cannot read this digit"})
            else:
                self._send(200, {"predictions": _answer(instances)})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def _register(digits: Digits, database_url: str, version: str, url: str, *extra: str) -> Any:
    return run_cli(
        digits,
        database_url,
        "model",
        "register",
        "digits",
        version,
        "--endpoint",
        url,
        "--protocol",
        "json",
        "--batch",
        "4",
        "--retries",
        "2",
        *extra,
    )


def test_rate_limits_are_retried_and_every_pattern_answered(
    digits: Digits, database_url: str, faulty: tuple[str, Faulty], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, state = faulty
    monkeypatch.setenv("PROBLEM_REGISTRY_ENDPOINT_TOKEN", TOKEN)
    result = _register(
        digits, database_url, "limited", f"{base}/rate-limited", "--concurrency", "1"
    )
    assert TOKEN not in result.stdout + result.stderr
    replay(digits.registry, ["digits@limited"])
    errors = stored_errors(digits, "digits@limited")
    assert errors and all(error is None for error in errors.values())
    assert state.requests["/rate-limited"] == 2 + -(-len(errors) // 4)  # two 429s, then batches
    assert state.authorization == {f"Bearer {TOKEN}"}
    view = digits.registry.models.get("digits", "limited")
    assert TOKEN not in json.dumps(view.model_dump())
    shown = run_cli(digits, database_url, "model", "show", "digits@limited")
    assert "yes" in shown.stdout and TOKEN not in shown.stdout + shown.stderr


def test_a_server_that_stays_unavailable_gives_each_pattern_an_error(
    digits: Digits, database_url: str, faulty: tuple[str, Faulty]
) -> None:
    base, state = faulty
    _register(digits, database_url, "down", f"{base}/unavailable")
    summary = replay(digits.registry, ["digits@down"])  # not fatal
    errors = stored_errors(digits, "digits@down")
    assert summary.versions[0].errored == len(errors) > 0
    assert all("HTTP 503" in (e or "") and "after 2 retries" in (e or "") for e in errors.values())
    batches = -(-len(errors) // 4)
    assert state.requests["/unavailable"] == batches * 3  # each batch: one try and two retries


def test_a_stalled_server_times_out_per_request(
    digits: Digits, database_url: str, faulty: tuple[str, Faulty]
) -> None:
    base, _state = faulty
    _register(digits, database_url, "stalled", f"{base}/stall", "--timeout", "0.3", "--batch", "64")
    began = time.monotonic()
    replay(digits.registry, ["digits@stalled"])
    elapsed = time.monotonic() - began
    errors = stored_errors(digits, "digits@stalled")
    assert all("timed out after 0.3 s" in (e or "") for e in errors.values())
    assert elapsed < 30  # one timed-out request, not one per retry: a bound, not a measurement


def test_a_refused_pattern_fails_alone(
    digits: Digits, database_url: str, faulty: tuple[str, Faulty]
) -> None:
    base, state = faulty
    rows = pattern_rows(digits)
    victim = sorted(rows)[0]
    state.refused_ink = float((rows[victim] * PIXEL_SCALE).sum())
    _register(digits, database_url, "picky", f"{base}/bad-item")
    replay(digits.registry, ["digits@picky"])
    errors = stored_errors(digits, "digits@picky")
    failed = {sha for sha, error in errors.items() if error}
    same_ink = {sha for sha in rows if float((rows[sha] * PIXEL_SCALE).sum()) == state.refused_ink}
    assert failed == same_ink and victim in failed
    assert "HTTP 400" in (errors[victim] or "")


def test_a_missing_token_fails_each_batch_once_not_each_pattern(
    digits: Digits, database_url: str, faulty: tuple[str, Faulty], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, state = faulty
    monkeypatch.delenv("PROBLEM_REGISTRY_ENDPOINT_TOKEN", raising=False)
    _register(digits, database_url, "anonymous", f"{base}/auth")
    replay(digits.registry, ["digits@anonymous"])
    errors = stored_errors(digits, "digits@anonymous")
    assert all("HTTP 401" in (e or "") for e in errors.values())
    assert state.requests["/auth"] == -(-len(errors) // 4)  # no retry, no pattern-by-pattern
    monkeypatch.setenv("PROBLEM_REGISTRY_ENDPOINT_TOKEN", TOKEN)
    _register(digits, database_url, "known", f"{base}/auth")
    replay(digits.registry, ["digits@known"])
    assert not any(stored_errors(digits, "digits@known").values())


def test_outputs_names_what_to_ask_a_v2_server_for(
    digits: Digits, database_url: str, served: ModelServer, pixel_model: Any
) -> None:
    """--outputs predict: labels only (no scores), still scikit-learn's own."""
    run_cli(
        digits, database_url, "model", "register", "digits", "labels",
        "--endpoint", served.model_url, "--outputs", "predict",
    )  # fmt: skip
    assert digits.registry.models.get("digits", "labels").loader_options["outputs"] == ["predict"]
    replay(digits.registry, ["digits@labels"])
    stored = stored_answers(digits, "digits@labels")
    expected = sklearn_answers(pixel_model, pattern_rows(digits), scale=PIXEL_SCALE)
    assert {sha: label for sha, (label, _s) in stored.items()} == {
        sha: label for sha, (label, _s) in expected.items()
    }
    assert all(scores is None for _label, scores in stored.values())
