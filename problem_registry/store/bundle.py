"""Registry as code: problems and patterns exported to a folder a team keeps in git, and back.

A bundle ``DIR`` holds three things, all written by :func:`export_bundle`::

    DIR/bundle.json                {"format": "problem-registry-bundle", "version": 1,
                                    "problems": [sorted slugs]}
    DIR/problems/<slug>.json       one manifest per problem: its fields and gates, and its patterns
                                   sorted by sha256 (hash, file, kind, expectation, polarity,
                                   provenance)
    DIR/files/<aa>/<sha256>.<ext>  the pattern files, laid out exactly like the pattern store, so
                                   ``DIR/files`` can also serve as a registry's ``patterns_dir``

JSON is written with sorted keys, two-space indent, UTF-8 and a final newline, so exporting twice
gives identical bytes and a new pattern shows in a pull request as a few added lines. Model
versions, runs and results are not exported: they are the database's history, not its definition.

A bundle is data only: JSON is parsed, never unpickled or executed; every path must stay inside
``DIR``; symbolic and hard links are refused (a hard link can bring in any file of the disk without
any path saying so).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from problem_registry.config import max_pattern_bytes
from problem_registry.enums import PatternKind
from problem_registry.errors import BundleError, CorruptPattern, UnsafePath
from problem_registry.expectations import Expectation
from problem_registry.store.bundle_format import (
    BUNDLE_FILE,
    FILES_DIR,
    FORMAT,
    MANIFEST_DIR,
    MAX_MANIFEST_BYTES,
    VERSION,
    Bundle,
    BundledProblem,
    Progress,
    entries,
    read_bundle,
    read_plain,
)
from problem_registry.store.content import (
    InspectedContent,
    StoredFile,
    is_sha256,
    sha256_of,
    sha256_of_file,
)
from problem_registry.store.expectation_rows import (
    expectation_columns,
    expectation_of,
    write_labels,
)
from problem_registry.store.patterns import file_ids_for
from problem_registry.store.problem_models import models_by_problem, set_models
from problem_registry.store.problems import SLUG_PATTERN
from problem_registry.store.prune import prunable, remove_patterns
from problem_registry.store.tables import (
    ExpectedLabel,
    Pattern,
    PatternFile,
    Problem,
    stored_id,
    utcnow,
)
from problem_registry.store.unreferenced import discard_unreferenced, discard_unused
from problem_registry.store.views import PatternView, ProblemView, iso
from problem_registry.text import recording, user_name

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry

__all__ = [
    "Bundle",
    "ExportSummary",
    "ImportSummary",
    "export_bundle",
    "import_bundle",
    "read_bundle",
]
_TEMP_PREFIX = ".bundle-incoming-"


@dataclass(frozen=True)
class ExportSummary:
    """What an export did; ``written`` empty means the folder already matched the registry."""

    directory: str
    problems: int
    patterns: int
    files: int
    written: list[str] = field(default_factory=list)  # created or rewritten, relative to DIR
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ImportSummary:
    """What an import did; a second import of the same bundle reports ``changed`` False."""

    directory: str
    problems_created: int = 0
    problems_updated: int = 0
    problems_unchanged: int = 0
    patterns_created: int = 0
    patterns_updated: int = 0
    patterns_unchanged: int = 0
    files_written: int = 0
    files_present: int = 0
    # ``import --prune`` (issue 19, item 9): the patterns removed, or to remove with ``dry_run``.
    patterns_removed: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.problems_created + self.problems_updated + self.patterns_created
                    + self.patterns_updated + self.files_written
                    + len(self.patterns_removed) * (not self.dry_run))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "changed": self.changed}


# --------------------------------------------------------------------------------------------
# Export


def export_bundle(
    registry: Registry, directory: Path, *, progress: Progress | None = None
) -> ExportSummary:
    """Make ``directory`` mirror the registry's problems and patterns; rewrite only what changed.

    Files are written first, manifests next and ``bundle.json`` last, each atomically, so an
    interrupted export is repaired by running it again. Then the bundle's own entries that the
    registry no longer has are removed: ``problems/<slug>.json`` and ``files/<aa>/<sha256>.<ext>``
    (names only an export gives). Anything else in ``directory`` (a README, ``.gitattributes``,
    other folders) is left alone. A folder with such entries but no ``bundle.json`` is refused
    rather than pruned: it is not ours. Every file is read back from the store through its hash
    check, so a bundle never carries a tampered file. Problems and patterns are read in two
    queries: a pattern added between them by another writer waits for the next export.
    """
    directory = Path(directory)
    _prepare_target(directory)
    problems = registry.problems.list()
    by_problem: dict[str, list[PatternView]] = {}
    for view in registry.patterns.list():
        by_problem.setdefault(view.problem, []).append(view)
    files = {f"{FILES_DIR}/{view.file}": view for views in by_problem.values() for view in views}
    written: list[str] = []
    for done, (relative, view) in enumerate(sorted(files.items()), start=1):
        data = registry.store.read(view.sha256, PurePosixPath(view.file).suffix[1:])
        if _write_if_changed(directory, relative, data):
            written.append(relative)
        if progress is not None:
            progress(done, len(files))
    for problem in problems:
        relative = f"{MANIFEST_DIR}/{problem.slug}.json"
        manifest = _manifest(problem, by_problem.get(problem.slug, []))
        if _write_if_changed(directory, relative, _dumps(manifest)):
            written.append(relative)
    index = {"format": FORMAT, "version": VERSION, "problems": [p.slug for p in problems]}
    if _write_if_changed(directory, BUNDLE_FILE, _dumps(index)):
        written.append(BUNDLE_FILE)
    keep = {*files, BUNDLE_FILE, *(f"{MANIFEST_DIR}/{p.slug}.json" for p in problems)}
    removed = [relative for relative in sorted(_owned(directory)) if relative not in keep]
    for relative in removed:
        with _writing(directory / relative):
            (directory / relative).unlink(missing_ok=True)
    _remove_empty_fan_out(directory)
    total = len(keep)
    return ExportSummary(
        directory=str(directory),
        problems=len(problems),
        patterns=sum(len(views) for views in by_problem.values()),
        files=len(files),
        written=written,
        removed=[r for r in removed if not PurePosixPath(r).name.startswith(_TEMP_PREFIX)],
        unchanged=total - len(written),
    )


def _manifest(problem: ProblemView, patterns: list[PatternView]) -> dict[str, Any]:
    return {
        "slug": problem.slug,
        "title": problem.title,
        "description": problem.description,
        "status": problem.status,
        "tags": sorted(problem.tags),
        "max_error_rate": problem.max_error_rate,
        "allowed_regressions": problem.allowed_regressions,
        # Only when it names some: bundles of problems belonging to every model stay as they were.
        **({"models": sorted(problem.models)} if problem.models else {}),
        "patterns": [
            {
                "sha256": view.sha256,
                "file": f"{FILES_DIR}/{view.file}",
                "kind": view.kind,
                "original_name": view.original_name,
                "expect": view.expect,
                "polarity": view.polarity,
                "source": view.source,
                "note": view.note,
                "added_by": view.added_by,
                "added_at": view.added_at,
            }
            for view in sorted(patterns, key=lambda v: v.sha256)
        ],
    }


def _dumps(document: object) -> bytes:
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def _prepare_target(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise BundleError(f"{directory} is not a folder; export into a new or existing bundle")
    index = directory / BUNDLE_FILE
    if index.exists() or index.is_symlink():
        data = read_plain(index, f"{index}", max_bytes=MAX_MANIFEST_BYTES)
        # A merge conflict can garble bundle.json; it is still ours if it names our format.
        if FORMAT.encode() not in data:
            raise BundleError(
                f"{index} is not a problem-registry bundle; export into an empty folder"
            )
        try:
            version = json.loads(data).get("version", VERSION)
        except (ValueError, AttributeError, RecursionError):
            version = VERSION
        if isinstance(version, int) and version > VERSION:
            raise BundleError(
                f"{index} is format version {version}, written by a newer problem-registry; "
                "upgrade problem-registry before exporting into it"
            )
    elif _owned(directory):
        raise BundleError(
            f"{directory} holds {MANIFEST_DIR}/ or {FILES_DIR}/ entries but no {BUNDLE_FILE}; "
            "export into an empty folder or an existing bundle"
        )


def _owned(directory: Path) -> set[str]:
    """The entries of ``directory`` that only an export names this way: safe to replace or prune."""
    found: set[str] = set()
    for entry in entries(directory / MANIFEST_DIR):
        stem = entry.name.removesuffix(".json")
        if (entry.name.endswith(".json") and SLUG_PATTERN.match(stem)) or _is_temp(entry.name):
            found.add(f"{MANIFEST_DIR}/{entry.name}")
    for fan in entries(directory / FILES_DIR):
        if len(fan.name) != 2 or not fan.is_dir(follow_symlinks=False):
            continue
        for entry in entries(Path(fan.path)):
            sha, dot, extension = entry.name.partition(".")
            ours = is_sha256(sha) and sha[:2] == fan.name and dot and extension.isalnum()
            if ours or _is_temp(entry.name):
                found.add(f"{FILES_DIR}/{fan.name}/{entry.name}")
    found.update(entry.name for entry in entries(directory) if _is_temp(entry.name))
    return found


def _is_temp(name: str) -> bool:
    return name.startswith(_TEMP_PREFIX)


def _remove_empty_fan_out(directory: Path) -> None:
    for fan in entries(directory / FILES_DIR):
        if len(fan.name) == 2 and fan.is_dir(follow_symlinks=False):
            with contextlib.suppress(OSError):  # not empty: still in use
                Path(fan.path).rmdir()


def _write_if_changed(directory: Path, relative: str, data: bytes) -> bool:
    """Write atomically unless the file already holds ``data``; never write through a link."""
    destination = directory / relative
    folder = directory
    for part in PurePosixPath(relative).parent.parts:
        folder = folder / part
        if folder.is_symlink():
            raise UnsafePath(f"{folder} is a symbolic link; a bundle holds only real folders")
    with contextlib.suppress(OSError):
        info = destination.lstat()
        # A hard-linked copy is rewritten as a plain file: import refuses hard links.
        plain = stat.S_ISREG(info.st_mode) and info.st_nlink == 1
        if plain and info.st_size == len(data) and destination.read_bytes() == data:
            return False
    with _writing(destination):
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=folder)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            Path(temporary).chmod(0o644)  # mkstemp's 0600 would hide the bundle from the team
            Path(temporary).replace(destination)  # replaces a link itself, never its target
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return True


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """One clear error when the export folder cannot take ``path``: a file where a folder must
    be (``files``, ``problems``, a fan-out folder), a folder where a file must be, no space or no
    permission. Found by the hostile-input fuzz (issue 6): each was a traceback."""
    try:
        yield
    except OSError as exc:
        where = exc.filename2 or exc.filename or path  # a rename's is its destination
        raise BundleError(
            f"cannot write {path} ({exc.strerror or exc}: {where}); export into a new folder, or "
            "move what is in the way"
        ) from None


# --------------------------------------------------------------------------------------------
# Import


def import_bundle(
    registry: Registry,
    directory: Path,
    *,
    progress: Progress | None = None,
    prune: bool = False,
    dry_run: bool = False,
) -> ImportSummary:
    """Bring the bundle's problems and patterns into the registry; running it again changes nothing.

    The whole bundle is verified first (:func:`read_bundle`); then its files enter the store
    (atomically, each once); then the database changes in one transaction: problems are matched
    by slug and patterns by (problem, sha256), and their fields set to the manifest's. Import is
    additive: patterns and problems the bundle does not mention are left as they are (remove them
    with `pattern remove`). An import killed midway leaves the database as it was (the store may
    hold files no row uses yet, which `check` lists as orphans), and running it again ends exactly
    where an uninterrupted import would.

    ``prune``: also remove, in the same transaction, the patterns of the bundle's problems that
    the bundle no longer lists (:mod:`.prune`). ``dry_run``: verify the bundle and say what
    pruning would remove, writing nothing.
    """
    directory = Path(directory)
    with registry.reading() as session:
        columns = select(PatternFile.sha256, PatternFile.kind, PatternFile.extension,
                         PatternFile.size_bytes)  # fmt: skip
        known = {
            sha: StoredFile(sha, PatternKind(kind), extension, size)
            for sha, kind, extension, size in session.exec(columns)
        }
    bundle = read_bundle(directory, known=known, progress=progress)
    if dry_run:
        with registry.reading() as session:
            planned = prunable(session, bundle.problems) if prune else []
        return ImportSummary(
            str(directory), patterns_removed=[p.describe() for p in planned], dry_run=True
        )
    written = present = 0
    brought: list[StoredFile] = []
    for sha, (path, stored) in sorted(bundle.files.items()):
        if _store_holds(registry, stored):
            present += 1
            continue
        data = read_plain(path, str(path), max_bytes=max_pattern_bytes())
        if sha256_of(data) != sha:
            raise CorruptPattern(f"{path} changed during the import; run the import again")
        registry.store.put(InspectedContent(data, sha, stored.kind, stored.extension))
        brought.append(stored)
        written += 1
    outcomes = ("created", "updated", "unchanged")
    counts: dict[str, Any] = {
        f"{what}_{outcome}": 0 for what in ("problems", "patterns") for outcome in outcomes
    }
    try:
        with registry.writing() as session:
            rows = {p.slug: p for p in session.exec(select(Problem))}
            for problem in bundle.problems:
                row, outcome = _upsert_problem(session, rows.get(problem.slug), problem)
                counts[f"problems_{outcome}"] += 1
                files = [bundle.files[p.sha256][1] for p in problem.patterns]
                for outcome in _upsert_patterns(registry, session, row, problem, files):
                    counts[f"patterns_{outcome}"] += 1
            pruned = prunable(session, bundle.problems) if prune else []
            discard = remove_patterns(session, pruned)
    except IntegrityError:  # a concurrent writer added the same problem or pattern meanwhile
        discard_unreferenced(registry, brought)
        raise BundleError(
            f"the registry changed while importing {directory}; run the import again"
        ) from None
    except Exception:  # refused (a read-only database...): no orphan (item 13); an interrupt
        # (Ctrl-C, SIGTERM) keeps the files, so the re-run that resumes it need not write them
        discard_unreferenced(registry, brought)
        raise
    # After the commit: a crash leaves an unused file, no row; a production case's input stays.
    discard_unused(registry, discard)
    summary = ImportSummary(str(directory), files_written=written, files_present=present, **counts)
    summary.patterns_removed.extend(p.describe() for p in pruned)
    return summary


def _store_holds(registry: Registry, stored: StoredFile) -> bool:
    path = registry.store.path_of(stored.sha256, stored.extension)
    try:
        return path.is_file() and not path.is_symlink() and sha256_of_file(path) == stored.sha256
    except OSError:
        return False


def _upsert_problem(
    session: Session, row: Problem | None, problem: BundledProblem
) -> tuple[Problem, str]:
    if row is None:
        row = Problem(slug=problem.slug, **problem.fields)
        session.add(row)
        session.flush()
        set_models(session, stored_id(row), problem.models)
        return row, "created"
    changed = {k: v for k, v in problem.fields.items() if getattr(row, k) != v}
    if models_by_problem(session).get(stored_id(row), ()) != problem.models:
        set_models(session, stored_id(row), problem.models)
        changed["updated_at"] = utcnow()
    if not changed:
        return row, "unchanged"
    for key, value in changed.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    session.add(row)
    return row, "updated"


def _upsert_patterns(
    registry: Registry,
    session: Session,
    problem_row: Problem,
    problem: BundledProblem,
    stored: list[StoredFile],
) -> list[str]:
    """Create or update the problem's patterns named in the bundle; the outcome of each."""
    file_ids = file_ids_for(session, stored)
    current = {
        sha: pattern
        for pattern, sha in session.exec(
            select(Pattern, PatternFile.sha256)
            .join(PatternFile, col(PatternFile.id) == Pattern.file_id)
            .where(Pattern.problem_id == problem_row.id)
        )
    }
    labels: dict[int, list[str]] = {}
    label_query = select(ExpectedLabel.pattern_id, ExpectedLabel.label).join(
        Pattern, col(Pattern.id) == ExpectedLabel.pattern_id
    )
    for pattern_id, label in session.exec(label_query.where(Pattern.problem_id == problem_row.id)):
        labels.setdefault(pattern_id, []).append(label)
    outcomes: list[str] = []
    created: list[tuple[Pattern, Expectation]] = []
    for entry in problem.patterns:
        columns: dict[str, Any] = {
            "original_name": entry.original_name,
            "polarity": entry.polarity,
            "source": entry.source,
            "note": entry.note,
            **expectation_columns(entry.expectation),
        }
        if entry.added_by is not None:
            columns["added_by"] = entry.added_by
        row = current.get(entry.sha256)
        if row is None:
            if entry.added_by is None:
                recording(registry.user)
            row = Pattern(
                problem_id=problem_row.id,
                file_id=file_ids[entry.sha256],
                **{"added_by": user_name(registry.user), **columns},
                **({"added_at": entry.added_at} if entry.added_at is not None else {}),
            )
            created.append((row, entry.expectation))
            outcomes.append("created")
            continue
        changed = {k: v for k, v in columns.items() if getattr(row, k) != v}
        if entry.added_at is not None and iso(row.added_at) != iso(entry.added_at):
            changed["added_at"] = entry.added_at
        relabel = expectation_of(row, labels.get(row.id or 0, [])) != entry.expectation
        for key, value in changed.items():
            setattr(row, key, value)
        if relabel:
            session.execute(sa.delete(ExpectedLabel).where(col(ExpectedLabel.pattern_id) == row.id))
            write_labels(session, row.id, entry.expectation)
        session.add(row)
        outcomes.append("updated" if changed or relabel else "unchanged")
    session.add_all(row for row, _ in created)
    session.flush()
    for row, expectation in created:
        write_labels(session, row.id, expectation)
    return outcomes
