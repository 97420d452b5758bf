"""The model-call protocol: one batch in, exactly one output per input back, within a time limit.

Replay calls every model through :func:`call_model`, which holds a model to its contract (a list,
or a 1-D array, of ``len(batch)`` outputs) and to the replay's ``batch_timeout``; a model that
breaks either is a :class:`~problem_registry.adapters.ModelOutputError` or a
:class:`BatchTimeout` naming it, never a silent misalignment of answers and patterns.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from problem_registry.adapters import LoadedModel, ModelOutputError, ModelUnavailable


class BatchTimeout(ModelUnavailable):
    """A model took longer than the replay's ``batch_timeout`` on one batch: it is cut off."""


def call_model(
    model: LoadedModel, batch: list[Any], keys: list[str], timeout: float | None = None
) -> list[Any]:
    outputs = (
        model.predict(batch, keys) if timeout is None else _within(timeout, model, batch, keys)
    )
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
    except TypeError:
        raise ModelOutputError(
            f"model {model.ref} returned a {type(outputs).__name__}, not a list of outputs"
        ) from None
    if len(outputs) != len(batch):
        raise ModelOutputError(
            f"model {model.ref} returned {len(outputs)} outputs for a batch of {len(batch)} "
            "inputs; its batch function must return exactly one output per input, in order"
        )
    return outputs


def _within(timeout: float, model: LoadedModel, batch: list[Any], keys: list[str]) -> Any:
    """``model.predict`` in a daemon thread, given ``timeout`` seconds; its exception re-raised."""
    answer: list[Any] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            answer.append(model.predict(batch, keys))
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    worker = threading.Thread(target=work, name=f"predict {model.ref}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise BatchTimeout(
            f"model {model.ref} timed out: a batch of {len(batch)} input(s) took longer than "
            f"the batch timeout of {timeout:g} s; it was stopped and its remaining patterns "
            "left unpredicted (re-run replay to retry, or raise --batch-timeout)"
        )
    if failure:
        raise failure[0]
    return answer[0]
