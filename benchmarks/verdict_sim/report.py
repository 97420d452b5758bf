"""Aggregate outcome codes against ground truth (population error), and print Markdown tables."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from problem_registry.verdicts.decision import assess, spread_prior
from problem_registry.verdicts.power import CALIBRATION, POINTS, detection, estimate_power

from .evaluate import RuleSpec, World, evidence

CALIBRATIONS = (0.0, 1.0)  # compared with the product's CALIBRATION in the power check

NOT_WORSE = 0.02  # population error up by at most 2 points: within a plain retrain's spread
BINS = {
    "~5 pts (4-7.5)": (0.04, 0.075),
    "~10 pts (7.5-15)": (0.075, 0.15),
    "~20 pts (15+)": (0.15, math.inf),
    "10+ pts": (0.10, math.inf),
}


def truth(world: World) -> np.ndarray:
    """Population error of each candidate minus the baseline's, [candidates, problems]."""
    base = world.preds[world.history[-1]]
    rows = [p.rows for p in world.data.problems]
    base_err = np.array([1 - base.correct[r].mean() for r in rows])
    return (
        np.array([[1 - world.preds[c].correct[r].mean() for r in rows] for c in world.candidates])
        - base_err[None, :]
    )


def _rate(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def _ci_runs(codes: np.ndarray, groups: np.ndarray, plain: np.ndarray) -> tuple[float, float]:
    """Share of plain retrains' CI runs with any FAIL: runs of 8, and the run of all problems."""
    fail8, fail_all = [], []
    for c in np.flatnonzero(plain):
        for j in range(codes.shape[2]):
            g = groups[c, :, j]
            ok = g >= 0
            hits = np.bincount(g[ok], weights=(codes[c, ok, j, 0] == 2), minlength=g.max() + 1)
            fail8.extend(hits > 0)
            fail_all.append(bool((codes[c, :, j, 1] == 2).any()))
    return float(np.mean(fail8)), float(np.mean(fail_all))


def rule_rows(
    specs: list[RuleSpec],
    codes: np.ndarray,
    groups: np.ndarray,
    delta: np.ndarray,
    plain: np.ndarray,
) -> list[dict[str, Any]]:
    """One dict per rule: detection by size, false alarms, plain retrains' CI failures."""
    d = np.broadcast_to(delta[:, :, None], codes.shape[:1] + codes.shape[2:4])
    rows = []
    for r, spec in enumerate(specs):
        c8, call = codes[:, r, :, :, 0], codes[:, r, :, :, 1]
        row: dict[str, Any] = {"rule": spec.name, "scores": spec.scores}
        for name, (low, high) in BINS.items():
            m = (d >= low) & (d < high) & (c8 >= 0)
            row[name] = {
                "cases": int(m.sum()),
                "fail_run8": _rate(c8[m] == 2),
                "fail_or_review_run8": _rate(c8[m] >= 1),
                "fail_run_all": _rate(call[(d >= low) & (d < high)] == 2),
            }
        nw = (d <= NOT_WORSE) & (c8 >= 0)
        row["not_worse"] = {
            "cases": int(nw.sum()),
            "fail_run8": _rate(c8[nw] == 2),
            "review_run8": _rate(c8[nw] == 1),
            "fail_run_all": _rate(call[d <= NOT_WORSE] == 2),
        }
        row["plain_ci_fail_run8"], row["plain_ci_fail_run_all"] = _ci_runs(
            codes[:, r], groups, plain
        )
        rows.append(row)
    return rows


def power_check(
    world: World, spec: RuleSpec, codes: np.ndarray, delta: np.ndarray, replicates: int
) -> dict[str, Any]:
    """Predicted (power.detection at the true size) against measured FAIL in runs of 8."""
    r = world.specs.index(spec)
    predicted, measured, sizes = [], [], []
    # The run's common spread depends on the history and the baseline only, not the candidate:
    # fitted here on all problems of each draw (a run of 8 fits it on its own 8).
    priors = [
        spread_prior(
            [
                assess(evidence(world, p, j, world.history[-1], spec.scores), spec.settings)
                for p in range(delta.shape[1])
            ],
            spec.settings,
        )
        for j in range(codes.shape[3])
    ]
    alternatives: dict[float, list[float]] = {share: [] for share in CALIBRATIONS}
    for p in range(delta.shape[1]):
        hit = np.flatnonzero(delta[:, p] >= 0.04)
        if not len(hit):
            continue
        for j in range(codes.shape[3]):
            ev = evidence(world, p, j, world.history[-1], spec.scores)
            curves = [
                detection(
                    ev,
                    spec.settings,
                    POINTS,
                    problems_in_run=8,
                    replicates=replicates,
                    seed=world.seed + p * 1000 + j,
                    prior=priors[j],
                    calibration=share,
                )
                for share in (CALIBRATION, *CALIBRATIONS)
            ]
            for c in hit:
                if codes[c, r, p, j, 0] < 0:
                    continue
                predicted.append(float(np.interp(delta[c, p], POINTS, curves[0])))
                for share, curve in zip(CALIBRATIONS, curves[1:], strict=True):
                    alternatives[share].append(float(np.interp(delta[c, p], POINTS, curve)))
                measured.append(codes[c, r, p, j, 0] == 2)
                sizes.append(delta[c, p])
    pr, me, sz = (np.array(a) for a in (predicted, measured, sizes))
    other = {share: np.array(values) for share, values in alternatives.items()}
    out: dict[str, Any] = {"rule": spec.name}
    for name, (low, high) in {**BINS, "all 4+ pts": (0.04, math.inf)}.items():
        m = (sz >= low) & (sz < high)
        out[name] = {
            "cases": int(m.sum()),
            "predicted": _rate(pr[m]),
            **{f"predicted_calibration_{share}": _rate(other[share][m]) for share in CALIBRATIONS},
            "measured": _rate(me[m]),
        }
    return out


def power_timing(world: World, spec: RuleSpec, samples: int) -> dict[str, float]:
    """Wall time of estimate_power per problem (ms), over ``samples`` problems."""
    times = []
    for p in range(min(samples, len(world.patterns))):
        ev = evidence(world, p, 0, world.history[-1], spec.scores)
        start = time.perf_counter()
        estimate_power(ev, spec.settings, problems_in_run=8)
        times.append((time.perf_counter() - start) * 1000)
    return {"mean_ms": float(np.mean(times)), "max_ms": float(np.max(times)), "n": len(times)}


def canary_rows(world: World, canary: np.ndarray, random_draws: np.ndarray) -> dict[str, Any]:
    """Canary judged by the point estimate vs the Wilson interval, on randomly drawn patterns."""
    base = world.preds[world.history[-1]]
    rows = [p.rows for p in world.data.problems]
    limit = np.array([1 - base.correct[r].mean() + 0.10 for r in rows])
    err = np.array([[1 - world.preds[c].correct[r].mean() for r in rows] for c in world.candidates])
    over = np.broadcast_to((err > limit[None, :])[:, :, None], canary[:, 0].shape)
    use = np.broadcast_to(random_draws[None, :, :], over.shape)
    out = {}
    for i, name in enumerate(("point", "interval")):
        codes = canary[:, i]
        out[name] = {
            "violating_cases": int((over & use).sum()),
            "fail_violating": _rate(codes[over & use] == 2),
            "flag_violating": _rate(codes[over & use] >= 1),
            "fail_within": _rate(codes[~over & use] == 2),
            "review_within": _rate(codes[~over & use] == 1),
        }
    return out


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def markdown(result: dict[str, Any]) -> str:
    """The report's tables."""
    n = result["meta"]["problems"]
    lines = [
        f"| rule | model gives | FAIL 10+ (run 8) | FAIL or REVIEW 10+ | FAIL 10+ (run {n}) "
        f"| FAIL not-worse | REVIEW not-worse | plain retrain fails CI: 8 | {n} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rules"]:
        big, nw = row["10+ pts"], row["not_worse"]
        lines.append(
            f"| {row['rule']} | {'scores' if row['scores'] else 'labels'} "
            f"| {_pct(big['fail_run8'])} | {_pct(big['fail_or_review_run8'])} "
            f"| {_pct(big['fail_run_all'])} | {_pct(nw['fail_run8'])} | {_pct(nw['review_run8'])} "
            f"| {_pct(row['plain_ci_fail_run8'])} | {_pct(row['plain_ci_fail_run_all'])} |"
        )
    lines += ["", "| rule | " + " | ".join(f"FAIL {b} (run 8)" for b in BINS) + " |"]
    lines.append("|---|" + "---|" * len(BINS))
    for row in result["rules"]:
        cells = " | ".join(_pct(row[b]["fail_run8"]) for b in BINS)
        lines.append(f"| {row['rule']} | {cells} |")
    lines.append(
        "| cases | " + " | ".join(str(result["rules"][0][b]["cases"]) for b in BINS) + " |"
    )
    lines += [
        "",
        "| power check (runs of 8) | size | cases | predicted | "
        + " | ".join(f"calibration {share}" for share in CALIBRATIONS)
        + " | measured |",
        "|---|---|---|---|" + "---|" * len(CALIBRATIONS) + "---|",
    ]
    for check in result["power"]:
        for b, v in check.items():
            if b != "rule":
                lines.append(
                    f"| {check['rule']} | {b} | {v['cases']} | {_pct(v['predicted'])} "
                    + "".join(
                        f"| {_pct(v.get(f'predicted_calibration_{share}'))} "
                        for share in CALIBRATIONS
                    )
                    + f"| {_pct(v['measured'])} |"
                )
    lines += [
        "",
        "| canary judges | violating cases | FAIL violating | FAIL or REVIEW violating "
        "| FAIL within | REVIEW within |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in result["canary"].items():
        lines.append(
            f"| {name} | {v['violating_cases']} | {_pct(v['fail_violating'])} "
            f"| {_pct(v['flag_violating'])} | {_pct(v['fail_within'])} "
            f"| {_pct(v['review_within'])} |"
        )
    return "\n".join(lines)
