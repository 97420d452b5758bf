"""One plain-language line per problem that a lead can paste to a client::

    v8: 11 of 12 right, needs ≤ 20% error: meets it; 2 fixed, 0 broken since v7

Pure functions over what :mod:`problem_registry.verdicts.metrics` returns (no database, no I/O), so
the HTML report, a notebook and a test all word it the same way. What each part means:

- ``11 of 12 right``: right answers of the answered patterns. An errored answer (the model raised)
  is an answer and a wrong one, and is named: ``9 of 12 right (2 errored)``. A pattern without a
  result is not counted and is named too: ``10 of 11 right (1 not run)``;
- ``needs ≤ 20% error: meets it`` / ``misses it``: the problem's canary (``max_error_rate``),
  judged exactly as the gates judge it; ``no error limit set`` when the problem has none;
- ``fails its gate: flips (labels)`` / ``its gate asks a review: ...``: a candidate's gate that
  did not pass, with the rule that decided; a failed gate replaces ``meets it``, so a line never
  says a problem is fine beside a gate that failed it;
- ``2 fixed, 0 broken since v7``: patterns right now and wrong in v7, and the reverse, counted on
  the patterns both versions answered; ``no earlier version to compare with`` for a first version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from problem_registry.refs import ModelRef
from problem_registry.verdicts.metrics import PatternResult, ProblemVersionMetrics

__all__ = ["Change", "changes", "percent", "problem_status", "status_line"]


@dataclass(frozen=True)
class Change:
    """What a version fixed and broke compared with an earlier one (pattern file names)."""

    since: str  # how the earlier version is named in the line: "v7", "v7 (champion)"
    fixed: tuple[str, ...] = ()
    broken: tuple[str, ...] = ()


def percent(rate: float) -> str:
    """``20%``, ``12.5%``: whole percentages without a decimal, others with one."""
    points = rate * 100
    return f"{points:.0f}%" if abs(points - round(points)) < 1e-9 else f"{points:.1f}%"


def changes(
    results: Iterable[PatternResult], version: str, since: str, *, label: str | None = None
) -> Change:
    """Patterns fixed and broken by ``version`` since ``since`` (both ``NAME@VERSION`` refs).

    Only patterns that both versions answered count: a pattern added after ``since`` ran is
    neither fixed nor broken.
    """
    now: dict[int, PatternResult] = {}
    before: dict[int, PatternResult] = {}
    for row in results:
        ref = row.ref
        if row.correct is None:
            continue
        if ref == version:
            now[row.pattern_id] = row
        elif ref == since:
            before[row.pattern_id] = row
    fixed, broken = [], []
    for pattern_id in sorted(now.keys() & before.keys()):
        if now[pattern_id].correct and not before[pattern_id].correct:
            fixed.append(now[pattern_id].file)
        elif before[pattern_id].correct and not now[pattern_id].correct:
            broken.append(now[pattern_id].file)
    return Change(label or ModelRef.parse(since).version, tuple(fixed), tuple(broken))


def status_line(
    metrics: ProblemVersionMetrics,
    change: Change | None = None,
    *,
    gate: tuple[str, str] | None = None,
) -> str:
    """The line for one problem on one version; ``change`` None: nothing earlier to compare;
    ``gate``: the outcome and rule of a gate that did not pass (see the module's docstring)."""
    head = f"{metrics.version}: "
    if metrics.patterns == 0:
        return head + "no patterns yet"
    if metrics.answered == 0:
        return head + f"no results yet for its {_count(metrics.patterns, 'pattern')}"
    text = head + f"{metrics.right} of {metrics.answered} right"
    notes = []
    if metrics.errored:
        notes.append(f"{metrics.errored} errored")
    if metrics.missing:
        notes.append(f"{metrics.missing} not run")
    if notes:
        text += f" ({', '.join(notes)})"
    failed = gate is not None and gate[0] == "fail"
    if metrics.max_error_rate is None:
        text += ", no error limit set"
    elif failed and metrics.meets_canary:
        text += f", needs ≤ {percent(metrics.max_error_rate)} error"
    else:
        verdict = "meets it" if metrics.meets_canary else "misses it"
        text += f", needs ≤ {percent(metrics.max_error_rate)} error: {verdict}"
    if gate is not None:
        outcome, rule = gate
        text += f"; fails its gate: {rule}" if failed else f"; its gate asks a {outcome}: {rule}"
    if change is None:
        return text + "; no earlier version to compare with"
    return text + f"; {len(change.fixed)} fixed, {len(change.broken)} broken since {change.since}"


def problem_status(
    rows: Sequence[ProblemVersionMetrics],
    results: Iterable[PatternResult],
    *,
    version: str | None = None,
    since: str | None = None,
    gate: tuple[str, str] | None = None,
) -> str:
    """The line for one problem, from its metrics across versions (registration order).

    ``version`` (a ``NAME@VERSION`` ref) defaults to the last row; ``since`` to the latest earlier
    version of the same model that answered anything. A ``since`` that is the champion is named
    so: ``since v7 (champion)``. ``gate``: the outcome (``fail`` or ``review``) and rule of a gate
    that did not pass.
    """
    if not rows:
        raise ValueError("problem_status needs the problem's metrics for at least one version")
    by_ref = {row.ref: row for row in rows}
    current = by_ref[version] if version is not None else rows[-1]
    if since is None:
        earlier = rows[: list(by_ref).index(current.ref)]
        answered = [r for r in earlier if r.model == current.model and r.answered]
        since = answered[-1].ref if answered else None
    if since is None or since == current.ref or current.answered == 0:
        return status_line(current, None, gate=gate)
    baseline = by_ref.get(since)
    earlier_ref = ModelRef.parse(since)
    name = earlier_ref.version if earlier_ref.name == current.model else since
    if baseline is not None and baseline.is_champion:
        name += " (champion)"
    return status_line(current, changes(results, current.ref, since, label=name), gate=gate)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
