"""Signing a problem off, and holding later candidates to it (issue 19, item 10).

A lead signs a problem off at a version ("80% on problem X, accepted"): :func:`sign_off` records
the numbers of that moment. A later version of the same model is then held to it: the gates
compare the candidate with the signed-off version exactly as they compare it with a baseline
(:func:`~problem_registry.verdicts.decision.decide_run`, the paired test on the same patterns
against the same history), and a confident regression against the sign-off FAILs the candidate
(:func:`held_to_signoff`), whatever the champion comparison said. A sign-off of a version
registered after the candidate (or of the candidate itself) does not apply to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from problem_registry.errors import InvalidValue
from problem_registry.refs import ModelRef
from problem_registry.store.registry import Registry
from problem_registry.store.signoffs import SignedNumbers, SignOffView, record_signoff
from problem_registry.verdicts.decision import Outcome, Verdict
from problem_registry.verdicts.metrics import problem_metrics

__all__ = ["SignOffView", "applicable", "held_to_signoff", "sign_off"]


def sign_off(registry: Registry, slug: str, version: str, *, note: str = "") -> SignOffView:
    """Record that ``slug`` is accepted as it stands at ``version`` (``NAME@VERSION`` or a bare
    version of the only model having it), with its numbers now."""
    registry.problems.get(slug)  # an unknown slug: ProblemNotFound, before the version
    (text,) = registry.models.resolve([version])
    ref = ModelRef.parse(text)
    rows = problem_metrics(registry, versions=[text], problems=[slug])
    if not rows:
        models = ", ".join(registry.problems.get(slug).models)
        raise InvalidValue(
            f"problem {slug} belongs to {models}, not to model {ref.name}; sign it off at a "
            f"version of its model(s)"
        )
    (row,) = rows
    if not row.answered:
        raise InvalidValue(
            f"{text} has no answer on {slug} yet, so there is nothing to sign off; run "
            "`problem-registry replay` first"
        )
    numbers = SignedNumbers(row.answered, row.wrong, row.error_rate, row.interval)
    return record_signoff(registry, slug, ref, numbers, note=note)


def applicable(
    signed: Sequence[SignOffView], model: str, candidate_id: int
) -> dict[str, SignOffView]:
    """Each problem's latest sign-off that a candidate (its model, its version's id) is held to:
    of the same model, at a version registered before the candidate."""
    out: dict[str, SignOffView] = {}
    for view in signed:  # in the order they were made: the latest wins
        if view.model == model and view.version_id < candidate_id:
            out[view.problem] = view
    return out


def held_to_signoff(verdict: Verdict, signoff: SignOffView, against: Verdict) -> Verdict:
    """The candidate's verdict once compared with its sign-off (``against``: the candidate judged
    with the signed-off version as baseline): a confident regression below the sign-off FAILs, a
    suggestive one asks a passing candidate for a review."""
    if against.rule.startswith(("canary", "ans")) or against.outcome is Outcome.PASS:
        return verdict
    if against.outcome is Outcome.REVIEW:  # suggestive: a person looks, CI stays green
        if verdict.outcome is not Outcome.PASS:
            return verdict
        maybe = f"possibly below the sign-off of {signoff.describe()}: {against.reason}"
        return replace(verdict, outcome=Outcome.REVIEW, reason=maybe)
    below = f"below the sign-off of {signoff.describe()}: {against.reason}"
    if verdict.outcome is Outcome.FAIL:
        return replace(verdict, reason=f"{verdict.reason}; also {below}")
    return replace(
        verdict,
        outcome=Outcome.FAIL,
        rule=f"signoff ({against.rule})",
        p_value=against.p_value,
        adjusted_p=against.adjusted_p,
        interval=against.interval,
        broken=against.broken,
        fixed=against.fixed,
        reason=below,
    )
