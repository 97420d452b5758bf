"""ONNX versions (issue 18, item 1): a scikit-learn digits model converted with skl2onnx here,
registered with ``--onnx``, run by onnxruntime in a worker, replayed and gated end to end; its
answers and scores are scikit-learn's own on the same patterns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from problem_registry.replay.engine import replay
from tests.digit_registry import Digits
from tests.model_sources import (
    assert_same_answers,
    gate,
    pattern_rows,
    register_with_features,
    require,
    run_cli,
    sklearn_answers,
    stored_answers,
)
from tests.models.digits import PIXEL_SCALE

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def to_onnx(model: Any, path: Path) -> Path:
    """skl2onnx's conversion, probabilities as a plain [N, 10] array (``zipmap=False``)."""
    require("onnxruntime", "onnxruntime")
    skl2onnx = require("skl2onnx", "skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    onnx_model = skl2onnx.convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, 64]))],
        options={id(model): {"zipmap": False}},
        target_opset=17,
    )
    path.write_bytes(onnx_model.SerializeToString())
    return path


def test_onnx_version_gives_scikit_learns_answers_and_scores(
    digits: Digits, database_url: str, tmp_path: Path
) -> None:
    model = digits.trained.models["v3"]
    onnx_file = to_onnx(model, tmp_path / "digits-v3.onnx")
    register_with_features(digits, database_url, "onnx", "--onnx", str(onnx_file))
    view = digits.registry.models.get("digits", "onnx")
    assert view.loader_kind == "onnx"
    assert view.loader_options == {"preprocess": "tests.models.digits:features"}
    from problem_registry.store.content import sha256_of_file

    assert view.artifact_sha256 == sha256_of_file(onnx_file)

    summary = replay(digits.registry, ["digits@onnx"])
    assert summary.versions[0].errored == 0
    expected = sklearn_answers(model, pattern_rows(digits))
    assert_same_answers(stored_answers(digits, "digits@onnx"), expected)


def test_default_input_adapter_feeds_image_pixels_in_the_models_shape(
    digits: Digits, database_url: str, tmp_path: Path
) -> None:
    """No --preprocess: an 8x8 PNG becomes 64 float32 pixels (0..255), as the model declares."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    data = load_digits()
    pixels = data.data[:1200] * PIXEL_SCALE  # what the pattern PNGs hold
    model = LogisticRegression(max_iter=2000).fit(pixels, data.target[:1200])
    onnx_file = to_onnx(model, tmp_path / "pixels.onnx")
    run_cli(
        digits,
        database_url,
        "model",
        "register",
        "digits",
        "pixels",
        "--onnx",
        str(onnx_file),
        "--classes",
        "0,1,2,3,4,5,6,7,8,9",
    )
    replay(digits.registry, ["digits@pixels"])
    expected = sklearn_answers(model, pattern_rows(digits), scale=PIXEL_SCALE)
    assert_same_answers(stored_answers(digits, "digits@pixels"), expected)


def test_onnx_candidate_gates_with_pytest_registry(
    digits: Digits,
    database_url: str,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    onnx_file = to_onnx(digits.trained.models["v3"], tmp_path / "digits-v3.onnx")
    register_with_features(digits, database_url, "onnx", "--onnx", str(onnx_file))
    result = gate(digits, database_url, "digits@onnx", pytester, monkeypatch)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*candidate digits@onnx against digits@v2*"])


def test_unreadable_onnx_file_is_refused_in_one_line(
    digits: Digits, database_url: str, tmp_path: Path
) -> None:
    require("onnxruntime", "onnxruntime")
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"this is not a protobuf")
    result = run_cli(
        digits, database_url, "model", "register", "digits", "bad", "--onnx", str(bogus), code=1
    )
    assert "cannot load ONNX file" in result.stderr
    missing = run_cli(
        digits,
        database_url,
        "model",
        "register",
        "digits",
        "bad",
        "--onnx",
        str(tmp_path / "absent.onnx"),
        code=1,
    )
    assert "absent.onnx" in missing.stderr
    assert [v.version for v in digits.registry.models.list("digits")] == ["v1", "v2", "v3"]


def test_a_preprocess_that_does_not_import_is_refused(
    digits: Digits, database_url: str, tmp_path: Path
) -> None:
    onnx_file = to_onnx(digits.trained.models["v3"], tmp_path / "digits-v3.onnx")
    result = run_cli(
        digits,
        database_url,
        "model",
        "register",
        "digits",
        "x",
        "--onnx",
        str(onnx_file),
        "--preprocess",
        "tests.models.digits:nope",
        code=1,
    )
    assert "--preprocess" in result.stderr


def test_two_sources_at_once_is_a_usage_error(
    digits: Digits, database_url: str, tmp_path: Path
) -> None:
    run_cli(
        digits,
        database_url,
        "model",
        "register",
        "digits",
        "x",
        "--onnx",
        "a.onnx",
        "--mlflow",
        "models:/digits/1",
        code=2,
    )


def test_a_changed_onnx_file_makes_the_version_unavailable(
    digits: Digits, database_url: str, tmp_path: Path
) -> None:
    onnx_file = to_onnx(digits.trained.models["v3"], tmp_path / "digits-v3.onnx")
    register_with_features(digits, database_url, "onnx", "--onnx", str(onnx_file))
    shown = run_cli(digits, database_url, "model", "show", "digits@onnx", "--json")
    assert json.loads(shown.stdout)["loads"] is True
    assert json.loads(shown.stdout)["location"] == str(onnx_file.resolve())
    to_onnx(digits.trained.models["v1"], onnx_file)  # re-exported in place: a different model
    shown = run_cli(digits, database_url, "model", "show", "digits@onnx", code=1)
    assert "loads now" in shown.stdout and "changed since it was registered" in shown.stdout
    summary = replay(digits.registry, ["digits@v1", "digits@onnx"])
    onnx = next(v for v in summary.versions if v.ref == "digits@onnx")
    assert onnx.status == "unavailable"
    assert "changed since it was registered" in (onnx.reason or "")
