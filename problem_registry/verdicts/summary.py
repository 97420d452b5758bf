"""The candidate-versus-baseline table, as plain text for the terminal and Markdown for CI pages.

One row per problem: the baseline's and the candidate's score, the change, patterns broken and
fixed, the paired test's p-value, what the patterns can catch, and the verdict (fail / review /
pass). Plain data in, strings out: the pytest plugin and the CLI both print it.
"""

from __future__ import annotations

from collections.abc import Sequence

from problem_registry.verdicts.decision import Outcome
from problem_registry.verdicts.gates import GateResult
from problem_registry.verdicts.metrics import ProblemVersionMetrics

HEADERS = ("problem", "baseline", "candidate", "change", "broken/fixed", "p", "catches", "verdict")


def score(metrics: ProblemVersionMetrics | None) -> str:
    """``2/12 wrong (17%)``, or ``-`` without results."""
    if metrics is None or metrics.error_rate is None:
        return "-"
    return f"{metrics.wrong}/{metrics.answered} wrong ({metrics.error_rate:.0%})"


def change(gate: GateResult) -> str:
    mine = gate.metrics.error_rate
    theirs = gate.champion_metrics.error_rate if gate.champion_metrics else None
    if mine is None or theirs is None:
        return "-"
    points = round((mine - theirs) * 100)
    return "same" if points == 0 else f"{points:+d} pts"


def verdict(gate: GateResult) -> str:
    """``pass``, ``review: <rule>`` or ``FAIL: <rule>``: what CI does and what decided it."""
    outcome = gate.outcome
    if outcome is Outcome.PASS:
        return "pass"
    return f"{'FAIL' if outcome is Outcome.FAIL else 'review'}: {gate.verdict.rule}"


def p_value(gate: GateResult) -> str:
    p = gate.verdict.p_value
    return "-" if p is None else f"{p:.2g}"


def catches(gate: GateResult) -> str:
    """The smallest regression (points of error) the problem's patterns catch 80% of the time."""
    power = gate.verdict.power
    if power is None:
        return "-"
    text = ">50 pts" if power.detectable is None else f"{power.detectable * 100:.0f} pts"
    return text if power.adequate else f"{text} (weak)"


def rows(gates: Sequence[GateResult]) -> list[tuple[str, ...]]:
    return [
        (
            gate.problem,
            score(gate.champion_metrics),
            score(gate.metrics),
            change(gate),
            f"{gate.verdict.broken}/{gate.verdict.fixed}" if gate.champion else "-",
            p_value(gate),
            catches(gate),
            verdict(gate),
        )
        for gate in gates
    ]


NO_BASELINE = "no baseline yet: canary only"


def _title(candidate: str, champion: str | None, no_baseline: str = NO_BASELINE) -> str:
    """``no_baseline``: why there is nothing to compare with, shown in place of the baseline."""
    against = f"against {champion}" if champion else f"({no_baseline})"
    return f"candidate {candidate} {against}"


def tally(gates: Sequence[GateResult]) -> str:
    """``4 pass, 1 to review, 1 fail of 6 problem(s)``."""
    counts = {outcome: sum(g.outcome is outcome for g in gates) for outcome in Outcome}
    return (
        f"{counts[Outcome.PASS]} pass, {counts[Outcome.REVIEW]} to review, "
        f"{counts[Outcome.FAIL]} fail of {len(gates)} problem(s)"
    )


def to_review(gates: Sequence[GateResult]) -> list[str]:
    """One line per problem a person should look at: why, and which patterns newly fail."""
    lines = []
    for gate in gates:
        if gate.outcome is not Outcome.REVIEW:
            continue
        newly = [f.file for f in gate.failing if f.newly_failing]
        tail = f"; newly failing: {', '.join(newly)}" if newly else ""
        lines.append(f"review {gate.problem}: {gate.verdict.reason}{tail}")
    return lines


def terminal_rows(
    gates: Sequence[GateResult],
    candidate: str,
    champion: str | None,
    no_baseline: str = NO_BASELINE,
) -> list[str]:
    table = [HEADERS, *rows(gates)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADERS))]
    lines = [_title(candidate, champion, no_baseline)]
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.append(tally(gates))
    return lines + to_review(gates)


def markdown_summary(
    gates: Sequence[GateResult],
    candidate: str,
    champion: str | None,
    no_baseline: str = NO_BASELINE,
) -> str:
    """The CI job page's summary: the table, what to review, then each failing or flagged
    problem's failing patterns, so the page alone says which inputs to look at (issue 19)."""
    failed = any(not gate.passed for gate in gates)
    review = any(gate.outcome is Outcome.REVIEW for gate in gates)
    icon = "❌" if failed else "⚠️" if review else "✅"
    lines = [
        f"### {icon} problem-registry: {_title(candidate, champion, no_baseline)}",
        "",
        f"{tally(gates)}.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows(gates)]
    flagged = to_review(gates)
    if flagged:
        lines += ["", "To review (CI stays green):", ""] + [f"- {_md(line)}" for line in flagged]
    for gate in gates:
        if gate.outcome is not Outcome.PASS and gate.failing:
            lines += ["", *_failing_patterns(gate)]
    return "\n".join(lines)


def _failing_patterns(gate: GateResult) -> list[str]:
    """A Markdown table of one problem's failing patterns: file, expected, got, baseline."""
    lines = [
        f"#### {_md(gate.problem)}: {_md(verdict(gate))}",
        "",
        "| pattern | polarity | expected | got | baseline | verdict |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        "| "
        + " | ".join(
            _md(cell)
            for cell in (f.file, f.polarity, f.expected, f.got, f.champion_got or "-", f.verdict)
        )
        + " |"
        for f in gate.failing
    ]
    return lines


def _md(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")
