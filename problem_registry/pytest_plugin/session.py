"""The state of one ``pytest --registry`` session: replay once, one item per problem, one verdict.

The controller (the only process without xdist) opens the registry, registers the candidate if a
loader was given, records a Run, replays the candidate and every prior version for whatever they
are missing, then fixes a snapshot (candidate, champion, problem slugs) that every worker collects
from, so collection is identical everywhere. Under xdist the controller also decides the gates
while the workers start, and the workers read that decision (:mod:`shared_gates`), opening the
registry only if ``-k`` or ``-m`` made them decide for their selection. The controller writes
the terminal summary, the Markdown summary for CI job pages and the report folder, and closes
the Run, so the numbers agree whatever ``-n`` is.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from problem_registry.config import resolve_settings
from problem_registry.enums import LoaderKind, ProblemStatus, RunStatus
from problem_registry.errors import CorruptPattern, InvalidValue, RegistryError
from problem_registry.pytest_plugin.options import RegistryOptions
from problem_registry.pytest_plugin.shared_gates import SharedGates
from problem_registry.redaction import redact_text
from problem_registry.refs import ModelRef
from problem_registry.text import visible

# The registry, the runs, the verdicts and the replay are imported where used: an xdist worker
# that only reads the gates the controller decided imports none of them (issue 17: each import
# of them cost ~0.9 s per worker, making `-n 2` slower than serial).
if TYPE_CHECKING:
    from problem_registry.replay.summary import ReplaySummary
    from problem_registry.store.registry import Registry
    from problem_registry.verdicts.gates import GateResult

COLLECTOR_NAME = "problem-registry"
MARKER = "problem_registry"
WORKER_SNAPSHOT = "problem_registry_snapshot"  # the key of the Snapshot in xdist's workerinput
WORKER_GATES = "problem_registry_gates"  # ... and of the folder the run's gates are shared in


@dataclass(frozen=True)
class Snapshot:
    """What every process of the session agrees on, fixed once at session start."""

    url: str
    patterns_dir: str
    candidate: str
    champion: str | None
    problems: list[str]
    run_id: int
    tags: dict[str, list[str]]  # each problem's tags: its items' markers, for -m and -k


class GateFailed(Exception):
    """A problem's gate failed; its message is the whole report (no traceback is useful)."""


class ReviewWarning(pytest.PytestWarning):
    """A problem possibly got worse, not confidently: CI stays green, a person should look."""


