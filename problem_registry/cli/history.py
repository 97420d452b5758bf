"""A problem's story across versions, in the terminal: ``problem show``'s history (issue 19).

One table per model the problem belongs to, from :mod:`problem_registry.verdicts.timeline`:
a row per version (right of answered, the limit met or missed, the patterns fixed and broken
since the version before, a lead's sign-off), titled with the story in one line.
"""

from __future__ import annotations

from typing import Any

from problem_registry.cli.context import percent, print_table
from problem_registry.store.registry import Registry
from problem_registry.store.views import ProblemView
from problem_registry.verdicts.timeline import ProblemTimeline, TimelinePoint, timelines

MAX_NAMES = 3  # pattern files named in a cell; more are counted


def problem_history(reg: Registry, problem: ProblemView) -> list[ProblemTimeline]:
    """The problem's timeline on each of its models (every model when it names none)."""
    names = problem.models or list(dict.fromkeys(view.name for view in reg.models.list()))
    known = {view.name for view in reg.models.list()}
    return [
        story
        for name in names
        if name in known
        for story in timelines(reg, model=name, problems=[problem.slug])
    ]


def print_history(story: ProblemTimeline) -> None:
    print_table(
        f"history on {story.model}: {story.describe()}",
        ["version", "right", "error", "limit", "fixed", "broken", "signed off"],
        (_row(story, point) for point in story.points),
        empty=f"no versions of {story.model} yet",
    )


def history_dict(story: ProblemTimeline) -> dict[str, Any]:
    """The JSON of ``problem show --json``'s history."""
    return {
        "model": story.model,
        "story": story.describe(),
        "events": [{"event": kind, "version": version} for kind, version in story.events],
        "points": [
            {
                "version": p.version,
                "patterns": p.patterns,
                "answered": p.answered,
                "wrong": p.wrong,
                "error_rate": p.error_rate,
                "passing": p.passing,
                "previous": p.previous,
                "fixed": p.fixed,
                "broken": p.broken,
            }
            for p in story.points
        ],
        "signoffs": [view.to_dict() for view in story.signoffs],
    }


def _row(story: ProblemTimeline, point: TimelinePoint) -> list[str]:
    signed = story.signed(point.version)
    if not point.answered:
        limit = "-"
    elif point.max_error_rate is None:
        limit = "all right" if point.passing else "some wrong"
    else:
        limit = "meets" if point.passing else "misses"
    return [
        point.version,
        f"{point.answered - point.wrong}/{point.answered}" if point.answered else "-",
        percent(point.error_rate),
        limit,
        _names(point.fixed),
        _names(point.broken),
        f"by {signed.signed_by}{': ' + signed.note if signed.note else ''}" if signed else "",
    ]


def _names(files: list[str]) -> str:
    if len(files) <= MAX_NAMES:
        return ", ".join(files)
    return f"{', '.join(files[:MAX_NAMES])} +{len(files) - MAX_NAMES}"
