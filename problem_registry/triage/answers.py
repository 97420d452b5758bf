"""The champion's and the latest candidate's answers on queued cases: replayed once, cached.

Each (version, input content) is predicted at most once, through the replay's own machinery
(a worker process per version, :mod:`problem_registry.replay.workers`; rows made by
:func:`~problem_registry.replay.results.result_row`, so a NUL, a lone surrogate or an unusable
output is stored as the replay stores it), and kept in ``triage_answer``. A version that cannot
load is reported, never raised: the queue is ranked without its disagreement.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import col, select

from problem_registry.adapters import ModelOutputError, ModelUnavailable
from problem_registry.enums import LoaderKind, PatternKind
from problem_registry.errors import CorruptPattern, ModelNotFound
from problem_registry.refs import format_ref
from problem_registry.replay.results import COLUMNS, result_row
from problem_registry.replay.workers import LoadSpec, ModelRaised, WorkerPool
from problem_registry.store.content import decode
from problem_registry.store.registry import Registry, insert_ignoring_conflicts
from problem_registry.store.tables import ModelVersion, TriageAnswer
from problem_registry.store.views import ModelVersionView
from problem_registry.triage.cases import chunks
from problem_registry.triage.ingest import prefetch_contents, read_content

BATCH = 256
TIMEOUT_SECONDS = 300.0
_FIELDS = {name: COLUMNS.index(name) for name in ("predicted", "confidence", "error", "scores")}


@dataclass(frozen=True)
class Pair:
    """The versions a model name's cases are judged between: its champion and latest other."""

    model: str
    champion: str
    candidate: str


@dataclass
class Replayed:
    predicted: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)  # ref -> reason


def pairs(registry: Registry, names: Sequence[str]) -> dict[str, Pair]:
    """For each model name, its champion and the latest version registered that is not it."""
    found: dict[str, Pair] = {}
    for name in sorted(set(names)):
        views = versions_of(registry, name)
        champion = next((v for v in views if v.is_champion), None)
        others = [v for v in views if not v.is_champion]
        if champion is not None and others:
            found[name] = Pair(name, champion.ref, others[-1].ref)
    return found


def versions_of(registry: Registry, name: str) -> list[ModelVersionView]:
    """A model name's versions in registration order; none for a name never registered (a
    production batch may name a model the registry does not hold)."""
    try:
        return registry.models.list(name)
    except ModelNotFound:
        return []


def cached(
    registry: Registry, refs: Sequence[str], shas: Sequence[str]
) -> dict[tuple[str, str], str | None]:
    """(ref, sha256) -> the stored answer (None: the model raised) for what is cached."""
    ids = _version_ids(registry, refs)
    names = {v: r for r, v in ids.items()}
    answers: dict[tuple[str, str], str | None] = {}
    with registry.reading() as session:
        for chunk in chunks(list(shas)):
            query = select(
                TriageAnswer.model_version_id, TriageAnswer.sha256, TriageAnswer.predicted
            ).where(
                col(TriageAnswer.model_version_id).in_(list(names)),
                col(TriageAnswer.sha256).in_(chunk),
            )
            for version_id, sha, predicted in session.exec(query):
                answers[(names[version_id], sha)] = predicted
    return answers


def replay_cases(
    registry: Registry, refs: Sequence[str], inputs: dict[str, tuple[str, str]]
) -> Replayed:
    """Predict every (version in ``refs``, input) not yet cached; ``inputs``: sha256 ->
    (kind, extension)."""
    done = Replayed()
    have = cached(registry, refs, list(inputs))
    ids = _version_ids(registry, refs)
    pool = WorkerPool(1)
    try:
        for ref in refs:
            todo = sorted(sha for sha in inputs if (ref, sha) not in have)
            if todo:
                _replay_one(registry, pool, ref, ids[ref], todo, inputs, done)
    finally:
        pool.close()
    return done


def _replay_one(
    registry: Registry,
    pool: WorkerPool,
    ref: str,
    version_id: int,
    todo: list[str],
    inputs: dict[str, tuple[str, str]],
    done: Replayed,
) -> None:
    with registry.reading() as session:
        row = session.exec(select(ModelVersion).where(ModelVersion.id == version_id)).one()
    if row.loader_kind == LoaderKind.predictions.value:
        done.unavailable[ref] = "a predictions file answers only the patterns it lists"
        return
    spec = LoadSpec(
        ref,
        row.loader_kind,
        row.loader,
        row.artifact_path,
        row.artifact_sha256,
        row.loader_options,
    )
    try:
        pool.begin_load(spec)
        worker = pool.finish_load(ref)
    except ModelUnavailable as exc:
        done.unavailable[ref] = str(exc)
        return
    try:
        for start in range(0, len(todo), BATCH):
            batch = todo[start : start + BATCH]
            prefetch_contents(registry, [(sha, inputs[sha][1]) for sha in batch])
            chunk, decoded = [], []
            for sha in batch:
                kind, extension = inputs[sha]
                try:
                    decoded.append(
                        decode(read_content(registry, sha, extension), PatternKind(kind))
                    )
                except (CorruptPattern, OSError, ValueError):
                    continue  # a missing or unreadable input: no answer, nothing to compare
                chunk.append(sha)
            if not chunk:
                continue
            try:
                answer = worker.predict(pickle.dumps(decoded), chunk, len(chunk), TIMEOUT_SECONDS)
                outputs: list[object] = list(answer.outputs)
            except ModelRaised:
                outputs = []
                for sha, item in zip(chunk, decoded, strict=True):
                    try:
                        outputs.append(
                            worker.predict(pickle.dumps([item]), [sha], 1, TIMEOUT_SECONDS).outputs[
                                0
                            ]
                        )
                    except ModelRaised as exc:
                        outputs.append(exc)
            _store(registry, version_id, chunk, outputs)
            done.predicted += len(chunk)
    except (ModelUnavailable, ModelOutputError) as exc:
        done.unavailable[ref] = str(exc)
        pool.discard(ref)
    else:
        pool.release(ref)


def _store(registry: Registry, version_id: int, shas: list[str], outputs: list[object]) -> None:
    rows = []
    for sha, output in zip(shas, outputs, strict=True):
        made = result_row(version_id, 0, output, 0.0, 0)
        rows.append(
            {
                "model_version_id": version_id,
                "sha256": sha,
                **{name: made[index] for name, index in _FIELDS.items()},
            }
        )
    with registry.writing() as session:
        insert_ignoring_conflicts(session, TriageAnswer, rows, ["model_version_id", "sha256"])


def _version_ids(registry: Registry, refs: Sequence[str]) -> dict[str, int]:
    table = ModelVersion.__table__  # type: ignore[attr-defined]
    with registry.reading() as session:
        rows = session.execute(sa.select(table.c.id, table.c.name, table.c.version)).all()
    by_ref = {format_ref(name, version): version_id for version_id, name, version in rows}
    return {ref: by_ref[ref] for ref in refs if ref in by_ref}
