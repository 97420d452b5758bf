"""The default input and output adapters of array models (ONNX, v2 endpoints, MLflow): real PIL
images and arrays in, the shapes and answers ``docs/adapters.md`` promises out."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from problem_registry.adapters import normalise
from problem_registry.adapters.tensors import (
    InputError,
    answers,
    answers_from_outputs,
    input_row,
    parse_classes,
    per_row,
)
from problem_registry.errors import InvalidValue


def grey(width: int = 8, height: int = 8) -> Image.Image:
    return Image.fromarray(np.arange(width * height, dtype=np.uint8).reshape(height, width), "L")


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ([64], (64,)),  # flattened greyscale: width x height
        ([192], (192,)),  # three times that: RGB
        ([16], (16,)),  # a square: resized to 4x4
        ([8, 8], (8, 8)),
        ([1, 8, 8], (1, 8, 8)),  # channels first
        ([8, 8, 3], (8, 8, 3)),  # channels last, RGB
        ([3, 28, 28], (3, 28, 28)),  # resized to the model's fixed size
        ([None, None], (8, 8)),  # any size: the image's own
        ([], (64,)),  # the model does not say: its pixels, flattened
    ],
)
def test_an_image_becomes_float32_pixels_in_the_models_shape(
    shape: list[int | None], expected: tuple[int, ...]
) -> None:
    row = input_row(grey(), shape, "float32", None)
    assert row.shape == expected and row.dtype == np.float32


def test_pixels_are_unscaled() -> None:
    row = input_row(grey(), [64], "float32", None)
    assert row.tolist() == list(range(64))


def test_a_json_list_is_one_row_and_a_wrong_size_is_that_patterns_error() -> None:
    assert input_row([[1, 2], [3, 4]], [4], "float32", None).tolist() == [1, 2, 3, 4]
    assert input_row({"features": [1, 2, 3, 4]}, [2, 2], "float64", None).shape == (2, 2)
    with pytest.raises(InputError, match="3 values; the model takes 4"):
        input_row([1, 2, 3], [4], "float32", None)
    with pytest.raises(InputError, match="--preprocess"):
        input_row("a sentence", [4], "float32", None)


def test_per_row_keeps_each_input_error_in_place() -> None:
    outputs = per_row(
        [[1.0, 2.0], "text", [3.0, 4.0]],
        lambda item: input_row(item, [2], "float32", None),
        lambda rows: [float(row.sum()) for row in rows],
    )
    assert outputs[0] == 3.0 and outputs[2] == 7.0
    assert isinstance(outputs[1], InputError)


def test_label_and_probability_outputs_become_scored_answers() -> None:
    named = {
        "output_label": np.array([2, 0]),
        "output_probability": np.array([[0.1, 0.2, 0.7], [0.8, 0.1, 0.1]], dtype=np.float32),
    }
    out = answers_from_outputs(named, 2, {"classes": ["cat", "dog", "fox"]})
    first = normalise(out[0])
    assert first.predicted == "fox"
    assert first.scores == pytest.approx({"cat": 0.1, "dog": 0.2, "fox": 0.7})
    assert normalise(out[1]).predicted == "cat"


def test_zipmap_and_logits_are_read_as_scores() -> None:
    zipmap = [{0: 0.25, 1: 0.75}]
    assert normalise(answers(1, probabilities=zipmap)[0]).predicted == "1"
    logits = np.array([[2.0, -1.0, 0.5]])
    scored = normalise(answers(1, probabilities=logits)[0])
    assert scored.predicted == "0"
    assert sum(scored.scores.values()) == pytest.approx(1.0)  # type: ignore[union-attr]


def test_a_single_float_per_input_is_a_number() -> None:
    out = answers_from_outputs({"variable": np.array([[3.5], [1.0]], dtype=np.float32)}, 2, {})
    assert [normalise(o).value for o in out] == [3.5, 1.0]


def test_classes_that_do_not_match_the_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="names 2 classes but the model gives 3"):
        answers(1, probabilities=np.array([[0.2, 0.3, 0.5]]), classes=["a", "b"])


def test_classes_parse_from_text_or_a_file(tmp_path) -> None:
    assert parse_classes("cat, dog") == ["cat", "dog"]
    (tmp_path / "c.txt").write_text("cat\n\ndog\n")
    assert parse_classes(f"@{tmp_path / 'c.txt'}") == ["cat", "dog"]
    with pytest.raises(InvalidValue, match="twice"):
        parse_classes("cat,cat")
