"""Reading a bundle (layout in :mod:`~problem_registry.store.bundle`): parse, check, verify.

Everything in a bundle is untrusted data, maybe edited by hand or merged by git: JSON is parsed with
duplicate keys and NaN refused, each field type-checked and validated by the same rules as the CLI,
every path kept inside the bundle folder, links refused (symbolic ones by never following them,
hard ones because they can bring in any file on the disk without a path saying so), FIFOs and
devices refused without blocking, and every pattern file hashed and its kind verified. Errors name
the file and the fix in one line.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from problem_registry.config import max_pattern_bytes
from problem_registry.enums import PatternKind, Polarity, Source
from problem_registry.errors import BundleError, CorruptPattern, InvalidValue, UnsafePath
from problem_registry.expectations import Expectation
from problem_registry.plain_files import NotPlainFile, open_plain
from problem_registry.store.content import (
    StoredFile,
    inspect_content,
    is_sha256,
    sha256_of,
)
from problem_registry.store.paths import inside
from problem_registry.store.problem_models import validate_model_names
from problem_registry.store.problems import (
    normalise_tags,
    validate_allowed_regressions,
    validate_description,
    validate_error_rate,
    validate_slug,
    validate_status,
    validate_title,
)
from problem_registry.text import storable

FORMAT = "problem-registry-bundle"
VERSION = 1
BUNDLE_FILE = "bundle.json"
MANIFEST_DIR = "problems"
FILES_DIR = "files"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_PROBLEM_KEYS = {"slug", "title", "description", "status", "tags", "max_error_rate",
                 "allowed_regressions", "patterns", "models"}  # fmt: skip
_PATTERN_KEYS = {"sha256", "file", "kind", "original_name", "expect", "polarity", "source", "note",
                 "added_by", "added_at"}  # fmt: skip
_REQUIRED: Any = object()
Progress = Callable[[int, int], None]
E = TypeVar("E", bound=Enum)


@dataclass(frozen=True)
class BundledPattern:
    sha256: str
    file: str  # relative to the bundle folder, as the manifest writes it
    kind: PatternKind | None  # as the manifest claims it; checked against the content
    original_name: str
    expectation: Expectation
    polarity: str
    source: str
    note: str
    added_by: str | None  # None: keep the registry's (or the importing user for a new pattern)
    added_at: datetime | None


@dataclass(frozen=True)
class BundledProblem:
    slug: str
    fields: dict[str, Any]  # title, description, status, tags, max_error_rate, allowed_regressions
    patterns: tuple[BundledPattern, ...]
    models: tuple[str, ...] = ()  # the models it belongs to (issue 19); none: every model


@dataclass(frozen=True)
class Bundle:
    """A bundle read and verified in full: nothing in it has been written anywhere yet."""

    directory: Path
    problems: tuple[BundledProblem, ...]
    files: dict[str, tuple[Path, StoredFile]]  # sha256 -> a bundle file with it, its verified kind


def read_bundle(
    directory: Path,
    *,
    known: Mapping[str, StoredFile] | None = None,
    progress: Progress | None = None,
) -> Bundle:
    """Parse every manifest and verify every file it names, writing nothing.

    A file's bytes must hash to the manifest's sha256 and be the kind it claims (images fully
    decoded, text UTF-8, JSON parsed); content the registry already ``known``s was verified when
    it first entered, so a matching hash is enough for it. Raises :class:`BundleError`,
    :class:`UnsafePath` or :class:`CorruptPattern` naming the file and the fix.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError(f"{directory} is not a folder; give the folder `export` wrote")
    index_path = directory / BUNDLE_FILE
    if not (index_path.exists() or index_path.is_symlink()):
        raise BundleError(
            f"{directory} has no {BUNDLE_FILE}, so it is not a bundle; give the folder "
            "`problem-registry export` wrote"
        )
    index = _object(_load(index_path), str(index_path), {"format", "version", "problems"})
    if index.get("format") != FORMAT:
        raise BundleError(
            f"{index_path} is not a problem-registry bundle (format {index.get('format')!r}); "
            "give the folder `problem-registry export` wrote"
        )
    version = _get(index, "version", str(index_path), "integer")
    if version != VERSION:
        newer = "newer" if version > VERSION else "unknown"
        raise BundleError(
            f"{index_path} is bundle format version {version} ({newer}); this problem-registry "
            f"reads version {VERSION}: upgrade problem-registry or export the bundle again"
        )
    slugs = _strings(index, "problems", str(index_path))
    for slug in slugs:
        _valid(str(index_path), validate_slug, slug)
    if len(set(slugs)) != len(slugs):
        raise BundleError(f"{index_path} lists a problem twice; list each slug once")
    listed = {f"{slug}.json" for slug in slugs}
    for entry in entries(directory / MANIFEST_DIR):
        if entry.name.endswith(".json") and entry.name not in listed:
            raise BundleError(
                f"{directory / MANIFEST_DIR / entry.name} is not listed in {index_path}; add its "
                'slug to "problems" there, or delete the file'
            )
    problems = tuple(_read_problem(directory, slug) for slug in sorted(slugs))
    files = _verify_files(directory, problems, known or {}, progress)
    return Bundle(directory, problems, files)


