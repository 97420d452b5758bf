"""Problems: named weaknesses of a model, each with its gates."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from problem_registry.enums import Polarity, ProblemStatus
from problem_registry.errors import DuplicateProblem, InvalidValue, ProblemNotFound
from problem_registry.store.problem_models import (
    check_models_fit,
    models_by_problem,
    set_models,
    validate_model_names,
)
from problem_registry.store.tables import Pattern, Problem, stored_id, utcnow
from problem_registry.store.views import ProblemView, iso
from problem_registry.text import is_storable, storable

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_SLUG_LENGTH = 100
MAX_ALLOWED_REGRESSIONS = 2**31 - 1
_UNSET: Any = object()


class Problems:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def add(
        self,
        slug: str,
        *,
        title: str | None = None,
        description: str = "",
        tags: Sequence[str] = (),
        max_error_rate: float | None = None,
        allowed_regressions: int = 0,
        models: Sequence[str] = (),
    ) -> ProblemView:
        """``models``: the model names the problem belongs to (none: every model)."""
        slug = validate_slug(slug)
        names = validate_model_names(models)
        problem = Problem(
            slug=slug,
            title=validate_title(title, slug),
            description=validate_description(description),
            tags=normalise_tags(tags),
            max_error_rate=validate_error_rate(max_error_rate),
            allowed_regressions=validate_allowed_regressions(allowed_regressions),
        )
        try:
            with self._registry.writing() as session:
                if session.exec(select(Problem.id).where(Problem.slug == slug)).first():
                    raise _duplicate(slug)
                session.add(problem)
                session.flush()
                set_models(session, stored_id(problem), names)
        except IntegrityError:  # a concurrent writer won the race for this slug
            raise _duplicate(slug) from None
        return self.get(slug)

    def get(self, slug: str) -> ProblemView:
        with self._registry.reading() as session:
            problem = find_problem(session, slug)
            key = stored_id(problem)
            models = models_by_problem(session).get(key, ())
            return _view(problem, _pattern_counts(session).get(key, {}), models)

    def list(self, *, status: str | None = None, tag: str | None = None) -> list[ProblemView]:
        """Sorted by slug, so every process (every xdist worker) sees the same order."""
        with self._registry.reading() as session:
            query = select(Problem).order_by(Problem.slug)
            if status is not None:
                query = query.where(Problem.status == validate_status(status))
            problems = [p for p in session.exec(query) if tag is None or tag in p.tags]
            counts = _pattern_counts(session)
            models = models_by_problem(session)
            return [
                _view(p, counts.get(stored_id(p), {}), models.get(stored_id(p), ()))
                for p in problems
            ]

    def statuses(self) -> dict[str, ProblemStatus]:
        """Every problem's status by slug, in slug order, from one query: what choosing problems
        needs, without the cost of :meth:`list`, which builds every problem's full view."""
        with self._registry.reading() as session:
            rows = session.exec(select(Problem.slug, Problem.status).order_by(Problem.slug)).all()
        return {slug: ProblemStatus(status) for slug, status in rows}

    def tags(self) -> dict[str, tuple[str, ...]]:
        """Every problem's tags by slug, in slug order, from one query (as :meth:`statuses`):
        what the pytest plugin makes markers of."""
        with self._registry.reading() as session:
            rows = session.exec(select(Problem.slug, Problem.tags).order_by(Problem.slug)).all()
        return {slug: tuple(tags or ()) for slug, tags in rows}

    def models(self) -> dict[str, tuple[str, ...]]:
        """The model names of each problem naming some, by slug, from one query (as
        :meth:`statuses`); a problem naming none belongs to every model and is absent."""
        with self._registry.reading() as session:
            slugs = dict(session.exec(select(Problem.id, Problem.slug)).all())
            return {slugs[key]: names for key, names in models_by_problem(session).items()}

    def edit(
        self,
        slug: str,
        *,
        title: str | None = _UNSET,
        description: str = _UNSET,
        status: str = _UNSET,
        tags: Sequence[str] = _UNSET,
        max_error_rate: float | None = _UNSET,
        allowed_regressions: int = _UNSET,
        models: Sequence[str] = _UNSET,
    ) -> ProblemView:
        """Change only the fields given; ``max_error_rate=None`` removes the canary gate;
        ``models=[]`` makes the problem belong to every model again."""
        changes: dict[str, Any] = {}
        if title is not _UNSET:
            changes["title"] = validate_title(title, slug)
        if description is not _UNSET:
            changes["description"] = validate_description(description)
        if status is not _UNSET:
            changes["status"] = validate_status(status)
        if tags is not _UNSET:
            changes["tags"] = normalise_tags(tags)
        if max_error_rate is not _UNSET:
            changes["max_error_rate"] = validate_error_rate(max_error_rate)
        if allowed_regressions is not _UNSET:
            changes["allowed_regressions"] = validate_allowed_regressions(allowed_regressions)
        names = None if models is _UNSET else validate_model_names(models)
        with self._registry.writing() as session:
            problem = find_problem(session, slug)
            changed = {k: v for k, v in changes.items() if getattr(problem, k) != v}
            for key, value in changed.items():
                setattr(problem, key, value)
            if names is not None:
                problem_id = stored_id(problem)
                if list(models_by_problem(session).get(problem_id, ())) != names:
                    check_models_fit(session, problem.slug, problem_id, names)
                    set_models(session, problem_id, names)
                    changed["models"] = names
            if changed:
                problem.updated_at = utcnow()
                session.add(problem)
        return self.get(slug)

    def retire(self, slug: str) -> ProblemView:
        """Retired problems keep their patterns and history but no longer gate a candidate."""
        return self.edit(slug, status=ProblemStatus.retired.value)


