"""A production batch file read and checked, row by row, before anything is stored.

A batch is untrusted input (docs/security.md): JSONL (one object per line) or CSV, each row
naming its input as a ``path`` beside the batch file (never outside it) or inline as
``input_base64``, the ``version`` that answered (``NAME@VERSION``), its ``prediction``, and
optionally ``confidence``, ``scores`` (label -> probability; JSON text in a CSV), a user's
``rating`` (1 bad .. 5 good), a ``correction`` (the label the user says is right) and an ``id``.
Inputs pass the pattern checks (:func:`~problem_registry.store.content.inspect_content`: the
image format allow-list, decompression bombs, the size cap, UTF-8 text) and every file is opened
through :func:`~problem_registry.plain_files.read_plain`. Any bad row is a one-line
:class:`~problem_registry.errors.InvalidValue` naming the file and line, raised before a write.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from problem_registry.adapters import normalise, scores_json
from problem_registry.config import max_pattern_bytes
from problem_registry.errors import CorruptPattern, InvalidValue, RegistryError
from problem_registry.expectations import Expectation
from problem_registry.plain_files import read_plain
from problem_registry.refs import ModelRef
from problem_registry.store.content import InspectedContent, inspect_content, read_input
from problem_registry.store.paths import inside
from problem_registry.text import file_name, storable

MAX_BATCH_BYTES = 64 * 1024 * 1024
MAX_BATCH_ROWS = 100_000
FIELDS = (
    "id",
    "path",
    "input_base64",
    "version",
    "prediction",
    "confidence",
    "scores",
    "rating",
    "correction",
)
RATING_RANGE = (1, 5)


@dataclass(frozen=True)
class ProductionRow:
    """One checked row: the answer as production gave it, the input not necessarily read."""

    line: int
    model: str  # NAME@VERSION
    predicted: str
    confidence: float | None
    scores: str | None  # compact JSON, sorted keys (adapters.scores_json)
    rating: int | None
    correction: str | None
    external_id: str
    source: str  # "path:<relative>" or "base64"
    content: InspectedContent | None  # None when read with inputs=False (drift only)
    original_name: str

    @property
    def key(self) -> str:
        """The row's identity: the same input answered the same way is the same case."""
        sha = self.content.sha256 if self.content is not None else self.source
        identity = [
            sha,
            self.model,
            self.predicted,
            self.confidence,
            self.scores,
            self.rating,
            self.correction,
            self.external_id,
        ]
        return hashlib.sha256(json.dumps(identity).encode("utf-8")).hexdigest()


def read_batch(path: Path, *, inputs: bool = True) -> list[ProductionRow]:
    """Every row of the batch file, checked; ``inputs=False`` skips reading the inputs (the
    drift signal needs only the answers)."""
    try:
        data = read_plain(path, max_bytes=MAX_BATCH_BYTES)
    except FileNotFoundError:
        raise InvalidValue(f"{path}: no such batch file") from None
    except OSError as exc:
        raise InvalidValue(f"cannot read batch {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidValue(f"{path}: not UTF-8 (bad byte at offset {exc.start})") from None
    raw = list(_csv_rows(path, text) if path.suffix.lower() == ".csv" else _jsonl_rows(path, text))
    if not raw:
        raise InvalidValue(
            f"{path} holds no rows; one JSON object per line, or a CSV with a header"
        )
    if len(raw) > MAX_BATCH_ROWS:
        raise InvalidValue(
            f"{path} has {len(raw):,} rows; the most per batch is {MAX_BATCH_ROWS:,}"
        )
    base = path.resolve().parent
    rows = []
    for line, fields in raw:
        where = f"{path} line {line}"
        try:
            rows.append(_row(where, line, fields, base, inputs))
        except RegistryError as exc:
            message = str(exc)
            raise InvalidValue(
                message if message.startswith(where) else f"{where}: {message}"
            ) from None
    return rows


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, body in enumerate(text.splitlines(), start=1):
        if not body.strip():
            continue
        try:
            value = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise InvalidValue(f"{path} line {line}: not a JSON object ({exc})") from None
        if not isinstance(value, dict):
            raise InvalidValue(
                f"{path} line {line}: a JSON object is needed, got {type(value).__name__}"
            )
        yield line, value


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in ("version", "prediction") if name not in header]
        if missing:
            raise InvalidValue(
                f"{path} lacks column {missing[0]!r}; the header names some of {','.join(FIELDS)}"
            )
        for number, row in enumerate(reader, start=2):
            if None in row:
                raise InvalidValue(f"{path} line {number} has more fields than the header")
            yield number, {(k or "").strip(): v for k, v in row.items() if v not in (None, "")}
    except csv.Error as exc:
        raise InvalidValue(f"cannot read CSV {path}: {exc}") from None


