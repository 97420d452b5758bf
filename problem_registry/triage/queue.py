"""The triage queue: the queued cases worth a tester's eye, most deserving first.

A case is queued for each reason that holds (docs/triage.md):

- ``low-confidence``: production's confidence below :data:`LOW_CONFIDENCE`, or below the
  :data:`LOW_QUANTILE` quantile of its version's confidences in the queue when that is lower
  (a poorly calibrated model that is never sure would otherwise queue every case);
- ``bad-rating``: a user rated it :data:`BAD_RATING` or lower (of 5);
- ``correction``: a user said the right label is another;
- ``disagreement``: the champion and the latest candidate of its model answer it differently
  (both replayed on the case, cached: :mod:`.answers`);
- ``near-failures``: its input is within :data:`NEAR` (an image, by perceptual hash) or
  :data:`NEAR_TEXT` (a text, by trigrams) of a pattern the answering version (or the champion)
  gets wrong.

Its priority adds one point per reason, more the lower the confidence and the nearer the
failure. A case with no reason is not queued; an accepted or discarded case never again, nor one
whose input is already a pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from problem_registry.errors import InvalidValue
from problem_registry.refs import ModelRef
from problem_registry.store.registry import Registry
from problem_registry.triage import answers as answers_module
from problem_registry.triage.cases import CaseView, pattern_contents, read_cases
from problem_registry.triage.items import case_items, fingerprint_all, pattern_items
from problem_registry.triage.similarity import Item, closest_texts, hash_distances, is_text

REASONS = ("low-confidence", "bad-rating", "correction", "disagreement", "near-failures")
LOW_CONFIDENCE = 0.6
LOW_QUANTILE = 0.2
BAD_RATING = 2
NEAR = 0.15  # a quarter of the typical distance between two different digits' hashes
# Texts' trigram distance (similarity.text_vectors) where difflib's was 0.15: on 1,500 pairs of
# English sentences and edits of them, 0.25 agrees most often with difflib's 0.15 (docs/triage.md).
NEAR_TEXT = 0.25


@dataclass
class Queue:
    cases: list[CaseView]
    queued: int  # cases with status queued, before reasons and filters
    already_patterns: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)  # versions that could not replay
    predicted: int = 0  # answers replayed now (the rest came from the cache)

    def to_dict(self) -> dict[str, object]:
        return {
            "cases": [case.to_dict() for case in self.cases],
            "queued": self.queued,
            "already_patterns": self.already_patterns,
            "unavailable": self.unavailable,
            "predicted": self.predicted,
        }


def rank(
    registry: Registry,
    *,
    reasons: Sequence[str] | None = None,
    version: str | None = None,
    replay: bool = True,
    limit: int | None = None,
) -> Queue:
    """The queue, ranked; ``reasons`` and ``version`` (``NAME@VERSION`` that answered) filter it.
    ``replay=False`` uses cached answers only (no model loads)."""
    for reason in reasons or ():
        if reason not in REASONS:
            raise InvalidValue(f"reason {reason!r} is not one of {', '.join(REASONS)}")
    if version is not None:
        version = str(ModelRef.parse(version))
    cases = read_cases(registry, status="queued", model=version)
    queued = len(cases)
    taken = pattern_contents(registry, [c.sha256 for c in cases])
    cases = [c for c in cases if c.sha256 not in taken]
    queue = Queue([], queued, queued - len(cases))
    limits = _confidence_limits(cases)
    for case in cases:
        _own_reasons(case, limits.get(case.model, LOW_CONFIDENCE))
    _disagreement(registry, cases, queue, replay)
    _near_failures(registry, cases)
    chosen = [c for c in cases if c.reasons]
    if reasons:
        chosen = [c for c in chosen if set(c.reasons) & set(reasons)]
    chosen.sort(key=lambda c: (-c.priority, c.id))
    queue.cases = chosen[:limit] if limit is not None else chosen
    return queue


def _confidence_limits(cases: Sequence[CaseView]) -> dict[str, float]:
    """Per version, the confidence under which a case is "low": the lower of
    :data:`LOW_CONFIDENCE` and the :data:`LOW_QUANTILE` quantile of its queued confidences."""
    by_model: dict[str, list[float]] = {}
    for case in cases:
        if case.confidence is not None:
            by_model.setdefault(case.model, []).append(case.confidence)
    limits = {}
    for model, values in by_model.items():
        values.sort()
        quantile = values[int(LOW_QUANTILE * (len(values) - 1))]
        limits[model] = min(LOW_CONFIDENCE, quantile) if len(values) >= 10 else LOW_CONFIDENCE
    return limits


def _own_reasons(case: CaseView, limit: float) -> None:
    if case.confidence is not None and case.confidence < limit:
        case.reasons.append("low-confidence")
        case.priority += 1.0 + (limit - case.confidence) / limit
    if case.rating is not None and case.rating <= BAD_RATING:
        case.reasons.append("bad-rating")
        case.priority += 1.0 + (BAD_RATING - case.rating) / BAD_RATING
    if case.correction is not None and case.correction != case.predicted:
        case.reasons.append("correction")
        case.priority += 1.5


def _disagreement(registry: Registry, cases: list[CaseView], queue: Queue, replay: bool) -> None:
    pairs = answers_module.pairs(registry, [ModelRef.parse(c.model).name for c in cases])
    for pair in pairs.values():
        mine = [c for c in cases if ModelRef.parse(c.model).name == pair.model]
        refs = [pair.champion, pair.candidate]
        if replay:
            inputs = {c.sha256: (c.kind, c.extension) for c in mine}
            done = answers_module.replay_cases(registry, refs, inputs)
            queue.predicted += done.predicted
            queue.unavailable.update(done.unavailable)
        got = answers_module.cached(registry, refs, [c.sha256 for c in mine])
        for case in mine:
            champion = got.get((pair.champion, case.sha256), "")
            candidate = got.get((pair.candidate, case.sha256), "")
            if (pair.champion, case.sha256) in got:
                case.answers[pair.champion] = champion
            if (pair.candidate, case.sha256) in got:
                case.answers[pair.candidate] = candidate
            if len(case.answers) == 2 and champion != candidate:
                case.reasons.append("disagreement")
                case.priority += 1.0


def _near_failures(registry: Registry, cases: list[CaseView]) -> None:
    if not cases:
        return
    judges = {model: _judge(registry, model) for model in {c.model for c in cases}}
    by_version: dict[str, list[CaseView]] = {}
    for case in cases:
        by_version.setdefault(judges[case.model], []).append(case)
    for version, mine in by_version.items():
        if not version:
            continue
        failing = pattern_items(registry, version, only_failing=True)
        if not failing:
            continue
        items = case_items(registry, mine, None)  # by content first: see the module's note
        fingerprint_all(registry, [*failing, *items])
        hashed = [p for p in failing if isinstance(p.fingerprint, int)]
        hashes = [p.fingerprint for p in hashed]
        texts = [p for p in failing if is_text(p)]
        text_items = [item for item in items if is_text(item)]
        # Every text case against every failing text pattern, a chunk of cases per product.
        closest = dict(zip(map(id, text_items), closest_texts(text_items, texts), strict=True))
        for case, item in zip(mine, items, strict=True):
            best: tuple[Item, float, str] | None = None
            if isinstance(item.fingerprint, int) and item.content_kind == "image":
                gaps = hash_distances(item.fingerprint, hashes)
                at = int(gaps.argmin()) if len(hashes) else -1
                best = (hashed[at], float(gaps[at]), "image hash") if at >= 0 else None
            elif id(item) in closest and closest[id(item)][0] >= 0:
                at, gap = closest[id(item)]
                best = (texts[at], gap, "text")
            limit = NEAR_TEXT if best is not None and best[2] == "text" else NEAR
            if best is not None and best[1] <= limit:
                pattern, gap, by = best
                case.reasons.append("near-failures")
                case.priority += 1.0 + (limit - gap) / limit
                case.near = {
                    "problem": pattern.problem,
                    "pattern": pattern.id,
                    "expected": pattern.label,
                    "distance": round(gap, 4),
                    "by": by,
                }


def _judge(registry: Registry, model: str) -> str:
    """The version whose failing patterns a case is compared with: the one that answered it if
    registered, else its model's champion; "" when neither."""
    ref = ModelRef.parse(model)
    views = answers_module.versions_of(registry, ref.name)
    if any(v.ref == model for v in views):
        return model
    champion = next((v for v in views if v.is_champion), None)
    return champion.ref if champion is not None else ""
