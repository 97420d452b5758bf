"""A model that costs nothing: what a replay costs on its own (benchmarks/endpoint_replay.py).

It answers as a served classifier does through the endpoint adapter, a label and ten class
probabilities, so a replay of it stores the same rows; and it imports nothing, so its worker
loads in milliseconds (``tests.models.digits`` imports joblib, ~0.1-0.3 s a worker).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

# Ten probabilities with as many digits as a real predict_proba row's (their JSON costs the same).
_WEIGHTS = [1.0 / (i + 1.7) for i in range(10)]
SCORES = [w / sum(_WEIGHTS) for w in _WEIGHTS]


def load(artifact_path: str | None = None) -> Callable[[Sequence[Any]], list[Any]]:
    def predict(inputs: Sequence[Any]) -> list[Any]:
        return [
            {"label": index % 10, "scores": {str(c): p for c, p in enumerate(SCORES)}}
            for index in range(len(inputs))
        ]

    return predict
