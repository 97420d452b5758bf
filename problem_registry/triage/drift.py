"""The drift signal: has what a version answers in production moved?

A batch's answers become two distributions, the share of each predicted label and the share of
answers in each confidence band, compared with a reference by the population stability index,
PSI = sum over bins of (cur - ref) * ln(cur / ref), shares smoothed by half a count so an empty
bin is finite. The usual reading (Siddiqi, *Credit Risk Scorecards*, 2006): under 0.10 stable,
0.10-0.25 a moderate shift worth a look, 0.25 and over a real shift.

Small batches make PSI noisy on their own: with ``k`` bins and ``n``, ``m`` answers, sampling
alone gives PSI of about (k - 1)(1/n + 1/m) on average (n x m / (n + m) x PSI is roughly
chi-square with k - 1 degrees of freedom when nothing moved). So a shift is only called when its
PSI is also above that chi-square's 99th percentile scaled the same way (:func:`noise_level`);
and when even that level is over 0.25, the verdict is "too few answers to tell" (docs/triage.md).

References: an earlier ingested batch of the same version, and the registry's own replay of the
version (its stored answers on every pattern: hand-picked hard cases, so a difference there says
"production does not look like your patterns" rather than "production moved").
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from problem_registry.refs import ModelRef
from problem_registry.store.registry import Registry
from problem_registry.store.tables import (
    ModelVersion,
    Pattern,
    Result,
    TriageBatch,
    TriageCase,
)
from problem_registry.triage.batch_file import read_batch

STABLE_BELOW = 0.10
DRIFT_FROM = 0.25
CONFIDENCE_BANDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
SMOOTHING = 0.5  # counts added to every bin
Z_99 = 2.3263


@dataclass(frozen=True)
class Answers:
    """What one population of answers holds: a name for people, labels and confidences."""

    name: str
    labels: Counter[str]
    confidences: tuple[float, ...] = ()

    @property
    def size(self) -> int:
        return sum(self.labels.values())

    def bands(self) -> Counter[str]:
        return Counter(band_of(c) for c in self.confidences)


@dataclass(frozen=True)
class BinShift:
    bin: str
    reference: float  # share, unsmoothed
    current: float
    psi: float  # this bin's term


@dataclass
class Comparison:
    """One population against a reference: PSI per label and per confidence band, a verdict."""

    version: str
    reference: str
    current: str
    reference_size: int
    current_size: int
    labels: list[BinShift]
    label_psi: float
    label_noise: float
    confidence: list[BinShift] = field(default_factory=list)
    confidence_psi: float | None = None
    confidence_noise: float | None = None

    @property
    def verdict(self) -> str:
        """``drifted``, ``shifted``, ``stable`` or ``too few answers``: the worse of the label
        and the confidence reading."""
        readings = [_reading(self.label_psi, self.label_noise)]
        if self.confidence_psi is not None and self.confidence_noise is not None:
            readings.append(_reading(self.confidence_psi, self.confidence_noise))
        order = ["drifted", "shifted", "too few answers", "stable"]
        return min(readings, key=order.index)

    def sentence(self) -> str:
        """The plain-language line a lead can paste."""
        head = (
            f"{self.version}: {self.current} ({self.current_size} answers) against "
            f"{self.reference} ({self.reference_size}): "
        )
        verdict = self.verdict
        psi = f"label PSI {self.label_psi:.2f}"
        if self.confidence_psi is not None:
            psi += f", confidence PSI {self.confidence_psi:.2f}"
        noise = f"sampling alone reaches {self.label_noise:.2f}"
        if verdict == "too few answers":
            return f"{head}too few answers to tell ({psi}; {noise}, over {DRIFT_FROM})."
        if verdict == "stable":
            return f"{head}stable ({psi}; under {STABLE_BELOW} or within what sampling gives)."
        word = "drifted" if verdict == "drifted" else "shifted a little, worth a look"
        moved = sorted(self.labels, key=lambda b: -b.psi)[:2]
        detail = ", ".join(
            f"{b.bin!r} went from {b.reference:.0%} to {b.current:.0%} of answers" for b in moved
        )
        return f"{head}{word} ({psi}; {noise}): {detail}."

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "reference": self.reference,
            "current": self.current,
            "reference_size": self.reference_size,
            "current_size": self.current_size,
            "label_psi": round(self.label_psi, 4),
            "label_noise": round(self.label_noise, 4),
            "confidence_psi": None
            if self.confidence_psi is None
            else round(self.confidence_psi, 4),
            "verdict": self.verdict,
            "sentence": self.sentence(),
            "labels": [
                {
                    "label": b.bin,
                    "reference": round(b.reference, 4),
                    "current": round(b.current, 4),
                    "psi": round(b.psi, 4),
                }
                for b in self.labels
            ],
            "confidence": [
                {
                    "band": b.bin,
                    "reference": round(b.reference, 4),
                    "current": round(b.current, 4),
                    "psi": round(b.psi, 4),
                }
                for b in self.confidence
            ],
        }


def _reading(psi: float, noise: float) -> str:
    if noise >= DRIFT_FROM:
        return "too few answers"
    if psi >= DRIFT_FROM and psi > noise:
        return "drifted"
    if psi >= STABLE_BELOW and psi > noise:
        return "shifted"
    return "stable"


def band_of(confidence: float) -> str:
    for low, high in itertools.pairwise(CONFIDENCE_BANDS):
        if confidence < high:
            return f"{low:.2f}-{high:.2f}"
    return f"{CONFIDENCE_BANDS[-2]:.2f}-{CONFIDENCE_BANDS[-1]:.2f}"


def psi_terms(reference: Counter[str], current: Counter[str]) -> list[BinShift]:
    """Each bin's PSI term, bins in sorted order; shares smoothed by :data:`SMOOTHING`."""
    bins = sorted(set(reference) | set(current))
    n_ref, n_cur = sum(reference.values()), sum(current.values())
    smooth_ref = n_ref + SMOOTHING * len(bins)
    smooth_cur = n_cur + SMOOTHING * len(bins)
    terms = []
    for name in bins:
        p = (reference[name] + SMOOTHING) / smooth_ref
        q = (current[name] + SMOOTHING) / smooth_cur
        terms.append(
            BinShift(
                name,
                reference[name] / n_ref if n_ref else 0.0,
                current[name] / n_cur if n_cur else 0.0,
                (q - p) * math.log(q / p),
            )
        )
    return terms