def _read_problem(directory: Path, slug: str) -> BundledProblem:
    path = _bundle_path(directory, f"{MANIFEST_DIR}/{slug}.json", f"manifest of {slug!r}")
    what = str(path)
    manifest = _object(_load(path, listed_by=directory / BUNDLE_FILE), what, _PROBLEM_KEYS)
    if _get(manifest, "slug", what, "text") != slug:
        raise BundleError(f"{what} holds slug {manifest['slug']!r}; it must match its file name")
    fields = {
        "title": _valid(what, validate_title, _get(manifest, "title", what, "text", ""), slug),
        "description": _valid(
            what, validate_description, _get(manifest, "description", what, "text", "")
        ),
        "status": _valid(what, validate_status, _get(manifest, "status", what, "text", "open")),
        "tags": _valid(what, normalise_tags, _strings(manifest, "tags", what, [])),
        "max_error_rate": _valid(
            what, validate_error_rate, _get(manifest, "max_error_rate", what, "number", None)
        ),
        "allowed_regressions": _valid(
            what,
            validate_allowed_regressions,
            _get(manifest, "allowed_regressions", what, "integer", 0),
        ),
    }
    patterns = []
    for number, item in enumerate(_get(manifest, "patterns", what, "list", []), start=1):
        patterns.append(_read_pattern(f"{what} pattern {number}", item))
    seen: set[str] = set()
    for pattern in patterns:
        if pattern.sha256 in seen:
            raise BundleError(f"{what} lists sha256 {pattern.sha256[:12]} twice; keep one entry")
        seen.add(pattern.sha256)
    models = tuple(_valid(what, validate_model_names, _strings(manifest, "models", what, [])))
    return BundledProblem(slug, fields, tuple(sorted(patterns, key=lambda p: p.sha256)), models)


