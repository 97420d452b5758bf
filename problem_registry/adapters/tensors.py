"""The default input and output adapters of models that take arrays (ONNX, v2 endpoints, MLflow).

A pattern is decoded to a PIL image, a str or a JSON value; an array model wants a number array of
its own shape, and answers with arrays. This module is the one place that bridges the two, so
every array adapter reads patterns and answers the same way.

**Inputs** (one row per pattern, stacked into a batch), unless ``--preprocess module:callable``
turns each decoded pattern into the model's input itself:

- an image becomes its pixels as float32, **unscaled (0..255)**, in the shape the model declares
  without its batch axis: ``[F]`` (flattened: greyscale when ``F`` is the image's width x height
  or a square, RGB when it is three times that), ``[H, W]`` (greyscale), ``[C, H, W]`` or
  ``[H, W, C]`` with ``C`` 1 or 3. The image is resized (bilinear) when the model's size is fixed
  and differs. Scale or normalise with ``--preprocess``.
- a JSON list of numbers (nested or flat) becomes one float32 row, reshaped to the model's shape
  when the sizes agree; ``{"features": [...]}`` is read the same way.
- text has no default: give ``--preprocess``.

**Outputs**: a classifier's probabilities (a ``[N, C]`` float array, or scikit-learn's ZipMap, a
list of ``{class: probability}`` mappings) become ``{"label", "scores"}`` answers, the scores
keyed by the class list (``--classes``, else ``0..C-1``); rows that are not probabilities (any
value outside [0, 1], or not summing to 1) are read as logits and softmaxed. A label output, when
the model has one and no ``--classes`` is given, gives the label; otherwise the highest score
does. Without scores, an integer label is read as an index into ``--classes`` (a network's
argmax). A single value per row is a regressor's number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from problem_registry.text import is_storable

Shape = Sequence[int | None]  # the model's input shape without its batch axis; None: any size
Preprocess = Callable[[Any], Any]
PROBABILITY_SLACK = 1e-3  # float32 rows sum to 1 within this


class InputError(ValueError):
    """This pattern cannot become the model's input: that pattern's error, not the version's."""


