"""What a pattern's result is, in the words every picture uses: pass, fail, errored...

One small vocabulary shared by the grid, the contact sheet and their callers (the report lists
tiles by outcome), so a result is judged the same way in every picture.
"""

from __future__ import annotations

from problem_registry.verdicts.metrics import PatternResult


class Outcome:
    """What a pattern's result is, in the words every picture uses."""

    PASS = "pass"
    FAIL = "fail"
    NEWLY_FAILING = "newly failing"
    ERRORED = "errored"
    NO_RESULT = "no result"


def outcome_of(result: PatternResult | None) -> str:
    if result is None or not result.answered:
        return Outcome.NO_RESULT
    if result.error is not None:
        return Outcome.ERRORED
    return Outcome.PASS if result.correct else Outcome.FAIL