def _read_pattern(what: str, item: object) -> BundledPattern:
    entry = _object(item, what, _PATTERN_KEYS)
    sha = _get(entry, "sha256", what, "text")
    if not is_sha256(sha):
        raise BundleError(f"{what}: sha256 {sha!r} is not 64 lowercase hex digits")
    relative = _get(entry, "file", what, "text")
    if not relative or any(ord(ch) < 32 for ch in relative):
        raise BundleError(f"{what}: file {relative!r} is empty or holds control characters")
    _valid(what, storable, relative, "file")  # a lone surrogate would fail in the OS call
    name = _get(entry, "original_name", what, "text", PurePosixPath(relative).name)
    added_by = _get(entry, "added_by", what, "text", None)
    note = _get(entry, "note", what, "text", "")
    for value, key in ((name, "original_name"), (added_by or "", "added_by"), (note, "note")):
        _valid(what, storable, value, key)
    added_at = _get(entry, "added_at", what, "text", None)
    polarity = _choice(entry, "polarity", what, Polarity, Polarity.positive)
    source = _choice(entry, "source", what, Source, Source.contrived)
    kind = _choice(entry, "kind", what, PatternKind, None)
    try:
        expectation = Expectation.from_dict(_get(entry, "expect", what, "object"))
        when = _timestamp(added_at) if added_at is not None else None
    except InvalidValue as exc:
        raise BundleError(f"{what}: {exc}") from None
    except (ValueError, OverflowError):  # OverflowError: out of range once in UTC
        raise BundleError(
            f"{what}: added_at {added_at!r} is not a timestamp like 2024-05-01T12:00:00Z"
        ) from None
    if len(name) > 255 or (added_by is not None and len(added_by) > 100):
        raise BundleError(f"{what}: original_name (255) or added_by (100) is too long")
    return BundledPattern(sha, relative, kind, name, expectation, polarity.value, source.value,
                          note, added_by, when)  # fmt: skip


def _verify_files(
    directory: Path,
    problems: tuple[BundledProblem, ...],
    known: Mapping[str, StoredFile],
    progress: Progress | None,
) -> dict[str, tuple[Path, StoredFile]]:
    """Check every referenced file, one at a time, so memory stays flat however big the bundle."""
    checked: dict[tuple[str, str], StoredFile] = {}
    files: dict[str, tuple[Path, StoredFile]] = {}
    references = [(problem.slug, p) for problem in problems for p in problem.patterns]
    for done, (slug, pattern) in enumerate(references, start=1):
        manifest = f"{MANIFEST_DIR}/{slug}.json"
        what = f"{directory / pattern.file} (pattern {pattern.sha256[:12]} of {manifest})"
        key = (pattern.file, pattern.sha256)
        if key not in checked:
            path = _bundle_path(directory, pattern.file, what)
            data = read_plain(path, what, max_bytes=max_pattern_bytes(), listed_by=manifest)
            if sha256_of(data) != pattern.sha256:
                raise CorruptPattern(
                    f"{what} does not match its sha256 (changed since the export?); restore the "
                    "exported file, or add the new one with `pattern add` and export again"
                )
            if not data:
                raise CorruptPattern(f"{what} is empty; a pattern needs content")
            # Content the registry already holds was verified when it entered: the hash suffices.
            checked[key] = known.get(pattern.sha256) or inspect_content(data, what).stored
            files.setdefault(pattern.sha256, (path, checked[key]))
        if pattern.kind is not None and checked[key].kind != pattern.kind:
            raise CorruptPattern(
                f"{what} holds {checked[key].kind} content but the manifest says kind "
                f"{pattern.kind.value!r}; correct the manifest's kind"
            )
        if progress is not None:
            progress(done, len(references))
    return files


def read_plain(path: Path, what: str, *, max_bytes: int, listed_by: object = None) -> bytes:
    """Read a bundle file without following links; refuse hard links, devices and FIFOs."""
    try:
        # Never blocks on a FIFO planted in a bundle, never follows a link (plain_files).
        handle = open_plain(path, follow_links=False)
    except FileNotFoundError:
        fix = f"restore it, or remove its entry from {listed_by}" if listed_by else "restore it"
        raise BundleError(f"{what} is missing; {fix}") from None
    except NotPlainFile as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(
                f"{what} is a symbolic link; a bundle holds only plain files: replace the link "
                "with a copy of the file"
            ) from None
        raise BundleError(
            f"{what} is not a regular file; a bundle holds only plain files"
        ) from None
    except OSError as exc:
        raise BundleError(f"{what}: cannot read ({exc.strerror or exc})") from None
    with handle:
        info = os.fstat(handle.fileno())
        if info.st_nlink > 1:
            raise UnsafePath(
                f"{what} is a hard link ({info.st_nlink} names for one file); a bundle holds only "
                "plain files: replace it with a copy (cp FILE FILE.new && mv FILE.new FILE)"
            )
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BundleError(f"{what} is over the {max_bytes:,}-byte limit")
    return data


