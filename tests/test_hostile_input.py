"""Hostile input, fuzzed (issue 6, item 5): nothing a user or a bundle sends crashes the registry.

Hypothesis draws odd slugs, unicode labels (RTL, NUL, combining marks, lone surrogates as a
non-UTF-8 command line gives them, very long), empty, large and oversized files, image bombs,
files of the wrong kind, paths with ``..``, absolute paths, symbolic and hard links, and bundles
spoiled by hand. Each example goes to the library API (SQLite and PostgreSQL) or to the CLI
(in-process, SQLite; a few through a real process, for bytes no ``str`` argument can carry), and
then the same invariants are checked, on a registry that keeps whatever earlier examples left:

1. the call succeeded or raised a :class:`RegistryError` (API), exited 0, 1 with one line
   ``error: ...`` on stderr, or 2 with click's usage message (CLI), and never printed a traceback;
   inputs that must be refused (a path leaving a bundle, a link in it, a file not matching its
   hash) were refused;
2. nothing was created, changed or removed outside the pattern store (the inputs, the planted link
   targets, the rest of the test folder), and the store holds only ``<aa>/<sha256>.<ext>`` files,
   plain and unlinked, whose bytes hash to their name;
3. ``check`` finds neither errors nor warnings: every row has its file, every file its row, no
   temporary file is left behind;
4. the registry still takes a valid pattern afterwards.

The number of inputs tried per category is printed at the end of the module, for the issue's
closing note.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from problem_registry.cli import app
from problem_registry.enums import Polarity, Source
from problem_registry.errors import BundleError, CorruptPattern, RegistryError, UnsafePath
from problem_registry.expectations import Expectation
from problem_registry.store.bundle import export_bundle, import_bundle
from problem_registry.store.content import MAX_PATTERN_BYTES
from problem_registry.store.integrity import check
from problem_registry.store.patterns import NewPattern
from problem_registry.store.problems import SLUG_PATTERN
from problem_registry.store.registry import Registry
from tests.helpers import assert_one_clear_error, png_bytes, png_claiming, write_text

# Tallies for the closing note: examples per category, and how each ended.
TRIED: Counter[str] = Counter()  # examples
CALLS: Counter[str] = Counter()  # API calls or CLI commands made with them
REFUSED: Counter[str] = Counter()
CANARY = "canary"
STORE_NAME = re.compile(r"^([0-9a-f]{2})/(\1[0-9a-f]{62})\.([a-z0-9]+)$")
FUZZ = settings(
    deadline=None,
    # The registry fixture is shared by every example on purpose: the invariants must hold on a
    # registry that keeps whatever the earlier hostile inputs left in it.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --------------------------------------------------------------------------------------------
# Strategies

FRAGMENTS = [
    "", " ", "\t", "\n", "\r\n", "\x00", "\x1b[31m", "\x7f", "\u202e", "\u200f", "\u0301",
    "e\u0301", "\ufeff", "\u200b", "\udcff", "\udc80", "..", "../", "/", "\\", "~", "%s", "{}",
    "'", '"', "<script>", "é", "مرحبا", "שלום", "🐕", "ﷺ", "a" * 300, "A", "-", "--", "muffin",
    "any:", "not:", "range:", ",", ":", "1e309", "nan",
]  # fmt: skip
# Always at least one nasty fragment, among arbitrary characters: left to itself, Hypothesis
# spends most examples on plain short strings.
HOSTILE_TEXT = st.builds(
    lambda before, fragment, after: before + fragment + after,
    st.text(max_size=3),
    st.sampled_from(FRAGMENTS),
    st.lists(st.one_of(st.characters(), st.sampled_from(FRAGMENTS)), max_size=3).map("".join),
)
SLUGS = st.one_of(
    st.from_regex(SLUG_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 100),
    HOSTILE_TEXT,
    st.sampled_from(["a" * 100, "a" * 101, "-a", "a--b", "Muffin", "a_b", CANARY]),
)
NUMBERS = st.one_of(
    st.floats(), st.integers(), st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**30])
)
SUFFIXES = ["", ".png", ".PNG", ".jpg", ".json", ".txt", ".dat", ".json.png", ".tar.gz"]


def _file_name(stem: str, suffix: str) -> str | None:
    """A name the file system takes (no '/', no NUL, at most 255 bytes), or None."""
    name = (stem + suffix).replace("/", "").replace("\x00", "") or "x"
    try:
        encoded = os.fsencode(name)  # only surrogateescape's \udc80-\udcff map to bytes
    except UnicodeEncodeError:
        return None
    return name if name not in (".", "..") and len(encoded) <= 255 else None


FILE_NAMES = st.builds(_file_name, HOSTILE_TEXT, st.sampled_from(SUFFIXES)).filter(bool)


@dataclass(frozen=True)
class HostileFile:
    """Content to write; ``sparse_size`` makes it a sparse file that large (cheap, yet huge)."""

    category: str
    data: bytes = b""
    sparse_size: int = 0

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            handle.write(self.data)
            if self.sparse_size:
                handle.truncate(self.sparse_size)
        return path


def _truncated_image(cut: int, colour: int) -> bytes:
    whole = png_bytes((colour, 0, 0), size=(16, 16))
    return whole[: cut % len(whole)]


def _large(megabytes: int, seed: int, utf8: bool) -> bytes:
    if utf8:
        return (f"{seed} " * (megabytes << 18)).encode()
    return random.Random(seed).randbytes(megabytes << 20)


CONTENTS = st.one_of(
    st.just(HostileFile("empty")),
    st.builds(HostileFile, st.just("binary"), st.binary(min_size=1, max_size=64)),
    st.builds(HostileFile, st.just("text"), HOSTILE_TEXT.map(lambda t: t.encode(errors="replace"))),
    st.builds(
        HostileFile,
        st.just("image-bomb"),
        st.builds(png_claiming, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    ),
    st.builds(
        HostileFile,
        st.just("truncated-image"),
        st.builds(_truncated_image, st.integers(0, 10_000), st.integers(0, 255)),
    ),
    st.builds(
        HostileFile,
        st.just("wrong-kind"),
        st.sampled_from(
            [
                png_bytes(),
                b"{nope",
                b'{"a": NaN}',
                b"[1, 2",
                "caf\u00e9".encode("latin-1"),
                b"\xef\xbb\xbf{}",
                b"GIF89a",
                b"\xff\xd8\xff\xe0",
                b"text\x00with nul",
            ]
        ),
    ),
    st.builds(
        HostileFile,
        st.just("large"),
        # Few distinct contents: each stored one is hashed again by every later `check`.
        st.builds(_large, st.integers(2, 3), st.integers(0, 1), st.booleans()),
    ),
    st.just(HostileFile("oversized", b"x", sparse_size=MAX_PATTERN_BYTES + 1)),
)

# --------------------------------------------------------------------------------------------
# The sandbox each example runs in, and the invariants checked after it


@dataclass
class Sandbox:
    """One example's folders: ``inputs`` (what the user names) and ``outside`` (link targets)."""

    root: Path
    base: Path  # the whole test folder: nothing in it may change but the store and the database

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    def secret(self) -> Path:
        """A file outside everything the user names, the target of planted links."""
        return write_text(self.outside / "secret.txt", "a secret the store must never hold\n")


