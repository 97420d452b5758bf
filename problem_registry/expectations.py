"""What a pattern expects of the model, and how an answer is judged against it.

Four shapes: an exact label, one of several labels, a forbidden label, a numeric range. They are
stored decomposed (a kind, a list of labels, two bounds) so SQL can score results in bulk; this
module is the one place that parses, describes and judges them in Python.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from problem_registry.enums import ExpectKind
from problem_registry.errors import InvalidExpectation, InvalidValue
from problem_registry.text import storable

MAX_LABEL_LENGTH = 200
_TEXT_PREFIXES = {"any:": ExpectKind.any, "not:": ExpectKind.not_, "range:": ExpectKind.range}


@dataclass(frozen=True)
class Expectation:
    kind: ExpectKind
    labels: tuple[str, ...] = field(default=())
    low: float | None = None
    high: float | None = None

    @classmethod
    def exact(cls, label: str) -> Expectation:
        return cls(ExpectKind.exact, (_label(label),))

    @classmethod
    def any_of(cls, labels: Sequence[str]) -> Expectation:
        cleaned = tuple(sorted({_label(label) for label in labels}))
        if not cleaned:
            raise InvalidExpectation("--expect-any needs at least one label, e.g. muffin,cake")
        return cls(ExpectKind.any, cleaned)

    @classmethod
    def none_of(cls, labels: Sequence[str]) -> Expectation:
        cleaned = tuple(sorted({_label(label) for label in labels}))
        if not cleaned:
            raise InvalidExpectation("--expect-not needs a label, e.g. chihuahua")
        return cls(ExpectKind.not_, cleaned)

    @classmethod
    def between(cls, low: float, high: float) -> Expectation:
        if not (math.isfinite(low) and math.isfinite(high)):
            raise InvalidExpectation(f"range bounds must be finite numbers, got {low}:{high}")
        if low > high:
            raise InvalidExpectation(
                f"range {low}:{high} is empty; write LOW:HIGH with LOW <= HIGH"
            )
        return cls(ExpectKind.range, (), float(low), float(high))

    @classmethod
    def parse_range(cls, text: str) -> Expectation:
        low_text, sep, high_text = text.partition(":")
        try:
            if not sep:
                raise ValueError
            return cls.between(float(low_text), float(high_text))
        except ValueError:
            raise InvalidExpectation(
                f"cannot read range {text!r}; write LOW:HIGH, e.g. 3.5:4.0"
            ) from None

    @classmethod
    def parse(cls, text: str) -> Expectation:
        """The one-field form of CSV imports: ``muffin``, ``any:a,b``, ``not:x``, ``range:1:2``."""
        for prefix, kind in _TEXT_PREFIXES.items():
            if text.startswith(prefix):
                rest = text[len(prefix) :]
                if kind is ExpectKind.range:
                    return cls.parse_range(rest)
                labels = split_labels(rest)
                return cls.any_of(labels) if kind is ExpectKind.any else cls.none_of(labels)
        return cls.exact(text)

    @classmethod
    def from_options(
        cls,
        *,
        expect: str | None = None,
        expect_any: str | None = None,
        expect_not: str | None = None,
        expect_range: str | None = None,
    ) -> Expectation:
        """Exactly one of the CLI's four --expect flags, as one expectation."""
        given = [
            name
            for name, value in (
                ("--expect", expect),
                ("--expect-any", expect_any),
                ("--expect-not", expect_not),
                ("--expect-range", expect_range),
            )
            if value is not None
        ]
        if len(given) != 1:
            what = "none was given" if not given else f"got {' and '.join(given)}"
            raise InvalidExpectation(
                f"give exactly one of --expect, --expect-any, --expect-not, --expect-range ({what})"
            )
        if expect is not None:
            return cls.exact(expect)
        if expect_any is not None:
            return cls.any_of(split_labels(expect_any))
        if expect_not is not None:
            return cls.none_of(split_labels(expect_not))
        assert expect_range is not None
        return cls.parse_range(expect_range)

    def to_text(self) -> str:
        """Inverse of :meth:`parse`."""
        if self.kind is ExpectKind.exact:
            return self.labels[0]
        if self.kind is ExpectKind.range:
            return f"range:{_number(self.low)}:{_number(self.high)}"
        return f"{self.kind.value}:{','.join(self.labels)}"

    def describe(self) -> str:
        """How a person reads it in a table or a caption."""
        if self.kind is ExpectKind.exact:
            return self.labels[0]
        if self.kind is ExpectKind.any:
            return "one of " + ", ".join(self.labels)
        if self.kind is ExpectKind.not_:
            return "not " + ", ".join(self.labels)
        return f"{_number(self.low)} to {_number(self.high)}"

    def to_dict(self) -> dict[str, object]:
        if self.kind is ExpectKind.range:
            return {"kind": self.kind.value, "low": self.low, "high": self.high}
        return {"kind": self.kind.value, "labels": list(self.labels)}

    @classmethod
    def from_dict(cls, data: object) -> Expectation:
        if not isinstance(data, dict):
            raise InvalidExpectation(f"an expectation must be an object, got {data!r}")
        kind = data.get("kind")
        # Exactly what to_dict writes: a misspelt key ("hihg") must not be silently ignored.
        known = {"kind", "low", "high"} if kind == ExpectKind.range.value else {"kind", "labels"}
        unknown = sorted(map(str, set(data) - known))
        if unknown:
            raise InvalidExpectation(
                f"unknown key {unknown[0]!r} in an expectation; its keys are "
                f"{', '.join(sorted(known))}"
            )
        if kind == ExpectKind.range.value:
            low, high = data.get("low"), data.get("high")
            if not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)
            ):
                raise InvalidExpectation(f"a range expectation needs numeric low and high: {data}")
            try:
                bounds = float(low), float(high)  # type: ignore[arg-type]
            except OverflowError:  # an integer such as 10**400 has no float (issue 16, item 13)
                raise InvalidExpectation(
                    f"range bounds must be finite numbers, got {_short_number(low)}:"
                    f"{_short_number(high)}"
                ) from None
            return cls.between(*bounds)
        labels = data.get("labels")
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise InvalidExpectation(f"expectation labels must be a list of strings: {data}")
        if kind == ExpectKind.exact.value and len(labels) == 1:
            return cls.exact(labels[0])
        if kind == ExpectKind.any.value:
            return cls.any_of(labels)
        if kind == ExpectKind.not_.value:
            return cls.none_of(labels)
        raise InvalidExpectation(f"unknown expectation {data}")

    def is_met(self, predicted: str | None, value: float | None) -> bool:
        """Judge one stored answer (label text and, when numeric, its value)."""
        if self.kind is ExpectKind.range:
            return value is not None and self.low <= value <= self.high  # type: ignore[operator]
        if predicted is None:
            return False
        if self.kind is ExpectKind.not_:
            return predicted not in self.labels
        return predicted in self.labels

    def probability(self, scores: Mapping[str, float]) -> float | None:
        """The probability a model's ``scores`` (label -> probability) give this expectation
        being met; None for a range, which labels' scores cannot answer.

        A label the scores leave out has probability 0. Exact: its label's score. One of
        several: their sum, capped at 1 (scores of a multi-label model need not sum to 1). Not:
        1 minus the forbidden labels' sum, floored at 0. Read from the stored scores and the
        pattern's *current* expectation, so a relabelled pattern needs no model re-run.
        """
        kind = self.kind
        if kind is ExpectKind.exact:
            return scores.get(self.labels[0], 0.0)
        if kind is ExpectKind.range:
            return None
        total = math.fsum(scores.get(label, 0.0) for label in self.labels)
        if kind is ExpectKind.any:
            return min(total, 1.0)
        return max(1.0 - total, 0.0)


def split_labels(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _label(label: str) -> str:
    cleaned = label.strip()
    if not cleaned:
        raise InvalidExpectation("an expected label cannot be empty")
    if len(cleaned) > MAX_LABEL_LENGTH:
        raise InvalidExpectation(f"a label is at most {MAX_LABEL_LENGTH} characters")
    if any(ord(ch) < 32 for ch in cleaned):
        raise InvalidExpectation(f"label {cleaned!r} contains control characters")
    try:
        return storable(cleaned, f"label {cleaned!r}")
    except InvalidValue as exc:
        raise InvalidExpectation(str(exc)) from None


def _number(value: float | None) -> str:
    """Shortest exact text of a bound: ``4`` for 4.0, ``3.5`` for 3.5, full precision otherwise."""
    assert value is not None
    return str(int(value)) if value.is_integer() else repr(value)


def _short_number(value: object) -> str:
    text = str(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge integer"
    return text[:40]
