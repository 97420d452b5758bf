"""What the verdicts are made of, one problem on one model version at a time.

:class:`ProblemVersionMetrics` is a problem's error rate on a version, with its Wilson interval
and whether it meets the canary; :class:`PatternResult` is one pattern's answer on a version.
Both are plain data, built by :mod:`~problem_registry.verdicts.metrics` from stored results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from problem_registry.refs import format_ref
from problem_registry.verdicts.confusion import Confusion
from problem_registry.verdicts.json_text import (
    assemble_json,
    compact_json,
    json_scalar,
    problem_json,
    version_json,
)
from problem_registry.verdicts.stats import wilson_interval

# 0.2 means 0.2: 3 wrong of 15 meets max_error_rate=0.2 whatever the float rounding of 3/15.
CANARY_TOLERANCE = 1e-12


@dataclass(frozen=True)
class VersionRow:
    id: int
    name: str
    version: str
    is_champion: bool

    @property
    def ref(self) -> str:
        return format_ref(self.name, self.version)


@dataclass(frozen=True)
class PolarityMetrics:
    patterns: int
    answered: int
    wrong: int

    @property
    def error_rate(self) -> float | None:
        return self.wrong / self.answered if self.answered else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "patterns": self.patterns,
            "answered": self.answered,
            "wrong": self.wrong,
            "error_rate": self.error_rate,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON, keys sorted; see ProblemVersionMetrics.to_json."""
        return (
            f'{{"answered":{self.answered},"error_rate":{json_scalar(self.error_rate)},'
            f'"patterns":{self.patterns},"wrong":{self.wrong}}}'
        )


@dataclass
class ProblemVersionMetrics:
    """One problem on one model version."""

    problem: str
    title: str
    status: str
    model: str
    version: str
    is_champion: bool
    max_error_rate: float | None
    allowed_regressions: int
    patterns: int
    answered: int
    wrong: int  # errored included
    errored: int
    positive: PolarityMetrics
    negative: PolarityMetrics
    confusion: Confusion | None = None

    @property
    def ref(self) -> str:
        return format_ref(self.model, self.version)

    @property
    def right(self) -> int:
        return self.answered - self.wrong

    @property
    def missing(self) -> int:
        return self.patterns - self.answered

    @property
    def error_rate(self) -> float | None:
        return self.wrong / self.answered if self.answered else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of the error rate; None when nothing was answered."""
        return wilson_interval(self.wrong, self.answered) if self.answered else None

    @property
    def meets_canary(self) -> bool | None:
        """Within ``max_error_rate``; None when the problem has no canary or no answers.

        The one place the canary is judged: the gates, the status line, the charts and the report
        all read it, so a picture never contradicts the verdict CI applies.
        """
        if self.max_error_rate is None or self.error_rate is None:
            return None
        return self.error_rate <= self.max_error_rate + CANARY_TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        # Called once per row of `report --json` (100,000 rows at 1,000 problems x 100 versions):
        # plain dict literals, not dataclasses.asdict, which deep-copies and was 0.13 ms a row.
        interval = self.interval
        polarity = {"positive": self.positive.to_dict(), "negative": self.negative.to_dict()}
        data: dict[str, Any] = {
            "problem": self.problem,
            "title": self.title,
            "status": self.status,
            "model": self.model,
            "version": self.version,
            "champion": self.is_champion,
            "error_rate": self.error_rate,
            "interval": {"low": interval[0], "high": interval[1]} if interval else None,
            "max_error_rate": self.max_error_rate,
            "allowed_regressions": self.allowed_regressions,
            "meets_canary": self.meets_canary,
            "counts": {
                "patterns": self.patterns,
                "answered": self.answered,
                "right": self.right,
                "wrong": self.wrong,
                "errored": self.errored,
                "missing": self.missing,
            },
            "polarity": polarity,
        }
        if self.confusion is not None:
            data["confusion"] = self.confusion.to_dict()
        return data

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON with sorted keys, written out directly.

        The same text as ``json.dumps(row.to_dict(), sort_keys=True, separators=(",", ":"),
        ensure_ascii=False)`` (tests/test_metrics.py holds them equal) at a fraction of the cost
        (``benchmarks/json_rows.py``; docs/performance.md).
        """
        if self.confusion is not None:  # rare (charts, the HTML report): the general way
            return compact_json(self.to_dict())
        scores, polarity = self._scores_json()
        return assemble_json(
            problem_json(self.problem, self.title, self.status, self.allowed_regressions),
            version_json(self.model, self.version, self.is_champion),
            scores,
            polarity,
        )

    def _scores_json(self) -> tuple[str, str]:
        """The parts of :meth:`to_json` that follow from the counts: ``"counts"`` to
        ``"meets_canary"``, and ``"polarity"``, each with its trailing comma.

        The only place these numbers are written as JSON; :func:`problem_metrics_json` reuses
        the text for every row with the same counts (see :func:`_scores_json_for`).
        """
        interval = self.interval
        low_high = (
            "null" if interval is None else f'{{"high":{interval[1]!r},"low":{interval[0]!r}}}'
        )
        scores = (
            f'"counts":{{"answered":{self.answered},"errored":{self.errored},'
            f'"missing":{self.missing},"patterns":{self.patterns},"right":{self.right},'
            f'"wrong":{self.wrong}}},'
            f'"error_rate":{json_scalar(self.error_rate)},"interval":{low_high},'
            f'"max_error_rate":{json_scalar(self.max_error_rate)},'
            f'"meets_canary":{json_scalar(self.meets_canary)},'
        )
        polarity = (
            f'"polarity":{{"negative":{self.negative.to_json()},'
            f'"positive":{self.positive.to_json()}}},'
        )
        return scores, polarity


@dataclass(slots=True)
class PatternResult:
    """One pattern on one version: what it expects, what came back, and whether that is right.

    Slotted, and built positionally by :func:`pattern_results` in this field order: the HTML
    report builds one per pattern x version (1.5 M at 1,000 problems x 100 versions).
    """

    problem: str
    pattern_id: int
    file: str  # the name it was added under
    sha256: str
    polarity: str
    expected: str
    version_id: int
    model: str
    version: str
    answered: bool
    predicted: str | None = None
    value: float | None = None
    confidence: float | None = None
    error: str | None = None
    correct: bool | None = None  # None: no result
    # The probability the model's scores gave the pattern's current expectation; None when the
    # result has no scores or the expectation is a range (Expectation.probability).
    p_expected: float | None = None

    @property
    def ref(self) -> str:
        return format_ref(self.model, self.version)

    @property
    def got(self) -> str:
        """What a person reads in a failure message."""
        if not self.answered:
            return "(no result)"
        if self.error is not None:
            return f"error: {self.error}"
        return self.predicted if self.predicted is not None else "(nothing)"
