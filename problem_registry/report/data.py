"""Everything the HTML report shows, read from the registry in a handful of queries.

No HTML and no images here: :func:`gather` returns plain objects the templates and the chart
functions take, so what the report says can be tested without rendering it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from problem_registry.errors import InvalidValue
from problem_registry.refs import ModelRef
from problem_registry.store.registry import Registry
from problem_registry.store.signoffs import SignOffView, signoffs
from problem_registry.store.views import ModelVersionView, PatternView, ProblemView
from problem_registry.verdicts.decision import Outcome
from problem_registry.verdicts.gates import GateResult, evaluate
from problem_registry.verdicts.metrics import (
    PatternResult,
    ProblemVersionMetrics,
    pattern_results,
    problem_metrics,
)
from problem_registry.verdicts.pattern_grid import OutcomeMatrix, outcome_matrices
from problem_registry.verdicts.status import changes, problem_status
from problem_registry.verdicts.timeline import (
    PROBLEMS_PER_QUERY,
    ProblemTimeline,
    TimelinePoint,
    matrix_changes,
    timelines_from,
    timelines_with,
    with_signoffs,
)

# A chunk's outcomes of every version, by problem slug; None: only some versions' answers read.
Outcomes = dict[str, OutcomeMatrix] | None
SHORT_STORY_EVENTS = 3  # more changes than this: the index says only the last one
ALL_TIMELINE_ROWS = 12  # more versions than this: the timeline table keeps the telling ones


@dataclass
class PatternRow:
    """A pattern with its provenance and its answer from the version the report looks at."""

    pattern: PatternView
    got: str | None  # None: the report has no focus version
    correct: bool | None  # None: no result


@dataclass
class ProblemReport:
    problem: ProblemView
    rows: list[ProblemVersionMetrics]  # one per version, registration order
    patterns: list[PatternRow]
    timeline: ProblemTimeline | None
    status: str  # the plain-language line for the focus version
    gate: GateResult | None = None
    changed: bool = False  # the focus fixed or broke a pattern since what it is compared with

    @property
    def slug(self) -> str:
        return self.problem.slug

    def row(self, ref: str | None) -> ProblemVersionMetrics | None:
        return next((row for row in self.rows if row.ref == ref), None)

    def short_story(self) -> str:
        """The timeline in a table cell: its last change, and how many came before."""
        if self.timeline is None:
            return "–"
        events = self.timeline.events
        if len(events) <= SHORT_STORY_EVENTS:
            return self.timeline.describe()
        kind, version = events[-1]
        return f"{kind} again in {version}, after {len(events) - 1} earlier changes"

    def timeline_points(self, focus: str | None) -> tuple[list[TimelinePoint], int]:
        """The timeline's rows worth a table row, and how many were left out.

        Every version while there are few; past that, the versions that fixed or broke a
        pattern or flipped the verdict, the first and the last, and the focus version: at 50
        versions the chart and the grid show the rest.
        """
        points = self.timeline.points if self.timeline is not None else []
        if len(points) <= ALL_TIMELINE_ROWS:
            return points, 0
        focus_version = ModelRef.parse(focus).version if focus else None
        kept, state = [], None
        for index, point in enumerate(points):
            flipped = point.passing is not None and state is not None and point.passing != state
            if point.passing is not None:
                state = point.passing
            if (
                point.fixed
                or point.broken
                or flipped
                or index in (0, len(points) - 1)
                or point.version == focus_version
            ):
                kept.append(point)
        return kept, len(points) - len(kept)


@dataclass
class ReportData:
    model: str | None  # None: no model version registered yet
    versions: list[ModelVersionView]
    focus: str | None  # the ref the status lines describe: the candidate, else the latest
    candidate: str | None
    champion: str | None
    since: str | None  # what the status lines compare with; None: each one's previous version
    rows: list[ProblemVersionMetrics]
    only_model: bool = True  # no other model's versions in the registry
    problems: list[ProblemReport] = field(default_factory=list)
    # The candidate's gates by problem slug (none without a candidate), decided as CI decides them.
    gates: dict[str, GateResult] = field(default_factory=dict)
    # Each problem's patterns, read once by the first read_problems and shared by the rest.
    pattern_views: dict[str, list[PatternView]] | None = None
    # The answers of the versions the pages show, by problem: read for the index, kept for them.
    shown_answers: dict[str, list[PatternResult]] | None = None

    def needs_attention(self, problem: ProblemReport) -> bool:
        """Misses its limit on the focus version, or the candidate's gate fails or asks a review."""
        flagged = problem.gate is not None and problem.gate.outcome is not Outcome.PASS
        return flagged or self.verdict(problem) == "misses"

    def row_class(self, problem: ProblemReport) -> str:
        """A problem's colour, on every page: its gate's verdict where it has one (a failed gate
        is drawn as a failure even within the error limit, issue 19 item 5), else the limit."""
        if problem.gate is not None:
            return f"gate-{problem.gate.outcome.value}"
        return self.verdict(problem)

    def failing(self) -> list[str]:
        """The problems whose candidate's gate failed, by slug."""
        return sorted(slug for slug, g in self.gates.items() if g.outcome is Outcome.FAIL)

    def compared_with(self) -> str | None:
        """What the status lines compare with, as the header says it; None: nothing earlier."""
        if self.since is not None:
            role = "champion" if self.since == self.champion else "baseline"
            return f"{role} {self.since}"
        if self.focus is not None and [v.ref for v in self.versions].index(self.focus) > 0:
            return "each problem's previous version"
        return None

    def problems_worst_first(self) -> list[ProblemReport]:
        """Problems that need attention first (see :meth:`needs_attention`), then by slug."""
        return sorted(self.problems, key=lambda p: (not self.needs_attention(p), p.slug))

    def verdict(self, problem: ProblemReport) -> str:
        """``meets`` / ``misses`` the problem's limit on the focus version, or ``none``."""
        row = problem.row(self.focus)
        met = row.meets_canary if row is not None else None
        return "none" if met is None else "meets" if met else "misses"

    def tally(self) -> dict[str, int]:
        counts = {"meets": 0, "misses": 0, "none": 0, "failed_gates": 0, "review_gates": 0}
        counts["attention"] = 0
        for problem in self.problems:
            counts[self.verdict(problem)] += 1
            outcome = problem.gate.outcome if problem.gate is not None else None
            counts["failed_gates"] += outcome is Outcome.FAIL
            counts["review_gates"] += outcome is Outcome.REVIEW
            counts["attention"] += self.needs_attention(problem)
        return counts

    @property
    def metric_names(self) -> list[str]:
        """Every headline metric any version has, for the versions table's columns."""
        return sorted({name for version in self.versions for name in version.metrics})