def noise_level(bins: int, n: int, m: int) -> float:
    """The PSI that sampling alone stays under 99 times in 100 when nothing moved."""
    if n == 0 or m == 0:
        return math.inf
    k = max(1, bins - 1)
    # Wilson-Hilferty: the chi-square quantile without scipy.
    quantile = k * (1 - 2 / (9 * k) + Z_99 * math.sqrt(2 / (9 * k))) ** 3
    return quantile * (1 / n + 1 / m)


def compare(version: str, reference: Answers, current: Answers) -> Comparison:
    labels = psi_terms(reference.labels, current.labels)
    comparison = Comparison(
        version,
        reference.name,
        current.name,
        reference.size,
        current.size,
        labels,
        sum(b.psi for b in labels),
        noise_level(len(labels), reference.size, current.size),
    )
    if reference.confidences and current.confidences:
        bands = psi_terms(reference.bands(), current.bands())
        comparison.confidence = bands
        comparison.confidence_psi = sum(b.psi for b in bands)
        comparison.confidence_noise = noise_level(
            len(bands), len(reference.confidences), len(current.confidences)
        )
    return comparison


def answers_of(name: str, rows: Iterable[tuple[str, float | None]]) -> Answers:
    labels: Counter[str] = Counter()
    confidences: list[float] = []
    for label, confidence in rows:
        labels[label] += 1
        if confidence is not None:
            confidences.append(confidence)
    return Answers(name, labels, tuple(confidences))


@dataclass
class DriftReport:
    file: str
    comparisons: list[Comparison]
    notes: list[str] = field(default_factory=list)  # references that could not be made

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "notes": self.notes,
        }


