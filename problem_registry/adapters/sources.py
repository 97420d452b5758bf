"""Where a version's model lives, as registration stores it: kind, location, artifact, options.

The CLI and a notebook call :func:`model_source` with what the user gave; it returns the
:class:`Source` that ``registry.models.register`` stores, after making it fixed: an MLflow alias
is resolved to the version it names today, an endpoint's protocol is chosen once. Options hold
only plain settings (never credentials, which each adapter reads from the environment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from problem_registry.enums import LoaderKind
from problem_registry.errors import InvalidValue


@dataclass(frozen=True)
class SourceSettings:
    """The adapter settings a user may give; each adapter reads those it knows."""

    preprocess: str | None = None
    classes: str | None = None  # "cat,dog" or "@FILE"
    protocol: str | None = None  # endpoint: "v2" or "json"
    batch: int = 32
    concurrency: int = 4
    timeout: float = 30.0
    retries: int = 3
    outputs: str | None = None  # endpoint v2: "predict,predict_proba", the outputs to ask for


@dataclass(frozen=True)
class Source:
    kind: LoaderKind
    loader: str
    artifact: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def describe(self) -> str:
        """One line for people: how this version loads."""
        where = self.artifact if self.artifact is not None else self.loader
        return f"{self.kind.value}: {where}"


def model_source(
    *,
    loader: str | None = None,
    artifact: Path | None = None,
    predictions: Path | None = None,
    onnx: Path | None = None,
    endpoint: str | None = None,
    mlflow: str | None = None,
    settings: SourceSettings | None = None,
) -> Source:
    """The one source given, made ready to store; :class:`InvalidValue` for unusable settings."""
    settings = settings or SourceSettings()
    if predictions is not None:
        return Source(LoaderKind.predictions, str(predictions.resolve()), predictions)
    if loader is not None:
        return Source(LoaderKind.python, loader, artifact)
    options = _array_options(settings)
    if onnx is not None:
        return Source(LoaderKind.onnx, str(onnx.resolve()), onnx, options)
    if endpoint is not None:
        from problem_registry.adapters.endpoint import endpoint_options

        return Source(
            LoaderKind.endpoint, endpoint, None, endpoint_options(endpoint, settings, options)
        )
    if mlflow is not None:
        from problem_registry.adapters.mlflow import resolve_uri

        return Source(LoaderKind.mlflow, resolve_uri(mlflow), None, options)
    raise InvalidValue("give --loader, --predictions, --onnx, --endpoint or --mlflow")


def _array_options(settings: SourceSettings) -> dict[str, Any]:
    from problem_registry.adapters.tensors import parse_classes

    options: dict[str, Any] = {}
    if settings.preprocess:
        options["preprocess"] = settings.preprocess
    if settings.classes:
        options["classes"] = parse_classes(settings.classes)
    return options
