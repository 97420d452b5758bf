"""Model versions: registered in order, each with how to load it and its headline metrics.

Registration order is the id order, and it is the x axis of every chart: "prior versions" of a
candidate are the versions of the same name registered before it.
"""

from __future__ import annotations

import builtins
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from problem_registry.enums import LoaderKind, PatternKind
from problem_registry.errors import AmbiguousReference, DuplicateModel, InvalidValue, ModelNotFound
from problem_registry.refs import SEPARATOR, ModelRef, format_ref
from problem_registry.store.content import sha256_of_file
from problem_registry.store.tables import ModelMetric, ModelVersion, stored_id
from problem_registry.store.views import ModelVersionView, iso
from problem_registry.text import recording, storable, user_name

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
# Raises when the model cannot be loaded from (kind, loader, artifact, options); see ``register``.
LoadableCheck = Callable[[LoaderKind, str, "Path | None", Mapping[str, Any]], None]
LOADER_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class ModelVersions:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def register(
        self,
        name: str,
        version: str,
        *,
        loader: str,
        loader_kind: LoaderKind = LoaderKind.python,
        artifact: Path | None = None,
        metrics: Mapping[str, float] | None = None,
        note: str = "",
        check: LoadableCheck | None = None,
        options: Mapping[str, Any] | None = None,
        repeats: int = 1,
        input_kind: PatternKind | str | None = None,
    ) -> ModelVersionView:
        """Register after the versions already registered.

        ``check`` (``problem_registry.adapters.check_loadable``, which the CLI always passes)
        refuses a loader that is not usable now, after the duplicate check and before any write;
        the store does not know how models load, so the caller hands it in. ``options`` are the
        adapter's settings (plain JSON data, stored as text; never credentials). ``repeats``
        above 1 marks a model whose answers vary: replay asks it that many times per pattern.
        ``input_kind`` declares the kind of pattern the model takes: its problems then refuse
        other kinds.
        """
        _check_name(name, "model name")
        _check_name(version, "version")
        if loader_kind is LoaderKind.python and not LOADER_PATTERN.match(loader):
            raise InvalidValue(
                f"--loader {loader!r} is not module:callable, e.g. my_models.digits:load"
            )
        storable(note, "the note")
        _check_repeats(repeats, loader_kind)
        kind = _input_kind(input_kind)
        options_text = _options_json(options)
        registered_by = user_name(self._registry.user)
        metric_rows = {key: _metric(key, value) for key, value in (metrics or {}).items()}
        artifact_sha256 = None
        if artifact is not None:
            if not artifact.is_file():
                raise InvalidValue(f"artifact {artifact} is not a file; give the model file")
            artifact_sha256 = sha256_of_file(artifact)
        if check is not None:
            with self._registry.reading() as session:  # a duplicate says so, not "cannot import"
                if _find(session, name, version, missing_ok=True) is not None:
                    raise _duplicate(name, version)
            check(loader_kind, loader, artifact, dict(options or {}))
        row = ModelVersion(
            name=name,
            version=version,
            loader_kind=loader_kind.value,
            loader=loader,
            artifact_path=str(artifact.resolve()) if artifact is not None else None,
            artifact_sha256=artifact_sha256,
            loader_options=options_text,
            repeats=repeats,
            input_kind=kind,
            note=note,
            registered_by=registered_by,
        )
        recording(registered_by)
        try:
            with self._registry.writing() as session:
                if _find(session, name, version, missing_ok=True) is not None:
                    raise _duplicate(name, version)
                session.add(row)
                session.flush()
                session.add_all(
                    ModelMetric(model_version_id=row.id, name=key, value=value)
                    for key, value in sorted(metric_rows.items())
                )
        except IntegrityError:  # a concurrent writer registered it first
            raise _duplicate(name, version) from None
        return self.get(name, version)

    def get(self, name: str, version: str) -> ModelVersionView:
        with self._registry.reading() as session:
            row = _find(session, name, version)
            return _view(row, _metrics(session).get(stored_id(row), {}))

    def list(self, name: str | None = None) -> list[ModelVersionView]:
        """In registration order."""
        with self._registry.reading() as session:
            query = select(ModelVersion).order_by(col(ModelVersion.id))
            if name is not None:
                query = query.where(ModelVersion.name == name)
            rows = list(session.exec(query))
            if name is not None and not rows:
                raise ModelNotFound(f"no model named {name!r}; see `problem-registry model list`")
            metrics = _metrics(session)
            return [_view(row, metrics.get(stored_id(row), {})) for row in rows]

    def promote(self, name: str, version: str) -> ModelVersionView:
        """Make this version the champion of its name; the previous champion steps down."""
        with self._registry.writing() as session:
            row = _find(session, name, version)
            # Demote first and flush: the partial unique index allows one champion at a time.
            session.execute(
                sa.update(ModelVersion)
                .where(col(ModelVersion.name) == name, col(ModelVersion.is_champion))
                .values(is_champion=False)
            )
            session.flush()
            row.is_champion = True
            session.add(row)
        return self.get(name, version)

    def resolve(self, texts: Sequence[str], *, model: str | None = None) -> builtins.list[str]:
        """``NAME@VERSION`` refs for what a user typed: a ref, or a bare version (``v3``).

        A bare version is accepted when only one model (within ``model`` when given) has it, and
        refused as ambiguous otherwise, so ``--version v3`` works in the common one-model registry
        without ever picking the wrong model's ``v3`` in a shared one.
        """
        known = self.list(model)
        refs = {view.ref for view in known}
        where = f" of model {model}" if model else ""
        out = []
        for text in texts:
            if SEPARATOR in text:
                if text not in refs:
                    raise ModelRef.parse(text).not_found(where)
                out.append(text)
                continue
            matches = [view.ref for view in known if view.version == text]
            if not matches:
                raise ModelNotFound(
                    f"no model version {text}{where}; see `problem-registry model list`"
                )
            if len(matches) > 1:
                raise AmbiguousReference(
                    f"version {text!r} exists for several models ({', '.join(matches)}); "
                    "give NAME@VERSION"
                )
            out.append(matches[0])
        return out

    def champion(self, name: str) -> ModelVersionView | None:
        champions = [view for view in self.list(name) if view.is_champion]
        return champions[0] if champions else None


