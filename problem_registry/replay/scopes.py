"""Which problems each version replays: a problem naming its models is replayed by theirs only.

Issue 19, item 3: a text model registered beside an image model was replayed on the image
problems and scored 100% wrong. A problem may now name the model(s) it belongs to; replay gives
each version the problems naming no model plus those naming its model. In a registry where no
problem names a model (every registry before), there is one scope, every version x the problems
asked for, so replay takes exactly the paths (and fast paths) it always took.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlmodel import Session

from problem_registry.store.problem_models import models_by_problem
from problem_registry.store.tables import Problem

_PROBLEM = Problem.__table__  # type: ignore[attr-defined]

Scope = tuple[list[int], list[int] | None]
"""Version ids, and the problem ids they replay (None: every problem)."""


def replay_scopes(
    session: Session, versions: Mapping[int, str], problem_ids: Sequence[int] | None
) -> list[Scope]:
    """``versions``: version id -> model name; ``problem_ids``: the problems asked for (None:
    all). Versions whose model would replay the same problems share a scope; a version with no
    problem to replay is in none."""
    links = models_by_problem(session)
    if problem_ids is not None:
        links = {key: names for key, names in links.items() if key in set(problem_ids)}
    every: list[int] = []
    if links and problem_ids is None:
        every = [pid for (pid,) in session.execute(sa.select(_PROBLEM.c.id).order_by("id"))]
    return group_scopes(versions, links, problem_ids, every)


def group_scopes(
    versions: Mapping[int, str],
    links: Mapping[int, Sequence[str]],
    asked: Sequence[int] | None,
    every: Sequence[int],
) -> list[Scope]:
    """:func:`replay_scopes` without the database: ``links`` are the models of the problems that
    name some, ``every`` all problem ids (read only when ``asked`` is None and some problem
    names a model)."""
    chosen = None if asked is None else list(asked)
    if not any(links.get(pid) for pid in (chosen if chosen is not None else links)):
        return [(sorted(versions), chosen)] if versions else []
    pool = chosen if chosen is not None else list(every)
    by_problems: dict[tuple[int, ...], list[int]] = {}
    for version_id, name in sorted(versions.items()):
        mine = tuple(pid for pid in pool if not links.get(pid) or name in links[pid])
        if mine:
            by_problems.setdefault(mine, []).append(version_id)
    return [(ids, list(problems)) for problems, ids in by_problems.items()]