def tree(root: Path, *, skip: tuple[Path, ...] = ()) -> dict[str, tuple[object, ...]]:
    """Every entry under ``root`` without following links: what it is, its size, mtime, inode."""
    found: dict[str, tuple[object, ...]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if Path(folder, d) not in skip]
        for name in dirs + files:
            path = Path(folder, name)
            if path in skip:
                continue
            info = path.lstat()
            link = str(path.readlink()) if path.is_symlink() else None
            found[str(path.relative_to(root))] = (
                info.st_mode,
                info.st_size,
                info.st_mtime_ns,
                link,
            )
    return found


class Harness:
    """Runs examples against one registry and checks the invariants after each."""

    def __init__(self, registry: Registry, base: Path) -> None:
        self.registry = registry
        self.base = base
        self.unique = itertools.count()  # for content no example has used
        self.verified: dict[str, tuple[int, int, int]] = {}
        self.skip = (registry.store.root, *base.glob("registry.db*"))
        registry.problems.add(CANARY)

    @contextlib.contextmanager
    def example(self, category: str) -> Iterator[Sandbox]:
        TRIED[category] += 1
        with tempfile.TemporaryDirectory(dir=self.base, prefix="example-") as folder:
            yield Sandbox(Path(folder), self.base)

    def attempt(self, category: str, call: Callable[[], Any], *, must_refuse: bool = False) -> Any:
        """Invariant 1 for the API: success or a RegistryError with a message.

        (The CLI prints it on one line, escaping what the user's input brought in.)"""
        CALLS[category] += 1
        try:
            result = call()
        except RegistryError as exc:
            REFUSED[category] += 1
            assert str(exc).strip(), f"{category}: {type(exc).__name__} without a message"
            return exc
        assert not must_refuse, f"{category}: accepted what must be refused"
        return result

    def sound(self, sandbox: Sandbox, before: dict[str, tuple[object, ...]]) -> None:
        """Invariants 2 to 4, after the example's call; ``before`` is its :meth:`snapshot`."""
        assert self.snapshot(sandbox) == before, "something outside the store changed"
        store = self.registry.store.root
        for path in store.rglob("*"):
            relative = path.relative_to(store).as_posix()
            if path.is_dir() and not path.is_symlink() and re.fullmatch("[0-9a-f]{2}", relative):
                continue
            match = STORE_NAME.match(relative)
            assert match and not path.is_symlink(), f"stray entry in the store: {relative!r}"
            info = path.stat()
            assert info.st_nlink == 1, f"{relative} is hard-linked"
            identity = (info.st_ino, info.st_size, info.st_mtime_ns)
            if self.verified.get(relative) != identity:  # hash each version of a file once
                assert hashlib.sha256(path.read_bytes()).hexdigest() == match[2], relative
                self.verified[relative] = identity
        report = check(self.registry)
        assert (report.errors, report.warnings) == ([], []), report.to_dict()
        canary = write_text(sandbox.root / "canary.txt", f"canary {next(self.unique)}")
        added = self.registry.patterns.add(CANARY, [NewPattern(canary, Expectation.exact("ok"))])
        assert len(added.added) == 1

    def global_options(self) -> list[str]:
        """The CLI options naming this registry."""
        url = self.registry.engine.url.render_as_string(hide_password=False)
        return ["--url", url, "--patterns-dir", str(self.registry.store.root)]

    def judge(self, category: str, exit_code: int, stdout: str, stderr: str) -> None:
        """Invariant 1 for the CLI: 0; 1 with one line ``error: ...``; 2 with click's usage."""
        CALLS[category] += 1
        assert exit_code in (0, 1, 2), (exit_code, stderr)
        assert "Traceback" not in stdout + stderr
        if exit_code:
            REFUSED[category] += 1
        if exit_code == 1:
            assert_one_clear_error(stderr, stdout)
        elif exit_code == 2:
            assert "Usage:" in stderr, stderr

    def snapshot(self, sandbox: Sandbox) -> dict[str, tuple[object, ...]]:
        """The test folder but the store, the database and the example's export target."""
        return tree(self.base, skip=(*self.skip, *sandbox.root.glob("export*")))


