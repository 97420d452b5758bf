"""How a registered model version is turned into something replay can call.

Every adapter yields a :class:`LoadedModel`: ``predict(inputs, keys)`` takes a batch of decoded
inputs (PIL image, str, parsed JSON) and their pattern sha256s, and returns one raw output per
input. Python loaders use the inputs; a predictions file uses the keys only, so replay never even
reads the pattern files for it (``needs_inputs`` is False).

Raw outputs are turned into what a :class:`~problem_registry.store.tables.Result` stores by
:func:`normalise`. A model may answer with

- a label or a number: ``"muffin"``, ``3``, ``3.7`` (scikit-learn's ``predict``);
- ``(label, confidence)``, or ``{"label": ..., "confidence": ...}``;
- ``{"label": ..., "scores": {label: probability, ...}}``, the richest form (one row of
  ``predict_proba`` or a softmax, keyed by label), or ``{"scores": {...}}`` alone, whose label is
  the highest-scoring one (a tie goes to the first label in text order). ``confidence`` defaults
  to the predicted label's score.

Each becomes a :class:`Prediction`: ``(predicted text, numeric value or None, confidence or
None, scores or None)``, scores as a dict of label text -> float in [0, 1], keys sorted, stored as
compact JSON text (:func:`scores_json`). The gates read the probability a model gave the
*expected* answer from it, which says far more per pattern than right or wrong. Keeping the
model's contract this loose is deliberate: a scikit-learn ``predict`` already returns a valid
batch.

Adapters raise :class:`ModelUnavailable` when a version cannot be loaded at all (its module no
longer imports, its artifact changed or vanished): replay reports such a version instead of
crashing, and its stored results keep counting.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from problem_registry.enums import LoaderKind
from problem_registry.errors import InvalidValue, RegistryError
from problem_registry.text import is_storable

__all__ = [
    "LoadedModel",
    "ModelOutputError",
    "ModelUnavailable",
    "Prediction",
    "check_loadable",
    "load_model",
    "normalise",
    "per_item",
    "scores_json",
]

MAX_SCORED_LABELS = 1000
MAX_SCORE_LABEL_LENGTH = 1000  # with MAX_SCORED_LABELS, one answer's scores stay near 1 MB
# A float32 softmax can sum a row to 1 + a few ULP of float32 (1.19e-7 each), and its largest
# entry can land there too: that much over 1 is rounding, read as 1; anything more is refused.
SCORE_SLACK = 1e-6


class ModelUnavailable(RegistryError):
    """A model version cannot be loaded: its loader does not import, or its artifact changed."""


class ModelOutputError(RegistryError):
    """A model broke the batch contract (wrong number of outputs): an error naming the model."""


class Prediction(NamedTuple):
    """One answer as stored: label text, the same answer as a number when it is one, confidence,
    and the model's per-label scores (label text -> probability, keys sorted) when it gave them."""

    predicted: str
    value: float | None
    confidence: float | None
    scores: dict[str, float] | None = None


@dataclass
class LoadedModel:
    """A loaded version, ready for batches; ``ref`` (``NAME@VERSION``) names it in every message."""

    ref: str
    predict: Callable[[Sequence[Any], Sequence[str]], Sequence[Any]]
    needs_inputs: bool = True


def per_item(function: Callable[[Any], Any]) -> Callable[[Sequence[Any]], list[Any]]:
    """Adapt a function of one input into the batch function a loader must return.

    Example, in ``my_models.py``::

        from problem_registry.adapters import per_item

        def load(artifact_path):
            model = joblib.load(artifact_path)
            return per_item(lambda image: model.predict([features(image)])[0])

    Prefer a real batch function when the model has one (most do): it is called once per batch
    instead of once per pattern. When the batch raises, replay retries each input alone anyway.
    """

    def batch(inputs: Sequence[Any]) -> list[Any]:
        return [function(item) for item in inputs]

    batch.__name__ = getattr(function, "__name__", "per_item")
    batch.__doc__ = function.__doc__
    return batch