def choose_model(
    versions: Sequence[ModelVersionView], model: str | None, candidate: str | None
) -> str | None:
    """The one model the report follows: the candidate's, the one given, or the only one."""
    names = sorted({v.name for v in versions})
    if candidate is not None:
        name = ModelRef.parse(candidate).name
        if model is not None and model != name:
            raise InvalidValue(f"candidate {candidate} is not a version of model {model}")
        return name
    if model is not None or len(names) <= 1:
        return model or (names[0] if names else None)
    raise InvalidValue(
        f"the registry holds several models ({', '.join(names)}); pass --model NAME "
        "to say which one the report follows"
    )


def gather(
    registry: Registry, *, model: str | None = None, candidate: str | None = None
) -> ReportData:
    """Everything the report shows, every problem included (their pattern results dropped)."""
    data = read_overview(registry, model=model, candidate=candidate)
    for chunk in read_problems(registry, data):
        data.problems.extend(problem for problem, _results, _outcomes in chunk)
    return data


def read_overview(
    registry: Registry,
    *,
    model: str | None = None,
    candidate: str | None = None,
    baseline: str | None = None,
) -> ReportData:
    """The versions and every problem x version row; ``problems`` left to :func:`read_problems`.

    The confusion matrix is read for the focus version only: it is the one the pages show, and
    counting it for every version costs more than the rest of the aggregation.
    """
    everything = registry.models.list()
    model = choose_model(everything, model, candidate)
    versions = [v for v in everything if v.name == model]
    refs = [v.ref for v in versions]
    for ref in (candidate, baseline):
        if ref is not None and ref not in refs:
            raise ModelRef.parse(ref).not_found(f" of model {model}")
    if baseline is not None and candidate is None:
        raise InvalidValue("a baseline is compared with a candidate: name the candidate too")
    champion = next((v.ref for v in versions if v.is_champion), None)
    focus = candidate or (refs[-1] if refs else None)
    # A candidate is judged against its baseline (the champion unless named), as CI's gates judge
    # it; otherwise each version is compared with the one before it.
    # Without a candidate the latest is compared with the champion too, so every status line
    # names the version the header names (issue 19 item 5: "since v48" under "champion v40").
    against = baseline or champion
    since = against if against != focus else None
    rows = problem_metrics(registry, model=model) if model is not None else []
    if focus is not None:
        confusions = {
            row.problem: row.confusion
            for row in problem_metrics(registry, versions=[focus], confusion=True)
        }
        for row in rows:
            if row.ref == focus:
                row.confusion = confusions.get(row.problem)
    data = ReportData(
        model, versions, focus, candidate, champion, since, rows, len(versions) == len(everything)
    )
    if candidate is not None:
        data.gates = {g.problem: g for g in evaluate(registry, candidate, baseline=since)}
    return data