@pytest.fixture
def harness(registry: Registry, tmp_path: Path) -> Harness:
    """On each backend: for what the registry stores, where SQLite and PostgreSQL differ."""
    return Harness(registry, tmp_path)


@pytest.fixture
def sqlite_harness(tmp_path: Path) -> Iterator[Harness]:
    """On SQLite only: for files, paths and the CLI's parsing and printing, which do not depend
    on the backend (and cost the most examples)."""
    with Registry.open(
        url=f"sqlite:///{tmp_path}/registry.db", patterns_dir=tmp_path / "patterns", user="tess"
    ) as registry:
        yield Harness(registry, tmp_path)


@pytest.fixture(scope="module", autouse=True)
def _print_tally(pytestconfig: pytest.Config) -> Iterator[None]:
    """Print the figures at the end of the module, past pytest's capture (even with -q)."""
    yield
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not TRIED:
        return
    lines = [
        f"  {name}: {count} examples, {CALLS[name]} calls, {REFUSED[name]} refused"
        for name, count in sorted(TRIED.items())
    ]
    total = (
        f"{sum(TRIED.values())} examples, {sum(CALLS.values())} calls, "
        f"{sum(REFUSED.values())} refused"
    )
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\nhostile inputs ({total}):\n" + "\n".join(lines))


# --------------------------------------------------------------------------------------------
# How a hostile file is named to the registry


def _place(sandbox: Sandbox, content: HostileFile, name: str, how: str) -> Path:
    """Write ``content`` and return the path by which the user names it, per ``how``."""
    target = content.write(sandbox.inputs / name)
    sandbox.secret()
    links = sandbox.inputs / "links"
    links.mkdir(exist_ok=True)
    if how == "dot-dot":
        (sandbox.inputs / "sub").mkdir(exist_ok=True)
        return sandbox.inputs / "sub" / ".." / name
    if how == "relative":
        return Path(os.path.relpath(target))
    if how == "symlink-outside":
        (links / "link").symlink_to(sandbox.outside / "secret.txt")
        return links / "link"
    if how == "hard-link-outside":
        os.link(sandbox.outside / "secret.txt", links / "hard")
        return links / "hard"
    if how == "absolute-outside":
        return sandbox.outside / "secret.txt"
    if how == "dangling":
        (links / "dangling").symlink_to(sandbox.outside / "gone")
        return links / "dangling"
    if how == "loop":
        (links / "loop").symlink_to(links / "loop")
        return links / "loop"
    if how == "folder":
        return sandbox.outside
    if how == "fifo":
        os.mkfifo(links / "fifo")
        return links / "fifo"
    if how == "device":
        return Path("/dev/zero")
    return target


HOW = st.sampled_from(
    ["plain"] * 6
    + ["dot-dot", "relative", "symlink-outside", "hard-link-outside", "absolute-outside",
       "dangling", "loop", "folder", "fifo", "device"]
)  # fmt: skip


def _expectation(kind: str, text: str) -> Expectation:
    """The API's builders, fed hostile text as the CLI's flags would be."""
    if kind == "exact":
        return Expectation.exact(text)
    if kind == "any":
        return Expectation.any_of(text.split(","))
    if kind == "not":
        return Expectation.none_of(text.split(","))
    if kind == "range":
        return Expectation.parse_range(text)
    return Expectation.parse(text)


EXPECT_KINDS = st.sampled_from(["exact", "any", "not", "range", "parse"])


# --------------------------------------------------------------------------------------------
# The API


