"""ONNX files run by onnxruntime (``pip install 'problem-registry[onnx]'``).

``model register NAME V --onnx model.onnx [--preprocess module:callable] [--classes a,b,...]``.
The file is the version's artifact: its sha256 is recorded at registration and checked again
before every load, so a re-exported file is never mixed in under the old version's name.

Inputs and outputs go through :mod:`problem_registry.adapters.tensors` (its docstring lists the
defaults). The model's first input takes the batch, unless a preprocess function returns a dict
of named inputs. Outputs are told apart by shape: a 2-D float output (skl2onnx's
``output_probability`` with ``zipmap=False``) or a ZipMap sequence gives the scores, a 1-D one
(``output_label``) the label, or a regressor's number. Runs on the CPU execution provider, in
the version's worker process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from problem_registry.adapters import LoadedModel, ModelUnavailable
from problem_registry.adapters.python import verify_artifact
from problem_registry.adapters.tensors import (
    answers_from_outputs,
    input_row,
    per_row,
    preprocess_of,
    stack,
)
from problem_registry.errors import InvalidValue

INSTALL_HINT = "install it with: pip install 'problem-registry[onnx]'"
DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(uint8)": "uint8",
}


def check_onnx(path: Path, options: Mapping[str, Any]) -> None:
    """At registration: onnxruntime is installed, the file opens as a model, the preprocess
    function imports. :class:`InvalidValue` with the reason, in one line."""
    try:
        _session(path)
    except ModelUnavailable as exc:
        raise InvalidValue(str(exc)) from None
    preprocess_of(options, InvalidValue)


def load_onnx(
    ref: str, path: str, artifact_sha256: str | None, options: Mapping[str, Any]
) -> LoadedModel:
    """Verify the file, open an onnxruntime session, and wrap it as a batch model."""
    verify_artifact(ref, Path(path), artifact_sha256)
    session = _session(Path(path), ref)
    preprocess = preprocess_of(options, ModelUnavailable)
    first = session.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else None for d in first.shape[1:]]
    dtype = DTYPES.get(first.type, "float32")
    batched = not (first.shape and isinstance(first.shape[0], int) and first.shape[0] == 1)
    output_names = [o.name for o in session.get_outputs()]

    def run(batch: Any) -> dict[str, Any]:
        feeds = batch if isinstance(batch, dict) else {first.name: batch}
        values = session.run(output_names, feeds)
        return dict(zip(output_names, values, strict=True))

    def answer(rows: list[Any]) -> list[Any]:
        if batched:
            results = [(run(stack(rows)), len(rows))]
        else:  # a model exported with a fixed batch of 1
            results = [(run(stack([row])), 1) for row in rows]
        answered: list[Any] = []
        for result, count in results:
            answered.extend(answers_from_outputs(result, count, options))
        return answered

    def predict(inputs: Sequence[Any], _keys: Sequence[str]) -> list[Any]:
        return per_row(inputs, lambda item: input_row(item, shape, dtype, preprocess), answer)

    return LoadedModel(ref=ref, predict=predict, needs_inputs=True)


def _session(path: Path, ref: str | None = None) -> Any:
    where = f"{ref}: " if ref else ""
    try:
        import onnxruntime  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise ModelUnavailable(f"{where}onnxruntime is not installed; {INSTALL_HINT}") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: warnings would land on the replay's stderr
    try:
        return onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/NoSuchFile
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailable(f"{where}cannot load ONNX file {path}: {reason}") from None
