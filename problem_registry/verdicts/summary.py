"""The candidate-versus-champion table, as plain text for the terminal and Markdown for CI pages.

One row per problem: the champion's and the candidate's score, the change, how many patterns
newly fail, and the verdict. Plain data in, strings out: the pytest plugin and the CLI both print
it.
"""

from __future__ import annotations

from collections.abc import Sequence

from problem_registry.verdicts.gates import GateResult
from problem_registry.verdicts.metrics import ProblemVersionMetrics

HEADERS = ("problem", "champion", "candidate", "change", "newly failing", "gate")


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
    if gate.passed:
        return "passed"
    return "FAILED: " + ", ".join(check.name for check in gate.failed_checks)


def rows(gates: Sequence[GateResult]) -> list[tuple[str, ...]]:
    return [
        (
            gate.problem,
            score(gate.champion_metrics),
            score(gate.metrics),
            change(gate),
            str(sum(f.newly_failing for f in gate.failing)) if gate.champion else "-",
            verdict(gate),
        )
        for gate in gates
    ]


def _title(candidate: str, champion: str | None) -> str:
    against = f"against champion {champion}" if champion else "(no champion yet: canary only)"
    return f"candidate {candidate} {against}"


def terminal_rows(gates: Sequence[GateResult], candidate: str, champion: str | None) -> list[str]:
    table = [HEADERS, *rows(gates)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADERS))]
    lines = [_title(candidate, champion)]
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    failed = sum(not gate.passed for gate in gates)
    lines.append(f"{len(gates) - failed} of {len(gates)} problem(s) pass their gates")
    return lines


def markdown_summary(gates: Sequence[GateResult], candidate: str, champion: str | None) -> str:
    failed = sum(not gate.passed for gate in gates)
    icon = "✅" if not failed else "❌"
    lines = [
        f"### {icon} problem-registry: {_title(candidate, champion)}",
        "",
        f"{len(gates) - failed} of {len(gates)} problem(s) pass their gates.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows(gates)]
    return "\n".join(lines)


def _md(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")