@settings(FUZZ, max_examples=40)
@given(
    slug=SLUGS,
    title=st.one_of(st.none(), HOSTILE_TEXT),
    description=HOSTILE_TEXT,
    tags=st.lists(HOSTILE_TEXT, max_size=3),
    max_error_rate=st.one_of(st.none(), NUMBERS),
    allowed_regressions=NUMBERS,
    ref=st.one_of(HOSTILE_TEXT, st.integers().map(str)),
)
def test_api_problem_fields_and_references(
    harness: Harness,
    slug: str,
    title: str | None,
    description: str,
    tags: list[str],
    max_error_rate: Any,
    allowed_regressions: Any,
    ref: str,
) -> None:
    problems, patterns = harness.registry.problems, harness.registry.patterns
    with harness.example("api: problem fields") as sandbox:
        before = harness.snapshot(sandbox)
        fields = {"title": title, "description": description, "tags": tags}
        gates = {"max_error_rate": max_error_rate, "allowed_regressions": allowed_regressions}
        harness.attempt("api: problem fields", lambda: problems.add(slug, **fields, **gates))
        harness.attempt("api: problem fields", lambda: problems.edit(CANARY, **fields, **gates))
        harness.attempt("api: problem fields", lambda: problems.get(slug))
        harness.attempt("api: problem fields", lambda: problems.list(status=slug, tag=slug))
        harness.attempt("api: problem fields", lambda: patterns.get(ref, problem=slug))
        harness.attempt("api: problem fields", lambda: patterns.remove(ref, problem=slug))
        harness.sound(sandbox, before)


@settings(FUZZ, max_examples=40)
@given(
    kind=EXPECT_KINDS,
    label=HOSTILE_TEXT,
    relabel_kind=EXPECT_KINDS,
    relabel=HOSTILE_TEXT,
    note=HOSTILE_TEXT,
    name=st.builds(_file_name, HOSTILE_TEXT, st.just(".txt")).filter(bool),
)
def test_api_labels_notes_and_file_names(
    harness: Harness,
    kind: str,
    label: str,
    relabel_kind: str,
    relabel: str,
    note: str,
    name: str,
) -> None:
    patterns = harness.registry.patterns
    with harness.example("api: labels") as sandbox:
        # Content no example has used: a file refused as a duplicate never reaches its labels.
        path = write_text(sandbox.inputs / name, f"labels {next(harness.unique)}")
        before = harness.snapshot(sandbox)

        def add() -> Any:
            expectation = _expectation(kind, label)
            return patterns.add(CANARY, [NewPattern(path, expectation, note=note)])

        added = harness.attempt("api: labels", add)
        if not isinstance(added, RegistryError):
            pattern_id = added.added[0].id
            harness.attempt(
                "api: labels",
                lambda: patterns.relabel(pattern_id, _expectation(relabel_kind, relabel)),
            )
        harness.sound(sandbox, before)


@settings(FUZZ, max_examples=50)
@given(content=CONTENTS, name=FILE_NAMES, how=HOW)
def test_api_hostile_files_and_paths(
    sqlite_harness: Harness, content: HostileFile, name: str, how: str
) -> None:
    harness, category = sqlite_harness, f"api: file {content.category}"
    with harness.example(category) as sandbox:
        path = _place(sandbox, content, name, how)
        before = harness.snapshot(sandbox)
        new = [NewPattern(path, Expectation.exact("x"), Polarity.negative, Source.production)]
        harness.attempt(category, lambda: harness.registry.patterns.add(CANARY, new))
        harness.sound(sandbox, before)


# Plain values beside the hostile ones, so that imports also succeed and write.
LABELS = st.sampled_from(["muffin", "chihuahua", "café", "マフィン"])
FRESH_TEXT = st.uuids().map(lambda uuid: HostileFile("text", f"a fresh pattern {uuid}".encode()))
LINKS = st.sampled_from(["none", "none", "symlink-file", "symlink-folder", "hard-link", "fifo"])
ESCAPING_ROWS = [
    "../outside/secret.txt",
    "triage/../../outside/secret.txt",
    "triage/linked/secret.txt",
]