def _row(where: str, line: int, fields: dict[str, Any], base: Path, inputs: bool) -> ProductionRow:
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise InvalidValue(f"unknown field {unknown[0]!r}; the fields are {', '.join(FIELDS)}")
    model = str(ModelRef.parse(_text(fields, "version", required=True) or ""))
    storable(model, "version", max_length=201)
    prediction = _text(fields, "prediction", required=True) or ""
    confidence = _number(fields.get("confidence"), "confidence")
    scores = fields.get("scores")
    scores_text = None
    if scores is not None:
        if isinstance(scores, str):
            try:
                scores = json.loads(scores)
            except ValueError:
                raise InvalidValue("scores is not JSON; give {label: probability, ...}") from None
        try:
            answer = normalise({"label": prediction, "scores": scores})
        except ValueError as exc:
            raise InvalidValue(str(exc)) from None
        scores_text = scores_json(answer.scores or {})
        if confidence is None:
            confidence = answer.confidence
    rating = _rating(fields.get("rating"))
    correction = _text(fields, "correction")
    if correction is not None:
        correction = Expectation.exact(correction).labels[0]  # a label as patterns take it
    external_id = _text(fields, "id") or ""
    storable(prediction, "prediction", max_length=1000)
    storable(external_id, "id", max_length=200)
    source, content, name = _input(fields, base, line, inputs)
    return ProductionRow(
        line,
        model,
        prediction,
        confidence,
        scores_text,
        rating,
        correction,
        external_id,
        source,
        content,
        name,
    )


def _input(
    fields: dict[str, Any], base: Path, line: int, read: bool
) -> tuple[str, InspectedContent | None, str]:
    relative, inline = fields.get("path"), fields.get("input_base64")
    if (relative is None) == (inline is None):
        raise InvalidValue("give the input as exactly one of path or input_base64")
    if relative is not None:
        if not isinstance(relative, str) or not relative.strip():
            raise InvalidValue("path must be a file name relative to the batch file")
        path = inside(base, Path(relative.strip()), what=f"path {relative!r}")
        name = file_name(path)
        if not read:
            return f"path:{relative.strip()}", None, name
        try:
            return f"path:{relative.strip()}", inspect_content(read_input(path), name), name
        except CorruptPattern as exc:
            raise InvalidValue(str(exc).replace(str(path), repr(relative), 1)) from None
    if not isinstance(inline, str):
        raise InvalidValue("input_base64 must be base64 text")
    limit = max_pattern_bytes()
    if len(inline) > limit * 4 // 3 + 8:
        raise InvalidValue(f"input_base64 is over the {limit:,}-byte pattern size limit")
    try:
        data = base64.b64decode(inline, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValue("input_base64 is not valid base64") from None
    if not data:
        raise InvalidValue("input_base64 is empty")
    name = f"line-{line}"
    if not read:
        return "base64", None, name
    content = inspect_content(data, name)
    return "base64", content, f"{name}.{content.extension}"


def _text(fields: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = fields.get(name)
    if value is None:
        if required:
            raise InvalidValue(f"{name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidValue(f"{name} must be text, got {type(value).__name__}")
    text = value if isinstance(value, str) else str(value)
    text = text.strip()
    if not text:
        if required:
            raise InvalidValue(f"{name} is empty")
        return None
    return storable(text, name)


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidValue(f"{name} {value!r} is not a number") from None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise InvalidValue(f"{name} {value!r} is not a probability in [0, 1]")
    return number


def _rating(value: Any) -> int | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if not number.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        raise InvalidValue(f"rating {value!r} is not a whole number 1..5") from None
    low, high = RATING_RANGE
    if not low <= number <= high:
        raise InvalidValue(f"rating {value!r} is outside {low}..{high} (1 bad, 5 good)")
    return int(number)
