"""Replay: predict exactly the (model version, pattern file) pairs the registry has no result for.

A result is keyed by the version and the pattern *content*, and correctness is derived later from
the current expectation, so a stored result is a cache you never need to invalidate: a replay
only ever adds the missing pairs, and a replay with nothing missing loads no model and reads no
pattern file. The API the CLI and the pytest plugin call::

    summary = replay(registry)                                   # every version, all problems
    summary = replay(registry, versions=[], candidate="digits@v3")  # the candidate only
    summary = replay(registry, versions=prior_versions(registry, "digits@v3"),  # selection.py
                     candidate="digits@v3", trigger="pytest", progress=callback)
    summary.unavailable   # prior versions whose loader no longer works: reported, never raised

How it streams, so memory does not grow with the number of results (1.5 M at full scale):

1. Each version's stored results are counted first (a range scan of ``result``'s primary key):
   a complete version needs nothing, a version with no result at all needs every file (no
   anti-join), and only a partly replayed one has its missing pairs found in SQL, by an anti-join
   of its versions x files against ``result``, one chunk of files at a time.
2. Versions are replayed a group of ``jobs`` at a time (the candidate's first, so a candidate
   that cannot load fails before any history is replayed); within a group, files with
   something missing are visited in chunks of ``batch_size``, each chunk read, hash-checked and
   decoded once for every version of the group. Each worker holds one model, and drops it
   before loading the next, and there are at most ``MAX_LOADED_MODELS`` workers (a group and
   the spare ones loading the next), so memory does not grow with the number of versions.
   Decoded inputs are kept across groups when at most ``KEPT_INPUTS`` files are replayed, else
   decoded again per group.
3. Each version gets one batch call per chunk. A batch that raises is retried input by input, so
   one bad input only marks its own pattern as errored (counted wrong). An output that is an
   ``Exception`` instance marks that input as errored too. Chunks are pipelined: every worker
   of the group is sent its batch at once, and while they predict, this process decodes the
   next chunk and stores the last, so a fast model or a model server (issue 18) never waits on
   replay's own reading and writing; the next batch is sent before the last is collected, so a
   worker goes from one to the next without waiting for this process (issue 17). The next
   group is claimed and loaded on spare workers while one predicts: no barrier between groups.
4. Results are stored as plain tuples by one ``executemany`` per flush (see
   :mod:`problem_registry.replay.results`) with ``ON CONFLICT DO NOTHING``, committed every few
   thousand rows, so an interrupted replay resumes where it stopped and two runners replaying
   the same version at once store each pair once.

Python models run in worker processes (:mod:`problem_registry.replay.workers`, issue 16): each
chunk is decoded once here and sent pickled, so every call unpickles its own fresh inputs and a
model that edits them edits only its copy. A version whose worker dies (an exit, a segfault), hangs
past ``batch_timeout`` or breaks the batch contract (the wrong number of outputs, an unreadable
array) is *broken*: a prior version is reported in
``summary.unavailable`` and skipped while the others go on; the candidate fails the replay with
the reason. What a broken version answered before is kept. A predictions file runs no model code
and is read in this process.

Pattern files missing or altered on disk are refused (reported in ``summary.refused``, never
scored). Every replay records a :class:`~problem_registry.store.tables.Run` (or adds to the one
the caller passes as ``run_id``); a Run left ``running`` by a process killed outright is marked
``interrupted`` by the next replay. No typer, rich or pytest here: progress goes to a callback.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from problem_registry.adapters import LoadedModel, ModelOutputError, ModelUnavailable, load_model
from problem_registry.enums import LoaderKind, PatternKind, RunStatus
from problem_registry.errors import CorruptPattern
from problem_registry.refs import ModelRef, RefLike
from problem_registry.replay.calls import call_model
from problem_registry.replay.claims import Claims, block_of, lease_seconds
from problem_registry.replay.missing import (
    ActiveFile,
    active_files,
    count_active_files,
    files_with_missing,
    missing_pairs,
    pattern_names,
    stored_counts,
    stored_in_range,
)
from problem_registry.replay.results import (
    COLUMNS,
    Row,
    error_line,
    insert_repeats,
    insert_results,
    is_error,
    repeat_row,
    result_row,
)
from problem_registry.replay.scopes import replay_scopes
from problem_registry.replay.selection import (
    ReplayVersion,
    problem_ids_of,
    resolve_versions,
)
from problem_registry.replay.shards import Shard
from problem_registry.replay.summary import (
    ProgressCallback,
    RefusedPattern,
    ReplayProgress,
    ReplaySummary,
    VersionReplay,
)
from problem_registry.replay.workers import (
    Answer,
    LoadSpec,
    ModelRaised,
    ModelWorker,
    WorkerPool,
)
from problem_registry.store.content import decode
from problem_registry.store.engines import held_open
from problem_registry.store.registry import Registry
from problem_registry.store.runs import close_abandoned_runs, finish_run, record_counts, start_run

DEFAULT_BATCH_SIZE = 256
FLUSH_ROWS = 4096  # results per commit: bounded memory, and little lost to an interruption
# Models held at once. Versions are replayed a group at a time, so memory does not grow with the
# number of versions (100 versions of a 1 GB model would not fit); each group reads the files.
MAX_LOADED_MODELS = 8
# Decoded inputs kept for the next group when at most this many files are replayed (adding one
# problem and replaying every version: 15 files, decoded once). More are decoded once per group.
KEPT_INPUTS = 4096


@dataclass
class _Batch:
    """One version's share of a chunk, from :meth:`_Replay._prepare` to :meth:`_Replay._store`."""

    version_id: int
    model: LoadedModel | ModelWorker
    files: list[ActiveFile]
    inputs: dict[int, Any]  # decoded inputs of the chunk, by file id (for one-by-one retries)
    payload: bytes | None = None  # the pickled batch a worker is sent
    answers: list[tuple[Any, float]] | None = None  # (output, latency ms), once collected
    repeats: list[list[tuple[Any, float]]] = field(default_factory=list)  # answers 2, 3...
    dead: bool = False  # its version broke: nothing to store