@settings(FUZZ, max_examples=30)
@given(
    layout=st.lists(
        st.tuples(st.one_of(LABELS, HOSTILE_TEXT), FILE_NAMES, st.one_of(FRESH_TEXT, CONTENTS)),
        min_size=1,
        max_size=3,
    ),
    planted=LINKS,
    draw=st.data(),
)
def test_api_folder_and_csv_imports(
    sqlite_harness: Harness,
    layout: list[tuple[str, str, HostileFile]],
    planted: str,
    draw: st.DataObject,
) -> None:
    """Folder import (label/file) with hostile label folders and planted links; CSV import with
    paths leaving its folder, absolute, through links, hostile expectations, and broken CSV.

    A path that leads outside (through ``..``, absolutely, or through a symbolic link) must be
    refused; a hard link is a plain file of the folder, and imported like one.
    """
    harness, patterns = sqlite_harness, sqlite_harness.registry.patterns
    with harness.example("api: folder and CSV import") as sandbox:
        folder = sandbox.inputs / "triage"
        written = []
        for label, name, content in layout:
            path = folder / (_file_name(label, "") or "label") / name
            with contextlib.suppress(OSError):  # e.g. a label folder named like a file before
                written.append(content.write(path).relative_to(sandbox.inputs).as_posix())
        links = folder / "links"
        links.mkdir(parents=True, exist_ok=True)
        secret = sandbox.secret()
        if planted == "symlink-file":
            (links / "secret").symlink_to(secret)
        elif planted == "symlink-folder":
            (folder / "linked").symlink_to(sandbox.outside, target_is_directory=True)
        elif planted == "hard-link":
            os.link(secret, links / "secret")
        elif planted == "fifo":
            os.mkfifo(links / "fifo")
        escaping = [*ESCAPING_ROWS, str(secret), "/etc/hostname"]
        if planted == "symlink-file":
            escaping.append("triage/links/secret")
        paths = st.sampled_from([*written, *escaping, "triage/links/secret", "", "triage"])
        # Mostly plain cells beside one hostile one: a NUL or a lone surrogate anywhere makes the
        # whole file unreadable, and would hide what the rows test.
        cells = st.tuples(
            st.one_of(paths, FILE_NAMES),
            st.one_of(LABELS, st.sampled_from(["any:a,b", "not:x", "range:1:2"]), HOSTILE_TEXT),
            st.one_of(st.sampled_from(["positive", "negative", ""]), HOSTILE_TEXT),
            st.one_of(st.just("a note"), HOSTILE_TEXT),
            st.sampled_from(["extra", "", "a,b"]),
            st.sampled_from(["extra", ""]),
        )
        # Rows of 1 to 6 cells: short rows, and fields past the header's four.
        rows = draw.draw(
            st.lists(
                st.tuples(cells, st.sampled_from([4, 4, 4, 1, 2, 3, 5, 6])), min_size=1, max_size=3
            ).map(lambda drawn: [list(row[:width]) for row, width in drawn])
        )
        csv_file = sandbox.inputs / "patterns.csv"
        garbage = draw.draw(st.one_of(st.none(), st.binary(max_size=40)))
        if garbage is not None:
            csv_file.write_bytes(garbage)
        else:
            text = io.StringIO()
            csv.writer(text).writerows([["path", "expected", "polarity", "note"], *rows])
            # surrogatepass: a lone surrogate becomes bytes that are not UTF-8, as in a real file
            csv_file.write_bytes(text.getvalue().encode("utf-8", "surrogatepass"))
        before = harness.snapshot(sandbox)
        folder_links = planted in ("symlink-file", "symlink-folder", "fifo")
        harness.attempt(
            "api: folder and CSV import",
            lambda: patterns.import_folder(CANARY, folder),
            must_refuse=folder_links,
        )
        harness.attempt(
            "api: folder and CSV import",
            lambda: patterns.import_csv(CANARY, csv_file),
            must_refuse=garbage is None and any(row[0] in escaping for row in rows if len(row) > 1),
        )
        harness.sound(sandbox, before)


# --------------------------------------------------------------------------------------------
# Bundles


