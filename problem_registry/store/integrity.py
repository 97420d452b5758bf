"""``check``: is every pattern's content in the database and intact, and is the database consistent?

Pattern content lives in the database (``pattern_blob``, issue 17); the files under ``patterns/``
are a local cache of it. Before checking, content the database lacks but this machine's cache
holds intact is put into the database (a registry upgraded where its files were not), and listed
as a warning ``content-uploaded``.

Errors (``report.ok`` is False; the CLI exits 1), because a replay would refuse or misjudge them:

- a pattern file's or a production case's input's content missing from the database or altered
  there (its sha256 no longer matches), listed with the problems and pattern ids, or the case
  ids, that use it;
- on SQLite, anything ``PRAGMA integrity_check`` reports and every ``PRAGMA foreign_key_check``
  row (PostgreSQL enforces foreign keys at all times and has no such pragma);
- a pattern whose labels contradict its expectation (exact needs one label, any-of and forbidden
  at least one, a range none), which no CLI command produces.

Warnings (``report.ok`` stays True), because nothing is scored wrong:

- a cached file altered, replaced by a link or unreadable: never scored (it fails its hash and
  the database's content is read instead), but worth knowing;
- orphans: files in the store that no row names. Files enter the store before their rows, so an
  interrupted ``pattern add`` or ``import`` leaves one; re-running it uses it, or it can be deleted;
- temporary files of an interrupted write, safe to delete;
- a content row (``pattern_file``) that no pattern uses, and its file if missing or altered. Its
  stored results are harmless: results are only ever scored through a pattern. Results of content
  no pattern uses are therefore not reported at all.

Files are hashed one at a time, in chunks, after the database read has ended, so neither memory
nor a long read transaction grows with the size of the store.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from problem_registry.enums import ExpectKind
from problem_registry.plain_files import NotPlainFile, sha256_plain
from problem_registry.store.blobs import ContentStore, upload_cached
from problem_registry.store.content import TEMP_PREFIX, PatternStore, is_sha256, sha256_of
from problem_registry.store.tables import (
    ExpectedLabel,
    Pattern,
    PatternBlob,
    PatternFile,
    Problem,
    TriageCase,
)

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry

Progress = Callable[[int, int], None]
_MAX_LISTED_USERS = 5


@dataclass(frozen=True)
class Finding:
    """One thing found: ``code`` for scripts, ``message`` (one line, with the fix) for people."""

    code: str
    message: str
    file: str | None = None  # relative to the pattern store
    problems: tuple[str, ...] = ()
    patterns: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "problems": list(self.problems),
            "patterns": list(self.patterns),
        }


@dataclass
class CheckReport:
    database: str  # redacted: never holds a password
    store: str
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    files_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "database": self.database,
            "store": self.store,
            "files_checked": self.files_checked,
            "errors": [finding.to_dict() for finding in self.errors],
            "warnings": [finding.to_dict() for finding in self.warnings],
        }


def check(registry: Registry, *, progress: Progress | None = None) -> CheckReport:
    """Check the database and every stored file; ``progress(done, total)`` after each file."""
    report = CheckReport(registry.display_url, str(registry.store.root))
    for sha in upload_cached(registry):
        report.warnings.append(
            Finding(
                "content-uploaded",
                f"the content of {sha[:12]} was only in {registry.store.root}; it is now in the "
                "database too",
            )
        )
    users: dict[int, list[tuple[str, int]]] = {}
    with registry.reading() as session:
        _database(session, report)
        _labels(session, report)
        query = (
            select(Pattern.file_id, Problem.slug, Pattern.id)
            .join(Problem, col(Problem.id) == Pattern.problem_id)
            .order_by(Problem.slug, col(Pattern.id))
        )
        for file_id, slug, pattern_id in session.exec(query):
            users.setdefault(file_id, []).append((slug, pattern_id))
        rows = list(
            session.exec(
                select(PatternFile.id, PatternFile.sha256, PatternFile.extension).order_by(
                    PatternFile.sha256
                )
            )
        )
        # Production cases' inputs share the store and the database's content (issue 20).
        cases: dict[tuple[str, str], list[int]] = {}
        case_rows = select(TriageCase.sha256, TriageCase.extension, TriageCase.id)
        for sha, extension, case_id in session.exec(case_rows.order_by(col(TriageCase.id))):
            cases.setdefault((sha, extension), []).append(case_id or 0)
    store = registry.store
    by_file = {sha: ext for _id, sha, ext in rows}
    rows += [(None, sha, ext) for sha, ext in sorted(cases) if by_file.get(sha) != ext]
    known: set[str] = set()
    for done, (file_id, sha, extension) in enumerate(rows, start=1):
        if not is_sha256(sha) or not extension.isalnum():
            report.errors.append(
                Finding(
                    "invalid-row",
                    f"{'a triage_case' if file_id is None else f'pattern_file row {file_id}'} "
                    f"names no valid file ({sha!r}, {extension!r}); the database was edited by "
                    "hand: remove the row's patterns or cases",
                )
            )
            continue
        relative = store.relative_path(sha, extension)
        known.add(relative)
        named = users.get(file_id or 0, []) if file_id is not None else []
        _file(registry, store, relative, sha, named, report, cases.get((sha, extension), []))
        if progress is not None:
            progress(done, len(rows))
    _orphans(store.cache, known, report)
    return report


def content_state(registry: Registry, sha: str) -> str:
    """``ok``, ``missing`` or ``altered``: the database's copy, read alone (one file in memory)."""
    with registry.reading() as session:
        data = session.execute(
            sa.select(col(PatternBlob.data)).where(col(PatternBlob.sha256) == sha)
        ).scalar_one_or_none()
    if data is None:
        return "missing"
    return "ok" if sha256_of(bytes(data)) == sha else "altered"


