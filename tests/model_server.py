"""A real MLServer (``mlserver`` + ``mlserver-sklearn``) serving a scikit-learn model on loopback.

Started by the endpoint tests and by ``benchmarks/endpoint_replay.py``: a model folder with the
joblib file and its ``model-settings.json`` (inputs and outputs declared, so the v2 metadata tells
a client what to send and ask for), free ports, no metrics server and no parallel inference pool
(one light process), and a wait on ``/v2/health/ready``. Stopped, and its folder removed, on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import joblib

READY_SECONDS = 120.0  # MLServer imports FastAPI, gRPC, pandas...: tens of seconds on 2 cores


class ServerUnavailable(RuntimeError):
    """MLServer is not installed, or did not become ready."""


@dataclass(frozen=True)
class ModelServer:
    base: str  # http://127.0.0.1:PORT
    model: str

    @property
    def model_url(self) -> str:
        return f"{self.base}/v2/models/{self.model}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlserver(
    model: object, folder: Path, name: str = "digits", features: int = 64
) -> Iterator[ModelServer]:
    """Serve ``model`` (a fitted scikit-learn classifier) as ``name``, until the block ends."""
    executable = Path(sys.executable).parent / "mlserver"
    if not executable.exists():
        raise ServerUnavailable(f"mlserver is not installed ({executable} not found)")
    model_dir = folder / name
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / "model.joblib")
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": name,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib"},
                "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, features]}],
                "outputs": [
                    {"name": "predict", "datatype": "INT64", "shape": [-1, 1]},
                    {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 10]},
                ],
            }
        )
    )
    http_port, grpc_port = free_port(), free_port()
    (folder / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": http_port,
                "grpc_port": grpc_port,
                "metrics_endpoint": None,
                "parallel_workers": 0,
                "debug": False,
            }
        )
    )
    log = (folder / "mlserver.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSERVER")}
    process = subprocess.Popen(
        [str(executable), "start", str(folder)],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        _wait_ready(base, name, process, folder / "mlserver.log")
        yield ModelServer(base, name)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_ready(base: str, name: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise ServerUnavailable(f"mlserver exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{base}/v2/models/{name}/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise ServerUnavailable(f"mlserver was not ready after {READY_SECONDS:g} s (see {log})")