class RegistrySession:
    """A pytest plugin object, registered under :attr:`NAME` only when ``--registry`` is given."""

    NAME = "problem-registry-session"

    def __init__(self, config: pytest.Config, options: RegistryOptions) -> None:
        self.config = config
        self.options = options
        self.registry: Registry | None = None
        self.snapshot: Snapshot | None = None
        self.replay_summary: ReplaySummary | None = None
        self.shared = SharedGates()  # no xdist: decided in this process, kept in memory
        self.selected: list[str] | None = None  # the run's problems, once collection is done
        self._full: tuple[object, dict[str, GateResult]] | None = None  # unpickled gates
        self._early: threading.Thread | None = None  # the controller deciding while workers start
        self.outcomes: dict[str, str] = {}
        self.report_error: str | None = None  # why --registry-report was refused
        self._all_slugs: list[str] = []
        # Said in the header and the summary: which version is tested and against what, and why
        # (issue 19: `--registry` alone picked the newest version without a word).
        self.candidate_reason = ""
        self.baseline_reason = ""
        self.no_baseline = "no baseline yet: canary only"

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    # -- session start ---------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Before xdist starts its workers (its own sessionstart runs last)."""
        try:
            if self.is_worker:
                given = self.config.workerinput  # type: ignore[attr-defined]
                self.snapshot = Snapshot(**given[WORKER_SNAPSHOT])
                self.shared = SharedGates(Path(given[WORKER_GATES]))
                # The registry is opened only if this worker has to decide the gates itself.
            else:
                self._prepare()
        except RegistryError as exc:
            raise pytest.UsageError(f"problem-registry: {exc}") from None
        assert self.snapshot is not None
        for marker in sorted({m for tags in self.snapshot.tags.values() for m in tags}):
            self.config.addinivalue_line(
                "markers", f"{marker}: problems of the problem registry tagged so"
            )

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        """The candidate and its baseline, each with why, before any test runs."""
        if self.snapshot is None or self.is_worker:
            return []
        against = (
            f"compared with {self.snapshot.champion} ({self.baseline_reason})"
            if self.snapshot.champion
            else self.no_baseline
        )
        return [
            f"problem-registry: candidate {self.snapshot.candidate} ({self.candidate_reason}); "
            + against
        ]

    def _prepare(self) -> None:
        from problem_registry.replay.refusals import unreadable_message
        from problem_registry.store.registry import Registry
        from problem_registry.store.runs import finish_run, start_run

        root = self.config.invocation_params.dir
        settings = resolve_settings(url=self.options.url, cwd=root)
        # Never create one here: `pytest --registry` in the wrong folder is a usage error naming
        # the file it looked for, not a green run of zero problems (issue 19).
        registry = self.registry = Registry.open(settings, create=False)
        candidate_ref = self._candidate(registry)
        candidate = str(candidate_ref)
        baseline = self._baseline(registry, candidate_ref)
        if baseline == candidate:
            self.no_baseline = (
                f"{candidate} is the champion: no baseline to compare with, so canary only; "
                "pass --baseline NAME@VERSION to compare with another version"
            )
        problems = self._problems(registry, candidate_ref.name)
        from problem_registry.replay.engine import replay
        from problem_registry.replay.selection import prior_versions

        history = prior_versions(registry, candidate)
        if baseline is not None and baseline not in (*history, candidate):
            history.append(baseline)  # a baseline registered after the candidate
        run_id = start_run(registry, trigger="pytest", candidate=candidate_ref)
        try:
            self.replay_summary = replay(
                registry,
                versions=history,
                candidate=candidate,
                # Every problem: say so, and replay takes its fast path (no per-file filter).
                problems=None if problems == self._all_slugs else problems,
                run_id=run_id,
                shard=self.options.shard,
            )
        except BaseException as exc:
            status = RunStatus.interrupted if isinstance(exc, KeyboardInterrupt) else None
            finish_run(
                registry,
                run_id,
                status=(status or RunStatus.failed).value,
                message=str(exc) or type(exc).__name__,
            )
            raise
        if self.replay_summary.refused:
            # Content no one can read: its patterns would silently drop out of the gates.
            message = unreadable_message(self.replay_summary)
            finish_run(registry, run_id, status=RunStatus.failed.value, message=message)
            raise CorruptPattern(message)
        self.snapshot = Snapshot(
            url=settings.database_url,
            patterns_dir=str(settings.patterns_dir),
            candidate=candidate,
            champion=baseline if baseline != candidate else None,
            problems=problems,
            run_id=run_id,
            tags={
                slug: [marker_name(tag) for tag in tags]
                for slug, tags in registry.problems.tags().items()
            },
        )

    def _baseline(self, registry: Registry, candidate: ModelRef) -> str | None:
        """The version the candidate is judged against: ``--baseline``, else the champion."""
        if self.options.baseline is not None:
            registry.models.resolve([str(self.options.baseline)])  # an unknown ref: usage error
            self.baseline_reason = "given by --baseline"
            return str(self.options.baseline)
        champion = registry.models.champion(candidate.name)
        if champion is None:
            self.no_baseline = (
                f"{candidate.name} has no champion yet, so canary only; promote one with "
                "`problem-registry model promote` or pass --baseline NAME@VERSION"
            )
            return None
        self.baseline_reason = f"the champion of {candidate.name}"
        return champion.ref

    def _candidate(self, registry: Registry) -> ModelRef:
        ref, loader = self.options.candidate, self.options.candidate_loader
        if ref is None:
            versions = registry.models.list()
            names = sorted({v.name for v in versions})
            if len(names) != 1:
                raise InvalidValue(
                    "pass --candidate NAME@VERSION: "
                    + ("no model version is registered" if not names else f"models: {names}")
                )
            self.candidate_reason = (
                "the newest registered version, as no --candidate was given; "
                "pass --candidate NAME@VERSION to test another"
            )
            return ModelRef(versions[-1].name, versions[-1].version)
        self.candidate_reason = "given by --candidate"
        if loader and str(ref) not in {v.ref for v in registry.models.list()}:
            try:
                registry.models.register(
                    ref.name,
                    ref.version,
                    loader=loader,
                    loader_kind=LoaderKind.python,
                    artifact=self.options.candidate_artifact,
                    check=_check_loadable,
                    repeats=self.options.candidate_repeats,
                )
            except InvalidValue as exc:
                # The library names the CLI's flag; here the value came from --candidate-loader.
                raise InvalidValue(re.sub(r"^--loader\b", "--candidate-loader", str(exc))) from None
            self.candidate_reason = "registered now from --candidate-loader"
        return ref

    def _problems(self, registry: Registry, model: str) -> list[str]:
        statuses = registry.problems.statuses()
        self._all_slugs = list(statuses)
        # A problem naming its models is a test of their versions only (issue 19, item 3).
        others = {slug for slug, names in registry.problems.models().items() if model not in names}
        active = [
            slug
            for slug, status in statuses.items()
            if status is not ProblemStatus.retired and slug not in others
        ]
        chosen = self.options.problems
        if chosen is None:
            return active
        for slug in chosen:
            registry.problems.get(slug)  # an unknown slug is a usage error, not an empty run
        return [slug for slug in chosen if slug in active]

    @pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown to pytest when xdist is absent
    def pytest_configure_node(self, node: Any) -> None:
        """Hand each worker the controller's snapshot, so every worker collects the same items,
        and the folder where the first process to decide the gates leaves them for the rest."""
        assert self.snapshot is not None
        if self.shared.folder is None:
            self.shared = SharedGates.for_workers()
            self._decide_early()
        node.workerinput[WORKER_SNAPSHOT] = asdict(self.snapshot)
        node.workerinput[WORKER_GATES] = str(self.shared.folder)

    def _decide_early(self) -> None:
        """Under xdist, the controller decides the gates of every problem while its workers
        start, so no worker evaluates a gate, it only reads them (issue 17: ``-n 2`` must not be
        slower than serial). Skipped when -k, -m or --deselect may select fewer problems: the
        workers then decide for the ones selected, as before."""
        assert self.snapshot is not None
        option = self.config.option
        narrowed = getattr(option, "keyword", "") or getattr(option, "markexpr", "")
        if self.shard_note() is not None or narrowed or getattr(option, "deselect", None):
            return
        family = sorted(self.snapshot.problems)

        def decide() -> None:
            # A failure here leaves the decision to the workers, which meet it themselves.
            with contextlib.suppress(Exception):
                self._shared_gates(family)

        self._early = threading.Thread(target=decide, name="problem-registry gates", daemon=True)
        self._early.start()

    # -- collection and running ------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Add the problems before -k / -m deselection runs, so both select them."""
        assert self.snapshot is not None
        collector = ProblemCollector.from_parent(
            session, name=COLLECTOR_NAME, nodeid=COLLECTOR_NAME
        )
        # Through the collection hooks, so pytest counts the items ("collected 4 items") and
        # xdist compares them across workers like any other test.
        hook = collector.ihook
        hook.pytest_collectstart(collector=collector)
        report = hook.pytest_make_collect_report(collector=collector)
        hook.pytest_collectreport(report=report)
        if report.failed:
            reason = redact_text(str(report.longrepr))
            raise pytest.UsageError(f"problem-registry: cannot collect problems: {reason}")
        items.extend(item for item in report.result if isinstance(item, pytest.Item))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The run's problems are the items left after -k / -m: the gates judge exactly those."""
        prefix = f"{COLLECTOR_NAME}::"
        self.selected = sorted(
            item.nodeid[len(prefix) :] for item in session.items if item.nodeid.startswith(prefix)
        )

    def shard_note(self) -> str | None:
        """Why this run judges nothing: it replayed one shard of a CI matrix (issue 17)."""
        if self.options.shard is None:
            return None
        return (
            f"shard {self.options.shard}: replayed only; the gates are judged by a run "
            "without --registry-shard, once every shard has stored its results"
        )

    def gate(self, slug: str) -> GateResult:
        """The run's gates, decided together once per session, then read from memory.

        The run is the selected problems (the controller, which collects nothing under xdist,
        knows them from the reports), so -k on one problem evaluates one; under xdist the first
        process to ask decides for all (:mod:`shared_gates`), so every process reads the same
        verdicts and the gates are evaluated once, not once per process.
        """
        decided = self._shared_gates(self._family())
        if self._full is None or self._full[0] is not decided:
            self._full = (decided, pickle.loads(decided["full"]))  # written by this session
        return self._full[1][slug]  # type: ignore[no-any-return]

    def view(self, slug: str) -> dict[str, Any]:
        """What a problem's test reports, as plain data: an xdist worker reads it without
        importing the verdicts (see :func:`_view`)."""
        return self._shared_gates(self._family())["views"][slug]  # type: ignore[no-any-return]

    def _family(self) -> list[str]:
        return self.selected if self.selected is not None else sorted(self.outcomes)

    def _shared_gates(self, family: list[str]) -> dict[str, Any]:
        assert self.snapshot is not None
        snapshot = self.snapshot

        def decide() -> dict[str, Any]:
            if self.registry is None:  # a worker deciding (-k narrowed the run): opened now
                from problem_registry.store.registry import Registry

                self.registry = Registry.open(url=snapshot.url, patterns_dir=snapshot.patterns_dir)
            gates = evaluate(
                self.registry, snapshot.candidate, problems=family, baseline=snapshot.champion
            )
            full = {gate.problem: gate for gate in gates}
            return {
                "views": {gate.problem: _view(gate) for gate in gates},
                "full": pickle.dumps(full, protocol=pickle.HIGHEST_PROTOCOL),
            }

        key = (snapshot.run_id, snapshot.candidate, snapshot.champion, tuple(family))
        return self.shared.get(key, decide)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid.startswith(f"{COLLECTOR_NAME}::") and (
            report.when == "call" or report.outcome != "passed"
        ):
            self.outcomes[report.nodeid.split("::", 1)[1]] = report.outcome

    # -- session end (controller) ----------------------------------------------------------------

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self.snapshot is None or self.registry is None:
            return
        writer = terminalreporter
        writer.write_sep("=", "problem registry")
        if self.replay_summary is not None:
            s = self.replay_summary
            writer.write_line(
                f"replay: {s.predicted} predicted, {s.reused} already stored, {s.errored} "
                f"errored ({len(s.versions)} version(s), {s.seconds:.2f} s)"
            )
            for version in s.versions:
                if version.status == "unavailable":
                    writer.write_line(visible(f"warning: {version.reason}"), yellow=True)
                elif remarks := version.remarks():  # where to look, as `replay` says it
                    writer.write_line(visible(f"warning: {version.ref}: {remarks}"), yellow=True)
        if self.options.drift_file is not None:
            for line in drift_warnings(self.registry, self.options.drift_file):
                writer.write_line(visible(line), yellow=True)
        if self.shard_note() is not None:
            writer.write_line(visible(str(self.shard_note())))
            return
        from problem_registry.verdicts.summary import terminal_rows

        gates = [self.gate(slug) for slug in self.snapshot.problems if slug in self.outcomes]
        rows = terminal_rows(
            gates, self.snapshot.candidate, self.snapshot.champion, self.no_baseline
        )
        for line in rows:
            writer.write_line(visible(line))  # titles and labels: no escape reaches the terminal
        folder = self.options.report_dir
        if folder is not None and self.report_error is None:
            writer.write_line(
                visible(f"report: {folder / 'index.html'} (and summary.md, summary.json)")
            )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        try:
            if not self.is_worker and self.snapshot is not None and self.registry is not None:
                self._finish()
            if self.report_error is not None:
                reporter = self.config.pluginmanager.get_plugin("terminalreporter")
                if reporter is not None:
                    reporter.write_line(self.report_error, red=True)
                session.exitstatus = int(session.exitstatus) or pytest.ExitCode.TESTS_FAILED
        finally:
            if self._early is not None:
                self._early.join()  # before its registry closes and its folder goes
            if self.registry is not None:
                self.registry.close()
            if not self.is_worker:
                self.shared.remove()

    def _finish(self) -> None:
        from problem_registry.store.runs import finish_run
        from problem_registry.verdicts.summary import markdown_summary

        assert self.snapshot is not None and self.registry is not None
        failed = sorted(slug for slug, outcome in self.outcomes.items() if outcome == "failed")
        message = f"{len(self.outcomes)} problem(s) tested, {len(failed)} failed"
        if failed:
            message += ": " + ", ".join(failed)
        shard = self.shard_note()
        finish_run(
            self.registry,
            self.snapshot.run_id,
            status=RunStatus.completed.value,
            message=shard or message,
        )
        if shard is not None:
            return  # nothing was judged: no summary, no report
        gates = [self.gate(slug) for slug in self.snapshot.problems if slug in self.outcomes]
        markdown = markdown_summary(
            gates, self.snapshot.candidate, self.snapshot.champion, self.no_baseline
        )
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            with Path(step_summary).open("a", encoding="utf-8") as handle:
                handle.write(markdown + "\n")
        folder = self.options.report_dir
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "summary.md").write_text(markdown + "\n", encoding="utf-8")
            document = {
                "candidate": self.snapshot.candidate,
                "champion": self.snapshot.champion,
                "run_id": self.snapshot.run_id,
                "problems": [gate.to_dict() for gate in gates],
            }
            (folder / "summary.json").write_text(
                json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
            # After the summaries, so a CI job keeps them whatever the HTML report meets; imported
            # here because it brings matplotlib and Jinja2, which a plain pytest run never needs.
            from problem_registry.report.builder import build_report

            try:
                build_report(
                    self.registry,
                    folder,
                    candidate=self.snapshot.candidate,
                    baseline=self.snapshot.champion,
                )
            except RegistryError as exc:
                # A report folder refused (issue 16: a linked subfolder) fails the run in one
                # line, like the CLI, rather than as a traceback from sessionfinish.
                self.report_error = f"problem-registry: error: {exc}"


class ProblemCollector(pytest.Collector):
    """The parent of the problem items: ``problem-registry::<slug>``."""

    def collect(self) -> list[pytest.Item]:
        session = _session(self.config)
        assert session.snapshot is not None
        return [
            ProblemItem.from_parent(self, name=slug)  # type: ignore[misc]
            for slug in session.snapshot.problems
        ]


class ProblemItem(pytest.Item):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_marker(MARKER)
        snapshot = _session(self.config).snapshot
        for tag in snapshot.tags.get(self.name, []) if snapshot else []:
            self.add_marker(tag)  # `-m vision` and `-k vision` select the problems tagged so

    def runtest(self) -> None:
        shard = _session(self.config).shard_note()
        if shard is not None:
            pytest.skip(shard)
        view = _session(self.config).view(self.name)
        self.user_properties.extend(view["properties"])
        if not view["passed"]:
            raise GateFailed(view["message"])
        if view["review"]:
            # CI stays green; the warning lists the problem for a person, with its numbers.
            # Node.warn needs a source line, which a problem has not: pytest's warning capture
            # reports this one in its summary all the same.
            warnings.warn(ReviewWarning(visible(view["message"], newlines=True)), stacklevel=1)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, GateFailed):
            return visible(str(excinfo.value), newlines=True)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return COLLECTOR_NAME, None, f"problem {self.name}"


