"""ONNX files run by onnxruntime (``pip install 'problem-registry[onnx]'``).

``model register NAME V --onnx model.onnx [--preprocess module:callable] [--classes a,b,...]``.
The file is the version's artifact: its sha256 is recorded at registration and checked again
before every load, so a re-exported file is never mixed in under the old version's name.

Inputs and outputs go through :mod:`problem_registry.adapters.tensors` (its docstring lists the
defaults). The model's first input takes the batch, unless a preprocess function returns a dict
of named inputs. Outputs are found by name and shape: a 2-D float output (``probabilities``,
skl2onnx's ``output_probability`` with ``zipmap=False``) or a ZipMap sequence gives the scores,
a 1-D output (``output_label``) the label; a model with neither is a regressor (its first
output). Runs on the CPU execution provider, in the version's worker process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from problem_registry.adapters import LoadedModel, ModelUnavailable
from problem_registry.adapters.python import import_callable, verify_artifact
from problem_registry.adapters.tensors import InputError, answers, input_row, stack
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
    _preprocess(options, InvalidValue)


def load_onnx(
    ref: str, path: str, artifact_sha256: str | None, options: Mapping[str, Any]
) -> LoadedModel:
    """Verify the file, open an onnxruntime session, and wrap it as a batch model."""
    verify_artifact(ref, Path(path), artifact_sha256)
    session = _session(Path(path), ref)
    preprocess = _preprocess(options, ModelUnavailable)
    classes: list[str] | None = options.get("classes")
    first = session.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else None for d in first.shape[1:]]
    dtype = DTYPES.get(first.type, "float32")
    batched = not (first.shape and isinstance(first.shape[0], int) and first.shape[0] == 1)
    output_names = [o.name for o in session.get_outputs()]
    label_name, probability_name = _roles(session.get_outputs(), options)

    def run(batch: Any) -> dict[str, Any]:
        feeds = batch if isinstance(batch, dict) else {first.name: batch}
        values = session.run(output_names, feeds)
        return dict(zip(output_names, values, strict=True))

    def predict(inputs: Sequence[Any], _keys: Sequence[str]) -> list[Any]:
        rows: list[Any] = []
        good: list[int] = []
        outputs: list[Any] = [None] * len(inputs)
        for index, item in enumerate(inputs):
            try:
                rows.append(input_row(item, shape, dtype, preprocess))
                good.append(index)
            except InputError as exc:
                outputs[index] = exc
        if not rows:
            return outputs
        if batched:
            results = [(run(stack(rows)), len(rows))]
        else:  # a model exported with a fixed batch of 1
            results = [(run(stack([row])), 1) for row in rows]
        answered: list[Any] = []
        for result, count in results:
            if label_name or probability_name:
                answered.extend(
                    answers(
                        count,
                        labels=result.get(label_name) if label_name else None,
                        probabilities=result.get(probability_name) if probability_name else None,
                        classes=classes,
                    )
                )
            else:
                answered.extend(_numbers(result[output_names[0]], count))
        for index, answer in zip(good, answered, strict=True):
            outputs[index] = answer
        return outputs

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


def _preprocess(options: Mapping[str, Any], error: type[Exception]) -> Any:
    spec = options.get("preprocess")
    if not spec:
        return None
    try:
        return import_callable(str(spec))
    except ModelUnavailable as exc:
        raise error(f"--preprocess {exc}") from None


def _roles(outputs: Sequence[Any], options: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Which output is the label and which the probabilities (see the module's docstring)."""
    label = options.get("label_output")
    probability = options.get("scores_output")
    for output in outputs:
        if probability is None and _is_probability(output):
            probability = output.name
        elif label is None and len(output.shape or []) == 1:
            label = output.name
    if label is None and probability is None and len(outputs) > 1:
        label = outputs[0].name
    return label, probability


def _is_probability(output: Any) -> bool:
    """A ZipMap, or a 2-D float output with more than one column (or named as probabilities)."""
    if output.type.startswith("seq(map"):
        return True
    shape = output.shape or []
    if len(shape) != 2 or "float" not in output.type:
        return False
    return shape[1] != 1 or "prob" in output.name.lower()


def _numbers(values: Any, count: int) -> list[Any]:
    import numpy as np

    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or len(array) != count:
        raise ValueError(f"the model's output has shape {list(array.shape)}; expected {count}")
    return list(array.tolist())
