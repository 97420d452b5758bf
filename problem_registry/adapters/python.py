"""Python loaders: ``module:callable`` names a factory that returns a batch predict function.

The module is imported with the working directory on ``sys.path``, as uvicorn and gunicorn do, so
a ``my_models.py`` beside the project just works without being installed. The factory is called
with the artifact path (a ``str``) when the version has an artifact, else with nothing, and must
return a callable taking a list of decoded inputs and returning a list of outputs of the same
length (see :func:`problem_registry.adapters.per_item` for a per-input function).

Loaders are trusted code: importing one runs it. The artifact's sha256 recorded at registration
is checked again here, before the factory sees the file, so results of a retrained file are never
stored under the old version's name.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from problem_registry.adapters import LoadedModel, ModelUnavailable
from problem_registry.store.content import sha256_of_file


def import_callable(spec: str) -> Callable[..., Any]:
    """The object ``module:attr.path`` names; :class:`ModelUnavailable` with the reason if none."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ModelUnavailable(f"{spec!r} is not module:callable, e.g. my_models.digits:load")
    _working_directory_on_path()
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ModelUnavailable(
            f"{spec}: cannot import {module_name} ({exc}); install it, or run from the folder "
            f"that holds it (the working directory {Path.cwd()} is on sys.path)"
        ) from None
    except Exception as exc:  # a module that fails while importing: any error at all
        raise ModelUnavailable(
            f"{spec}: importing {module_name} failed ({type(exc).__name__}: {exc})"
        ) from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ModelUnavailable(
                f"{spec}: {module_name} has no attribute {attribute!r}"
            ) from None
    if not callable(target):
        raise ModelUnavailable(f"{spec}: {attribute} is a {type(target).__name__}, not callable")
    return target  # type: ignore[no-any-return]


def load_python(
    ref: str, loader: str, artifact_path: str | None, artifact_sha256: str | None
) -> LoadedModel:
    """Check the artifact, import the factory, call it: the version's batch function."""
    if artifact_path is not None:
        verify_artifact(ref, Path(artifact_path), artifact_sha256)
    factory = import_callable(loader)
    try:
        function = factory(artifact_path) if artifact_path is not None else factory()
    except Exception as exc:
        raise ModelUnavailable(
            f"{ref}: loader {loader} raised {type(exc).__name__}: {exc}"
        ) from None
    if not callable(function):
        raise ModelUnavailable(
            f"{ref}: loader {loader} returned a {type(function).__name__}; it must return a "
            "function from a list of inputs to a list of outputs"
        )

    def predict(inputs: Sequence[Any], _keys: Sequence[str]) -> Sequence[Any]:
        return function(list(inputs))  # type: ignore[no-any-return]

    return LoadedModel(ref=ref, predict=predict, needs_inputs=True)


def verify_artifact(ref: str, path: Path, expected_sha256: str | None) -> None:
    """The artifact is the one registered, byte for byte, or the version is unavailable."""
    try:
        actual = sha256_of_file(path)
    except OSError as exc:
        raise ModelUnavailable(
            f"{ref}: artifact {path} cannot be read ({exc.strerror or exc}); restore it, or "
            "register the model again as a new version"
        ) from None
    if expected_sha256 is not None and actual != expected_sha256:
        raise ModelUnavailable(
            f"{ref}: artifact {path} changed since it was registered (sha256 "
            f"{expected_sha256[:12]} then, {actual[:12]} now); restore the original file, or "
            "register the new file as a new version so its results are not mixed with the old one's"
        )


def _working_directory_on_path() -> None:
    cwd = str(Path.cwd())
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