def load_model(
    ref: str,
    loader_kind: str,
    loader: str,
    artifact_path: str | None,
    artifact_sha256: str | None,
    options: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """Load one registered version; :class:`ModelUnavailable` with the reason when it cannot be.

    ``options`` are the version's stored adapter settings (see each adapter's module)."""
    options = options or {}
    if loader_kind == LoaderKind.predictions.value:
        from problem_registry.adapters.predictions import load_predictions

        return load_predictions(ref, loader, artifact_path, artifact_sha256)
    if loader_kind == LoaderKind.python.value:
        from problem_registry.adapters.python import load_python

        return load_python(ref, loader, artifact_path, artifact_sha256)
    if loader_kind == LoaderKind.onnx.value:
        from problem_registry.adapters.onnx import load_onnx

        return load_onnx(ref, artifact_path or loader, artifact_sha256, options)
    if loader_kind == LoaderKind.endpoint.value:
        from problem_registry.adapters.endpoint import load_endpoint

        return load_endpoint(ref, loader, options)
    if loader_kind == LoaderKind.mlflow.value:
        from problem_registry.adapters.mlflow import load_mlflow

        return load_mlflow(ref, loader, options)
    raise ModelUnavailable(f"{ref}: loader kind {loader_kind!r} is not known to this version")


def check_loadable(
    loader_kind: LoaderKind,
    loader: str,
    artifact: Path | None,
    options: Mapping[str, Any] | None = None,
) -> None:
    """Refuse at registration what could never load: a module that does not import, a callable
    it lacks, a predictions file that does not parse, an ONNX file onnxruntime cannot open, an
    endpoint that does not answer. Nothing is predicted."""
    options = options or {}
    if loader_kind is LoaderKind.predictions:
        from problem_registry.adapters.predictions import read_predictions

        read_predictions(Path(loader) if artifact is None else artifact)
        return
    if loader_kind is LoaderKind.onnx:
        from problem_registry.adapters.onnx import check_onnx

        check_onnx(artifact or Path(loader), options)
        return
    if loader_kind is LoaderKind.endpoint:
        from problem_registry.adapters.endpoint import check_endpoint

        check_endpoint(loader, options)
        return
    if loader_kind is LoaderKind.mlflow:
        from problem_registry.adapters.mlflow import check_mlflow

        check_mlflow(loader, options)
        return
    from problem_registry.adapters.python import import_callable

    try:
        import_callable(loader)
    except ModelUnavailable as exc:
        raise InvalidValue(f"--loader {exc}") from None


def normalise(output: Any) -> Prediction:
    """One raw model output as stored; :class:`ValueError` with a readable reason if unusable.

    A label or number is the answer; a pair or a ``{"label", "confidence"}`` mapping adds a
    confidence; a ``"scores"`` mapping (label -> probability) adds the scores, and the label
    defaults to their argmax. Numbers keep their value (for range expectations) and get a
    canonical text (``3`` for 3 and 3.0, so a regressor's 3.0 meets ``--expect 3``); numeric
    text keeps its numeric value too (a CSV of predictions is all text).
    """
    kind = type(output)
    if kind is str:  # the common cases first: replay normalises every stored answer
        return Prediction(output, _numeric_text(output), None)
    if kind is int:
        return Prediction(str(output), float(output) if abs(output) < 2**1023 else None, None)
    if not isinstance(output, (tuple, list, dict)):
        output = _plain(output)
        if isinstance(output, list):
            # A row of predict_proba is an array too: never read it as (label, confidence).
            raise ValueError(
                f"output {_short(output)} is an array; return one label or number per input, "
                '(label, confidence), or {"label": ..., "scores": {label: probability, ...}}'
            )
    confidence: Any = None
    if isinstance(output, dict):
        if "scores" in output:
            return _scored(output)
        if "label" not in output:
            raise ValueError(f"output mapping {_short(output)} has no 'label' key (nor 'scores')")
        output, confidence = _plain(output["label"]), _plain(output.get("confidence"))
    elif isinstance(output, (tuple, list)):
        if len(output) != 2:
            raise ValueError(
                f"output {_short(output)} is a sequence of {len(output)}; return a label, "
                "a number or (label, confidence)"
            )
        output, confidence = _plain(output[0]), _plain(output[1])
    return Prediction(*_answer(output), _confidence(confidence))


def scores_json(scores: dict[str, float]) -> str:
    """The stored text of :attr:`Prediction.scores`: compact JSON, keys sorted, floats exact
    (``repr`` round-trips), non-ASCII kept as is."""
    return _SCORES_ENCODER.encode(scores)


# One encoder for every row (json.dumps builds one per call): a cold replay writes one per result.
_SCORES_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _scored(output: dict[Any, Any]) -> Prediction:
    """``{"label": L, "scores": {...}}`` or ``{"scores": {...}}`` (label: the argmax)."""
    scores = _scores(output["scores"])
    if "label" in output:
        predicted, value = _answer(_plain(output["label"]))
        if not is_storable(predicted):  # PostgreSQL refuses a NUL: this input's error, not a crash
            raise ValueError(f"label {_short(predicted)} contains a NUL or is not valid UTF-8")
    else:
        # max() keeps the first of equal scores, and the keys are sorted: ties go to label order.
        predicted = max(scores, key=scores.__getitem__)
        value = _numeric_text(predicted)
    confidence = _confidence(_plain(output.get("confidence")))
    if confidence is None:
        confidence = scores.get(predicted)
    return Prediction(predicted, value, confidence, scores)


def _scores(raw: Any) -> dict[str, float]:
    """A model's scores checked and made canonical: label text -> float in [0, 1], keys sorted."""
    if not isinstance(raw, dict):
        raise ValueError(
            f"scores {_short(raw)} is a {type(raw).__name__}; give a mapping of label to "
            "probability, e.g. dict(zip(model.classes_, row))"
        )
    if not raw:
        raise ValueError("scores is an empty mapping; give each label's probability")
    if len(raw) > MAX_SCORED_LABELS:
        raise ValueError(f"scores has {len(raw):,} labels; the most is {MAX_SCORED_LABELS:,}")
    scores: dict[str, float] = {}
    for key, number in raw.items():
        label = _score_label(key)
        if label in scores:
            raise ValueError(f"scores name label {label!r} twice (as {key!r} and another key)")
        if type(number) is float and 0.0 <= number <= 1.0:
            scores[label] = number + 0.0  # as _probability gives it (-0.0 as 0.0), sooner
        else:
            scores[label] = _probability(label, number)
    return dict(sorted(scores.items()))


def _score_label(key: Any) -> str:
    label: str
    kind = type(key)
    if kind is str and key.isascii() and "\x00" not in key and len(key) <= MAX_SCORE_LABEL_LENGTH:
        return str(key)  # the common case, storable by construction: a row's 10 labels, every row
    if kind is str:
        label = key
    elif isinstance(key, str):  # numpy's str_
        label = str(key)
    else:
        plain = _plain(key)  # numpy integers and booleans (a classifier's classes_)
        if isinstance(plain, bool):
            label = str(plain).lower()  # as a boolean label is stored
        elif isinstance(plain, int):
            label = str(plain)
        else:
            raise ValueError(f"score label {_short(key)} is not a string or an integer")
    if not is_storable(label):
        raise ValueError(f"score label {_short(label)} contains a NUL or is not valid UTF-8")
    if len(label) > MAX_SCORE_LABEL_LENGTH:
        raise ValueError(
            f"score label {_short(label)} is {len(label):,} characters; "
            f"the most is {MAX_SCORE_LABEL_LENGTH:,}"
        )
    return label


def _probability(label: str, raw: Any) -> float:
    if type(raw) is float:
        number: float = raw
    else:
        raw = _plain(raw)
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ValueError(f"score {_short(raw)} of label {_short(label)} is not a number")
        number = float(raw)
    if 0.0 <= number <= 1.0:
        return number + 0.0  # -0.0 as 0.0
    if 1.0 < number <= 1.0 + SCORE_SLACK:
        return 1.0
    raise ValueError(f"score {number!r} of label {_short(label)} is not a probability in [0, 1]")


def _plain(value: Any) -> Any:
    """numpy (and similar) scalars and arrays as Python values, without importing numpy."""
    if isinstance(value, (str, bytes, dict, tuple, list)) or value is None:
        return value
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


def _answer(output: Any) -> tuple[str, float | None]:
    if isinstance(output, bool):
        return str(output).lower(), None
    if isinstance(output, int):
        return str(output), float(output) if abs(output) < 2**1023 else None
    if isinstance(output, float):
        if not math.isfinite(output):
            return str(output), None
        return _number_text(output), output
    if isinstance(output, bytes):
        output = output.decode("utf-8", errors="replace")
    if isinstance(output, str):
        return output, _numeric_text(output)
    raise ValueError(
        f"cannot read output {_short(output)} of type {type(output).__name__}; return a label, "
        'a number, (label, confidence), {"label": ..., "confidence": ...} or '
        '{"label": ..., "scores": {...}}'
    )


def _confidence(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"confidence {_short(value)} is not a number")
    if not math.isfinite(value):
        raise ValueError(f"confidence {value} is not a finite number")
    return float(value)


_DIGIT_ENDINGS = frozenset("0123456789. \t\n\r")


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _numeric_text(text: str) -> float | None:
    if not text or text[-1] not in _DIGIT_ENDINGS or "_" in text:
        return None  # cheap refusal of most labels ("muffin") before trying float()
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
