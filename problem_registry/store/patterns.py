"""Patterns: the test cases of a problem, each a stored file plus an expectation and a polarity.

The API (``registry.patterns``); new patterns' readers are in :mod:`.pattern_sources`, the
expectation's rows in :mod:`.expectation_rows`.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from problem_registry.enums import PatternKind, Polarity, Source
from problem_registry.errors import (
    AmbiguousReference,
    CorruptPattern,
    DuplicatePattern,
    InvalidValue,
    PatternConflict,
    PatternNotFound,
)
from problem_registry.expectations import Expectation
from problem_registry.store.blobs import store_blobs
from problem_registry.store.content import (
    InspectedContent,
    StoredFile,
    hash_input,
    inspect_content,
    read_input,
    sha256_of,
)
from problem_registry.store.expectation_rows import (
    expectation_columns,
    expectation_of,
    write_labels,
)
from problem_registry.store.pattern_sources import NewPattern as NewPattern  # re-exported: the API
from problem_registry.store.pattern_sources import labelled_files, read_csv
from problem_registry.store.problem_models import check_pattern_kinds
from problem_registry.store.problems import find_problem
from problem_registry.store.registry import insert_ignoring_conflicts
from problem_registry.store.tables import ExpectedLabel, Pattern, PatternFile, Problem, stored_id
from problem_registry.store.unreferenced import (
    discard_unreferenced,
    discard_unused,
    drop_unnamed_content,
)
from problem_registry.store.views import PatternView, iso
from problem_registry.text import file_name, recording, storable, user_name

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry

MIN_HASH_PREFIX = 6


@dataclass(frozen=True)
class AddedPatterns:
    added: list[PatternView]
    skipped: list[PatternView]  # content the problem already held (imports re-run safely)
    relabelled: list[PatternView] = field(default_factory=list)  # re-imported with --update


class Patterns:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def add(
        self,
        slug: str,
        new: Sequence[NewPattern],
        *,
        skip_existing: bool = False,
        update: bool = False,
    ) -> AddedPatterns:
        """Add files to a problem, all or nothing.

        Every file is read and verified, and every duplicate found, before anything is written.
        With ``skip_existing`` a file whose content the problem already holds is skipped;
        without it, it is refused. A skipped file expecting something else than its pattern
        does is a conflict (:class:`PatternConflict`, naming each), unless ``update`` relabels
        the pattern (issue 19, item 9).

        Memory holds one file at a time (issue 16, item 12: a CSV naming one 45 MB file 30 times
        took 1.5 GB before saying "duplicate"): files are hashed by streaming and duplicates
        refused first, then each new file is read and verified alone, and read again to be
        written (checked against its hash, so a file changed meanwhile is refused).
        """
        existing = {view.sha256: view for view in self.list(slug)}  # unknown slug: refused first
        added_by = user_name(self._registry.user)
        for item in new:  # every row's fields before any file: a refusal writes nothing
            storable(item.note, f"the note for {item.path}")
            _member(Polarity, item.polarity, f"the polarity for {item.path}")
            _member(Source, item.source, f"the source for {item.path}")
        seen: dict[str, Path] = {}
        new_hashes: list[tuple[NewPattern, str]] = []
        skipped: list[PatternView] = []
        conflicts: list[tuple[NewPattern, PatternView]] = []
        for item in new:
            sha256 = hash_input(item.path)
            if sha256 in seen:
                raise DuplicatePattern(
                    f"{item.path} has the same content as {seen[sha256]}; give it once"
                )
            seen[sha256] = item.path
            if sha256 in existing:
                if skip_existing:
                    old = existing[sha256]
                    if old.expect != item.expectation.to_dict():
                        conflicts.append((item, old))
                    else:
                        skipped.append(old)
                    continue
                raise DuplicatePattern(
                    f"{item.path} is already pattern {existing[sha256].id} of {slug} "
                    f"(sha256 {sha256[:12]}); change it with `pattern relabel`"
                )
            new_hashes.append((item, sha256))
        if conflicts and not update:
            raise expectation_conflict(slug, conflicts)
        fresh: list[tuple[NewPattern, StoredFile]] = []
        for item, sha256 in new_hashes:
            fresh.append((item, _verified(item.path, sha256).stored))
        with self._registry.reading() as session:  # an image problem takes images (issue 19)
            check_pattern_kinds(session, slug, [(str(i.path), f.kind.value) for i, f in fresh])

        if fresh:
            recording(added_by)
        # Files first, rows second: a crash in between leaves an unused file, never a row
        # pointing at nothing. A refused write removes the files it brought (below).
        store = self._registry.store
        brought: list[StoredFile] = []
        for item, stored in fresh:
            if not store.path_of(stored.sha256, stored.extension).is_file():
                brought.append(stored)
            store.put(_reread(item.path, stored))
        try:
            added = self._insert(slug, fresh, skipped, added_by)
        except Exception:  # refused; an interrupt keeps the files for the re-run
            discard_unreferenced(self._registry, brought)
            raise
        for item, old in conflicts:  # --update: the re-import's expectation wins
            added.relabelled.append(self.relabel(old.id, item.expectation))
        return added

    def _insert(
        self,
        slug: str,
        fresh: Sequence[tuple[NewPattern, StoredFile]],
        skipped: list[PatternView],
        added_by: str,
    ) -> AddedPatterns:
        try:
            with self._registry.writing() as session:
                problem = find_problem(session, slug)
                file_ids = file_ids_for(session, [stored for _item, stored in fresh])
                rows = [
                    (
                        Pattern(
                            problem_id=problem.id,
                            file_id=file_ids[stored.sha256],
                            original_name=file_name(item.path),
                            polarity=Polarity(item.polarity).value,
                            source=Source(item.source).value,
                            note=item.note,
                            added_by=added_by,
                            **expectation_columns(item.expectation),
                        ),
                        item.expectation,
                    )
                    for item, stored in fresh
                ]
                session.add_all([pattern for pattern, _ in rows])
                session.flush()
                for pattern, expectation in rows:
                    write_labels(session, pattern.id, expectation)
                added_ids = [stored_id(pattern) for pattern, _ in rows]
        except IntegrityError:  # a concurrent writer added the same content first
            raise DuplicatePattern(
                f"a file was added to {slug} by someone else meanwhile; re-run to skip it"
            ) from None
        return AddedPatterns(self._views(ids=added_ids), skipped)

    def import_folder(
        self,
        slug: str,
        folder: Path,
        *,
        polarity: Polarity = Polarity.positive,
        source: Source = Source.contrived,
        note: str = "",
        update: bool = False,
    ) -> AddedPatterns:
        """Import ``folder/<label>/<file>``: each file expects the label of its folder."""
        new = [
            NewPattern(path, Expectation.exact(path.parent.name), polarity, source, note)
            for path in labelled_files(folder)
        ]
        return self.add(slug, new, skip_existing=True, update=update)

    def import_csv(
        self,
        slug: str,
        csv_path: Path,
        *,
        source: Source = Source.contrived,
        update: bool = False,
    ) -> AddedPatterns:
        """Import the rows of a CSV with columns path,expected,polarity,note.

        ``expected`` takes the one-field form (``muffin``, ``any:a,b``, ``not:x``,
        ``range:3.5:4``); paths are relative to the CSV's folder and may not leave it.
        """
        return self.add(slug, read_csv(csv_path, source=source), skip_existing=True, update=update)

    def list(self, slug: str | None = None) -> list[PatternView]:
        with self._registry.reading() as session:
            problem_id = find_problem(session, slug).id if slug is not None else None
        return self._views(problem_id=problem_id)

    def get(self, ref: str | int, *, problem: str | None = None) -> PatternView:
        return self._views(ids=[self.resolve(ref, problem=problem)])[0]

    def resolve(self, ref: str | int, *, problem: str | None = None) -> int:
        """A pattern id, or a sha256 prefix of at least 6 hex digits (like a short git hash)."""
        text = str(ref).strip().lower()
        with self._registry.reading() as session:
            query = (
                select(Pattern.id, Problem.slug)
                .join(PatternFile, col(PatternFile.id) == Pattern.file_id)
                .join(Problem, col(Problem.id) == Pattern.problem_id)
            )
            if problem is not None:
                query = query.where(Pattern.problem_id == find_problem(session, problem).id)
            # isascii: str.isdigit also takes "²" and "٣", which int() refuses or reads as 3.
            if text.isascii() and text.isdigit() and len(text) < MIN_HASH_PREFIX:
                query = query.where(Pattern.id == int(text))
            elif len(text) >= MIN_HASH_PREFIX and all(ch in "0123456789abcdef" for ch in text):
                query = query.where(col(PatternFile.sha256).startswith(text))
            else:
                raise InvalidValue(
                    f"{ref!r} is not a pattern id or a sha256 prefix ({MIN_HASH_PREFIX}+ hex "
                    "digits); see `problem-registry pattern list`"
                )
            matches = list(session.exec(query.order_by(col(Pattern.id)).limit(6)))
        if not matches:
            where = f" in problem {problem}" if problem else ""
            raise PatternNotFound(f"no pattern {ref}{where}; see `problem-registry pattern list`")
        if len(matches) > 1:
            listed = ", ".join(f"{slug} #{pattern_id}" for pattern_id, slug in matches[:5])
            raise AmbiguousReference(
                f"pattern {ref} matches several ({listed}); give more of the hash, the id, "
                "or --problem"
            )
        pattern_id: int = matches[0][0]
        return pattern_id

    def relabel(
        self, ref: str | int, expectation: Expectation, *, problem: str | None = None
    ) -> PatternView:
        """Change what a pattern expects: stored results are re-scored, no model runs again."""
        pattern_id = self.resolve(ref, problem=problem)
        with self._registry.writing() as session:
            pattern = session.get(Pattern, pattern_id)
            assert pattern is not None
            for key, value in expectation_columns(expectation).items():
                setattr(pattern, key, value)
            session.add(pattern)
            session.execute(
                sa.delete(ExpectedLabel).where(col(ExpectedLabel.pattern_id) == pattern_id)
            )
            write_labels(session, pattern_id, expectation)
        return self.get(pattern_id)

    def remove(self, ref: str | int, *, problem: str | None = None) -> PatternView:
        """Delete a pattern; its file and results go too once no other problem uses the content."""
        pattern_id = self.resolve(ref, problem=problem)
        view = self.get(pattern_id)
        with self._registry.writing() as session:
            pattern = session.get(Pattern, pattern_id)
            assert pattern is not None
            file_id = pattern.file_id
            session.delete(pattern)
            session.flush()
            in_use = session.exec(select(Pattern.id).where(Pattern.file_id == file_id)).first()
            orphan = None if in_use is not None else session.get(PatternFile, file_id)
            if orphan is not None:
                session.delete(orphan)
                session.flush()
                drop_unnamed_content(session, [orphan.sha256])  # unless a case names it
        if orphan is not None:
            # After the commit: a crash in between leaves an unused file, never a row without one.
            # A production case may still need the same content as its input (issue 20).
            discard_unused(self._registry, [(orphan.sha256, orphan.extension)])
        return view

    def _views(
        self, *, ids: Sequence[int] | None = None, problem_id: int | None = None
    ) -> builtins.list[PatternView]:
        # Columns, not ORM objects: a report lists every pattern of the registry (15,000 at
        # 1,000 problems), and mapped objects cost several times the query.
        with self._registry.reading() as session:
            query = (
                sa.select(
                    col(Pattern.id),
                    col(Problem.slug),
                    col(PatternFile.sha256),
                    col(PatternFile.kind),
                    col(PatternFile.extension),
                    col(Pattern.original_name),
                    col(Pattern.expect_kind),
                    col(Pattern.expect_min),
                    col(Pattern.expect_max),
                    col(Pattern.polarity),
                    col(Pattern.source),
                    col(Pattern.note),
                    col(Pattern.added_by),
                    col(Pattern.added_at),
                )
                .join(PatternFile, col(PatternFile.id) == Pattern.file_id)
                .join(Problem, col(Problem.id) == Pattern.problem_id)
                .order_by(Problem.slug, col(Pattern.id))
            )
            label_query = select(ExpectedLabel.pattern_id, ExpectedLabel.label).join(
                Pattern, col(Pattern.id) == ExpectedLabel.pattern_id
            )
            if ids is not None:
                query = query.where(col(Pattern.id).in_(list(ids)))
                label_query = label_query.where(col(Pattern.id).in_(list(ids)))
            if problem_id is not None:
                query = query.where(col(Pattern.problem_id) == problem_id)
                label_query = label_query.where(Pattern.problem_id == problem_id)
            rows = session.execute(query).all()
            labels: dict[int, list[str]] = {}
            for pattern_id, label in session.exec(label_query):
                labels.setdefault(pattern_id, []).append(label)
        store = self._registry.store
        views = []
        for row in rows:
            expectation = expectation_of(row, labels.get(row.id, []))
            views.append(
                PatternView(
                    id=row.id,
                    problem=row.slug,
                    sha256=row.sha256,
                    kind=row.kind,
                    file=store.relative_path(row.sha256, row.extension),
                    original_name=row.original_name,
                    expect=expectation.to_dict(),
                    expected=expectation.describe(),
                    polarity=row.polarity,
                    source=row.source,
                    note=row.note,
                    added_by=row.added_by,
                    added_at=iso(row.added_at),
                )
            )
        return views


def expectation_conflict(
    slug: str, conflicts: Sequence[tuple[NewPattern, PatternView]]
) -> PatternConflict:
    """One line naming every re-imported file that expects something new, and the fix."""
    shown = [
        f"{item.origin or item.path} (pattern {old.id} expects {old.expected}, now "
        f"{item.expectation.describe()})"
        for item, old in conflicts[:5]
    ]
    more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
    return PatternConflict(
        f"{len(conflicts)} file(s) already in {slug} now expect something else: "
        f"{'; '.join(shown)}{more}; nothing was imported: re-run with --update to relabel them"
    )


def _verified(path: Path, sha256: str) -> InspectedContent:
    """``path`` read and verified (its kind told, an image decoded), still the content hashed."""
    content = inspect_content(read_input(path), str(path))
    if content.sha256 != sha256:
        raise CorruptPattern(f"{path} changed while it was being added; add it again")
    return content


def _reread(path: Path, stored: StoredFile) -> InspectedContent:
    """The bytes of a file verified earlier, read again to be written: one file in memory."""
    data = read_input(path)
    if sha256_of(data) != stored.sha256:
        raise CorruptPattern(f"{path} changed while it was being added; add it again")
    return InspectedContent(data, stored.sha256, stored.kind, stored.extension)


def _member(enum: type[Polarity] | type[Source], value: object, what: str) -> None:
    try:
        enum(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise InvalidValue(f"{what} is {value!r}; use one of {choices}") from None


def file_ids_for(session: Session, files: Sequence[StoredFile]) -> dict[str, int]:
    """Get or create the content rows; concurrent writers of the same content both succeed.

    Shared by ``pattern add`` and bundle import, so both create content rows the same way.
    """
    if not files:
        return {}
    rows = [
        {
            "sha256": f.sha256,
            "kind": PatternKind(f.kind).value,
            "extension": f.extension,
            "size_bytes": f.size_bytes,
        }
        for f in files
    ]
    insert_ignoring_conflicts(session, PatternFile, rows, ["sha256"])
    store_blobs(session, files)  # the content, in the same transaction (issue 17)
    wanted = [f.sha256 for f in files]
    query = select(PatternFile.sha256, PatternFile.id).where(col(PatternFile.sha256).in_(wanted))
    return {sha: file_id for sha, file_id in session.exec(query)}