def read_index(registry: Registry, data: ReportData) -> list[ProblemReport]:
    """Every problem's report as the index shows it, read before any page (issue 19 item 13).

    From the rows in hand and the results of only the versions the pages show (the focus, the
    champion and what the status lines compare with: 45,000 results at 1,000 problems, not
    1.5 M), so the index is written first; its lines, stories and gates are the pages' own, the
    same functions over the same data, and the pages take those results from ``shown_answers``
    rather than read them again. The reports' timelines lack the per-version fixed and broken
    lists (the pages read those).
    """
    versions = _shown_versions(data, data.rows)
    reports, data.shown_answers = [], {}
    for chunk in read_problems(registry, data, versions=versions, chunk_size=None):
        for report, results, _outcomes in chunk:
            reports.append(report)
            data.shown_answers[report.slug] = results
    return reports


def _compared_with(
    rows: Sequence[ProblemVersionMetrics], focus: str, since: str | None
) -> str | None:
    """The version a problem's status line compares ``focus`` with (as problem_status picks)."""
    if since is not None:
        return since
    refs = [row.ref for row in rows]
    if focus not in refs:
        return None
    earlier = [r for r in rows[: refs.index(focus)] if r.answered]
    return earlier[-1].ref if earlier else None


def read_problems(
    registry: Registry,
    data: ReportData,
    *,
    order: Sequence[str] | None = None,
    versions: Sequence[str] | None = None,
    chunk_size: int | None = PROBLEMS_PER_QUERY,
) -> Iterator[list[tuple[ProblemReport, list[PatternResult], OutcomeMatrix | None]]]:
    """Each problem's report with its pattern results and outcomes, a chunk of problems at a time.

    The results (answers) are those of the versions a page shows (the focus, the champion, what
    the status line compares with) or of ``versions``; the outcomes (right, wrong, errored, no
    result) those of every version, one :class:`OutcomeMatrix` per problem (None when only
    ``versions`` are read).

    The pattern x version grid is the one large read (15 patterns x 100 versions per problem):
    it is read :data:`PROBLEMS_PER_QUERY` problems at a time, so a caller that draws each chunk
    and lets it go never holds the whole registry's results. ``order``: slugs to read first, in
    that order (the rest follow by slug); ``versions``: only these versions' results (every
    version's by default); ``chunk_size`` None: one chunk.
    """
    by_problem: dict[str, list[ProblemVersionMetrics]] = {}
    for row in data.rows:
        by_problem.setdefault(row.problem, []).append(row)
    if data.pattern_views is None:  # read once per report: the index and the pages share it
        data.pattern_views = {}
        for view in registry.patterns.list():
            data.pattern_views.setdefault(view.problem, []).append(view)
    patterns = data.pattern_views
    # A problem naming its models belongs to their reports only (issue 19, item 3).
    problems = [p for p in registry.problems.list() if not p.models or data.model in p.models]
    signed = signoffs(registry)  # shown on each problem's page (issue 19, item 10)
    if order is not None:
        first = {slug: n for n, slug in enumerate(order)}
        problems.sort(key=lambda p: (first.get(p.slug, len(first)), p.slug))
    step = chunk_size or max(len(problems), 1)
    chunks = [problems[start : start + step] for start in range(0, len(problems), step)]

    def read(chunk: list[ProblemView]) -> tuple[Outcomes, list[PatternResult]]:
        """A chunk's outcomes (every version's, as matrices; None when ``versions`` are read)
        and answers (the versions a page shows, or ``versions``)."""
        if data.model is None or (versions is not None and not versions):
            return None, []
        slugs = [p.slug for p in chunk]
        if versions is not None:
            return None, pattern_results(
                registry, problems=slugs, model=data.model, versions=versions
            )
        # Every version's outcomes (the grid, the timeline), and the answers of only the
        # versions a page shows them for: most of this read's time was answers.
        outcomes = outcome_matrices(registry, problems=slugs, model=data.model)
        rows = [row for slug in slugs for row in by_problem.get(slug, [])]
        detail = _shown_versions(data, rows)
        if not detail:
            return outcomes, []
        if data.shown_answers is not None:  # read for the index: every page's, and more
            kept = {ModelRef.parse(ref).version for ref in detail}  # of data.model
            return outcomes, [
                r for slug in slugs for r in data.shown_answers.get(slug, []) if r.version in kept
            ]
        return outcomes, pattern_results(
            registry, problems=slugs, model=data.model, versions=detail
        )

    # The next chunk read in a thread while this one is planned and sent: SQLite runs its query
    # without Python's lock, and the main process's reading was the build's longest path.
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(read, chunks[0]) if chunks else None
        for number, chunk in enumerate(chunks):
            assert pending is not None
            read_in, answers = pending.result()
            if number + 1 < len(chunks):
                pending = reader.submit(read, chunks[number + 1])
            yield _reports(data, chunk, by_problem, patterns, signed, read_in, answers)


