"""Replay every pattern set against every candidate and decide with every rule, as the gate would.

For each candidate and each draw of pattern sets, all problems form one CI run (the 100+ problem
run) and are also split at random into runs of 8; each run is decided by
``problem_registry.verdicts.decision.decide_stats``, the product's own code. Outcomes are kept as
codes (0 pass, 1 review, 2 fail) in arrays for the report to aggregate against ground truth.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from problem_registry.verdicts.decision import (
    Correction,
    GateSettings,
    Outcome,
    ProblemEvidence,
    ProblemStats,
    Rule,
    assess,
    decide_stats,
)

from .data import Dataset
from .patterns import PatternSet
from .train import Predictions

CODE = {Outcome.PASS: 0, Outcome.REVIEW: 1, Outcome.FAIL: 2}
RUN_SIZE = 8


@dataclass(frozen=True)
class RuleSpec:
    """One row of the report: a rule, its settings, and whether the model gives scores."""

    name: str
    settings: GateSettings
    scores: bool

    @property
    def stats_key(self) -> tuple[bool, str, float, bool]:
        s = self.settings
        if not self.scores:
            return (False, "log", 0.0, False)
        return (True, s.score, s.score_floor, s.robust_scale)


def rule_specs() -> list[RuleSpec]:
    """The rules compared; labels-only rows first. Every row names its alpha and score; "default"
    rows follow GateSettings() but for what their name changes, and review settings are the
    defaults (the deciding test's p <= 0.1, or 2 net breaks) unless the row says otherwise.
    """
    # Rows not named "default" compare rules as first measured: without the moderated spread.
    s = partial(GateSettings, moderate=False)
    none, holm, bh = Correction.NONE, Correction.HOLM, Correction.BH
    d = GateSettings
    c = Rule.COMBINED
    log = "log"
    no_count: dict[str, Any] = {"review_net_breaks": None}
    rows = [
        ("today: newly failing >= 1", s(Rule.NEWLY_FAILING, none), False),
        ("net breaks >= 2", s(Rule.NET_BREAKS, none, min_net_breaks=2), False),
        ("net breaks >= 3", s(Rule.NET_BREAKS, none, min_net_breaks=3), False),
        ("McNemar one-sided, alpha 0.05, no correction", s(Rule.MCNEMAR, none, alpha=0.05), False),
        ("McNemar one-sided + Holm, alpha 0.10", s(Rule.MCNEMAR, holm, alpha=0.10), False),
        ("flips vs history, alpha 0.05, no correction", s(Rule.FLIPS, none, alpha=0.05), False),
        ("flips vs history + Holm, alpha 0.05", s(Rule.FLIPS, holm, alpha=0.05), False),
        ("flips vs history + Holm, alpha 0.10", s(Rule.FLIPS, holm, alpha=0.10), False),
        ("default, labels-only model", d(), False),
        ("log-score drop, alpha 0.05, no correction", s(Rule.SCORE, none, 0.05, score=log), True),
        ("log-score drop + Holm, alpha 0.10", s(Rule.SCORE, holm, 0.10, score=log), True),
        ("combined log, alpha 0.05, no correction", s(c, none, 0.05, score=log), True),
        ("combined log + BH, alpha 0.10", s(c, bh, 0.10, score=log), True),
        ("combined log + Holm, alpha 0.05", s(c, holm, 0.05, score=log), True),
        ("combined log + Holm, alpha 0.10", s(c, holm, 0.10, score=log), True),
        (
            "combined log + Holm, alpha 0.10, floor 0.1",
            s(c, holm, 0.10, score=log, score_floor=0.1),
            True,
        ),
        ("combined p + Holm, alpha 0.05", s(c, holm, 0.05, score="prob"), True),
        ("combined p + Holm, alpha 0.10", s(c, holm, 0.10, score="prob"), True),
        ("combined p + Holm, alpha 0.20", s(c, holm, 0.20, score="prob"), True),
        ("default, review p<=0.2", d(review_alpha=0.2, review_needs_net=True, **no_count), True),
        ("default, review p<=0.2 or net>=2", d(review_alpha=0.2, review_needs_net=True), True),
        ("default, review score p<=0.2 (no net)", d(review_alpha=0.2, **no_count), True),
        ("default, review score p<=0.2 (no net) or net>=2", d(review_alpha=0.2), True),
        ("previous default: BH alpha 0.10, not moderated", s(alpha=0.10, moderate=False), True),
        ("default, not moderated", d(moderate=False), True),
        ("combined p + Holm, alpha 0.10, moderated", d(c, holm, 0.10), True),
        ("default, alpha 0.05", d(alpha=0.05), True),
        ("default, alpha 0.10", d(alpha=0.10), True),
        ("default", d(), True),
    ]
    return [RuleSpec(name, settings, scores) for name, settings, scores in rows]


@dataclass
class World:
    """Everything a worker needs; set once before the pool forks."""

    data: Dataset
    preds: dict[str, Predictions]
    history: list[str]  # earlier versions, oldest first; the last one is the baseline
    candidates: list[str]
    patterns: list[list[PatternSet]]  # per problem, per draw
    specs: list[RuleSpec]
    seed: int
    cache: dict[tuple[int, int], dict[str, np.ndarray]] = field(default_factory=dict)


_WORLD: World | None = None


def evidence(world: World, p: int, j: int, candidate: str, scores: bool) -> ProblemEvidence:
    """The gate's input for problem ``p``, draw ``j``, against ``candidate``."""
    key = (p, j)
    if key not in world.cache:
        ps = world.patterns[p][j]
        hist = [world.preds[name] for name in world.history]
        world.cache[key] = {
            "correct": np.vstack([h.correct[ps.rows] for h in hist]).astype(float),
            "prob": np.vstack([h.prob[ps.rows] for h in hist]).astype(float),
            "polarity": np.where(ps.positive, "positive", "negative"),
        }
    c = world.cache[key]
    ps = world.patterns[p][j]
    cand = world.preds[candidate]
    return ProblemEvidence(
        problem=world.data.problems[p].name,
        polarity=list(c["polarity"]),
        baseline_correct=c["correct"][-1],
        candidate_correct=cand.correct[ps.rows].astype(float),
        baseline_prob=c["prob"][-1] if scores else None,
        candidate_prob=cand.prob[ps.rows].astype(float) if scores else None,
        history_correct=c["correct"][:-1],
        history_prob=c["prob"][:-1] if scores else None,
    )


def _groups(problems: int, rng: np.random.Generator) -> np.ndarray:
    """Each problem's run of 8 (-1: left over when the count is not a multiple of 8)."""
    order = rng.permutation(problems)
    group = np.full(problems, -1)
    for g in range(problems // RUN_SIZE):
        group[order[g * RUN_SIZE : (g + 1) * RUN_SIZE]] = g
    return group


def _decide(stats: list[ProblemStats], spec: RuleSpec, group: np.ndarray) -> np.ndarray:
    """Codes (problems, 2): in its run of 8, and in the run of all problems."""
    out = np.zeros((len(stats), 2), dtype=np.int8)
    full = decide_stats(stats, spec.settings)
    out[:, 1] = [CODE[v.outcome] for v in full]
    if spec.settings.correction is Correction.NONE:
        out[:, 0] = out[:, 1]
        return out
    out[:, 0] = -1
    for g in range(group.max() + 1):
        members = np.flatnonzero(group == g)
        small = decide_stats([stats[i] for i in members], spec.settings)
        out[members, 0] = [CODE[v.outcome] for v in small]
    return out


def run_candidate(index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes [rules, problems, draws, 2], groups [problems, draws], canary [2, problems, draws]."""
    world = _WORLD
    assert world is not None
    candidate = world.candidates[index]
    problems, draws = len(world.patterns), len(world.patterns[0])
    codes = np.zeros((len(world.specs), problems, draws, 2), dtype=np.int8)
    groups = np.zeros((problems, draws), dtype=np.int16)
    canary = np.zeros((2, problems, draws), dtype=np.int8)
    labels_key = (False, "log", 0.0, False)  # the canary's: labels only
    keys = sorted({spec.stats_key for spec in world.specs} | {labels_key})
    for j in range(draws):
        rng = np.random.default_rng([world.seed, index, j])
        groups[:, j] = _groups(problems, rng)
        stats = {k: _stats(world, candidate, j, k) for k in keys}
        for r, spec in enumerate(world.specs):
            codes[r, :, j, :] = _decide(stats[spec.stats_key], spec, groups[:, j])
        canary[:, :, j] = _canary(world, stats[labels_key])
    return codes, groups, canary


def _stats(
    world: World, candidate: str, j: int, key: tuple[bool, str, float, bool]
) -> list[ProblemStats]:
    scores, score, floor, robust = key
    settings = GateSettings(score=score, score_floor=floor, robust_scale=robust)
    return [
        assess(evidence(world, p, j, candidate, scores), settings)
        for p in range(len(world.patterns))
    ]


def canary_limits(world: World) -> np.ndarray:
    """max_error_rate per problem: the baseline's population error plus 10 points."""
    base = world.preds[world.history[-1]]
    return np.array([1 - base.correct[p.rows].mean() + 0.10 for p in world.data.problems])


def _canary(world: World, stats: list[ProblemStats]) -> np.ndarray:
    """Canary-only codes (point rule, interval rule): no regression rule can fire."""
    limits = canary_limits(world)
    with_limit = [replace(s, max_error_rate=float(m)) for s, m in zip(stats, limits, strict=True)]
    out = np.zeros((2, len(stats)), dtype=np.int8)
    for row, interval in enumerate((False, True)):
        settings = GateSettings(
            Rule.NEWLY_FAILING,
            Correction.NONE,
            allowed_newly_failing=10**6,
            canary_interval=interval,
        )
        out[row] = [CODE[v.outcome] for v in decide_stats(with_limit, settings)]
    return out


def run_all(world: World, workers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stacked over candidates: codes [C, rules, P, D, 2], groups [C, P, D], canary [C, 2, P, D]."""
    global _WORLD
    _WORLD = world
    indices = range(len(world.candidates))
    if workers <= 1:
        results = [run_candidate(i) for i in indices]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(run_candidate, indices))
    codes, groups, canary = zip(*results, strict=True)
    return np.stack(codes), np.stack(groups), np.stack(canary)