@pytest.fixture
def source_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid bundle, exported from a registry of its own, that each example spoils a copy of."""
    from tests.test_bundle import populate

    base = tmp_path_factory.mktemp("source")
    with Registry.open(
        url=f"sqlite:///{base}/source.db", patterns_dir=base / "patterns", user="exporter"
    ) as source:
        populate(source, base / "inputs")
        export_bundle(source, base / "bundle")
    return base / "bundle"


def _manifests(bundle: Path) -> list[Path]:
    return sorted((bundle / "problems").glob("*.json"))


def _entries(bundle: Path) -> list[tuple[Path, dict[str, Any], int]]:
    """(manifest, its document, pattern index) for every pattern of the bundle."""
    found = []
    for path in _manifests(bundle):
        document = json.loads(path.read_text(encoding="utf-8"))
        found += [(path, document, index) for index in range(len(document["patterns"]))]
    return found


def _save(path: Path, document: dict[str, Any]) -> None:
    # ASCII with escapes: a lone surrogate in a value reaches the importer as JSON "\\udcff".
    path.write_text(json.dumps(document), encoding="utf-8")


def _iso(moment: datetime, offset_minutes: int) -> str:
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{moment.isoformat()}{'-' if offset_minutes < 0 else '+'}{hours:02}:{minutes:02}"


# Timestamps with any offset, at the ends of the calendar too: some only exist in their offset.
TIMESTAMPS = st.builds(_iso, st.datetimes(), st.integers(-1439, 1439))
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.floats(allow_nan=False),
        st.integers(),
        HOSTILE_TEXT,
        TIMESTAMPS,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(HOSTILE_TEXT, inner)),
    max_leaves=4,
)
PATTERN_KEYS = ["sha256", "file", "kind", "original_name", "expect", "polarity", "source", "note",
                "added_by", "added_at", "size", "labels"]  # fmt: skip
PROBLEM_KEYS = ["slug", "title", "description", "status", "tags", "max_error_rate",
                "allowed_regressions", "patterns", "colour"]  # fmt: skip
MUST_REFUSE = {"dot-dot", "absolute", "symlink-file", "symlink-folder", "hard-link", "tamper",
               "folder",
               "wrong-sha", "duplicate-entry", "duplicate-problem", "malformed-json",
               "fifo", "index-link"}  # fmt: skip
MUTATIONS = sorted(MUST_REFUSE | {"field", "problem-field", "swap-content", "oversized",
                                  "added-at"})  # fmt: skip


def _spoil(bundle: Path, outside: Path, mutation: str, draw: st.DataObject) -> None:
    """Apply one mutation to one drawn pattern of the bundle (a copy)."""
    manifest, document, index = draw.draw(st.sampled_from(_entries(bundle)))
    entry = document["patterns"][index]
    file = bundle / entry["file"]
    copy = outside / "copy"
    copy.write_bytes(file.read_bytes())  # same content: only the way to it is wrong
    if mutation == "dot-dot":
        entry["file"] = draw.draw(
            st.sampled_from([os.path.relpath(copy, bundle), "files/../bundle.json",
                             f"files/../{entry['file']}", "./files/../../outside/copy"])
        )  # fmt: skip
    elif mutation == "absolute":
        entry["file"] = draw.draw(st.sampled_from([str(copy), str(file), "/etc/hostname"]))
    elif mutation == "symlink-file":
        file.unlink()
        file.symlink_to(copy)
    elif mutation == "symlink-folder":
        shutil.copytree(file.parent, outside / "fan")
        shutil.rmtree(file.parent)
        file.parent.symlink_to(outside / "fan", target_is_directory=True)
    elif mutation == "hard-link":
        file.unlink()
        os.link(copy, file)
    elif mutation == "tamper":
        data = bytearray(file.read_bytes())
        where = draw.draw(st.integers(0, len(data) - 1))
        choice = draw.draw(st.sampled_from(["flip", "truncate", "extend"]))
        if choice == "flip":
            data[where] ^= 0xFF
        file.write_bytes(
            bytes(data[:where] if choice == "truncate" else data + b"\n" * (choice == "extend"))
        )
    elif mutation == "wrong-sha":
        entry["sha256"] = draw.draw(st.from_regex("[0-9a-f]{64}", fullmatch=True))
    elif mutation == "duplicate-entry":
        document["patterns"].append(dict(entry))
    elif mutation == "duplicate-problem":
        index_path = bundle / "bundle.json"
        listed = json.loads(index_path.read_text())
        listed["problems"].append(listed["problems"][0])
        index_path.write_text(json.dumps(listed))
    elif mutation == "malformed-json":
        garbage = draw.draw(
            st.one_of(
                st.binary(max_size=30),
                st.integers(1, 200).map(lambda n: manifest.read_bytes()[:n]),
                st.sampled_from(
                    [
                        b"",
                        b"null",
                        b"[]",
                        b'"x"',
                        b"\xff\xfe{}",
                        b"{" * 5000,
                        b"[" * 100_000,
                        b'{"a":' * 50_000,
                    ]
                ),
            )
        )
        target = draw.draw(st.sampled_from([manifest, bundle / "bundle.json"]))
        target.write_bytes(garbage)
        return
    elif mutation == "fifo":
        file.unlink()
        os.mkfifo(file)
    elif mutation == "index-link":
        (outside / "bundle.json").write_bytes((bundle / "bundle.json").read_bytes())
        (bundle / "bundle.json").unlink()
        (bundle / "bundle.json").symlink_to(outside / "bundle.json")
    elif mutation == "folder":
        entry["file"] = draw.draw(
            st.sampled_from(["files", str(Path(entry["file"]).parent), "problems", "files/"])
        )
    elif mutation == "added-at":
        entry["added_at"] = draw.draw(TIMESTAMPS)
    elif mutation == "field":
        entry[draw.draw(st.sampled_from(PATTERN_KEYS))] = draw.draw(JSON_VALUES)
    elif mutation == "problem-field":
        document[draw.draw(st.sampled_from(PROBLEM_KEYS))] = draw.draw(JSON_VALUES)
    elif mutation in ("swap-content", "oversized"):
        content = draw.draw(CONTENTS) if mutation == "swap-content" else CONTENTS_OVERSIZED
        replacement = content.write(outside / "replacement")
        data = replacement.read_bytes() if not content.sparse_size else b""
        sha = hashlib.sha256(data).hexdigest()
        extension = draw.draw(st.sampled_from(["png", "txt", "json", "jpg", "bin"]))
        entry["sha256"], entry["file"] = sha, f"files/{sha[:2]}/{sha}.{extension}"
        entry["kind"] = draw.draw(st.sampled_from(["image", "text", "json", None]))
        destination = bundle / entry["file"]
        destination.parent.mkdir(parents=True, exist_ok=True)
        replacement.replace(destination)
    _save(manifest, document)


CONTENTS_OVERSIZED = HostileFile("oversized", b"", sparse_size=MAX_PATTERN_BYTES + 1)


@settings(FUZZ, max_examples=40)
@given(mutation=st.sampled_from(MUTATIONS), draw=st.data())
def test_api_spoiled_bundles(
    harness: Harness, source_bundle: Path, mutation: str, draw: st.DataObject
) -> None:
    category = f"api: bundle {mutation}"
    with harness.example(category) as sandbox:
        bundle = sandbox.inputs / "bundle"
        shutil.copytree(source_bundle, bundle)
        sandbox.outside.mkdir(parents=True)
        _spoil(bundle, sandbox.outside, mutation, draw)
        before = harness.snapshot(sandbox)
        outcome = harness.attempt(
            category,
            lambda: import_bundle(harness.registry, bundle),
            must_refuse=mutation in MUST_REFUSE,
        )
        if mutation in MUST_REFUSE:
            assert isinstance(outcome, (BundleError, UnsafePath, CorruptPattern)), outcome
        harness.sound(sandbox, before)


def _replace(path: Path, by: Callable[[Path], object]) -> None:
    """Put something else where ``path`` is (a file, a folder or a link): ``by(path)`` makes it."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    by(path)


