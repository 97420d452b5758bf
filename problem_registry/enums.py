"""The closed sets of values a registry speaks in: statuses, polarities, sources and kinds."""

from __future__ import annotations

from enum import Enum


class ProblemStatus(str, Enum):
    open = "open"
    fixed = "fixed"
    retired = "retired"


class Polarity(str, Enum):
    """``positive``: an instance of the problem; ``negative``: a near miss that keeps its answer."""

    positive = "positive"
    negative = "negative"


class Source(str, Enum):
    contrived = "contrived"
    production = "production"
    feedback = "feedback"


class PatternKind(str, Enum):
    image = "image"
    text = "text"
    json = "json"


class ExpectKind(str, Enum):
    exact = "exact"
    any = "any"
    not_ = "not"
    range = "range"


class LoaderKind(str, Enum):
    """How a version loads: a Python factory, a predictions file, an ONNX file run by onnxruntime,
    a KServe v2 / Open Inference Protocol (or plain JSON) HTTP endpoint, or an MLflow model URI."""

    python = "python"
    predictions = "predictions"
    onnx = "onnx"
    endpoint = "endpoint"
    mlflow = "mlflow"


class RunStatus(str, Enum):
    running = "running"
    completed = "completed"
    interrupted = "interrupted"
    failed = "failed"