def _reports(
    data: ReportData,
    chunk: list[ProblemView],
    by_problem: dict[str, list[ProblemVersionMetrics]],
    patterns: dict[str, list[PatternView]],
    signed: Sequence[SignOffView],
    outcomes: Outcomes,
    answers: list[PatternResult],
) -> list[tuple[ProblemReport, list[PatternResult], OutcomeMatrix | None]]:
    """A chunk's problem reports, with each problem's answers and outcomes."""
    gates = data.gates
    slugs = [p.slug for p in chunk]
    results: dict[str, list[PatternResult]] = {}
    stories: dict[str, ProblemTimeline] = {}
    matrices = outcomes or {}
    if data.model is not None and (matrices if outcomes is not None else answers):
        rows = [row for slug in slugs for row in by_problem.get(slug, [])]
        for result in answers:
            results.setdefault(result.problem, []).append(result)
        # From the rows in hand: reading them again was most of a chunk's time.
        told = (
            timelines_from(data.model, rows, answers)
            if outcomes is None
            else timelines_with(data.model, rows, matrix_changes(matrices.values()))
        )
        stories = {t.problem: t for t in with_signoffs(told, signed)}
    return [
        (
            _problem_report(
                data,
                problem,
                by_problem.get(problem.slug, []),
                results.get(problem.slug, []),
                patterns.get(problem.slug, []),
                stories.get(problem.slug),
                gates.get(problem.slug),
            ),
            results.get(problem.slug, []),
            matrices.get(problem.slug),
        )
        for problem in chunk
    ]


def _shown_versions(data: ReportData, rows: Sequence[ProblemVersionMetrics]) -> list[str]:
    """The versions whose answers a page shows or compares: the focus, the champion, and what
    each status line compares the focus with."""
    shown = {data.focus, data.champion}
    if data.focus is not None:
        by_problem: dict[str, list[ProblemVersionMetrics]] = {}
        for row in rows:
            by_problem.setdefault(row.problem, []).append(row)
        shown.update(_compared_with(r, data.focus, data.since) for r in by_problem.values())
    return [v.ref for v in data.versions if v.ref in shown]


def _problem_report(
    data: ReportData,
    problem: ProblemView,
    rows: list[ProblemVersionMetrics],
    results: list[PatternResult],
    patterns: list[PatternView],
    timeline: ProblemTimeline | None,
    gate: GateResult | None,
) -> ProblemReport:
    answers = {r.pattern_id: r for r in results if r.ref == data.focus}
    against = _compared_with(rows, data.focus, data.since) if data.focus else None
    change = changes(results, data.focus, against) if data.focus and against else None
    return ProblemReport(
        problem=problem,
        rows=rows,
        patterns=[
            PatternRow(
                view,
                answers[view.id].got if view.id in answers else None,
                answers[view.id].correct if view.id in answers else None,
            )
            for view in patterns
        ],
        timeline=timeline,
        status=problem_status(
            rows, results, version=data.focus, since=data.since, gate=_gate_words(gate)
        )
        if rows
        else "no model version registered yet",
        gate=gate,
        changed=change is not None and bool(change.fixed or change.broken),
    )


def _gate_words(gate: GateResult | None) -> tuple[str, str] | None:
    """The gate's outcome and deciding rule for the status line; None: no gate, or it passed."""
    if gate is None or gate.outcome is Outcome.PASS:
        return None
    return gate.outcome.value, gate.verdict.rule