def _plant(target: Path, sandbox: Sandbox, plant: str) -> None:
    """Spoil an export folder: a link to outside, garbage, a file where a folder must be..."""
    index, problems, files = target / "bundle.json", target / "problems", target / "files"
    manifest = next(iter(_manifests(target)), problems / "missing.json")
    fan = next((path.parent for path in files.rglob("*.png")), files / "00")
    outside = sandbox.outside
    plants: dict[str, Callable[[], object]] = {
        "index-link": lambda: _replace(index, lambda p: p.symlink_to(outside / "index.json")),
        "index-garbage": lambda: _replace(index, lambda p: p.write_bytes(b"\x00garbage")),
        "index-deep": lambda: _replace(
            index, lambda p: p.write_text("problem-registry-bundle" + "[" * 100_000)
        ),
        "index-folder": lambda: _replace(index, Path.mkdir),
        "problems-link": lambda: _replace(problems, lambda p: p.symlink_to(outside, True)),
        "problems-file": lambda: _replace(problems, lambda p: p.write_text("not a folder")),
        "files-file": lambda: _replace(files, lambda p: p.write_text("not a folder")),
        "fan-link": lambda: _replace(fan, lambda p: p.symlink_to(outside, True)),
        "fan-file": lambda: _replace(fan, lambda p: p.write_text("not a folder")),
        "manifest-link": lambda: _replace(manifest, lambda p: p.symlink_to(sandbox.secret())),
        "manifest-folder": lambda: _replace(manifest, Path.mkdir),
        "file-hard-link": lambda: [
            _replace(file, lambda p: os.link(sandbox.secret(), p)) for file in fan.glob("*.png")
        ],
        "stranger-file": lambda: write_text(target / "README.md", "ours, not the registry's"),
        "temp-file": lambda: write_text(problems / ".bundle-incoming-x", "left by a crash"),
    }
    with contextlib.suppress(OSError):  # it cannot go over an earlier plant: that one stays
        plants[plant]()


PLANTS = st.lists(
    st.sampled_from(["index-link", "index-garbage", "index-deep", "index-folder", "problems-link",
                     "problems-file", "files-file", "fan-link", "fan-file", "manifest-link",
                     "manifest-folder", "file-hard-link", "stranger-file", "temp-file"]),
    min_size=1, max_size=3, unique=True,
)  # fmt: skip


@settings(FUZZ, max_examples=20)
@given(plants=PLANTS, under_a_file=st.booleans())
def test_api_export_into_a_spoiled_folder(
    sqlite_harness: Harness, source_bundle: Path, plants: list[str], under_a_file: bool
) -> None:
    """Export never writes through a link planted in its target folder, nor outside it, and
    refuses a folder it cannot write with one clear error."""
    harness, category = sqlite_harness, "api: export into spoiled folder"
    with harness.example(category) as sandbox:
        import_bundle(harness.registry, source_bundle)
        target = sandbox.root / "export"
        shutil.copytree(source_bundle, target)
        sandbox.secret()
        write_text(sandbox.outside / "index.json", (target / "bundle.json").read_text())
        for plant in plants:
            _plant(target, sandbox, plant)
        if under_a_file:
            target = write_text(sandbox.root / "export-file", "a file") / "bundle"
        before = harness.snapshot(sandbox)
        harness.attempt(
            category, lambda: export_bundle(harness.registry, target), must_refuse=under_a_file
        )
        harness.sound(sandbox, before)


# --------------------------------------------------------------------------------------------
# The CLI


@dataclass(frozen=True)
class Command:
    category: str
    build: Callable[[Sandbox], list[str]]


