"""MLflow models, loaded as pyfunc (``pip install 'problem-registry[mlflow]'``; issue 18, item 2).

``model register NAME V --mlflow models:/digits/3`` (or ``models:/digits@champion``,
``runs:/RUN_ID/model``, or any URI MLflow loads). The tracking and registry servers are MLflow's
own settings (``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI`` and MLflow's credentials
variables), read by MLflow itself; nothing of them is stored here.

An alias (``@champion``) or ``/latest`` moves; a version never does. So registration resolves it
to the version it names *now* and stores ``models:/NAME/VERSION``: results of two different
models are never mixed under one registered version (STYLE.md, "MLflow").

Inputs follow :mod:`problem_registry.adapters.tensors`, shaped by the model's signature (a tensor
spec's shape, or a column schema's column count, sent as a DataFrame with those columns). The
answer of ``predict`` is read like any array model's: labels (``predict``), or a ``[N, C]``
float array (a model logged with ``pyfunc_predict_fn="predict_proba"``) as scores; a DataFrame's
columns name its classes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from problem_registry.adapters import LoadedModel, ModelUnavailable
from problem_registry.adapters.tensors import (
    answers_from_outputs,
    input_row,
    per_row,
    preprocess_of,
    stack,
)
from problem_registry.errors import InvalidValue

INSTALL_HINT = "install it with: pip install 'problem-registry[mlflow]'"
MOVING = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<latest>latest))/?$")
FIXED = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)/?$")


def resolve_uri(uri: str) -> str:
    """``models:/NAME@ALIAS`` and ``models:/NAME/latest`` as the fixed ``models:/NAME/VERSION``
    they name today; other URIs as given. :class:`InvalidValue` when the registry says no."""
    moving = MOVING.match(uri)
    if moving is None:
        if not uri.strip():
            raise InvalidValue("--mlflow needs a model URI, e.g. models:/digits/3")
        return uri
    mlflow = _mlflow(InvalidValue)
    client = mlflow.MlflowClient()
    name = moving["name"]
    try:
        if moving["alias"]:
            version = client.get_model_version_by_alias(name, moving["alias"]).version
        else:
            versions = client.search_model_versions(f"name = '{name}'")
            if not versions:
                raise InvalidValue(f"--mlflow {uri}: model {name!r} has no versions")
            version = max(int(v.version) for v in versions)
    except InvalidValue:
        raise
    except Exception as exc:  # MlflowException, or a tracking server that does not answer
        raise InvalidValue(f"--mlflow {uri}: {_reason(exc)}") from None
    return f"models:/{name}/{version}"


def check_mlflow(uri: str, options: Mapping[str, Any]) -> None:
    """At registration: the model loads now (and the preprocess function imports)."""
    try:
        _load(uri, "")
        preprocess_of(options, ModelUnavailable)
    except ModelUnavailable as exc:
        raise InvalidValue(str(exc)) from None


def load_mlflow(ref: str, uri: str, options: Mapping[str, Any]) -> LoadedModel:
    model = _load(uri, f"{ref}: ")
    preprocess = preprocess_of(options, ModelUnavailable)
    shape, dtype, columns = _signature(model)

    def answer(rows: list[Any]) -> list[Any]:
        batch = stack(rows)
        if columns is not None:
            import pandas as pd  # type: ignore[import-untyped,unused-ignore]

            batch = pd.DataFrame(batch.reshape(len(rows), -1), columns=columns)
        named, extra = _named(model.predict(batch))
        return answers_from_outputs(named, len(rows), {**extra, **options})

    def predict(inputs: Sequence[Any], _keys: Sequence[str]) -> list[Any]:
        return per_row(inputs, lambda item: input_row(item, shape, dtype, preprocess), answer)

    return LoadedModel(ref=ref, predict=predict, needs_inputs=True)


def _mlflow(error: type[Exception]) -> Any:
    try:
        import mlflow  # type: ignore[import-untyped,unused-ignore]
        import mlflow.pyfunc  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise error(f"mlflow is not installed; {INSTALL_HINT}") from None
    # MLflow logs its store's set-up at INFO on stderr, which would break the CLI's one-line
    # errors; its warnings still show. Left alone when the user chose a level.
    logger = logging.getLogger("mlflow")
    if logger.level == logging.INFO:
        logger.setLevel(logging.WARNING)
    return mlflow


def _load(uri: str, where: str) -> Any:
    mlflow = _mlflow(ModelUnavailable)
    try:
        return mlflow.pyfunc.load_model(uri)
    except Exception as exc:  # MlflowException, OSError, a flavor's own import error
        raise ModelUnavailable(f"{where}cannot load MLflow model {uri}: {_reason(exc)}") from None


def _signature(model: Any) -> tuple[list[int | None], str, list[str] | None]:
    """Shape (without the batch axis), dtype and, for a column schema, the column names."""
    try:
        schema = model.metadata.get_input_schema()
    except Exception:
        schema = None
    if schema is None or not schema.inputs:
        return [], "float32", None
    if schema.is_tensor_spec():
        spec = schema.inputs[0]
        dims = [d if d and d > 0 else None for d in spec.shape[1:]]
        return dims, str(spec.type), None
    names = schema.input_names()
    return [len(names)], "float64", [str(name) for name in names]


def _named(result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A pyfunc's answer as named outputs (and the classes a DataFrame's columns give)."""
    if isinstance(result, dict):
        return {str(k): v for k, v in result.items()}, {}
    columns = getattr(result, "columns", None)
    if columns is not None:
        if len(columns) == 1:
            return {str(columns[0]): result.iloc[:, 0].to_numpy()}, {}
        return {"probabilities": result.to_numpy(dtype=float)}, {
            "classes": [str(c) for c in columns]
        }
    if hasattr(result, "to_numpy"):  # a Series
        return {"predictions": result.to_numpy()}, {}
    return {"predictions": result}, {}


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
