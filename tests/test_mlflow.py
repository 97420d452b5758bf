"""MLflow versions (issue 18, item 2): scikit-learn digit models logged here to a local MLflow
store (SQLite backend in a temp folder), registered by ``models:/`` URI, replayed and gated end to
end; an alias is fixed to its version at registration."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
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
from tests.models.digits import Trained

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
MODEL = "digits-mlflow"


@dataclass(frozen=True)
class Store:
    tracking_uri: str
    versions: dict[int, Any]  # MLflow version -> the scikit-learn model logged as it


@pytest.fixture(scope="module")
def mlflow_store(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """v3 and v1 of the digits models logged once per module, as MLflow versions 1 and 2, with
    the alias ``champion`` on version 1. Logging (and MLflow's own migrations) take seconds."""
    require("mlflow", "mlflow")
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        experiment = mlflow.create_experiment("digits", artifact_location=str(folder / "artifacts"))
        versions = {}
        for number, version in ((1, "v3"), (2, "v1")):
            model = trained.models[version]
            x = trained.test_x[:5]
            with mlflow.start_run(experiment_id=experiment):
                mlflow.sklearn.log_model(
                    model,
                    name="model",
                    registered_model_name=MODEL,
                    signature=infer_signature(x, model.predict_proba(x)),
                    pyfunc_predict_fn="predict_proba",
                )
            versions[number] = model
        mlflow.MlflowClient().set_registered_model_alias(MODEL, "champion", "1")
        yield Store(uri, versions)


@pytest.fixture
def tracking(mlflow_store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    """MLflow's own environment variable, as a user would set it (and model workers inherit)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store.tracking_uri)
    return mlflow_store


def test_mlflow_version_gives_scikit_learns_answers_and_scores(
    digits: Digits, database_url: str, tracking: Store
) -> None:
    register_with_features(digits, database_url, "mlflow", "--mlflow", f"models:/{MODEL}/1")
    summary = replay(digits.registry, ["digits@mlflow"])
    assert summary.versions[0].errored == 0
    expected = sklearn_answers(tracking.versions[1], pattern_rows(digits))
    assert_same_answers(stored_answers(digits, "digits@mlflow"), expected, tolerance=1e-9)


def test_an_alias_is_fixed_to_its_version_at_registration(
    digits: Digits, database_url: str, tracking: Store
) -> None:
    import mlflow

    register_with_features(digits, database_url, "champ", "--mlflow", f"models:/{MODEL}@champion")
    assert digits.registry.models.get("digits", "champ").loader == f"models:/{MODEL}/1"
    client = mlflow.MlflowClient(tracking_uri=tracking.tracking_uri)
    client.set_registered_model_alias(MODEL, "champion", "2")  # the alias moves on
    try:
        replay(digits.registry, ["digits@champ"])
    finally:
        client.set_registered_model_alias(MODEL, "champion", "1")
    expected = sklearn_answers(tracking.versions[1], pattern_rows(digits))  # still version 1
    assert_same_answers(stored_answers(digits, "digits@champ"), expected, tolerance=1e-9)


def test_mlflow_candidate_gates_with_pytest_registry(
    digits: Digits,
    database_url: str,
    tracking: Store,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register_with_features(digits, database_url, "mlflow", "--mlflow", f"models:/{MODEL}/1")
    result = gate(digits, database_url, "digits@mlflow", pytester, monkeypatch)
    result.assert_outcomes(passed=4)


def test_unknown_mlflow_model_or_alias_is_refused_in_one_line(
    digits: Digits, database_url: str, tracking: Store
) -> None:
    result = run_cli(
        digits,
        database_url,
        "model",
        "register",
        "digits",
        "x",
        "--mlflow",
        f"models:/{MODEL}@nobody",
        code=1,
    )
    assert "nobody" in result.stderr
    result = run_cli(
        digits,
        database_url,
        "model",
        "register",
        "digits",
        "x",
        "--mlflow",
        f"models:/{MODEL}/99",
        code=1,
    )
    assert "cannot load MLflow model" in result.stderr
    assert os.environ["MLFLOW_TRACKING_URI"] == tracking.tracking_uri
