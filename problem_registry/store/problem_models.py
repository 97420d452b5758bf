"""Which models a problem belongs to, and which kinds of input its patterns may be.

A problem names the model(s) it belongs to (issue 19, item 3): replay predicts its patterns only
with those models' versions, and reports and gates judge it only on them. A problem naming none
belongs to every model, as every problem did before. A model may declare the kind of input it
takes (``model register --input-kind image``); a problem's patterns must then be of that kind.
Without a declaration, a problem whose patterns are all of one kind keeps to it: a Python file
added as a "text" pattern to a problem of images is refused (item 9).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from problem_registry.enums import PatternKind
from problem_registry.errors import CorruptPattern, InvalidValue
from problem_registry.store.tables import ModelVersion, Pattern, PatternFile, ProblemModel

_LINK = ProblemModel.__table__  # type: ignore[attr-defined]
_VERSION = ModelVersion.__table__  # type: ignore[attr-defined]
_PATTERN = Pattern.__table__  # type: ignore[attr-defined]
_FILE = PatternFile.__table__  # type: ignore[attr-defined]

# How a kind reads in a message: "images", "text files", "JSON files".
_PLURAL = {"image": "images", "text": "text files", "json": "JSON files"}
_ONE = {"image": "an image", "text": "a text file", "json": "a JSON file"}


def models_by_problem(session: Session) -> dict[int, tuple[str, ...]]:
    """Every problem's model names (sorted), by problem id; problems naming none are absent."""
    query = sa.select(_LINK.c.problem_id, _LINK.c.model_name).order_by(
        _LINK.c.problem_id, _LINK.c.model_name
    )
    out: dict[int, list[str]] = {}
    for problem_id, name in session.execute(query):
        out.setdefault(problem_id, []).append(name)
    return {key: tuple(names) for key, names in out.items()}


def set_models(session: Session, problem_id: int, names: Sequence[str]) -> None:
    """Replace the problem's models with ``names`` (already validated)."""
    session.execute(sa.delete(_LINK).where(_LINK.c.problem_id == problem_id))
    if names:
        session.execute(
            sa.insert(_LINK), [{"problem_id": problem_id, "model_name": n} for n in names]
        )


def declared_kinds(session: Session, names: Iterable[str]) -> dict[str, str]:
    """The input kind each named model declares (its newest version that declares one)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    query = (
        sa.select(_VERSION.c.name, _VERSION.c.input_kind)
        .where(_VERSION.c.name.in_(wanted), _VERSION.c.input_kind.is_not(None))
        .order_by(_VERSION.c.id)
    )
    return dict(session.execute(query).all())  # later versions overwrite earlier ones


def pattern_kinds(session: Session, problem_id: int) -> set[str]:
    """The kinds of the problem's patterns."""
    query = (
        sa.select(_FILE.c.kind)
        .distinct()
        .join(_PATTERN, _PATTERN.c.file_id == _FILE.c.id)
        .where(_PATTERN.c.problem_id == problem_id)
    )
    return {kind for (kind,) in session.execute(query)}


@dataclass(frozen=True)
class KindRule:
    """The kinds of input a problem takes, and why (for the refusal's message)."""

    kinds: frozenset[str]
    because: str

    def check(self, slug: str, items: Iterable[tuple[str, str]]) -> None:
        """Refuse the first ``(name, kind)`` whose kind the problem does not take, in one line."""
        for name, kind in items:
            if kind in self.kinds:
                continue
            takes = " or ".join(_PLURAL.get(k, k) for k in sorted(self.kinds))
            hint = ""
            if self.kinds == {PatternKind.image.value}:
                hint = " (PNG, JPEG, GIF, BMP, TIFF, WebP or PPM that decode)"
            raise CorruptPattern(
                f"{name} is {_ONE.get(kind, kind)}, but problem {slug} takes only {takes}{hint}: "
                f"{self.because}; give a file of that kind"
            )


def kind_rule(session: Session, problem_id: int, models: Sequence[str]) -> KindRule | None:
    """What the problem accepts: its models' declared kinds, else the one kind its patterns have;
    None when nothing constrains it (no declaration, no pattern yet, or patterns of mixed kinds)."""
    declared = declared_kinds(session, models)
    if declared:
        said = ", ".join(f"model {name} takes {_PLURAL[kind]}" for name, kind in declared.items())
        return KindRule(frozenset(declared.values()), said)
    kinds = pattern_kinds(session, problem_id)
    if len(kinds) == 1:
        (kind,) = kinds
        return KindRule(frozenset(kinds), f"its patterns are {_PLURAL.get(kind, kind)}")
    return None


def check_models_fit(session: Session, slug: str, problem_id: int, models: Sequence[str]) -> None:
    """Refuse naming models whose declared input kind the problem's patterns do not have."""
    declared = declared_kinds(session, models)
    present = pattern_kinds(session, problem_id)
    for name, kind in declared.items():
        other = sorted(present - {kind})
        if other:
            raise InvalidValue(
                f"model {name} takes {_PLURAL[kind]}, but problem {slug} holds "
                f"{', '.join(_PLURAL.get(k, k) for k in other)}; give the model(s) its patterns "
                "fit, or remove those patterns first"
            )


def validate_model_names(names: Iterable[str]) -> list[str]:
    """Model names as a problem stores them: sorted, once each, each a valid model name."""
    from problem_registry.store.model_versions import NAME_PATTERN

    cleaned = sorted({name.strip() for name in names if name.strip()})
    for name in cleaned:
        if not NAME_PATTERN.fullmatch(name):
            raise InvalidValue(
                f"model name {name!r} is not valid; use letters, digits and . _ + - (no spaces "
                "or @), up to 100 characters: the NAME of `model register NAME VERSION`"
            )
    return cleaned


def check_pattern_kinds(session: Session, slug: str, items: Iterable[tuple[str, str]]) -> None:
    """Refuse new patterns (``(name, kind)``) whose kind the problem does not take (item 9)."""
    from problem_registry.store.problems import find_problem
    from problem_registry.store.tables import stored_id

    problem_id = stored_id(find_problem(session, slug))
    rule = kind_rule(session, problem_id, models_by_problem(session).get(problem_id, ()))
    if rule is not None:
        rule.check(slug, items)