def _file(
    registry: Registry,
    store: ContentStore,
    relative: str,
    sha: str,
    users: list[tuple[str, int]],
    report: CheckReport,
    cases: list[int] | None = None,
) -> None:
    report.files_checked += 1
    cached = file_state(store.root / relative, sha)
    if cached not in ("ok", "missing"):  # a missing cache file is only fetched again
        report.warnings.append(
            Finding(
                f"{cached if cached in ('altered', 'link') else 'unreadable'}-cache-file",
                f"{relative} in {store.root} is a cached copy that is "
                + {"altered": "altered", "link": "a symbolic link"}.get(cached, cached)
                + "; it is never scored (the database's content is read instead): delete it",
                relative,
            )
        )
    state = content_state(registry, sha)
    if state == "ok":
        return
    if users:
        listed = ", ".join(
            f"{slug} #{pattern_id}" for slug, pattern_id in users[:_MAX_LISTED_USERS]
        )
        more = (
            f" and {len(users) - _MAX_LISTED_USERS} more" if len(users) > _MAX_LISTED_USERS else ""
        )
        used = f"used by {listed}{more}"
        fix = "restore it (problem-registry import BUNDLE) or remove those patterns"
    elif cases:
        shown = ", ".join(str(case_id) for case_id in cases[:_MAX_LISTED_USERS])
        over = len(cases) - _MAX_LISTED_USERS
        more = f" and {over} more" if over > 0 else ""
        used = f"the input of production case {shown}{more}"
        fix = "run `problem-registry check` where the file is intact (it puts it back)"
    else:
        used = "used by no pattern"
        fix = "delete the row's results or restore the file"
    where = f"the content of {relative}"
    message = {
        "missing": f"{where} is missing from the database and from {store.root} ({used}); {fix}",
        "altered": f"{where} was altered in the database, its sha256 no longer matches ({used}); "
        f"{fix}",
    }[state]
    finding = Finding(
        f"{state}-file",
        message,
        relative,
        tuple(sorted({slug for slug, _ in users})),
        tuple(sorted(pattern_id for _, pattern_id in users)),
    )
    (report.errors if users or cases else report.warnings).append(finding)


