"""Text cases against failing text patterns: trigram vectors and matrix products vs difflib pairs.

The triage queue compares every queued text case with every failing text pattern of its version
(``near-failures``). Issue 20 did it pair by pair with ``difflib.SequenceMatcher``; now each text
becomes a vector of hashed trigram counts and a chunk of cases meets every pattern in one matrix
product (``triage.similarity.closest_texts``). Texts are English sentences (the standard
library's docstrings) and edited copies of them, so some cases are near a pattern and most are
not::

    python benchmarks/text_similarity.py --cases 20000 --patterns 500 --json-out text.json

Printed side by side: the new way (vectors made and compared, end to end); its floor, the one
matrix product of vectors already made (the arithmetic no method that compares every pair can
skip); and the old way, difflib on ``--old-cases`` cases against every pattern, scaled linearly to
``--cases`` (each case costs the same pairs, so the scaling is exact up to noise; ``--old-cases``
equal to ``--cases`` times it all). On those cases it also says how often both ways agree on "near"
(difflib's 0.15, the trigrams' ``NEAR_TEXT``), and, for the cases difflib calls near, on which
pattern is nearest (for the others, the nearest of many unrelated sentences is arbitrary).
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import os
import random
import re
import time
from pathlib import Path

from problem_registry.triage.queue import NEAR_TEXT
from problem_registry.triage.similarity import Item, closest_texts, text_vectors

OLD_NEAR = 0.15


def corpus() -> list[str]:
    """Sentences of 40-400 characters from the docstrings of a few standard modules."""
    import collections
    import email.message
    import http.client
    import json as json_module
    import pathlib
    import shutil
    import subprocess
    import tarfile

    sentences: set[str] = set()
    for module in (
        collections, email.message, http.client, json_module, pathlib, shutil, subprocess,
        tarfile, difflib, inspect, random, re, argparse,
    ):  # fmt: skip
        for _name, member in inspect.getmembers(module):
            doc = inspect.getdoc(member)
            for sentence in re.split(r"(?<=[.!?])\s+", (doc or "").replace("\n", " ")):
                if 40 < len(sentence.strip()) < 400:
                    sentences.add(sentence.strip())
    return sorted(sentences)


def texts(count: int, patterns: list[str], pool: list[str], rng: random.Random) -> list[str]:
    """A third edited copies of a pattern (a few characters or words changed), the rest other
    sentences, some lightly edited too."""
    out = []
    for n in range(count):
        base = rng.choice(patterns) if n % 3 == 0 else rng.choice(pool)
        chars = list(base)
        for _ in range(int(len(chars) * rng.uniform(0.0, 0.2))):
            chars[rng.randrange(len(chars))] = rng.choice("abcdefghijklmnopqrstuvwxyz ")
        out.append("".join(chars))
    return out


def items(values: list[str], kind: str) -> list[Item]:
    return [
        Item(kind, n, f"{n:064x}", "txt", "text", "", fingerprint=text)
        for n, text in enumerate(values)
    ]


def old_closest(case: str, patterns: list[str]) -> tuple[int, float]:
    """What the queue did before: every pair through difflib, the least distance kept."""
    best, gap = -1, 1.0
    for index, pattern in enumerate(patterns):
        distance = 1.0 - difflib.SequenceMatcher(None, case, pattern).ratio()
        if best < 0 or distance < gap:
            best, gap = index, distance
    return best, gap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--patterns", type=int, default=500)
    parser.add_argument("--old-cases", type=int, default=100, help="cases difflib times")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    pool = corpus()
    failing = texts(args.patterns, pool, pool, rng)
    cases = texts(args.cases, failing, pool, rng)

    started = time.perf_counter()
    new = closest_texts(items(cases, "case"), items(failing, "pattern"))
    new_seconds = time.perf_counter() - started

    left, right = text_vectors(cases), text_vectors(failing)
    started = time.perf_counter()
    floor_product = left @ right.T
    floor_seconds = time.perf_counter() - started
    del floor_product, left

    sample = min(args.old_cases, args.cases)
    started = time.perf_counter()
    old = [old_closest(case, failing) for case in cases[:sample]]
    old_sample_seconds = time.perf_counter() - started
    old_seconds = old_sample_seconds * args.cases / max(1, sample)

    related = [(o, n) for o, n in zip(old, new, strict=False) if o[1] <= OLD_NEAR]
    same_nearest = sum(o[0] == n[0] for o, n in related) / max(1, len(related))
    same_near = sum(
        (o[1] <= OLD_NEAR) == (n[1] <= NEAR_TEXT) for o, n in zip(old, new, strict=False)
    ) / max(1, sample)
    near_new = sum(gap <= NEAR_TEXT for _, gap in new)
    load = os.getloadavg()[0]
    print(
        f"{args.cases:,} text cases x {args.patterns:,} failing text patterns "
        f"(load average {load:.1f})"
    )
    print(f"  new: trigram vectors + chunked products  {new_seconds:9.2f} s")
    print(f"  floor: one product of ready vectors      {floor_seconds:9.2f} s")
    scaled = "" if sample == args.cases else f" (difflib on {sample:,} cases, scaled)"
    print(f"  old: difflib, pair by pair               {old_seconds:9.2f} s{scaled}")
    print(f"  old / new: {old_seconds / new_seconds:,.0f}x; new / floor: "
          f"{new_seconds / max(floor_seconds, 1e-9):.1f}x")  # fmt: skip
    print(
        f"  on the {sample:,} cases both measured: same near/not-near call {same_near:.0%}; "
        f"same nearest pattern for {same_nearest:.0%} of the {len(related)} near by difflib; "
        f"{near_new:,} of {args.cases:,} cases near by trigrams"
    )
    if args.json_out:
        document = {
            "benchmark": "text_similarity",
            "cases": args.cases,
            "patterns": args.patterns,
            "load_average": round(load, 2),
            "new_seconds": round(new_seconds, 3),
            "floor_seconds": round(floor_seconds, 3),
            "old_seconds": round(old_seconds, 3),
            "old_measured_cases": sample,
            "old_measured_seconds": round(old_sample_seconds, 3),
            "speedup": round(old_seconds / new_seconds, 1),
            "same_nearest_of_near": round(same_nearest, 4),
            "near_by_difflib_measured": len(related),
            "same_near_call": round(same_near, 4),
            "near_cases": near_new,
            "near_text_threshold": NEAR_TEXT,
        }
        args.json_out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