def drift_warnings(registry: Registry, path: Path) -> list[str]:
    """``--registry-drift``: a warning per comparison that moved; never fails the run (drift is
    for a person to look at, not a gate), and an unreadable batch is a warning too."""
    from problem_registry.triage.drift import drift

    try:
        found = drift(registry, path)
    except RegistryError as exc:
        return [f"warning: production drift not measured: {exc}"]
    return [
        f"warning: production drift: {comparison.sentence()}"
        for comparison in found.comparisons
        if comparison.verdict in ("drifted", "shifted")
    ]


def evaluate(*args: Any, **kwargs: Any) -> list[GateResult]:
    """:func:`~problem_registry.verdicts.gates.evaluate`, imported on first use."""
    from problem_registry.verdicts.gates import evaluate as gates

    return gates(*args, **kwargs)


def _check_loadable(*args: Any, **kwargs: Any) -> Any:
    from problem_registry.adapters import check_loadable

    return check_loadable(*args, **kwargs)


def _view(gate: GateResult) -> dict[str, Any]:
    """A problem's test as plain data (builtins only): its properties for the JUnit XML, whether
    it passed, whether it needs a review, and its message."""
    from problem_registry.verdicts.decision import Outcome

    metrics, verdict = gate.metrics, gate.verdict
    power = verdict.power
    champion = gate.champion_metrics
    properties = [
        ("candidate", gate.candidate),
        ("outcome", gate.outcome.value),
        ("rule", verdict.rule),
        ("p_value", _round(verdict.p_value)),
        ("adjusted_p", _round(verdict.adjusted_p)),
        ("change_low", _round(verdict.interval[0])),
        ("change_high", _round(verdict.interval[1])),
        ("broken", verdict.broken),
        ("fixed", verdict.fixed),
        ("detectable", _round(power.detectable) if power else ""),
        ("error_rate", _round(metrics.error_rate)),
        ("patterns", metrics.patterns),
        ("wrong", metrics.wrong),
        ("errored", metrics.errored),
        ("champion", gate.champion or ""),
        ("champion_error_rate", _round(champion.error_rate) if champion else ""),
        ("newly_failing", gate.newly_failing),
    ]
    return {
        "properties": properties,
        "passed": gate.passed,
        "review": gate.outcome is Outcome.REVIEW,
        "message": gate.message,
    }


def _session(config: pytest.Config) -> RegistrySession:
    session = config.pluginmanager.get_plugin(RegistrySession.NAME)
    assert isinstance(session, RegistrySession)
    return session


def marker_name(tag: str) -> str:
    """A tag as a pytest marker: an identifier, so ``-m`` parses it (``low-light``: ``low_light``),
    and never one of pytest's own (a problem tagged ``skip`` must not be skipped)."""
    name = re.sub(r"\W", "_", tag)
    if not name or name[0].isdigit() or name in _PYTEST_MARKERS:
        name = f"tag_{name}"
    return name


_PYTEST_MARKERS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", MARKER}
)


def _round(value: float | None) -> float | str:
    return "" if value is None else round(value, 6)
