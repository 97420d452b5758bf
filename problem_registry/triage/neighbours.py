""" "More like this" for a case or a pattern: the nearest other cases and patterns.

One measure per answer, so distances compare: the model's scores when the target has them in
the chosen version's terms (its production scores, a cached triage answer, or a stored result),
else the perceptual hash (images) or text similarity (text, JSON). See :mod:`.similarity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from problem_registry.store.registry import Registry
from problem_registry.triage.cases import get_case, read_cases
from problem_registry.triage.items import case_items, fingerprint_all, pattern_items
from problem_registry.triage.similarity import Item, Neighbour, nearest

DEFAULT_COUNT = 8


@dataclass(frozen=True)
class Similar:
    target: Item
    version: str | None
    by: str  # "scores" or "content"
    neighbours: list[Neighbour]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": {"kind": self.target.kind, "id": self.target.id, "label": self.target.label},
            "version": self.version,
            "by": self.by,
            "neighbours": [n.to_dict() for n in self.neighbours],
        }


def similar(
    registry: Registry,
    *,
    case: str | int | None = None,
    pattern: str | None = None,
    count: int = DEFAULT_COUNT,
    version: str | None = None,
    by: str = "auto",
) -> Similar:
    """The ``count`` nearest to a case (by id) or a pattern (id or sha256 prefix).

    ``version``: whose scores are the embedding (default: the version that answered the case;
    for a pattern, the champion when the registry has exactly one). ``by``: ``auto`` (scores
    when the target has them), ``scores`` or ``content``.
    """
    cases = [c for c in read_cases(registry) if c.status != "discarded"]
    if case is not None:
        target_case = get_case(registry, case)
        version = version or target_case.model
        target = case_items(registry, [target_case], version)[0]
    else:
        view = registry.patterns.get(pattern or "")
        version = version or _only_champion(registry)
        found = [p for p in pattern_items(registry, version) if p.id == view.id]
        target = found[0]
    candidates = case_items(registry, cases, version) + pattern_items(registry, version)
    candidates = [c for c in candidates if not (c.kind == target.kind and c.id == target.id)]
    use_scores = by == "scores" or (by == "auto" and target.scores is not None)
    if use_scores:
        candidates = [c for c in candidates if c.scores is not None]
    else:
        for item in [target, *candidates]:
            item.scores = None
        fingerprint_all(registry, [target, *candidates])
    return Similar(
        target,
        version if use_scores else None,
        "scores" if use_scores else "content",
        nearest(target, candidates, count),
    )


def _only_champion(registry: Registry) -> str | None:
    champions = [v.ref for v in registry.models.list() if v.is_champion]
    return champions[0] if len(champions) == 1 else None