def file_state(path: Path, sha: str) -> str:
    """``ok``, ``missing``, ``altered``, ``link``, or why the file cannot be read.

    Streams the file in chunks; never follows a link and never blocks on a FIFO.
    """
    if path.parent.is_symlink():
        return "link"
    try:
        digest, _size = sha256_plain(path, follow_links=False)
    except FileNotFoundError:
        return "missing"
    except NotPlainFile as exc:
        return "link" if exc.errno == errno.ELOOP else "not a regular file"
    except OSError as exc:
        return exc.strerror or str(exc)
    return "ok" if digest == sha else "altered"


def _orphans(store: PatternStore, known: set[str], report: CheckReport) -> None:
    """Files under the store's two-letter folders that no row names (other entries are not ours:
    a store folder may also hold a bundle or a README)."""
    if not store.root.is_dir():
        return
    with os.scandir(store.root) as found:
        fans = sorted(e.name for e in found if len(e.name) == 2 and _is_hex(e.name))
    for fan in fans:
        folder = store.root / fan
        if folder.is_symlink() or not folder.is_dir():
            continue  # a linked folder holding known files is already an error
        with os.scandir(folder) as found:
            names = sorted(entry.name for entry in found)
        for name in names:
            relative = f"{fan}/{name}"
            if relative in known:
                continue
            sha, _, extension = name.partition(".")
            if name.startswith(TEMP_PREFIX):
                code, why = "temporary-file", "is left by an interrupted write; delete it"
            elif is_sha256(sha) and sha.startswith(fan) and extension.isalnum():
                code, why = (
                    "orphan-file",
                    (
                        "is used by no pattern (left by an interrupted add or import); delete it, "
                        "or re-run the add or import"
                    ),
                )
            else:
                code, why = "unexpected-file", "is not a pattern file; move it out of the store"
            report.warnings.append(Finding(code, f"{relative} in {store.root} {why}", relative))


def _is_hex(text: str) -> bool:
    return all(ch in "0123456789abcdef" for ch in text)


def _database(session: Session, report: CheckReport) -> None:
    if session.get_bind().dialect.name != "sqlite":
        return
    for (line,) in session.execute(sa.text("PRAGMA integrity_check")):
        if line != "ok":
            report.errors.append(
                Finding("sqlite-integrity", f"SQLite integrity_check: {line}; restore a backup")
            )
    for table, rowid, parent, _fk in session.execute(sa.text("PRAGMA foreign_key_check")):
        row = f"row {rowid} of {table}" if rowid is not None else f"a row of {table}"
        report.errors.append(
            Finding(
                "foreign-key",
                f"{row} points to a {parent} row that does not exist; delete it or restore a "
                "backup",
            )
        )


def _labels(session: Session, report: CheckReport) -> None:
    count = sa.func.count(col(ExpectedLabel.label))
    kind = col(Pattern.expect_kind)
    query = (
        select(Pattern.id, Problem.slug, Pattern.expect_kind, count)
        .join(Problem, col(Problem.id) == Pattern.problem_id)
        .outerjoin(ExpectedLabel, col(ExpectedLabel.pattern_id) == Pattern.id)
        .group_by(col(Pattern.id), col(Problem.slug), kind)
        .having(
            sa.or_(
                sa.and_(kind == ExpectKind.exact.value, count != 1),
                sa.and_(kind.in_([ExpectKind.any.value, ExpectKind.not_.value]), count == 0),
                sa.and_(kind == ExpectKind.range.value, count > 0),
            )
        )
        .order_by(col(Problem.slug), col(Pattern.id))
    )
    for pattern_id, slug, expect_kind, labels in session.exec(query):
        report.errors.append(
            Finding(
                "expectation-labels",
                f"pattern {pattern_id} of {slug} expects {expect_kind!r} but has {labels} "
                f"label(s); set it again with `problem-registry pattern relabel {pattern_id}`",
                problems=(slug,),
                patterns=(pattern_id,) if pattern_id is not None else (),
            )
        )