def _bundle_path(directory: Path, relative: str, what: str) -> Path:
    """``directory / relative``, refused when absolute, outside, or through a link."""
    parts = PurePosixPath(relative).parts
    where = f"{what}: path {relative!r}"
    if PurePosixPath(relative).is_absolute() or ".." in parts or not parts:
        inside(directory, Path(relative), what=where)  # absolute, or resolves outside
        raise UnsafePath(f"{where} must name a file inside the bundle, without '..'")
    current = directory
    for part in parts:
        current = current / part
        if current.is_symlink():
            raise UnsafePath(
                f"{current} is a symbolic link; a bundle holds only plain files and folders: "
                "replace the link with a copy"
            )
    # Relative, no '..', no link on the way: it cannot resolve outside (no resolve() needed,
    # which costs a syscall per component on every one of 15,000 files).
    return directory.joinpath(*parts)


def _load(path: Path, *, listed_by: object = None) -> Any:
    data = read_plain(path, str(path), max_bytes=MAX_MANIFEST_BYTES, listed_by=listed_by)

    def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"key {key!r} appears twice")
            result[key] = value
        return result

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(
            data.decode("utf-8"),
            object_pairs_hook=refuse_duplicates,
            parse_constant=refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # "[[[[...": nested too deep
        raise BundleError(f"{path} is not valid JSON ({exc}); fix it, or export again") from None


_KINDS: dict[str, tuple[type, ...]] = {
    "text": (str,), "integer": (int,), "number": (int, float), "list": (list,), "object": (dict,)
}  # fmt: skip


def _object(value: object, what: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BundleError(f"{what} must be a JSON object")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise BundleError(
            f"{what}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(keys))}"
        )
    return value


def _get(obj: dict[str, Any], key: str, what: str, kind: str, default: Any = _REQUIRED) -> Any:
    """One field of a manifest, type-checked; a ``None`` default also allows JSON null."""
    if key not in obj:
        if default is _REQUIRED:
            raise BundleError(f"{what} lacks {key!r}; add it (see a bundle written by `export`)")
        return default
    value = obj[key]
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, _KINDS[kind]):
        raise BundleError(f"{what}: {key!r} must be {kind}, got {json.dumps(value)[:40]}")
    return value


def _strings(obj: dict[str, Any], key: str, what: str, default: Any = _REQUIRED) -> list[str]:
    values = _get(obj, key, what, "list", default)
    if not all(isinstance(value, str) for value in values):
        raise BundleError(f"{what}: {key!r} must be a list of strings")
    return list(values)


def _choice(obj: dict[str, Any], key: str, what: str, enum: type[E], default: E | None) -> Any:
    value = _get(obj, key, what, "text", None if default is None else default.value)
    try:
        return None if value is None else enum(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise BundleError(f"{what}: {key} {value!r} is not one of {choices}") from None


def _valid(what: str, check: Callable[..., Any], *args: Any) -> Any:
    try:
        return check(*args)
    except InvalidValue as exc:
        raise BundleError(f"{what}: {exc}") from None


def entries(folder: Path) -> list[os.DirEntry[str]]:
    """A folder's files and two-letter fan-out folders, links included but never followed."""
    if folder.is_symlink() or not folder.is_dir():
        return []
    with os.scandir(folder) as found:
        return [e for e in found if not e.is_dir(follow_symlinks=False) or len(e.name) == 2]


def _timestamp(text: str) -> datetime:
    moment = datetime.fromisoformat(
        text.removesuffix("Z") + ("+00:00" if text.endswith("Z") else "")
    )
    # In UTC now, so a date that only exists in its own offset (0001-01-01T00:00+01:00) is
    # refused here rather than overflowing when stored or compared.
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
