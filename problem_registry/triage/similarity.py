""" "More like this": how close two inputs are, in the best terms available for both.

1. The model's own view, when both have scores from the same version: half the L1 distance
   between the two probability vectors (total variation, 0 = the model sees them alike, 1 = no
   overlap). Scores are the embedding every scored model already gives.
2. Otherwise images by a perceptual difference hash (``imagehash.dhash``, 64 bits): the share of
   bits that differ, robust to re-encoding, small shifts of brightness and resizing.
3. Otherwise text (and JSON, as text) by its character trigrams: each text's first
   :data:`TEXT_CHARS` characters become a vector of :data:`TEXT_DIM` trigram counts (hashed
   into buckets, all in numpy), and the distance is 1 - their cosine. Many texts against many
   are one matrix product, in chunks (:func:`text_distances`): 20,000 cases against 500
   patterns take seconds, where comparing pairs with ``difflib`` took most of an hour
   (docs/triage.md). The scale is not difflib's: a small edit moves trigrams more than
   characters, so a text's "near" threshold is its own (``queue.NEAR_TEXT``).

Distances are in [0, 1]; an image and a text are not comparable (``None``).
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from problem_registry.store.content import IMAGE_FORMATS

TEXT_CHARS = 2000
HASH_BITS = 64
TEXT_DIM = 4096  # trigram buckets: collisions blur little at 2,000 characters, rows stay small
TEXT_ROWS_PER_CHUNK = 1024  # texts turned into vectors (and compared) at once: ~16 MB each side
_GOLDEN = 0x9E3779B97F4A7C15  # Fibonacci hashing: the top bits of the product pick the bucket


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
    vector: Any = field(default=None, repr=False)  # a text's trigram vector, once computed


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
    if is_text(a) and is_text(b):  # text and JSON
        return float(text_distances([a], [b])[0, 0]), "text"
    return None


def is_text(item: Item) -> bool:
    """Whether ``item`` compares as text: its fingerprint is the start of its text."""
    return isinstance(item.fingerprint, str)


def text_vectors(texts: Sequence[str]) -> Any:
    """Each text's character trigrams counted into :data:`TEXT_DIM` hashed buckets, scaled to
    length 1 (float32 rows), so a matrix product gives every pair's cosine at once."""
    import numpy as np

    out = np.zeros((len(texts), TEXT_DIM), dtype=np.float32)
    shift = np.uint64(64 - TEXT_DIM.bit_length() + 1)
    for row, text in enumerate(texts):
        padded = f"  {text} "  # a text shorter than a trigram still has some
        codes = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        grams = (codes[:-2] << np.uint64(42)) ^ (codes[1:-1] << np.uint64(21)) ^ codes[2:]
        buckets = (grams * np.uint64(_GOLDEN)) >> shift
        out[row] = np.bincount(buckets.astype(np.intp), minlength=TEXT_DIM)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out /= np.maximum(norms, np.float32(1e-12))
    return out


def ensure_vectors(items: Sequence[Item]) -> None:
    """Give each text item its trigram vector (once per item)."""
    todo = [item for item in items if is_text(item) and item.vector is None]
    for start in range(0, len(todo), TEXT_ROWS_PER_CHUNK):
        chunk = todo[start : start + TEXT_ROWS_PER_CHUNK]
        for item, vector in zip(chunk, text_vectors([i.fingerprint for i in chunk]), strict=True):
            item.vector = vector


def text_distances(targets: Sequence[Item], others: Sequence[Item]) -> Any:
    """1 - cosine between each target's and each other's trigram vector (text items), as a
    ``len(targets) x len(others)`` array in [0, 1]; for many targets use :func:`closest_texts`,
    which never holds the whole matrix."""
    import numpy as np

    ensure_vectors([*targets, *others])
    if not targets or not others:
        return np.zeros((len(targets), len(others)), dtype=np.float32)
    left = np.stack([t.vector for t in targets])
    right = np.stack([o.vector for o in others])
    return np.clip(1.0 - left @ right.T, 0.0, 1.0)


def closest_texts(targets: Sequence[Item], others: Sequence[Item]) -> list[tuple[int, float]]:
    """For each text target, the index in ``others`` of its nearest text and the distance; (-1,
    1.0) when ``others`` is empty. Memory stays bounded: targets go
    :data:`TEXT_ROWS_PER_CHUNK` at a time, each chunk one matrix product."""
    import numpy as np

    if not others:
        return [(-1, 1.0)] * len(targets)
    ensure_vectors(others)
    right = np.stack([o.vector for o in others]).T
    found: list[tuple[int, float]] = []
    for start in range(0, len(targets), TEXT_ROWS_PER_CHUNK):
        chunk = targets[start : start + TEXT_ROWS_PER_CHUNK]
        ensure_vectors(chunk)
        similarity = np.stack([t.vector for t in chunk]) @ right
        best = similarity.argmax(axis=1)
        for index, value in zip(best, similarity[np.arange(len(chunk)), best], strict=True):
            found.append((int(index), float(min(1.0, max(0.0, 1.0 - value)))))
    return found


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
    if not target.scores and is_text(target):
        # By text alone: every text candidate in one matrix product.
        texts = [c for c in candidates if is_text(c) and c.sha256 != target.sha256]
        gaps = text_distances([target], texts)[0] if texts else []
        found = [Neighbour(c, float(gap), "text") for c, gap in zip(texts, gaps, strict=True)]
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
