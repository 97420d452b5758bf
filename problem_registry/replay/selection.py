"""Which versions and problems a replay covers: refs resolved to registered versions, and
problem slugs to ids, each in one query."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select

from problem_registry.refs import ModelRef, RefLike, format_ref
from problem_registry.store.registry import Registry
from problem_registry.store.tables import ModelVersion, Problem


@dataclass(frozen=True)
class ReplayVersion:
    """A registered version as replay loads it: how, from where, how many answers a pattern."""

    id: int
    name: str
    version: str
    loader_kind: str
    loader: str
    artifact_path: str | None
    artifact_sha256: str | None
    loader_options: str | None
    repeats: int

    @property
    def ref(self) -> str:
        return format_ref(self.name, self.version)


def prior_versions(registry: Registry, candidate: RefLike) -> list[str]:
    """The refs of the candidate's model registered before it, oldest first: its history."""
    ref = ModelRef.of(candidate)
    refs = [view.ref for view in registry.models.list(ref.name)]
    if str(ref) not in refs:
        raise ref.not_found()
    return refs[: refs.index(str(ref))]


def resolve_versions(
    registry: Registry, versions: Iterable[RefLike] | None, candidate: RefLike | None
) -> tuple[list[ReplayVersion], ReplayVersion | None]:
    table = ModelVersion.__table__  # type: ignore[attr-defined]
    columns = (
        "id",
        "name",
        "version",
        "loader_kind",
        "loader",
        "artifact_path",
        "artifact_sha256",
        "loader_options",
        "repeats",
    )
    with registry.reading() as session:
        # Columns, not ORM objects: the ORM's first query alone cost ~0.1 s of every replay.
        query = sa.select(*(table.c[name] for name in columns)).order_by(table.c.id)
        rows = list(session.execute(query))
    by_ref = {ModelRef(row.name, row.version): row for row in rows}
    wanted = list(by_ref) if versions is None else [ModelRef.of(ref) for ref in versions]
    if candidate is not None:
        wanted.append(ModelRef.of(candidate))
    chosen: dict[int, ReplayVersion] = {}
    for ref in wanted:
        row = by_ref.get(ref)
        if row is None:
            raise ref.not_found()
        chosen[row.id] = ReplayVersion(
            row.id,
            row.name,
            row.version,
            row.loader_kind,
            row.loader,
            row.artifact_path,
            row.artifact_sha256,
            row.loader_options,
            row.repeats,
        )
    found = None
    if candidate is not None:
        key = ModelRef.of(candidate)
        found = next(v for v in chosen.values() if ModelRef(v.name, v.version) == key)
    return [chosen[key] for key in sorted(chosen)], found


def problem_ids_of(registry: Registry, problems: Sequence[str] | None) -> list[int] | None:
    if problems is None:
        return None
    from problem_registry.store.problems import find_problem

    wanted = set(problems)
    with registry.reading() as session:
        # One query for every slug (pytest --registry passes them all), not one per slug.
        query = select(Problem.slug, Problem.id).where(col(Problem.slug).in_(wanted))
        found = dict(session.exec(query).all()) if wanted else {}
        for slug in problems:
            if slug not in found:
                find_problem(session, slug)  # raises ProblemNotFound, worded once, there
    return [found[slug] for slug in problems]
