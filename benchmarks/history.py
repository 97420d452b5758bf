"""(d), (g), (h) on a big history: P problems x 15 patterns x M versions, every result stored.

The registry comes from ``synthetic.build_registry`` (results bulk-inserted, ~1% left missing),
with the bench model registered as every version; an in-process replay then predicts the missing
~1%, so the registry is complete and a warm replay truly has nothing to do.

(g) is the floor of the report: one raw SQL ``GROUP BY`` over every result, scoring each answer
against its pattern's expectation (exact and any-of: the answer is one of the expected labels;
not: there is an answer and it is none of them; range: its value lies within; an error is wrong),
run with the driver alone. The same text runs on SQLite and PostgreSQL (``postgres.py``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from measure import ChildFailed, cli, median_seconds, run_child
from replay import MODEL_NAME, write_model

# The expected labels are outer-joined on (pattern, predicted label), their primary key, so at
# most one matches: the plain way to write it, and on PostgreSQL the fastest (a hash join; an
# EXISTS per row was ~1.4x slower there). SQLite gives the same numbers either way.
ERROR_RATES_SQL = """
SELECT p.problem_id, r.model_version_id, count(*) AS answered, sum(
  CASE
    WHEN r.error IS NOT NULL THEN 1
    WHEN p.expect_kind = 'range' THEN
      CASE WHEN r.value BETWEEN p.expect_min AND p.expect_max THEN 0 ELSE 1 END
    WHEN p.expect_kind = 'not' THEN
      CASE WHEN r.predicted IS NULL OR e.label IS NOT NULL THEN 1 ELSE 0 END
    ELSE CASE WHEN e.label IS NULL THEN 1 ELSE 0 END
  END) AS wrong
FROM pattern p JOIN result r ON r.file_id = p.file_id
LEFT JOIN expected_label e ON e.pattern_id = p.id AND e.label = r.predicted
GROUP BY p.problem_id, r.model_version_id
"""


@dataclass(frozen=True)
class History:
    database: Path
    problems: int
    versions: int
    results: int
    build_s: float


@dataclass(frozen=True)
class HistoryTimes:
    warm_replay_s: float
    raw_group_by_s: float
    groups: int
    report_json_s: float
    report_html_s: float | None
    html_note: str


def build(workdir: Path, problems: int, versions: int) -> History:
    """The complete history registry in ``workdir`` (see the module's docstring)."""
    from synthetic import build_registry

    from problem_registry.replay.engine import replay

    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    weights = write_model(workdir, versions, cost_ms=0.0)
    database = workdir / "registry.db"
    built = build_registry(
        workdir,
        f"sqlite:///{database}",
        problems,
        versions,
        model=MODEL_NAME,
        loader="bench_model:load",
        artifact=lambda v: weights[v],
    )
    try:
        completed = replay(built.registry, trigger="benchmark")
    finally:
        built.registry.close()
    if completed.unavailable or completed.refused:
        raise ChildFailed(f"the history registry could not be completed: {completed.to_dict()}")
    return History(
        database,
        problems,
        versions,
        built.results + completed.predicted,
        time.perf_counter() - started,
    )


def measure(history: History, repeats: int, html: bool, html_timeout: float) -> HistoryTimes:
    url = f"sqlite:///{history.database}"
    folder = history.database.parent
    warm = median_seconds(repeats, lambda: _warm_replay(url, folder))
    groups: list[int] = []
    raw = median_seconds(repeats, lambda: _group_by(history.database, groups))
    report = median_seconds(
        repeats, lambda: run_child([cli(), "--url", url, "report", "--json"], cwd=folder).seconds
    )
    html_s, note = None, "skipped (--no-html)"
    if html:
        try:
            out = folder / "report-html"
            args = [cli(), "--url", url, "report", "--html", str(out)]
            html_s = run_child(args, cwd=folder, timeout=html_timeout).seconds
            note = f"{sum(1 for _ in out.rglob('*'))} files written"
        except ChildFailed as exc:
            note = str(exc).splitlines()[0][:300]
    return HistoryTimes(warm, raw, groups[-1], report, html_s, note)


def _warm_replay(url: str, folder: Path) -> float:
    child = run_child([cli(), "--url", url, "replay", "--all", "--json"], cwd=folder)
    summary = json.loads(child.stdout)
    loaded = [v["ref"] for v in summary["versions"] if v["status"] != "up-to-date"]
    if summary["predicted"] or loaded:
        raise ChildFailed(f"the warm replay was not warm: {summary['predicted']} predicted")
    return child.seconds


def _group_by(database: Path, groups: list[int]) -> float:
    with closing(sqlite3.connect(database)) as connection:
        started = time.perf_counter()
        rows = connection.execute(ERROR_RATES_SQL).fetchall()
        seconds = time.perf_counter() - started
    groups.append(len(rows))
    return seconds
