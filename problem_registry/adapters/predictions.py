"""Predictions files: the answers of a model that runs elsewhere, keyed by pattern sha256.

For models too big, too slow or too far away to load in CI: export the patterns, predict them
where the model lives, and register the answers as a version. Two formats, told by extension:

- JSON Lines (``.jsonl``, ``.ndjson``, ``.json``): one object per line,
  ``{"sha256": "...", "prediction": "muffin", "confidence": 0.93}`` (``confidence`` optional;
  ``prediction`` may be a label, a number, or ``[label, confidence]``). An optional ``scores``
  object gives each label's probability, ``{"muffin": 0.93, "chihuahua": 0.07}``; with it,
  ``prediction`` may be left out (the highest-scoring label is the answer).
- CSV (``.csv``): a header with ``sha256,prediction`` and optionally ``confidence`` and
  ``scores`` (a JSON object as text, ``"{""muffin"": 0.93, ""chihuahua"": 0.07}"``; an empty
  ``prediction`` cell beside scores means their highest-scoring label).

Scores are checked as a model's are (:func:`~problem_registry.adapters.normalise`), but here a
bad one refuses the file at registration, naming the line, as any other malformed answer does.

A predictions file is data only: it is parsed as JSON or CSV, never unpickled or executed. Its
sha256 is recorded at registration like an artifact's, so an edited file is refused, not mixed in.
A pattern the file has no line for is stored as an errored result ("no prediction"): the file
can never gain one under the same hash, and a candidate must not pass a gate by omission.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from problem_registry.adapters import LoadedModel, ModelUnavailable, normalise
from problem_registry.adapters.python import verify_artifact
from problem_registry.errors import InvalidValue
from problem_registry.plain_files import read_plain
from problem_registry.store.content import is_sha256

JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
CSV_SUFFIXES = {".csv"}
MAX_PREDICTIONS_BYTES = 512 * 1024 * 1024


class MissingPrediction(LookupError):
    """The file has no answer for a pattern: stored as that pattern's error."""


def read_predictions(path: Path) -> dict[str, Any]:
    """sha256 -> raw output (label, number, or ``(label, confidence)``); :class:`InvalidValue`
    naming the file and line for anything malformed, so a bad file is refused at registration."""
    suffix = path.suffix.lower()
    if suffix not in JSONL_SUFFIXES | CSV_SUFFIXES:
        raise InvalidValue(
            f"predictions file {path} must end in .jsonl, .ndjson, .json or .csv, to say its format"
        )
    try:
        # A plain file of bounded size: never a FIFO or a device (issue 16, item 9).
        text = read_plain(path, max_bytes=MAX_PREDICTIONS_BYTES).decode("utf-8-sig")
    except OSError as exc:
        raise InvalidValue(f"cannot read predictions file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InvalidValue(f"cannot read predictions file {path}: {exc}") from None
    try:
        records = _jsonl(path, text) if suffix in JSONL_SUFFIXES else _csv(path, text)
    except csv.Error as exc:  # a field over csv.field_size_limit(), a NUL byte (issue 16, 11)
        raise InvalidValue(f"{path}: not a readable CSV ({exc})") from None
    answers: dict[str, Any] = {}
    for where, sha, output in records:
        sha = sha.strip().lower() if isinstance(sha, str) else sha
        if not is_sha256(sha):
            raise InvalidValue(f"{where}: {sha!r} is not a pattern sha256 (64 hex digits)")
        try:
            normalise(output)
        except ValueError as exc:
            raise InvalidValue(f"{where}: {exc}") from None
        if sha in answers and answers[sha] != output:
            raise InvalidValue(f"{where}: a second, different prediction for {sha[:12]}")
        answers[sha] = output
    if not answers:
        raise InvalidValue(f"predictions file {path} holds no predictions")
    return answers


def load_predictions(
    ref: str, loader: str, artifact_path: str | None, artifact_sha256: str | None
) -> LoadedModel:
    path = Path(artifact_path or loader)
    verify_artifact(ref, path, artifact_sha256)
    try:
        answers = read_predictions(path)
    except InvalidValue as exc:
        raise ModelUnavailable(f"{ref}: {exc}") from None

    def predict(_inputs: Sequence[Any], keys: Sequence[str]) -> list[Any]:
        outputs: list[Any] = []
        for key in keys:
            if key not in answers:
                outputs.append(MissingPrediction(f"no prediction for this pattern in {path.name}"))
            else:
                outputs.append(answers[key])
        return outputs

    return LoadedModel(ref=ref, predict=predict, needs_inputs=False)


def _jsonl(path: Path, text: str) -> list[tuple[str, Any, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise InvalidValue(f"{where}: not valid JSON ({exc})") from None
        except RecursionError:  # arrays nested 100k deep (issue 16, item 11)
            raise InvalidValue(f"{where}: JSON nested too deeply") from None
        scores = obj.get("scores") if isinstance(obj, dict) else None
        if (
            not isinstance(obj, dict)
            or "sha256" not in obj
            or ("prediction" not in obj and scores is None)
        ):
            raise InvalidValue(f'{where}: expected {{"sha256": ..., "prediction": ...}}')
        output = obj.get("prediction")
        if scores is not None:
            output = _scored(output, obj.get("confidence"), scores)
        elif obj.get("confidence") is not None:
            output = (output, obj["confidence"])
        elif isinstance(output, list):
            output = tuple(output)
        records.append((where, obj["sha256"], output))
    return records


def _csv(path: Path, text: str) -> list[tuple[str, Any, Any]]:
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    if "sha256" not in header or "prediction" not in header:
        raise InvalidValue(f"{path}: the header must be sha256,prediction[,confidence][,scores]")
    records = []
    for number, row in enumerate(reader, start=2):
        where = f"{path} line {number}"
        if None in row:  # DictReader's key for fields past the header's (issue 16, item 11)
            raise InvalidValue(
                f"{where} has more fields than the header; quote a field that holds a comma"
            )
        row = {(key or "").strip(): (value or "").strip() for key, value in row.items()}
        output: Any = row["prediction"]
        confidence: float | None = None
        if row.get("confidence"):
            try:
                confidence = float(row["confidence"])
            except ValueError:
                raise InvalidValue(
                    f"{where}: confidence {row['confidence']!r} is not a number"
                ) from None
        if row.get("scores"):
            try:
                scores = json.loads(row["scores"])
            except ValueError as exc:
                raise InvalidValue(f"{where}: scores is not valid JSON ({exc})") from None
            except RecursionError:
                raise InvalidValue(f"{where}: scores is JSON nested too deeply") from None
            output = _scored(output or None, confidence, scores)
        elif confidence is not None:
            output = (output, confidence)
        records.append((where, row["sha256"], output))
    return records


def _scored(prediction: Any, confidence: Any, scores: Any) -> dict[str, Any]:
    """A line with scores as the model output it stands for: ``{"label", "scores"}``."""
    output: dict[str, Any] = {"scores": scores}
    if prediction is not None:
        output["label"] = prediction
    if confidence is not None:
        output["confidence"] = confidence
    return output