def _cli_problem_add(slug: str, title: str, tag: str, rate: str, regressions: str) -> Command:
    return Command(
        "cli: problem add",
        lambda sandbox: ["problem", "add", slug, "--title", title, "-t", tag,
                         "--max-error-rate", rate, "--allowed-regressions", regressions],
    )  # fmt: skip


def _cli_pattern_add(
    flag: str, label: str, note: str, content: HostileFile, name: str, how: str
) -> Command:
    def build(sandbox: Sandbox) -> list[str]:
        path = _place(sandbox, content, name, how)
        return ["pattern", "add", CANARY, str(path), flag, label, "--note", note]

    return Command(f"cli: pattern add ({content.category})", build)


def _cli_reference(verb: str, ref: str, problem: str, label: str) -> Command:
    extra = ["--expect", label] if verb == "relabel" else []
    return Command(
        f"cli: pattern {verb}", lambda sandbox: ["pattern", verb, ref, "--problem", problem, *extra]
    )


def _cli_bundle(mutation: str, draw: st.DataObject, source: Path) -> Command:
    def build(sandbox: Sandbox) -> list[str]:
        bundle = sandbox.inputs / "bundle"
        shutil.copytree(source, bundle)
        sandbox.outside.mkdir(parents=True, exist_ok=True)
        _spoil(bundle, sandbox.outside, mutation, draw)
        return ["import", str(bundle), "--json"]

    return Command(f"cli: import bundle {mutation}", build)


NUMBER_TEXT = st.one_of(NUMBERS.map(str), HOSTILE_TEXT)


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_cli_commands(sqlite_harness: Harness, source_bundle: Path, data: st.DataObject) -> None:
    command = data.draw(
        st.one_of(
            st.builds(_cli_problem_add, SLUGS, HOSTILE_TEXT, HOSTILE_TEXT, NUMBER_TEXT,
                      NUMBER_TEXT),
            st.builds(_cli_pattern_add,
                      st.sampled_from(["--expect", "--expect-any", "--expect-not",
                                       "--expect-range"]),
                      HOSTILE_TEXT, HOSTILE_TEXT, CONTENTS, FILE_NAMES, HOW),
            st.builds(_cli_reference, st.sampled_from(["show", "relabel", "remove"]),
                      st.one_of(HOSTILE_TEXT, st.integers().map(str)), SLUGS, HOSTILE_TEXT),
            st.builds(_cli_bundle, st.sampled_from(MUTATIONS), st.just(data),
                      st.just(source_bundle)),
        )
    )  # fmt: skip
    with sqlite_harness.example(command.category) as sandbox:
        args = command.build(sandbox)
        before = sqlite_harness.snapshot(sandbox)
        result = CliRunner().invoke(app, [*sqlite_harness.global_options(), *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            result.exception,
        )
        sqlite_harness.judge(command.category, result.exit_code, result.stdout, result.stderr)
        sqlite_harness.sound(sandbox, before)


# Through a real process, for what the in-process runner cannot show: argv decoded from bytes that
# are not UTF-8, and the error printed to a real stderr. A label is stored: refused (exit 1). A file
# name is only shown: the file is added, its name kept with U+FFFD (exit 0). Slugs, titles and
# notes take the same path as the label, and are fuzzed in-process.
NON_UTF8_ARGUMENTS = {
    "label": (["pattern", "add", CANARY, "{file}", "--expect", b"\xff\xfe"], 1),
    "file name": (["pattern", "add", CANARY, "{odd}", "--expect", "x"], 0),
}


@pytest.mark.parametrize("what", list(NON_UTF8_ARGUMENTS))
def test_cli_process_with_non_utf8_arguments(sqlite_harness: Harness, what: str) -> None:
    """Bytes that are not UTF-8 on a real command line, which Python hands on as lone surrogates
    that no database driver can encode."""
    category = f"cli process: non-UTF-8 {what}"
    arguments, expected = NON_UTF8_ARGUMENTS[what]
    with sqlite_harness.example(category) as sandbox:
        plain = write_text(sandbox.inputs / "plain.txt", f"plain {what}")
        odd = write_text(sandbox.inputs / os.fsdecode(b"caf\xe9.txt"), f"odd {what}")
        args = [
            os.fsencode(arg.format(file=plain, odd=odd)) if isinstance(arg, str) else arg
            for arg in arguments
        ]
        before = sqlite_harness.snapshot(sandbox)
        script = Path(sys.executable).parent / "problem-registry"
        result = subprocess.run(
            [script, *sqlite_harness.global_options(), *args],
            capture_output=True,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
            timeout=60,
            check=False,
        )
        stdout, stderr = (out.decode("utf-8", "replace") for out in (result.stdout, result.stderr))
        sqlite_harness.judge(category, result.returncode, stdout, stderr)
        assert result.returncode == expected, stderr
        sqlite_harness.sound(sandbox, before)
    if what == "file name":
        names = [view.original_name for view in sqlite_harness.registry.patterns.list(CANARY)]
        assert "caf\ufffd.txt" in names