@dataclass(frozen=True)
class _Group:
    """Versions predicting at once (``--jobs``): the blocks each claimed, those with no result
    in them yet, and where in the replay's order the next group starts."""

    versions: list[int]
    held: dict[int, set[int]]
    after: int
    empty: set[int]


def replay(
    registry: Registry,
    versions: Iterable[RefLike] | None = None,
    *,
    candidate: RefLike | None = None,
    problems: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressCallback | None = None,
    trigger: str = "api",
    triggered_by: str | None = None,
    run_id: int | None = None,
    git_commit: str | None = None,
    batch_timeout: float | None = None,
    retry_errored: bool = False,
    shard: Shard | None = None,
    jobs: int | None = None,
) -> ReplaySummary:
    """Predict every missing (version, pattern file) pair; return what was done.

    Concurrent replays share the work (issue 17, :mod:`~problem_registry.replay.claims`): each
    predicts only the (version, block of files) it claimed, then waits for the others' claims to
    end, so N runners predict each pair once. ``shard``: only that share of the pattern files
    (:mod:`~problem_registry.replay.shards`), for a CI matrix. ``jobs``: how many versions
    predict at once, each in its worker process (default: :func:`default_jobs`; at most
    ``MAX_LOADED_MODELS`` models are held at once whatever it is).

    ``versions``: refs (``"NAME@VERSION"`` or ``(name, version)``) to bring up to date; ``None``
    means every registered version. ``candidate`` is replayed too and is the one version that must
    load: if it cannot, :class:`~problem_registry.adapters.ModelUnavailable` is raised (any other
    version that cannot load is only reported in ``summary.unavailable``). ``problems`` restricts
    the replay to those slugs' patterns. ``run_id``: add to a Run the caller opened with
    :func:`start_run` (and will close with :func:`finish_run`) instead of recording a new one.

    ``batch_timeout``: seconds one model call may take, counted from when its batch is sent, or
    (sent while the version's previous batch was predicting) from when that one's answer was
    read; the versions of a group predict at once, so they share the cores. A version that exceeds
    it has its worker
    process killed, and is reported in ``summary.unavailable`` (the candidate: raised as
    :class:`~problem_registry.replay.calls.BatchTimeout`); what it answered before is kept.
    ``None``: no limit. Loading a version is not limited.

    ``retry_errored``: a stored result that is an error (the model raised, say before its loader
    was fixed) counts as missing and is replaced by the new answer; a version that still cannot
    load keeps its errored results.

    A prior version that breaks (see the module's note) is reported the same way; the candidate
    breaking raises :class:`~problem_registry.adapters.ModelUnavailable` (its worker died: a
    :class:`~problem_registry.replay.workers.ModelCrashed`) or
    :class:`~problem_registry.adapters.ModelOutputError`, with a one-line reason naming it.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if batch_timeout is not None and batch_timeout <= 0:
        raise ValueError(f"batch_timeout must be positive, got {batch_timeout}")
    started = time.perf_counter()
    claims = Claims(registry, lease_seconds())  # a bad $PROBLEM_REGISTRY_LEASE_SECONDS: no Run
    selected, candidate_version = resolve_versions(registry, versions, candidate)
    own_run = run_id is None
    close_abandoned_runs(registry)
    if run_id is None:
        run_id = start_run(
            registry,
            trigger=trigger,
            triggered_by=triggered_by,
            candidate=ModelRef(candidate_version.name, candidate_version.version)
            if candidate_version
            else None,
            git_commit=git_commit,
        )
    group = min(jobs or default_jobs(), MAX_LOADED_MODELS)
    engine = _Replay(
        registry, selected, candidate_version, batch_size, progress, run_id, group, claims
    )
    engine.batch_timeout = batch_timeout
    engine.retry_errored = retry_errored
    engine.shard = shard
    status, message = RunStatus.completed, ""
    held = contextlib.ExitStack()  # SQLite: no WAL checkpoint at every session's end (#18)
    held.enter_context(held_open(registry.engine))
    try:
        problem_ids = problem_ids_of(registry, problems)
        with registry.reading() as session:  # a problem naming its models: theirs only (#19)
            scopes = replay_scopes(session, {v.id: v.name for v in selected}, problem_ids)
        for scope_versions, scope_problems in scopes:
            engine.run(scope_problems, scope_versions)
    except KeyboardInterrupt:
        status, message = RunStatus.interrupted, "interrupted; re-run to resume"
        raise
    except BaseException as exc:
        status, message = RunStatus.failed, str(exc) or type(exc).__name__
        raise
    finally:
        engine.pool.close()  # no worker outlives the replay, a hung one included
        engine.claims.close()  # unfinished work goes back to the other runners at once
        if status is not RunStatus.completed:
            # Keep what was predicted before the interruption; the next replay resumes after it.
            with contextlib.suppress(Exception):
                engine.flush()
        summary = engine.summary(run_id, status.value, time.perf_counter() - started)
        if not message and (summary.unavailable or summary.refused):
            message = summary.problems()
        counts = {"predicted": summary.predicted, "reused": summary.reused}
        counts["errored"] = summary.errored
        if own_run:
            finish_run(registry, run_id, status=status.value, message=message, **counts)
        else:
            record_counts(registry, run_id, **counts)
        held.close()
    return summary


class _Replay:
    """One replay's state: loaded models, counts, refusals. Used once, by :func:`replay`."""

    def __init__(
        self,
        registry: Registry,
        versions: list[ReplayVersion],
        candidate: ReplayVersion | None,
        batch_size: int,
        progress: ProgressCallback | None,
        run_id: int,
        group_size: int = MAX_LOADED_MODELS,
        claims: Claims | None = None,
    ) -> None:
        self.registry = registry
        self.group_size = group_size  # versions predicting at once: --jobs
        self.versions = {v.id: v for v in versions}
        self.candidate = candidate
        self.batch_size = batch_size
        self.progress = progress
        self.run_id = run_id
        self.outcomes = {v.id: VersionReplay(v.ref, v.name, v.version) for v in versions}
        # A version's model: in this process (a predictions file), hosted by a worker process,
        # or None once it is unavailable or broken.
        self.models: dict[int, LoadedModel | ModelWorker | None] = {}
        # Spare workers load the next group while this one predicts, within the models' cap.
        self.spare = min(group_size, MAX_LOADED_MODELS - group_size)
        self.pool = WorkerPool(group_size + self.spare)
        self.loading: set[int] = set()  # versions whose worker was asked to load them
        self.refused: dict[int, RefusedPattern] = {}
        self.pending: list[Row] = []
        self.pending_repeats: list[Row] = []
        self.empty: set[int] = set()  # versions without any result: everything is missing
        self.keep_inputs = False
        self.kept: dict[int, Any] = {}  # decoded inputs kept across groups of versions
        self.payloads: dict[tuple[int, ...], bytes] = {}  # their pickled batches, likewise
        self.reused = 0
        self.done = 0
        self.total = 0
        self.batch_timeout: float | None = None
        self.retry_errored = False
        self.shard: Shard | None = None
        self.claims = claims or Claims(registry)

    # -- the plan ---------------------------------------------------------------------------

    def run(self, problem_ids: list[int] | None, version_ids: list[int] | None = None) -> None:
        """Replay ``version_ids`` (default: every version) on ``problem_ids`` (None: all): what
        this runner can claim; then, while other runners hold claims on missing work, wait for
        them to finish (or expire) and look again."""
        scope = list(self.versions) if version_ids is None else version_ids
        first_pass = True
        while True:
            self._pass(problem_ids, scope, first_pass)
            first_pass = False
            if not self.claims.deferred:
                return
            self.claims.wait_for_others(lambda: self._report(None))

    def _pass(self, problem_ids: list[int] | None, scope: list[int], first_pass: bool) -> None:
        shard = self.shard
        with self.registry.reading() as session:
            n_active = count_active_files(session, problem_ids, shard)
            retry = self.retry_errored
            # A version found broken in an earlier pass is not tried again.
            tried = [v for v in scope if self.outcomes[v].status != "unavailable"]
            counts = stored_counts(
                session, tried, n_active, problem_ids, retry_errored=retry, shard=shard
            )
            incomplete = [v for v in tried if counts[v] < n_active]
            # Nothing missing (a CI run with nothing new): not even the list of files is read.
            files = active_files(session, problem_ids, shard) if incomplete else []
            # A version with no result at all lacks every file: no anti-join needed to list the
            # files (this is every version of a cold replay).
            empty = {v for v in incomplete if counts[v] == 0}
            partial = [v for v in incomplete if v not in empty]
            todo, missing = files_with_missing(
                session, partial, problem_ids, retry_errored=retry, shard=shard
            )
        if empty:
            todo = [f.id for f in files]
        missing += len(empty) * n_active
        if first_pass:  # summed over the scopes of one replay (replay.scopes)
            self.total += missing
            self.reused += n_active * len(tried) - missing  # a broken version reuses nothing
        else:  # pairs left to other runners last pass and stored by them since: reused
            self.reused += max(self.total - self.done - missing, 0)
            self.total = self.done + missing
        self._report(None)
        if not missing:
            return
        by_id = {f.id: f for f in files}
        todo_files = [by_id[file_id] for file_id in todo if file_id in by_id]
        self.keep_inputs = len(todo_files) <= KEPT_INPUTS
        blocks = sorted({block_of(f.id) for f in todo_files})
        # The candidate first: if it cannot load, say so before replaying any history.
        order = sorted(
            incomplete, key=lambda v: (self.candidate is None or v != self.candidate.id, v)
        )
        chunks = list(_chunks(todo_files, self.batch_size))
        # Batches sent and not yet collected, oldest first; a group's last chunk carries the
        # group, whose claims go (and workers idle) once those answers are stored.
        pending: deque[tuple[list[_Batch], _Group | None]] = deque()
        upcoming = self._claim_group(order, 0, blocks, todo_files)
        while upcoming is not None:
            current, upcoming = upcoming, None
            for version_id in current.versions:  # those not loading yet load now
                self._begin_load(version_id)
            self.empty = current.empty
            # Pipelined: while the workers predict one chunk, this process decodes the next and
            # stores the last, so a fast model (or a model server) waits for neither. Each
            # chunk is sent before the one before it is collected, so a worker goes from one
            # batch to the next without waiting for this process to be scheduled; and a group's
            # first chunk goes out before the last group's last is collected: no barrier
            # between groups (issue 17: --jobs 2 spent most of its overhead waiting so).
            for index, (block, chunk) in enumerate(chunks):
                mine = [v for v in current.versions if block in current.held[v]]
                ready = self._prepare(chunk, mine) if mine else []
                self._send(ready)
                pending.append((ready, current if index == len(chunks) - 1 else None))
                while len(pending) > 1:
                    self._finish_step(*pending.popleft())
                if index == min(1, len(chunks) - 1):
                    # The next group is claimed now and loads on spare workers while this one
                    # predicts (two batches queued each, so the workers do not wait meanwhile).
                    upcoming = self._claim_group(order, current.after, blocks, todo_files)
                    if upcoming is not None:
                        for version_id in upcoming.versions[: self.spare]:
                            self._begin_load(version_id)
            if upcoming is not None and any(map(self._unloaded, upcoming.versions)):
                # Some of the next group load on this group's workers: answered first.
                while pending:
                    self._finish_step(*pending.popleft())
        while pending:
            self._finish_step(*pending.popleft())
        self.flush()

    def _unloaded(self, version_id: int) -> bool:
        """A version that will need a worker and has none loading it yet."""
        kind = self.versions[version_id].loader_kind
        known = version_id in self.loading or version_id in self.models
        return kind != LoaderKind.predictions.value and not known

    def _finish_step(self, batches: list[_Batch], done: _Group | None) -> None:
        """Collect and store ``batches``; if they end group ``done``, its results are stored,
        so its claims go, and its workers idle with their models until they load another
        version (which drops the old model first) or the pool closes: one model per worker."""
        self._store(self._collect(batches))
        if done is None:
            return
        self.flush()  # stored before the claims go
        self.claims.release(done.versions)
        for version_id in done.versions:
            model = self.models.get(version_id)
            if model is not None:
                del self.models[version_id]
                if isinstance(model, ModelWorker):
                    self.pool.release(self.versions[version_id].ref, reuse=False)

    def _claim_group(
        self, order: list[int], start: int, blocks: list[int], todo_files: list[ActiveFile]
    ) -> _Group | None:
        """Claim the next group of versions from ``order[start:]``; ``None`` when none is left.

        Claimed before anything loads, so a version other runners hold loads nowhere here; the
        claims go once the group's results are stored.
        """
        while start < len(order):
            wanted = order[start : start + self.group_size]
            start += self.group_size
            held = self.claims.take(wanted, blocks)
            versions = [v for v in wanted if v in held]
            if not versions:
                continue
            # A version with no result yet in these blocks is predicted without an anti-join
            # per chunk; no other runner can add to the blocks while this one holds them.
            with self.registry.reading() as session:
                stored = stored_in_range(session, versions, todo_files[0].id, todo_files[-1].id)
            empty = {v for v in versions if not stored.get(v)}
            return _Group(versions, held, start, empty)
        return None

    def _prepare(self, files: list[ActiveFile], group: list[int]) -> list[_Batch]:
        """This chunk's batches, one per version of the group lacking some of its files: the
        files found, read, decoded and pickled, ready for :meth:`_send`."""
        wanted = {f.id: f for f in files}
        live = [v for v in group if self.models.get(v, True) is not None]
        by_version: dict[int, list[ActiveFile]] = {v: list(files) for v in live if v in self.empty}
        partial = [v for v in live if v not in self.empty]
        if partial:
            with self.registry.reading() as session:
                pairs = missing_pairs(
                    session,
                    partial,
                    files[0].id,
                    files[-1].id,
                    retry_errored=self.retry_errored,
                )
            for version_id, file_id in pairs:
                if file_id in wanted:
                    by_version.setdefault(version_id, []).append(wanted[file_id])
        models = {v: self._model(v) for v in sorted(by_version)}
        needs_inputs = {
            f.id
            for v, model in models.items()
            if model is not None and model.needs_inputs
            for f in by_version[v]
        }
        inputs = self._decode([wanted[i] for i in sorted(needs_inputs)])
        # Each distinct batch pickled once (for the whole replay when the inputs are kept).
        payloads: dict[tuple[int, ...], bytes] = self.payloads if self.keep_inputs else {}
        batches: list[_Batch] = []
        for version_id, version_files in by_version.items():
            model = models[version_id]
            if model is None:
                self._advance(len(version_files), version_id)
                continue
            self.outcomes[version_id].status = "replayed"
            if model.needs_inputs:
                usable = [f for f in version_files if f.id in inputs]
                self._advance(len(version_files) - len(usable), None)
            else:
                usable = version_files
            if not usable:
                continue
            batch = _Batch(version_id, model, usable, inputs)
            if isinstance(model, ModelWorker):
                ids = tuple(f.id for f in usable)
                if ids not in payloads:
                    payloads[ids] = _pickled([inputs[i] for i in ids])
                batch.payload = payloads[ids]
            batches.append(batch)
        return batches

    def _send(self, batches: list[_Batch]) -> None:
        """Start every batch: a worker's is sent (answered later, see :meth:`_collect`); a
        predictions file's is answered here and now."""
        for batch in batches:
            version_id, model = batch.version_id, batch.model
            if self.models.get(version_id) is None:  # broke while the last chunk was collected
                batch.dead = True
                self._advance(len(batch.files), version_id)
                continue
            keys = [f.sha256 for f in batch.files]
            try:
                if isinstance(model, ModelWorker):
                    assert batch.payload is not None
                    model.begin_predict(batch.payload, keys, len(keys), self.batch_timeout)
                else:  # a predictions file: no model code, no inputs, called here
                    began = time.perf_counter()
                    outputs = call_model(model, [None] * len(keys), keys)
                    latency = round((time.perf_counter() - began) * 1000 / len(keys), 4)
                    batch.answers = [(output, latency) for output in outputs]
            except (ModelUnavailable, ModelOutputError) as exc:
                self._broken(version_id, exc)
                batch.dead = True
                self._advance(len(batch.files), version_id)

    def _collect(self, batches: list[_Batch]) -> list[_Batch]:
        """Wait for the answers of the batches :meth:`_send` started."""
        for batch in batches:
            model = batch.model
            files = batch.files
            if not batch.dead and self.models.get(batch.version_id) is None:
                # Broke while this batch was in flight (its last answers could not be stored):
                # its worker is gone, and nothing more of it is stored.
                batch.dead = True
                self._advance(len(files), batch.version_id)
            if batch.dead or batch.answers is not None or not isinstance(model, ModelWorker):
                continue
            try:
                batch.answers = self._answered(batch, model, model.finish_predict)
                assert batch.payload is not None
                again = partial(
                    model.predict,
                    batch.payload,
                    [f.sha256 for f in files],
                    len(files),
                    self.batch_timeout,
                )
                for _ in range(1, self.versions[batch.version_id].repeats):
                    batch.repeats.append(self._answered(batch, model, again))
            except (ModelUnavailable, ModelOutputError) as exc:
                self._broken(batch.version_id, exc)
                batch.dead = True
                self._advance(len(files), batch.version_id)
        return batches

    def _answered(
        self, batch: _Batch, model: ModelWorker, ask: Callable[[], Answer]
    ) -> list[tuple[Any, float]]:
        """One answer per file of ``batch``; a batch that raised is asked again file by file, so
        one bad input costs only its own answer."""
        files = batch.files
        try:
            answer = ask()
        except ModelRaised as exc:
            if len(files) == 1:
                return [(exc, 0.0)]
            return [self._one(model, batch.inputs[f.id], f.sha256) for f in files]
        latency = round(answer.seconds * 1000 / len(files), 4)
        return [(output, latency) for output in answer.outputs]

    def _store(self, batches: list[_Batch]) -> None:
        """The collected answers as rows, stored (committed once per chunk)."""
        run_id = self.run_id
        for batch in batches:
            if batch.dead or batch.answers is None:
                continue
            version_id, files = batch.version_id, batch.files
            # Text a database cannot store (a NUL, a lone surrogate) is written out by
            # result_row, so no answer can fail the write (issue 16, item 8).
            rows = [
                result_row(version_id, f.id, output, latency, run_id)
                for f, (output, latency) in zip(files, batch.answers, strict=True)
            ]
            outcome = self.outcomes[version_id]
            if batch.repeats:
                outcome.flaky += self._keep_repeats(batch, rows)
            outcome.predicted += len(rows)
            errored = [row[_ERROR] for row in rows if is_error(row)]
            outcome.errored += len(errored)
            if errored and not outcome.first_error:
                outcome.first_error = error_line(errored[0])
            self.pending.extend(rows)
            self._advance(len(files), version_id)
            if len(self.pending) >= FLUSH_ROWS:
                self.flush()
        if batches:
            self.flush()

    def _keep_repeats(self, batch: _Batch, firsts: list[Row]) -> int:
        """Queue the repeats' rows beside the first answers'; how many patterns' answers varied."""
        answers = [[(row[_PREDICTED], row[_ERROR]) for row in firsts]]
        for repeat, outputs in enumerate(batch.repeats, start=1):
            rows = [
                result_row(batch.version_id, f.id, output, latency, self.run_id)
                for f, (output, latency) in zip(batch.files, outputs, strict=True)
            ]
            self.pending_repeats.extend(repeat_row(row, repeat) for row in rows)
            answers.append([(row[_PREDICTED], row[_ERROR]) for row in rows])
        return sum(len(set(seen)) > 1 for seen in zip(*answers, strict=True))

    # -- models and inputs ------------------------------------------------------------------

    def _begin_load(self, version_id: int) -> None:
        """A version that runs a model (all but a predictions file) starts loading in a worker
        now (an idle one, dropping its last model first, or a new one); it is waited for on
        first use."""
        version = self.versions[version_id]
        if version.loader_kind == LoaderKind.predictions.value:
            return
        if version_id in self.models or version_id in self.loading:
            return
        spec = LoadSpec(
            version.ref,
            version.loader_kind,
            version.loader,
            version.artifact_path,
            version.artifact_sha256,
            version.loader_options,
        )
        try:
            self.pool.begin_load(spec)
        except ModelUnavailable as exc:
            self._broken(version_id, exc)
        else:
            self.loading.add(version_id)

    def _model(self, version_id: int) -> LoadedModel | ModelWorker | None:
        if version_id not in self.models:
            version = self.versions[version_id]
            try:
                if version_id in self.loading:
                    self.loading.discard(version_id)
                    self.models[version_id] = self.pool.finish_load(version.ref)
                else:
                    self.models[version_id] = load_model(
                        version.ref,
                        version.loader_kind,
                        version.loader,
                        version.artifact_path,
                        version.artifact_sha256,
                    )
            except ModelUnavailable as exc:
                self._broken(version_id, exc)
        return self.models[version_id]

    def _broken(self, version_id: int, exc: ModelUnavailable | ModelOutputError) -> None:
        """A version that cannot load or broke: the candidate's error is raised; a prior version
        is reported unavailable and skipped from here on, its stored results kept."""
        if self.candidate is not None and version_id == self.candidate.id:
            raise exc
        self.models[version_id] = None  # no further chunk calls it
        self.pool.discard(self.versions[version_id].ref)
        outcome = self.outcomes[version_id]
        outcome.status, outcome.reason = "unavailable", str(exc)

    def _decode(self, files: list[ActiveFile]) -> dict[int, Any]:
        """Read, verify and decode each file; a refused file is reported, not scored.

        With ``keep_inputs`` (few enough files to replay) each input is decoded once for the
        whole replay; otherwise once per group of versions.
        """
        inputs: dict[int, Any] = {}
        refused, kept = self.refused, self.kept
        # Every file hash-checked as it is read; what the cache lacks comes from the database
        # in a few queries (issue 17).
        contents = self.registry.store.read_many(
            (f.sha256, f.extension) for f in files if f.id not in refused and f.id not in kept
        )
        kinds = {kind.value: kind for kind in PatternKind}
        for f in files:
            if f.id in refused:
                continue
            if f.id in kept:
                inputs[f.id] = kept[f.id]
                continue
            data = contents[f.sha256]
            if isinstance(data, CorruptPattern):
                refused[f.id] = RefusedPattern(f.sha256, str(data))
                continue
            try:
                inputs[f.id] = decode(data, kinds[f.kind], f.extension)
            except Exception as exc:
                reason = f"pattern file {f.sha256[:12]} cannot be decoded as {f.kind}: {exc}"
                self.refused[f.id] = RefusedPattern(f.sha256, reason)
                continue
            if self.keep_inputs:
                self.kept[f.id] = inputs[f.id]
        return inputs

    # -- predicting -------------------------------------------------------------------------

    def _one(self, model: ModelWorker, item: Any, key: str) -> tuple[Any, float]:
        """Retry one input of a batch that raised: its exception becomes its answer."""
        try:
            answer = model.predict(_pickled([item]), [key], 1, self.batch_timeout)
        except ModelRaised as exc:
            return exc, 0.0
        return answer.outputs[0], round(answer.seconds * 1000, 4)

    def flush(self) -> None:
        if not self.pending:
            return
        with self.registry.writing() as session:  # a result and its repeats: in one transaction
            insert_results(session, self.pending, replace_errored=self.retry_errored)
            insert_repeats(session, self.pending_repeats, replace_errored=self.retry_errored)
        self.pending, self.pending_repeats = [], []

    def _advance(self, count: int, version_id: int | None) -> None:
        if count:
            self.done += count
            self._report(version_id)

    def _report(self, version_id: int | None) -> None:
        if self.progress is not None:
            ref = self.versions[version_id].ref if version_id is not None else None
            self.progress(ReplayProgress(self.done, self.total, ref))

    def summary(self, run_id: int, status: str, seconds: float) -> ReplaySummary:
        refused = list(self.refused.values())
        if refused:
            with self.registry.reading() as session:
                names = pattern_names(session, list(self.refused))
            for file_id, item in self.refused.items():
                item.patterns = names.get(file_id, [])
        outcomes = [self.outcomes[v] for v in sorted(self.outcomes)]
        return ReplaySummary(
            run_id=run_id,
            status=status,
            versions=outcomes,
            refused=refused,
            predicted=sum(o.predicted for o in outcomes),
            errored=sum(o.errored for o in outcomes),
            reused=self.reused,
            seconds=round(seconds, 6),
        )


_ERROR = COLUMNS.index("error")  # the text column of a result that is an error
_PREDICTED = COLUMNS.index("predicted")


def default_jobs() -> int:
    """``--jobs``' default: at least one version predicting per core, and no fewer than the
    models replay may hold at once: a model served elsewhere (an endpoint, issue 18) or one that
    waits on I/O gains from more versions in flight than cores, and on 2 cores the bench model
    replayed faster 8 at a time than 2 at a time (docs/performance.md, issue 17)."""
    return max(os.cpu_count() or 1, MAX_LOADED_MODELS)


def _chunks(files: list[ActiveFile], batch_size: int) -> Iterable[tuple[int, list[ActiveFile]]]:
    """(block, up to ``batch_size`` files of it): chunks never straddle a claimed block."""
    start = 0
    while start < len(files):
        block = block_of(files[start].id)
        end = start
        while end < len(files) and block_of(files[end].id) == block:
            end += 1
        for low in range(start, end, batch_size):
            yield block, files[low : min(low + batch_size, end)]
        start = end


def _pickled(batch: list[Any]) -> bytes:
    return pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