def version_ids(session: Session, refs: Iterable[ModelRef]) -> dict[ModelRef, int]:
    """The ids of ``refs``, in one query; the first one missing raises its "not found" error."""
    wanted = list(dict.fromkeys(refs))
    if not wanted:
        return {}
    table = ModelVersion.__table__  # type: ignore[attr-defined]
    pairs = sa.tuple_(table.c.name, table.c.version)
    query = sa.select(table.c.name, table.c.version, table.c.id).where(
        pairs.in_([(ref.name, ref.version) for ref in wanted])
    )
    found = {ModelRef(name, version): id_ for name, version, id_ in session.execute(query)}
    for ref in wanted:
        if ref not in found:
            raise ref.not_found()
    return found


def parse_metrics(pairs: list[str]) -> dict[str, float]:
    """``KEY=VALUE`` strings from the command line."""
    metrics: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            if not sep:
                raise ValueError
            metrics[key.strip()] = float(value)
        except ValueError:
            raise InvalidValue(f"--metric {pair!r} is not KEY=NUMBER, e.g. auc=0.91") from None
    return metrics


def _options_json(options: Mapping[str, Any] | None) -> str | None:
    """Options as compact JSON text, keys sorted; :class:`InvalidValue` if not plain JSON data."""
    if not options:
        return None
    try:
        text = json.dumps(dict(options), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidValue(f"loader options are not plain JSON data ({exc})") from None
    storable(text, "the loader options")
    return text


def loader_options(text: str | None) -> dict[str, Any]:
    """The stored options of a version, as a dict (empty when it has none)."""
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


MAX_REPEATS = 50


def _check_repeats(repeats: int, kind: LoaderKind) -> None:
    """A predictions file holds one answer per pattern: asking it again tells nothing."""
    if not 1 <= repeats <= MAX_REPEATS:
        raise InvalidValue(f"--repeats must be between 1 and {MAX_REPEATS}, got {repeats}")
    if repeats > 1 and kind is LoaderKind.predictions:
        raise InvalidValue("--repeats needs a model to ask; a predictions file has one answer each")


def _input_kind(kind: PatternKind | str | None) -> str | None:
    if kind is None:
        return None
    try:
        return PatternKind(kind).value
    except ValueError:
        choices = ", ".join(k.value for k in PatternKind)
        raise InvalidValue(f"input kind {kind!r} is not one of {choices}") from None


def _check_name(value: str, what: str) -> None:
    if not NAME_PATTERN.match(value or ""):
        raise InvalidValue(
            f"{what} {value!r} is not valid; use letters, digits and . _ + - (no spaces or @), "
            "up to 100 characters"
        )


def _metric(key: str, value: float) -> float:
    if not NAME_PATTERN.match(key or ""):
        raise InvalidValue(f"metric name {key!r} is not valid; use letters, digits and . _ + -")
    if not math.isfinite(value):
        raise InvalidValue(f"metric {key}={value} is not a finite number")
    return float(value)


def _duplicate(name: str, version: str) -> DuplicateModel:
    return DuplicateModel(
        f"model {format_ref(name, version)} is already registered; register a new version instead"
    )


@overload
def _find(
    session: Session, name: str, version: str, *, missing_ok: Literal[False] = False
) -> ModelVersion: ...
@overload
def _find(
    session: Session, name: str, version: str, *, missing_ok: bool
) -> ModelVersion | None: ...
def _find(
    session: Session, name: str, version: str, *, missing_ok: bool = False
) -> ModelVersion | None:
    query = select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
    row: ModelVersion | None = session.exec(query).first()
    if row is None and not missing_ok:
        raise ModelRef(name, version).not_found()
    return row


def _metrics(session: Session) -> dict[int, dict[str, float]]:
    metrics: dict[int, dict[str, float]] = {}
    for row in session.exec(select(ModelMetric).order_by(ModelMetric.name)):
        metrics.setdefault(row.model_version_id, {})[row.name] = row.value
    return metrics


def _view(row: ModelVersion, metrics: dict[str, float]) -> ModelVersionView:
    return ModelVersionView(
        name=row.name,
        version=row.version,
        ref=format_ref(row.name, row.version),
        loader_kind=row.loader_kind,
        loader=row.loader,
        artifact_path=row.artifact_path,
        artifact_sha256=row.artifact_sha256,
        loader_options=loader_options(row.loader_options),
        repeats=row.repeats,
        input_kind=row.input_kind,
        is_champion=row.is_champion,
        metrics=metrics,
        note=row.note,
        registered_by=row.registered_by,
        registered_at=iso(row.registered_at),
    )