def find_problem(session: Session, slug: str | None) -> Problem:
    # A slug no backend can store (NUL, a lone surrogate) names no problem, and must not reach
    # the driver, which would fail with a traceback.
    problem: Problem | None = None
    if slug is not None and is_storable(slug):
        problem = session.exec(select(Problem).where(Problem.slug == slug)).first()
    if problem is None:
        raise ProblemNotFound(
            f"no problem {slug!r}; see `problem-registry problem list`, or add it with "
            f"`problem-registry problem add {slug}`"
        )
    return problem


def validate_slug(slug: str) -> str:
    # fullmatch: with match, "$" also accepts a slug ending in a newline.
    if not SLUG_PATTERN.fullmatch(slug or "") or len(slug) > MAX_SLUG_LENGTH:
        raise InvalidValue(
            f"{slug!r} is not a valid problem slug; use lowercase letters, digits and single "
            "hyphens, e.g. chihuahua-vs-muffin"
        )
    return slug


def validate_status(status: str) -> str:
    try:
        return ProblemStatus(status).value
    except ValueError:
        choices = ", ".join(s.value for s in ProblemStatus)
        raise InvalidValue(f"{status!r} is not a problem status; use one of {choices}") from None


def validate_error_rate(value: float | None) -> float | None:
    if value is None:
        return None
    if not 0.0 <= value <= 1.0:
        raise InvalidValue(
            f"max error rate {value} is outside 0..1; give a fraction, e.g. 0.2 for 20%"
        )
    return float(value)


def validate_allowed_regressions(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"allowed regressions {value!r} is not a whole number; give 0 or more")
    if value < 0:
        raise InvalidValue(f"allowed regressions {value} is negative; give 0 or more")
    if value > MAX_ALLOWED_REGRESSIONS:
        # PostgreSQL's INTEGER holds no more; a larger number would fail inside the transaction.
        raise InvalidValue(
            f"allowed regressions {value} is over {MAX_ALLOWED_REGRESSIONS:,}; to gate nothing, "
            "retire the problem instead"
        )
    return value


def normalise_tags(tags: Sequence[str]) -> list[str]:
    cleaned = sorted({tag.strip().lower() for tag in tags if tag.strip()})
    for tag in cleaned:
        if len(tag) > 50 or any(ord(ch) < 32 for ch in tag):
            raise InvalidValue(f"tag {tag!r} is too long or holds control characters")
        storable(tag, f"tag {tag!r}")
    return cleaned


def validate_title(title: str | None, slug: str) -> str:
    """The title as given, or one made from the slug when it is empty."""
    chosen = (title or "").strip() or slug.replace("-", " ").capitalize()
    if len(chosen) > 200:
        raise InvalidValue("a problem title is at most 200 characters")
    return storable(chosen, "the problem title")


def validate_description(description: str) -> str:
    return storable(description, "the problem description")


def _duplicate(slug: str) -> DuplicateProblem:
    return DuplicateProblem(
        f"problem {slug} already exists; pick another slug, or change it with `problem edit {slug}`"
    )


def _pattern_counts(session: Session) -> dict[int, dict[str, int]]:
    query = select(Pattern.problem_id, Pattern.polarity, sa.func.count()).group_by(
        col(Pattern.problem_id), col(Pattern.polarity)
    )
    counts: dict[int, dict[str, int]] = {}
    for owner, polarity, count in session.exec(query):
        counts.setdefault(owner, {})[polarity] = count
    return counts


def _view(problem: Problem, counts: dict[str, int], models: Sequence[str] = ()) -> ProblemView:
    positives = counts.get(Polarity.positive.value, 0)
    negatives = counts.get(Polarity.negative.value, 0)
    return ProblemView(
        slug=problem.slug,
        title=problem.title,
        description=problem.description,
        status=problem.status,
        tags=list(problem.tags),
        models=list(models),
        max_error_rate=problem.max_error_rate,
        allowed_regressions=problem.allowed_regressions,
        patterns=positives + negatives,
        positives=positives,
        negatives=negatives,
        created_at=iso(problem.created_at),
        updated_at=iso(problem.updated_at),
    )