def drift(registry: Registry, path: Path, *, against_batch: int | None = None) -> DriftReport:
    """Compare the batch file's answers, per version, with an earlier ingested batch (the latest
    other than this file's, or ``against_batch``) and with the registry's replay of the version."""
    rows = read_batch(path, inputs=True)
    keys = {row.key for row in rows}
    report = DriftReport(str(path), [])
    for version in sorted({row.model for row in rows}):
        mine = [(r.predicted, r.confidence) for r in rows if r.model == version]
        current = answers_of(f"file {path.name}", mine)
        earlier = _earlier_batch(registry, version, keys, against_batch)
        if earlier is None:
            report.notes.append(f"{version}: no earlier batch of this version was ingested")
        else:
            report.comparisons.append(compare(version, earlier, current))
        replayed = _replayed(registry, version)
        if replayed is None:
            report.notes.append(f"{version}: the registry holds no replay of this version")
        else:
            report.comparisons.append(compare(version, replayed, current))
    return report


def _earlier_batch(
    registry: Registry, version: str, keys: set[str], wanted: int | None
) -> Answers | None:
    cases = TriageCase.__table__  # type: ignore[attr-defined]
    batches = TriageBatch.__table__  # type: ignore[attr-defined]
    with registry.reading() as session:
        query = (
            sa.select(cases.c.batch_id, cases.c.key, cases.c.predicted, cases.c.confidence)
            .where(cases.c.model == version)
            .order_by(cases.c.batch_id)
        )
        if wanted is not None:
            query = query.where(cases.c.batch_id == wanted)
        rows = session.execute(query).all()
        names = dict(session.execute(sa.select(batches.c.id, batches.c.name)).all())
    by_batch: dict[int, list[tuple[str, float | None, str]]] = {}
    for batch_id, key, predicted, confidence in rows:
        by_batch.setdefault(batch_id, []).append((predicted, confidence, key))
    # This file's own batch (most of its keys) is not "earlier": take the latest other one.
    others = [
        b for b, found in by_batch.items() if sum(k in keys for *_, k in found) * 2 < len(found)
    ]
    if wanted is not None:
        others = list(by_batch)
    if not others:
        return None
    chosen = max(others)
    return answers_of(
        f"batch {chosen} ({names.get(chosen, '')})", [(p, c) for p, c, _ in by_batch[chosen]]
    )


def _replayed(registry: Registry, version: str) -> Answers | None:
    ref = ModelRef.parse(version)
    versions = ModelVersion.__table__  # type: ignore[attr-defined]
    results = Result.__table__  # type: ignore[attr-defined]
    patterns = Pattern.__table__  # type: ignore[attr-defined]
    with registry.reading() as session:
        version_id = session.execute(
            sa.select(versions.c.id).where(
                versions.c.name == ref.name, versions.c.version == ref.version
            )
        ).scalar()
        if version_id is None:
            return None
        used = sa.select(patterns.c.file_id).distinct()
        rows: Sequence[Any] = session.execute(
            sa.select(results.c.predicted, results.c.confidence).where(
                results.c.model_version_id == version_id,
                results.c.predicted.is_not(None),
                results.c.file_id.in_(used),
            )
        ).all()
    if not rows:
        return None
    return answers_of(f"the registry's replay of {version}", [(p, c) for p, c in rows])


def queue_drift(registry: Registry) -> list[Comparison]:
    """Per version, its latest ingested batch against the one before (the drift "on the queue")."""
    cases = TriageCase.__table__  # type: ignore[attr-defined]
    batches = TriageBatch.__table__  # type: ignore[attr-defined]
    with registry.reading() as session:
        rows = session.execute(
            sa.select(cases.c.model, cases.c.batch_id, cases.c.predicted, cases.c.confidence)
        ).all()
        names = dict(session.execute(sa.select(batches.c.id, batches.c.name)).all())
    grouped: dict[str, dict[int, list[tuple[str, float | None]]]] = {}
    for model, batch_id, predicted, confidence in rows:
        grouped.setdefault(model, {}).setdefault(batch_id, []).append((predicted, confidence))
    found = []
    for model, by_batch in sorted(grouped.items()):
        if len(by_batch) < 2:
            continue
        *_, before, latest = sorted(by_batch)
        found.append(
            compare(
                model,
                answers_of(f"batch {before} ({names.get(before, '')})", by_batch[before]),
                answers_of(f"batch {latest} ({names.get(latest, '')})", by_batch[latest]),
            )
        )
    return found