def input_row(item: Any, shape: Shape, dtype: Any, preprocess: Preprocess | None) -> Any:
    """One pattern as the model's input: an array of ``shape`` (or a dict of named arrays from a
    preprocess function feeding several inputs)."""
    if preprocess is not None:
        value = preprocess(item)
        if isinstance(value, dict):
            return {str(name): np.asarray(array) for name, array in value.items()}
        return _fit(np.asarray(value, dtype=dtype), shape, "--preprocess returned")
    if hasattr(item, "convert") and hasattr(item, "size"):  # a PIL image
        return _image(item, shape).astype(dtype, copy=False)
    if isinstance(item, dict) and "features" in item:
        item = item["features"]
    if isinstance(item, list):
        try:
            array = np.asarray(item, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise InputError(f"JSON pattern is not a list of numbers ({exc})") from None
        return _fit(array, shape, "JSON pattern has")
    if isinstance(item, str):
        raise InputError(
            "text patterns have no default input for an array model; give --preprocess "
            "module:callable turning the text into the model's input"
        )
    raise InputError(
        f"a {type(item).__name__} pattern has no default input for an array model; a JSON "
        'pattern must be a list of numbers or {"features": [...]}, or give --preprocess'
    )


def preprocess_of(options: Mapping[str, Any], error: type[Exception]) -> Preprocess | None:
    """The ``--preprocess`` function the options name (None for the default input adapter);
    ``error`` with the reason when it does not import."""
    spec = options.get("preprocess")
    if not spec:
        return None
    from problem_registry.adapters import ModelUnavailable
    from problem_registry.adapters.python import import_callable

    try:
        return import_callable(str(spec))
    except ModelUnavailable as exc:
        raise error(f"--preprocess {exc}") from None


def per_row(
    inputs: Sequence[Any],
    to_row: Callable[[Any], Any],
    answer: Callable[[list[Any]], list[Any]],
) -> list[Any]:
    """One answer per input: each input made a row by ``to_row`` (an :class:`InputError` is that
    input's answer), the rows answered by ``answer`` in one call, the answers put back in place."""
    outputs: list[Any] = [None] * len(inputs)
    rows: list[Any] = []
    places: list[int] = []
    for index, item in enumerate(inputs):
        try:
            rows.append(to_row(item))
            places.append(index)
        except InputError as exc:
            outputs[index] = exc
    if rows:
        for index, output in zip(places, answer(rows), strict=True):
            outputs[index] = output
    return outputs


def stack(rows: Sequence[Any]) -> Any:
    """Rows of one input as a batch (a dict of batches for named inputs)."""
    if rows and isinstance(rows[0], dict):
        return {name: np.stack([row[name] for row in rows]) for name in rows[0]}
    return np.stack(rows)


def _fit(array: Any, shape: Shape, what: str) -> Any:
    if not shape or any(d is None for d in shape):
        return array
    wanted = math.prod(d for d in shape if d is not None)
    if array.size != wanted:
        raise InputError(
            f"{what} {array.size} values; the model takes {wanted} (shape {list(shape)})"
        )
    return array.reshape(tuple(d for d in shape if d is not None))


def _image(image: Any, shape: Shape) -> Any:
    width, height = image.size
    dims = list(shape)
    if len(dims) == 1:
        features = dims[0]
        mode = "RGB" if features is None and image.mode in ("RGB", "RGBA") else "L"
        size = (width, height)
        if features is not None and features != width * height:
            if features == width * height * 3:
                mode = "RGB"
            elif math.isqrt(features) ** 2 == features:
                side = math.isqrt(features)
                size = (side, side)
            elif features % 3 == 0 and math.isqrt(features // 3) ** 2 == features // 3:
                side = math.isqrt(features // 3)
                mode, size = "RGB", (side, side)
            else:
                raise InputError(
                    f"the model takes {features} values per input, which is no image's "
                    "width x height (x 3); give --preprocess"
                )
        return _pixels(image, mode, size).reshape(-1)
    if len(dims) == 2:
        h, w = dims
        return _pixels(image, "L", (w, h) if h is not None and w is not None else (width, height))
    if len(dims) == 3:
        channels_first = dims[0] in (1, 3) and dims[2] not in (1, 3)
        channels = dims[0] if channels_first else dims[2]
        mode = "RGB" if channels == 3 else "L"
        h, w = (dims[1], dims[2]) if channels_first else (dims[0], dims[1])
        size = (w, h) if h is not None and w is not None else (width, height)
        pixels = _pixels(image, mode, size)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        return np.transpose(pixels, (2, 0, 1)) if channels_first else pixels
    if not dims:  # the model does not say: greyscale (or colour) pixels, flattened
        return _image(image, [None])
    raise InputError(f"the model's input shape {dims} is not an image's; give --preprocess")


def _pixels(image: Any, mode: str, size: tuple[int, int]) -> Any:
    converted = image.convert(mode)
    if converted.size != size:
        from PIL import Image

        converted = converted.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(converted, dtype=np.float32)


def answers_from_outputs(
    named: Mapping[str, Any], count: int, options: Mapping[str, Any]
) -> list[Any]:
    """One answer per input from a model's named outputs: which one is the label and which the
    probabilities is read from their shapes (``label_output`` / ``scores_output`` options name
    them when that guess is wrong); see the module's docstring."""
    label_name: str | None = options.get("label_output")
    scores_name: str | None = options.get("scores_output")
    for name in (label_name, scores_name):
        if name is not None and name not in named:
            raise ValueError(f"the model has no output {name!r} (it has {sorted(named)})")
    for name, value in named.items():
        if scores_name is None and _looks_like_probabilities(name, value):
            scores_name = name
        elif label_name is None and name != scores_name and _looks_like_labels(value):
            label_name = name
    if label_name is None and scores_name is None:
        raise ValueError(
            f"no output of {sorted(named)} is one label or one row of scores per input"
        )
    return answers(
        count,
        labels=named[label_name] if label_name else None,
        probabilities=named[scores_name] if scores_name else None,
        classes=options.get("classes"),
    )


def _looks_like_probabilities(name: str, value: Any) -> bool:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return True  # scikit-learn's ZipMap
    array = np.asarray(value)
    if array.ndim != 2 or array.dtype.kind != "f":
        return False
    return array.shape[1] > 1 or "prob" in name.lower()


def _looks_like_labels(value: Any) -> bool:
    array = np.asarray(value)
    return array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)


def answers(
    count: int,
    *,
    labels: Any = None,
    probabilities: Any = None,
    classes: Sequence[str] | None = None,
) -> list[Any]:
    """One answer per input from a model's label and/or probability outputs (see the module)."""
    if probabilities is not None:
        rows, names = _score_rows(probabilities, classes, count)
        # With --classes naming the score columns, the label is the best of them: a label output
        # holds class *values* (skl2onnx, MLServer) that need not be indices into that list.
        label_list = _labels(labels, count) if labels is not None and not classes else None
        out: list[Any] = []
        for index, row in enumerate(rows):
            scores = dict(zip(names, row, strict=True))
            if label_list is not None:
                out.append({"label": label_list[index], "scores": scores})
            else:
                out.append({"scores": scores})
        return out
    if labels is None:
        raise ValueError("the model gave neither a label nor a probability output")
    label_list = _labels(labels, count)
    if classes:
        return [_class_of(label, classes) for label in label_list]
    return label_list


def _labels(labels: Any, count: int) -> list[Any]:
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or len(array) != count:
        raise ValueError(
            f"the label output has shape {list(array.shape)}; expected one label per input "
            f"({count})"
        )
    values = array.tolist()
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]


def _class_of(label: Any, classes: Sequence[str]) -> Any:
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(classes):
        return classes[label]
    return label


def _score_rows(
    probabilities: Any, classes: Sequence[str] | None, count: int
) -> tuple[list[list[float]], list[str]]:
    if isinstance(probabilities, list) and probabilities and isinstance(probabilities[0], dict):
        # scikit-learn's ZipMap: one {class: probability} per input, the class list built in.
        names = [_label_text(key) for key in probabilities[0]]
        rows = [[float(value) for value in row.values()] for row in probabilities]
    else:
        array = np.asarray(probabilities, dtype=np.float64)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2 or array.shape[0] != count:
            raise ValueError(
                f"the probability output has shape {list(array.shape)}; expected [{count}, classes]"
            )
        if array.shape[1] == 1 and not classes:
            raise ValueError("a single score per input is a number, not class probabilities")
        if not _are_probabilities(array):
            shifted = np.exp(array - array.max(axis=1, keepdims=True))
            array = shifted / shifted.sum(axis=1, keepdims=True)
        rows = array.tolist()
        names = list(classes) if classes else [str(i) for i in range(array.shape[1])]
    if len(rows) != count:
        raise ValueError(f"the probability output has {len(rows)} rows for {count} inputs")
    if rows and len(names) != len(rows[0]):
        raise ValueError(
            f"--classes names {len(names)} classes but the model gives {len(rows[0])} scores "
            "per input"
        )
    return rows, names


def _are_probabilities(array: Any) -> bool:
    if array.size == 0:
        return True
    if float(array.min()) < 0.0 or float(array.max()) > 1.0 + PROBABILITY_SLACK:
        return False
    return bool(np.all(np.abs(array.sum(axis=1) - 1.0) <= PROBABILITY_SLACK))


def _label_text(key: Any) -> str:
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
    return text if is_storable(text) else repr(text)


def parse_classes(text: str) -> list[str]:
    """``--classes``: comma-separated labels (``cat,dog``), or ``@FILE`` with one label a line."""
    from pathlib import Path

    from problem_registry.errors import InvalidValue

    if text.startswith("@"):
        try:
            lines = Path(text[1:]).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidValue(f"--classes {text}: cannot read the file ({exc})") from None
        names = [line.strip() for line in lines if line.strip()]
    else:
        names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise InvalidValue("--classes names no class; give cat,dog or @classes.txt")
    if len(set(names)) != len(names):
        raise InvalidValue("--classes names a class twice")
    for name in names:
        if not is_storable(name):
            raise InvalidValue(f"--classes: {name!r} contains a NUL or is not valid UTF-8")
    return names
