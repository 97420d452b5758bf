""" "More like this": how close two inputs are, in the best terms available for both.

1. The model's own view, when both have scores from the same version: half the L1 distance
   between the two probability vectors (total variation, 0 = the model sees them alike, 1 = no
   overlap). Scores are the embedding every scored model already gives.
2. Otherwise images by a perceptual difference hash (``imagehash.dhash``, 64 bits): the share of
   bits that differ, robust to re-encoding, small shifts of brightness and resizing.
3. Otherwise text (and JSON, as text) by ``difflib``'s similarity ratio of their first
   :data:`TEXT_CHARS` characters: 1 - ratio.

Distances are in [0, 1]; an image and a text are not comparable (``None``).
"""

from __future__ import annotations

import difflib
import io
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from problem_registry.store.content import IMAGE_FORMATS

TEXT_CHARS = 2000
HASH_BITS = 64


@dataclass
class Item:
    """One case or pattern as similarity sees it."""

    kind: str  # "case" or "pattern"
    id: int
    sha256: str
    extension: str
    content_kind: str  # image, text, json
    label: str  # the case's prediction, or what the pattern expects
    name: str = ""
    problem: str | None = None
    scores: dict[str, float] | None = None  # in the chosen version's terms
    fingerprint: Any = field(default=None, repr=False)  # dHash int or text, once computed


@dataclass(frozen=True)
class Neighbour:
    item: Item
    distance: float
    by: str  # "scores", "image hash" or "text"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.item.kind,
            "id": self.item.id,
            "sha256": self.item.sha256,
            "label": self.item.label,
            "problem": self.item.problem,
            "name": self.item.name,
            "distance": round(self.distance, 4),
            "by": self.by,
        }


def fingerprint(data: bytes, content_kind: str) -> Any:
    """The dHash (an int) of an image, or the start of a text; None when it cannot be read."""
    if content_kind == "image":
        return _dhash(data)
    return data[: TEXT_CHARS * 4].decode("utf-8", errors="replace")[:TEXT_CHARS]


def _dhash(data: bytes) -> int | None:
    import imagehash
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
                image.draft("L", (64, 64))  # a JPEG decodes small; a stored input is size-capped
                bits = imagehash.dhash(image.convert("L"), hash_size=8).hash.flatten()
    except Exception:
        return None
    return int("".join("1" if bit else "0" for bit in bits), 2)


def distance(a: Item, b: Item) -> tuple[float, str] | None:
    """How far apart ``a`` and ``b`` are, and by what; None when nothing compares them."""
    if a.scores and b.scores:
        labels = set(a.scores) | set(b.scores)
        total = sum(abs(a.scores.get(label, 0.0) - b.scores.get(label, 0.0)) for label in labels)
        return min(1.0, total / 2), "scores"
    if a.content_kind == "image" and b.content_kind == "image":
        if isinstance(a.fingerprint, int) and isinstance(b.fingerprint, int):
            return bin(a.fingerprint ^ b.fingerprint).count("1") / HASH_BITS, "image hash"
        return None
    if isinstance(a.fingerprint, str) and isinstance(b.fingerprint, str):  # text and JSON
        ratio = difflib.SequenceMatcher(None, a.fingerprint, b.fingerprint).ratio()
        return 1.0 - ratio, "text"
    return None


def hash_distances(target: int, others: Sequence[int]) -> Any:
    """The share of differing bits between ``target`` and each of ``others``, as a numpy array:
    ranking a queue compares thousands of cases with every failing pattern."""
    import numpy as np

    if not others:
        return np.zeros(0)
    bits = np.array(others, dtype=np.uint64) ^ np.uint64(target)
    counts = np.unpackbits(bits.view(np.uint8)).reshape(len(others), HASH_BITS).sum(axis=1)
    return counts / HASH_BITS


def nearest(target: Item, candidates: Sequence[Item], count: int) -> list[Neighbour]:
    """The ``count`` candidates nearest ``target`` (itself and its own content left out)."""
    found = []
    if not target.scores and isinstance(target.fingerprint, int) and target.content_kind == "image":
        # By image hash alone: every candidate at once.
        hashed = [
            c
            for c in candidates
            if isinstance(c.fingerprint, int)
            and c.content_kind == "image"
            and c.sha256 != target.sha256
        ]
        gaps = hash_distances(target.fingerprint, [c.fingerprint for c in hashed])
        found = [
            Neighbour(c, float(gap), "image hash") for c, gap in zip(hashed, gaps, strict=True)
        ]
        found.sort(key=lambda n: (n.distance, n.item.kind, n.item.id))
        return found[:count]
    for item in candidates:
        if item.sha256 == target.sha256:
            continue
        measured = distance(target, item)
        if measured is not None:
            found.append(Neighbour(item, *measured))
    found.sort(key=lambda n: (n.distance, n.item.kind, n.item.id))
    return found[:count]


def parse_scores(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    value = json.loads(text)
    return {str(k): float(v) for k, v in value.items()} if isinstance(value, dict) else None
