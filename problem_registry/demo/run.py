"""The demo end to end: a fresh registry, the curated problems, four versions, a replay, a report.

Every step is the public API a team would use (``import_bundle``, ``models.register`` and
``promote``, ``replay``, ``gates.evaluate``, the report), so the demo doubles as a worked example::

    result = run_demo(Path("problem-registry-demo"), log=print)
    result.report  # the HTML report's index.html (report.json without the report module)

Messages go to ``log`` and replay progress to ``progress``: no typer or rich here.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from problem_registry.adapters import check_loadable
from problem_registry.demo import DemoError
from problem_registry.demo.folder import DEFAULT_DIRECTORY, demo_patterns_dir, prepare_folder
from problem_registry.demo.models import (
    CHAMPION,
    LOADER,
    MODEL_NAME,
    TrainedVersion,
    train_versions,
)
from problem_registry.errors import UnknownUserWarning
from problem_registry.replay.engine import replay
from problem_registry.replay.summary import ProgressCallback, ReplaySummary
from problem_registry.store.bundle import ImportSummary, import_bundle
from problem_registry.store.registry import Registry
from problem_registry.store.views import ModelVersionView
from problem_registry.verdicts.gates import GateResult, evaluate
from problem_registry.verdicts.metrics import ProblemVersionMetrics, problem_metrics


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    database_url: str
    imported: ImportSummary
    versions: list[ModelVersionView]  # registration order, with their accuracy metric
    champion: str
    candidate: str  # the newest version, judged against the champion
    replay: ReplaySummary
    metrics: list[ProblemVersionMetrics]  # every problem on every version
    gates: list[GateResult]  # the candidate's, one per problem
    report: Path
    seconds: float


def run_demo(
    directory: Path = DEFAULT_DIRECTORY,
    *,
    log: Callable[[str], None] = lambda _message: None,
    progress: ProgressCallback | None = None,
) -> DemoResult:
    """Build the demo registry in ``directory`` (new, empty, or a previous demo, which is rebuilt).

    Raises :class:`~problem_registry.demo.DemoError` for a folder that is not the demo's and when
    scikit-learn is missing; nothing is written in either case.
    """
    with warnings.catch_warnings():
        # The demo's registry is the tool's own example: who built it is nobody's business, and
        # a container without $USER should not be told to set one before its first command.
        warnings.simplefilter("ignore", UnknownUserWarning)
        return _run_demo(directory, log=log, progress=progress)


def _run_demo(
    directory: Path, *, log: Callable[[str], None], progress: ProgressCallback | None
) -> DemoResult:
    started = time.perf_counter()
    if find_spec("sklearn") is None:
        raise DemoError(
            "the demo trains scikit-learn models and scikit-learn is not installed; "
            "pip install scikit-learn"
        )
    directory = Path(directory)
    prepare_folder(directory)
    database = directory.resolve() / "registry.db"
    with Registry.open(
        url=f"sqlite:///{database}", patterns_dir=directory.resolve() / "patterns"
    ) as registry:
        log(f"registry: {directory / 'registry.db'} (SQLite), files in {directory / 'patterns'}")
        bundle = demo_patterns_dir()
        imported = import_bundle(registry, bundle)
        log(
            f"imported {imported.problems_created} problems and {imported.patterns_created} "
            f"patterns curated from real model mistakes ({bundle})"
        )

        def register(trained: TrainedVersion) -> None:
            view = registry.models.register(
                MODEL_NAME,
                trained.version,
                loader=LOADER,
                artifact=trained.artifact,
                metrics={"accuracy": round(trained.accuracy, 4)},
                note=trained.note,
                check=check_loadable,
            )
            log(f"trained and registered {view.ref}: {view.note}; accuracy {_percent(view)}")

        train_versions(directory / "models", on_trained=register)
        champion = registry.models.promote(MODEL_NAME, CHAMPION).ref
        versions = registry.models.list(MODEL_NAME)
        candidate = versions[-1].ref
        log(f"promoted {champion} to champion; the candidate is the newest, {candidate}")
        summary = replay(registry, progress=progress, trigger="demo")
        log(
            f"replayed {len(versions)} versions: {summary.predicted} predictions stored "
            f"in {summary.seconds:.1f} s"
        )
        gates = evaluate(registry, candidate)
        metrics = problem_metrics(registry, model=MODEL_NAME)
        log("writing the report (charts and galleries for every problem)")
        report = _report(registry, directory, candidate, gates, metrics, log)
        return DemoResult(
            directory=directory,
            database_url=registry.display_url,
            imported=imported,
            versions=versions,
            champion=champion,
            candidate=candidate,
            replay=summary,
            metrics=metrics,
            gates=gates,
            report=report,
            seconds=time.perf_counter() - started,
        )


def _report(
    registry: Registry,
    directory: Path,
    candidate: str,
    gates: list[GateResult],
    metrics: list[ProblemVersionMetrics],
    log: Callable[[str], None],
) -> Path:
    """The HTML report when this installation has it, else the same numbers as JSON."""
    if find_spec("problem_registry.report") is not None:
        try:
            from problem_registry.report.builder import build_report
        except ImportError as exc:  # a dependency of the report is missing: say so, keep going
            log(f"warning: the HTML report cannot be built ({exc}); writing report.json instead")
        else:
            return build_report(registry, directory / "report", candidate=candidate)
    path = directory / "report.json"
    document = {
        "candidate": candidate,
        "gates": [gate.to_dict() for gate in gates],
        "metrics": [row.to_dict() for row in metrics],
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _percent(view: ModelVersionView) -> str:
    accuracy = view.metrics.get("accuracy")
    return "-" if accuracy is None else f"{accuracy:.1%}"
