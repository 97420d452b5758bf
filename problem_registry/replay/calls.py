"""The model-call protocol: one batch in, exactly one output per input back.

Every model is called through :func:`call_model`, which holds it to its contract (a list, or a
1-D array, of ``len(batch)`` outputs); a model that breaks it is a
:class:`~problem_registry.adapters.ModelOutputError` naming it, never a silent misalignment of
answers and patterns. A Python model is called inside its worker process
(:mod:`problem_registry.replay.worker_main`), where the replay's ``batch_timeout`` is kept by the
parent killing the worker (:class:`BatchTimeout`); a predictions file, which runs no model code,
is called in the replay's own process.
"""

from __future__ import annotations

from typing import Any, cast

from problem_registry.adapters import LoadedModel, ModelOutputError, ModelUnavailable


class BatchTimeout(ModelUnavailable):
    """A model took longer than the replay's ``batch_timeout`` on one batch: it is cut off."""


def call_model(model: LoadedModel, batch: list[Any], keys: list[str]) -> list[Any]:
    outputs = model.predict(batch, keys)
    if outputs is None or isinstance(outputs, (str, bytes, dict)):
        raise ModelOutputError(
            f"model {model.ref} returned {type(outputs).__name__} for a batch of {len(batch)} "
            "inputs; its batch function must return a list with one output per input"
        )
    try:
        # A 1-D numpy array (scikit-learn's predict) becomes Python scalars in one C call; a 2-D
        # one is left as rows, so a predict_proba row is refused rather than misread.
        is_vector = getattr(outputs, "ndim", None) == 1 and callable(
            getattr(outputs, "tolist", None)
        )
        outputs = cast(Any, outputs).tolist() if is_vector else list(outputs)
    except Exception as exc:
        # Not only TypeError: an array whose tolist() raises is as unreadable (issue 16, item 5).
        raise ModelOutputError(
            f"model {model.ref} returned a {type(outputs).__name__} that cannot be read as a "
            f"list of outputs ({type(exc).__name__}: {exc})"
        ) from None
    if len(outputs) != len(batch):
        raise ModelOutputError(
            f"model {model.ref} returned {len(outputs)} outputs for a batch of {len(batch)} "
            "inputs; its batch function must return exactly one output per input, in order"
        )
    return outputs
