"""What the ONNX, endpoint and MLflow adapter tests share: the packages they need, and the answers
a version stored, read back per pattern to compare with scikit-learn's own on the same rows."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image
from typer.testing import CliRunner

from problem_registry.cli import app
from problem_registry.store.content import sha256_of_file
from tests.digit_registry import Digits
from tests.helpers import assert_one_clear_error
from tests.models.digits import features


def run_cli(digits: Digits, database_url: str, *args: str, code: int = 0) -> Any:
    """``problem-registry --url URL --patterns-dir ... ARGS`` in process, its exit code checked;
    a user error (exit 1) must be one clear line."""
    result = CliRunner().invoke(
        app,
        ["--url", database_url, "--patterns-dir", str(digits.registry.store.root), *args],
        catch_exceptions=False,
    )
    assert result.exit_code == code, (result.stdout, result.stderr)
    if code == 1:
        assert_one_clear_error(result.stderr, result.stdout)
    return result


def register_with_features(
    digits: Digits, database_url: str, version: str, source: str, where: str
) -> None:
    """``model register digits VERSION SOURCE WHERE`` (``--onnx FILE``, ``--mlflow URI``) with
    the digits' own feature function as the preprocess step, as the scikit-learn models expect."""
    run_cli(
        digits, database_url, "model", "register", "digits", version, source, where,
        "--preprocess", "tests.models.digits:features",
    )  # fmt: skip


def gate(
    digits: Digits,
    database_url: str,
    candidate: str,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
) -> pytest.RunResult:
    """``pytest --registry --candidate CANDIDATE`` against v2 as champion, in process."""
    digits.registry.models.promote("digits", "v2")
    monkeypatch.setenv("PROBLEM_REGISTRY_PATTERNS", str(digits.registry.store.root))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    # The preprocess functions live in this repository's tests package.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    return pytester.runpytest_inprocess(
        "--registry",
        "--registry-url",
        database_url,
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        "--candidate",
        candidate,
        "-v",
    )


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``; skip when it is missing, but fail under CI, which installs ``.[test]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = f"{module} is not installed ({exc})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run these tests (the test extra includes {extra})")
        pytest.skip(f"{reason}; pip install -e '.[test]' to run these tests")


def stored_answers(
    digits: Digits, ref: str
) -> dict[str, tuple[str | None, dict[str, float] | None]]:
    """pattern sha256 -> (predicted, scores) as stored for ``ref`` (NAME@VERSION)."""
    name, _, version = ref.partition("@")
    query = sa.text(
        "SELECT pf.sha256, r.predicted, r.scores FROM result r "
        "JOIN pattern_file pf ON pf.id = r.file_id "
        "JOIN model_version mv ON mv.id = r.model_version_id "
        "WHERE mv.name = :name AND mv.version = :version"
    )
    with digits.registry.engine.connect() as connection:
        rows = connection.execute(query, {"name": name, "version": version}).all()
    return {
        sha: (predicted, json.loads(scores) if scores else None) for sha, predicted, scores in rows
    }


def stored_errors(digits: Digits, ref: str) -> dict[str, str | None]:
    """pattern sha256 -> the error stored for ``ref`` (None where it answered)."""
    name, _, version = ref.partition("@")
    query = sa.text(
        "SELECT pf.sha256, r.error FROM result r "
        "JOIN pattern_file pf ON pf.id = r.file_id "
        "JOIN model_version mv ON mv.id = r.model_version_id "
        "WHERE mv.name = :name AND mv.version = :version"
    )
    with digits.registry.engine.connect() as connection:
        return dict(connection.execute(query, {"name": name, "version": version}).all())


def pattern_rows(digits: Digits) -> dict[str, np.ndarray]:
    """pattern sha256 -> scikit-learn's feature row for it (read back from the pattern file)."""
    rows: dict[str, np.ndarray] = {}
    for cases in digits.cases.values():
        for case in cases:
            path = digits.file_of(case.index)
            with Image.open(path) as image:
                rows[sha256_of_file(path)] = features(image)
    return rows


def sklearn_answers(
    model: Any, rows: dict[str, np.ndarray], scale: float = 1.0
) -> dict[str, tuple[str, dict[str, float]]]:
    """sha256 -> (label, scores) from the scikit-learn model itself, on ``rows * scale``."""
    keys = sorted(rows)
    x = np.stack([rows[k] for k in keys]) * scale
    labels = model.predict(x)
    probabilities = model.predict_proba(x)
    return {
        key: (str(label), {str(c): float(p) for c, p in zip(model.classes_, row, strict=True)})
        for key, label, row in zip(keys, labels, probabilities, strict=True)
    }


def assert_same_answers(
    stored: dict[str, Any], expected: dict[str, Any], *, tolerance: float = 1e-4
) -> None:
    """Every pattern has the same label, and the same scores within float32 rounding."""
    assert sorted(stored) == sorted(expected)
    for sha, (label, scores) in expected.items():
        got_label, got_scores = stored[sha]
        assert got_label == label, sha
        assert got_scores is not None, sha
        assert sorted(got_scores) == sorted(scores)
        for key, value in scores.items():
            assert got_scores[key] == pytest.approx(value, abs=tolerance), (sha, key)


def write_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
