"""Registry as code: export to a bundle folder and import it back, on SQLite and PostgreSQL.

Every refusal is checked the same way: one exception of the right class, a one-line message naming
the file, and a registry left exactly as it was (rows of every table, files of the store).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from problem_registry.enums import Polarity, Source
from problem_registry.errors import BundleError, CorruptPattern, RegistryError, UnsafePath
from problem_registry.expectations import Expectation
from problem_registry.store import bundle as bundle_module
from problem_registry.store.bundle import export_bundle, import_bundle, read_bundle
from problem_registry.store.content import PatternStore
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from tests.helpers import (
    lose_content,
    row_counts,
    snapshot,
    stored_files,
    write_json,
    write_png,
    write_text,
)

SLUG = "chihuahua-vs-muffin"
OTHER = "hats-bias"


@pytest.fixture
def fresh_registry(
    registry: Registry, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Registry]:
    """A second, empty registry on the same backend as ``registry``: where a bundle goes."""
    if registry.engine.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path}/fresh.db"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    opened = Registry.open(url=url, patterns_dir=tmp_path / "fresh-patterns", user="importer")
    try:
        yield opened
    finally:
        opened.close()


def populate(registry: Registry, inputs: Path) -> None:
    """Two problems covering every expectation, polarity, source and file kind, one shared file,
    unicode text, gates and tags; and a third problem with no patterns."""
    registry.problems.add(
        SLUG,
        description="Small dogs read as muffins ✓",
        tags=["vision", "Dogs"],
        max_error_rate=0.2,
        allowed_regressions=1,
    )
    registry.problems.add(OTHER, title="Biased toward hats", max_error_rate=0.25)
    registry.problems.add("empty-problem")
    shared = write_png(inputs / "shared.png", (10, 20, 30))
    registry.patterns.add(
        SLUG,
        [
            NewPattern(write_png(inputs / "dog.png", (200, 180, 150)), Expectation.exact("dog")),
            NewPattern(
                shared,
                Expectation.any_of(["muffin", "cake"]),
                Polarity.negative,
                Source.production,
                "near miss — keep it",
            ),
            NewPattern(
                write_text(inputs / "caption.txt", "un chihuahua café"),
                Expectation.none_of(["muffin"]),
                Polarity.positive,
                Source.feedback,
            ),
        ],
    )
    registry.patterns.add(
        OTHER,
        [
            NewPattern(shared, Expectation.exact("no-hat")),
            NewPattern(write_json(inputs / "score.json", {"age": 41}), Expectation.between(3.5, 4)),
        ],
    )


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: two trees compare equal only if byte-identical."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def contents(registry: Registry) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a bundle carries, as the views show it: ids and the problems' own timestamps differ
    between registries by nature and are left out."""
    problems = [
        view.model_dump(exclude={"created_at", "updated_at"}) for view in registry.problems.list()
    ]
    patterns = sorted(
        (view.model_dump(exclude={"id"}) for view in registry.patterns.list()),
        key=lambda view: (view["problem"], view["sha256"]),
    )
    return problems, patterns


@pytest.fixture
def exported(registry: Registry, tmp_path: Path) -> Path:
    populate(registry, tmp_path / "inputs")
    export_bundle(registry, tmp_path / "bundle")
    return tmp_path / "bundle"


def manifest(bundle: Path, slug: str = SLUG) -> dict[str, Any]:
    return json.loads((bundle / "problems" / f"{slug}.json").read_text(encoding="utf-8"))


def write_manifest(bundle: Path, document: dict[str, Any], slug: str = SLUG) -> None:
    (bundle / "problems" / f"{slug}.json").write_text(json.dumps(document), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Export


def test_bundle_layout_is_an_index_one_manifest_per_problem_and_the_files(exported: Path) -> None:
    index = json.loads((exported / "bundle.json").read_text())
    assert index == {
        "format": "problem-registry-bundle",
        "version": 1,
        "problems": ["chihuahua-vs-muffin", "empty-problem", "hats-bias"],
    }
    document = manifest(exported)
    assert document["tags"] == ["dogs", "vision"]
    assert (document["max_error_rate"], document["allowed_regressions"]) == (0.2, 1)
    shas = [pattern["sha256"] for pattern in document["patterns"]]
    assert shas == sorted(shas) and len(shas) == 3
    for pattern in document["patterns"]:
        sha = pattern["sha256"]
        assert pattern["file"].startswith(f"files/{sha[:2]}/{sha}.")
        assert (exported / pattern["file"]).is_file()
        assert pattern["added_by"] == "tester" and pattern["added_at"].endswith("Z")
    kinds = {pattern["kind"]: pattern["expect"] for pattern in document["patterns"]}
    assert kinds["text"] == {"kind": "not", "labels": ["muffin"]}
    assert manifest(exported, "empty-problem")["patterns"] == []
    text = (exported / "problems" / f"{SLUG}.json").read_text(encoding="utf-8")
    assert "✓" in text and text.endswith("}\n") and text.startswith('{\n  "allowed_regressions"')
    assert len(tree(exported / "files")) == 4  # the shared file once


def test_exporting_twice_into_new_folders_gives_byte_identical_trees(
    exported: Path, registry: Registry, tmp_path: Path
) -> None:
    export_bundle(registry, tmp_path / "again")

    assert tree(tmp_path / "again") == tree(exported)


def test_exporting_again_into_the_same_folder_rewrites_nothing(
    exported: Path, registry: Registry
) -> None:
    before = {path: (path.stat().st_mtime_ns, path.stat().st_ino) for path in exported.rglob("*")}

    summary = export_bundle(registry, exported)

    assert summary.written == [] and summary.removed == []
    assert summary.unchanged == 4 + 3 + 1
    after = {path: (path.stat().st_mtime_ns, path.stat().st_ino) for path in exported.rglob("*")}
    assert after == before


def test_relabel_in_the_database_shows_in_the_next_export_as_one_changed_manifest(
    exported: Path, registry: Registry
) -> None:
    before = tree(exported)
    dog = next(p for p in registry.patterns.list(SLUG) if p.expected == "dog")
    registry.patterns.relabel(dog.id, Expectation.exact("chihuahua"))

    summary = export_bundle(registry, exported)

    assert summary.written == [f"problems/{SLUG}.json"]
    after = tree(exported)
    assert {k for k in after if after[k] != before.get(k)} == {f"problems/{SLUG}.json"}
    entry = next(p for p in manifest(exported)["patterns"] if p["sha256"] == dog.sha256)
    assert entry["expect"] == {"kind": "exact", "labels": ["chihuahua"]}


def test_export_removes_what_the_registry_no_longer_has_and_keeps_unknown_files(
    exported: Path, registry: Registry, fresh_registry: Registry, tmp_path: Path
) -> None:
    for name in ("README.md", ".gitattributes", "files/NOTES.txt", "problems/notes.md"):
        (exported / name).write_text("ours, not the tool's\n")
    fresh_registry.problems.add(OTHER, title="Biased toward hats", max_error_rate=0.25)
    fresh_registry.patterns.add(
        OTHER, [NewPattern(tmp_path / "inputs" / "shared.png", Expectation.exact("no-hat"))]
    )

    summary = export_bundle(fresh_registry, exported)

    assert f"problems/{SLUG}.json" in summary.removed
    assert not (exported / "problems" / f"{SLUG}.json").exists()
    left = set(tree(exported))
    assert {"README.md", ".gitattributes", "files/NOTES.txt", "problems/notes.md"} <= left
    assert len([name for name in left if name.startswith("files/") and "/" in name[6:]]) == 1
    assert json.loads((exported / "bundle.json").read_text())["problems"] == [OTHER]
    assert import_bundle(fresh_registry, exported).changed is False


def test_export_refuses_a_folder_that_holds_manifests_but_is_not_a_bundle(
    registry: Registry, tmp_path: Path
) -> None:
    populate(registry, tmp_path / "inputs")
    foreign = tmp_path / "foreign"
    (foreign / "problems").mkdir(parents=True)
    (foreign / "problems" / "something.json").write_text("{}")
    with pytest.raises(BundleError, match=r"no bundle\.json"):
        export_bundle(registry, foreign)
    (foreign / "bundle.json").write_text('{"format": "another-tool"}')
    with pytest.raises(BundleError, match="not a problem-registry bundle"):
        export_bundle(registry, foreign)
    assert tree(foreign) == {
        "bundle.json": b'{"format": "another-tool"}',
        "problems/something.json": b"{}",
    }


def _in_the_way(path: Path, make: Callable[[Path], object]) -> None:
    """Replace ``path`` (a file or a folder of a bundle) by what ``make`` puts there."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    make(path)


EXPORT_BLOCKED: list[tuple[str, Callable[[Path], None]]] = [
    ("files-is-a-file", lambda b: _in_the_way(b / "files", lambda p: p.write_text("x"))),
    ("problems-is-a-file", lambda b: _in_the_way(b / "problems", lambda p: p.write_text("x"))),
    ("fan-out-is-a-file", lambda b: _in_the_way(_file_of(b).parent, lambda p: p.write_text("x"))),
    ("manifest-is-a-folder",
     lambda b: _in_the_way(b / "problems" / f"{SLUG}.json", Path.mkdir)),
    ("index-is-a-folder", lambda b: _in_the_way(b / "bundle.json", Path.mkdir)),
]  # fmt: skip


@pytest.mark.parametrize("block", [pytest.param(block, id=name) for name, block in EXPORT_BLOCKED])
def test_export_into_a_folder_it_cannot_write_is_one_clear_error(
    registry: Registry, exported: Path, tmp_path: Path, block: Callable[[Path], None]
) -> None:
    """Found by the hostile-input fuzz: a file where export needs a folder (or the reverse), and
    a target below a file, were tracebacks (OSError from mkdir, fdopen or rename)."""
    block(exported)
    with pytest.raises(BundleError, match=r"cannot write|not a regular file") as refused:
        export_bundle(registry, exported)
    assert "\n" not in str(refused.value)
    under_a_file = write_text(tmp_path / "a-file", "x") / "bundle"
    with pytest.raises(BundleError, match=r"cannot write .*Not a directory"):
        export_bundle(registry, under_a_file)


def test_export_refuses_a_registry_whose_pattern_file_is_missing(
    registry: Registry, tmp_path: Path
) -> None:
    populate(registry, tmp_path / "inputs")
    view = registry.patterns.list(OTHER)[0]
    lose_content(registry, view.sha256, view.file)

    with pytest.raises(CorruptPattern, match="is not in the database"):
        export_bundle(registry, tmp_path / "bundle")


def test_the_files_folder_of_a_bundle_reads_as_a_pattern_store(exported: Path) -> None:
    store = PatternStore(exported / "files")
    for pattern in manifest(exported)["patterns"]:
        extension = pattern["file"].rsplit(".", 1)[1]
        assert store.read(pattern["sha256"], extension) == (exported / pattern["file"]).read_bytes()


# --------------------------------------------------------------------------------------------
# Import


def test_round_trip_into_a_fresh_registry_gives_the_same_problems_patterns_and_bundle(
    exported: Path, registry: Registry, fresh_registry: Registry, tmp_path: Path
) -> None:
    summary = import_bundle(fresh_registry, exported)

    assert (summary.problems_created, summary.patterns_created, summary.files_written) == (3, 5, 4)
    assert contents(fresh_registry) == contents(registry)
    export_bundle(fresh_registry, tmp_path / "round-trip")
    assert tree(tmp_path / "round-trip") == tree(exported)
    assert tree(fresh_registry.store.root) == tree(registry.store.root)


def test_a_bundle_moves_between_sqlite_and_postgresql_byte_for_byte(
    exported: Path, registry: Registry, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The team's path from a laptop (SQLite) to the shared server (PostgreSQL), and back."""
    if registry.engine.dialect.name == "sqlite":
        url = request.getfixturevalue("postgres_server").create_database()
    else:
        url = f"sqlite:///{tmp_path}/other-backend.db"
    with Registry.open(url=url, patterns_dir=tmp_path / "other-store", user="x") as other:
        import_bundle(other, exported)
        export_bundle(other, tmp_path / "from-other-backend")
        assert contents(other) == contents(registry)

    assert tree(tmp_path / "from-other-backend") == tree(exported)


def test_importing_the_same_bundle_twice_changes_nothing_the_second_time(
    exported: Path, fresh_registry: Registry
) -> None:
    import_bundle(fresh_registry, exported)
    before = snapshot(fresh_registry), fresh_registry.problems.list(), contents(fresh_registry)

    summary = import_bundle(fresh_registry, exported)

    assert summary.changed is False
    assert (summary.problems_unchanged, summary.patterns_unchanged, summary.files_present) == (
        3,
        5,
        4,
    )
    assert (
        snapshot(fresh_registry),
        fresh_registry.problems.list(),
        contents(fresh_registry),
    ) == before
    assert summary.to_dict()["changed"] is False


def test_import_sets_fields_to_the_manifest_and_leaves_unmentioned_patterns_alone(
    exported: Path, registry: Registry, tmp_path: Path
) -> None:
    document = manifest(exported)
    document["title"] = "Chihuahuas are not muffins"
    document["max_error_rate"] = 0.1
    text = next(p for p in document["patterns"] if p["kind"] == "text")
    text["expect"] = {"kind": "range", "low": 0, "high": 1}
    text["note"] = "relabelled in review"
    write_manifest(exported, document)
    extra = registry.patterns.add(
        SLUG, [NewPattern(write_text(tmp_path / "new.txt", "only here"), Expectation.exact("dog"))]
    ).added[0]

    summary = import_bundle(registry, exported)

    assert (summary.problems_updated, summary.patterns_updated) == (1, 1)
    assert (summary.problems_unchanged, summary.patterns_unchanged) == (2, 4)
    problem = registry.problems.get(SLUG)
    assert (problem.title, problem.max_error_rate) == ("Chihuahuas are not muffins", 0.1)
    view = next(p for p in registry.patterns.list(SLUG) if p.sha256 == text["sha256"])
    assert (view.expect, view.note) == (
        {"kind": "range", "low": 0.0, "high": 1.0},
        "relabelled in review",
    )
    assert registry.patterns.get(extra.id).sha256 == extra.sha256  # import is additive


def test_a_minimal_hand_written_manifest_imports_with_defaults(
    fresh_registry: Registry, tmp_path: Path
) -> None:
    bundle = tmp_path / "hand"
    data = write_text(bundle / "files" / "muffin.txt", "a blueberry muffin").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    write_json(
        bundle / "bundle.json",
        {"format": "problem-registry-bundle", "version": 1, "problems": ["muffins"]},
    )
    write_json(
        bundle / "problems" / "muffins.json",
        {
            "slug": "muffins",
            "patterns": [
                {
                    "sha256": sha,
                    "file": "files/muffin.txt",
                    "expect": {"kind": "exact", "labels": ["muffin"]},
                }
            ],
        },
    )

    import_bundle(fresh_registry, bundle)

    view = fresh_registry.patterns.list("muffins")[0]
    assert (view.original_name, view.polarity, view.source, view.added_by, view.kind) == (
        "muffin.txt",
        "positive",
        "contrived",
        "importer",
        "text",
    )
    assert fresh_registry.problems.get("muffins").title == "Muffins"


def test_import_restores_pattern_files_missing_or_altered_in_the_store(
    exported: Path, registry: Registry
) -> None:
    views = registry.patterns.list(SLUG)
    (registry.store.root / views[0].file).unlink()
    (registry.store.root / views[1].file).write_bytes(b"tampered")

    summary = import_bundle(registry, exported)

    assert summary.files_written == 2 and summary.patterns_unchanged == 5
    for view in views:
        registry.store.read(view.sha256, view.file.rsplit(".", 1)[1])  # verifies the hash


def test_an_import_interrupted_inside_its_transaction_leaves_the_database_as_it_was(
    exported: Path,
    fresh_registry: Registry,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A fault injected after the first problem is written: the transaction must roll back all,
    and a re-run must end where an uninterrupted import does."""
    before_rows = snapshot(fresh_registry)[0]
    real = bundle_module._upsert_patterns
    calls = []

    def interrupted(*args: Any, **kwargs: Any) -> list[str]:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # what Ctrl-C or SIGTERM's handler raises mid-transaction
        return real(*args, **kwargs)

    monkeypatch.setattr(bundle_module, "_upsert_patterns", interrupted)
    with pytest.raises(KeyboardInterrupt):
        import_bundle(fresh_registry, exported)
    assert snapshot(fresh_registry)[0] == before_rows
    monkeypatch.setattr(bundle_module, "_upsert_patterns", real)

    summary = import_bundle(fresh_registry, exported)

    assert summary.files_present == 4 and summary.problems_created == 3
    assert contents(fresh_registry) == contents(registry)
    export_bundle(fresh_registry, tmp_path / "after-rerun")
    assert tree(tmp_path / "after-rerun") == tree(exported)


def _import_in_child(url: str, store: str, bundle: str) -> None:
    with Registry.open(url=url, patterns_dir=Path(store), user="killed") as registry:
        import_bundle(registry, Path(bundle))


@pytest.mark.slow
def test_an_import_killed_at_any_point_is_all_or_nothing_and_a_rerun_ends_identical(
    registry: Registry, fresh_registry: Registry, tmp_path: Path
) -> None:
    """SIGKILL at growing delays until a run finishes by itself: every killed run leaves the
    database empty or complete, never between; the finished one matches an uninterrupted import.

    The importer is forked, not spawned, so kills land in the import rather than in Python's
    start-up. Round one starts with an empty store, so kills land while files are stored (each
    run stores more). Round two starts with every file stored and an emptied database, so a run
    is only validation and the transaction, and its kills land inside the transaction.
    """
    populate(registry, tmp_path / "inputs")
    registry.problems.add("many-patterns")
    many = [
        NewPattern(write_text(tmp_path / "many" / f"{n}.txt", f"case {n}"), Expectation.exact("x"))
        for n in range(80)
    ]
    registry.patterns.add("many-patterns", many)
    export_bundle(registry, tmp_path / "bundle")
    url = fresh_registry.engine.url.render_as_string(hide_password=False)
    arguments = (url, str(fresh_registry.store.root), str(tmp_path / "bundle"))
    empty, complete = row_counts(fresh_registry), row_counts(registry)
    context = multiprocessing.get_context("fork")

    def kill_until_done(step: float) -> int:
        """Kill at 0, step, 2*step...; the step doubles every 8 kills, so a slow machine costs
        a few more kills rather than quadratically more time."""
        delay = 0.0
        for attempt in range(200):
            process = context.Process(target=_import_in_child, args=arguments)
            process.start()
            process.join(timeout=delay)
            if not process.is_alive():
                assert process.exitcode == 0
                return attempt
            process.kill()
            process.join()
            counts = row_counts(fresh_registry)
            assert counts in (empty, complete), f"kill {attempt} left a partial import: {counts}"
            step *= 2 if attempt % 8 == 7 else 1
            delay += step
        raise AssertionError("the import never finished")

    kills = kill_until_done(step=0.012)
    assert _pattern_files(fresh_registry.store.root) == _pattern_files(registry.store.root)
    with fresh_registry.engine.begin() as connection:  # round two: same files, empty database
        connection.execute(sa.text("DELETE FROM problem"))
        connection.execute(sa.text("DELETE FROM pattern_file"))
        connection.execute(sa.text("DELETE FROM pattern_blob"))  # no cascade since 0009
    assert row_counts(fresh_registry) == empty
    kills_in_round_two = kill_until_done(step=0.006)

    assert kills >= 5 and kills_in_round_two >= 8, (kills, kills_in_round_two)
    assert contents(fresh_registry) == contents(registry)
    export_bundle(fresh_registry, tmp_path / "after-kills")
    assert tree(tmp_path / "after-kills") == tree(tmp_path / "bundle")


def _pattern_files(root: Path) -> list[str]:
    """Stored pattern files, without the temporary files a killed write leaves behind."""
    return [name for name in stored_files(root) if not Path(name).name.startswith(".")]


# --------------------------------------------------------------------------------------------
# Refusals: one clear error, nothing written


def _file_of(bundle: Path, kind: str = "image") -> Path:
    entry = next(p for p in manifest(bundle)["patterns"] if p["kind"] == kind)
    return bundle / entry["file"]


def _tamper(bundle: Path, outside: Path) -> None:
    _file_of(bundle, "text").write_text("un chihuahua caf\u00e9!", encoding="utf-8")


def _delete(bundle: Path, outside: Path) -> None:
    _file_of(bundle).unlink()


def _symlink(bundle: Path, outside: Path) -> None:
    target = _file_of(bundle)
    copy = outside / "copy.png"
    copy.write_bytes(target.read_bytes())  # same content: only the link itself is wrong
    target.unlink()
    target.symlink_to(copy)


def _hard_link(bundle: Path, outside: Path) -> None:
    target = _file_of(bundle)
    copy = outside / "copy.png"
    copy.write_bytes(target.read_bytes())
    target.unlink()
    os.link(copy, target)


def _linked_folder(bundle: Path, outside: Path) -> None:
    folder = _file_of(bundle).parent
    copy = outside / "fan"
    folder.rename(copy)
    folder.symlink_to(copy, target_is_directory=True)


def _set_file(value: Callable[[Path, Path], str]) -> Callable[[Path, Path], None]:
    def change(bundle: Path, outside: Path) -> None:
        document = manifest(bundle)
        entry = next(p for p in document["patterns"] if p["kind"] == "image")
        copy = outside / "copy.png"
        copy.write_bytes((bundle / entry["file"]).read_bytes())
        entry["file"] = value(bundle, copy)
        write_manifest(bundle, document)

    return change


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Path, Path], None]:
    def apply(bundle: Path, outside: Path) -> None:
        document = manifest(bundle)
        change(document)
        write_manifest(bundle, document)

    return apply


def _set_index(**fields: Any) -> Callable[[Path, Path], None]:
    def apply(bundle: Path, outside: Path) -> None:
        index = json.loads((bundle / "bundle.json").read_text())
        (bundle / "bundle.json").write_text(json.dumps({**index, **fields}))

    return apply


def _fifo(bundle: Path, outside: Path) -> None:
    target = _file_of(bundle)
    target.unlink()
    os.mkfifo(target)


def _first_image(document: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in document["patterns"] if p["kind"] == "image")


REFUSALS = [
    ("tampered-file", _tamper, CorruptPattern, "does not match its sha256"),
    ("missing-file", _delete, BundleError, "is missing; restore it"),
    ("symlinked-file", _symlink, UnsafePath, "symbolic link"),
    ("hard-linked-file", _hard_link, UnsafePath, "hard link"),
    ("symlinked-folder", _linked_folder, UnsafePath, "symbolic link"),
    ("fifo", _fifo, BundleError, "not a regular file"),
    ("dot-dot-path", _set_file(lambda b, copy: os.path.relpath(copy, b)),
     UnsafePath, "resolves outside"),
    ("absolute-path", _set_file(lambda b, copy: str(copy)), UnsafePath, "is absolute"),
    ("dot-dot-inside", _set_file(lambda b, copy: "files/../bundle.json"), UnsafePath, "'..'"),
    ("malformed-json", lambda b, o: (b / "problems" / f"{SLUG}.json").write_text('{"slug": '),
     BundleError, "not valid JSON"),
    ("duplicate-key", lambda b, o: (b / "problems" / f"{SLUG}.json").write_text(
        '{"slug": "x", "slug": "y"}'), BundleError, "appears twice"),
    ("wrong-version", _set_index(version=2), BundleError, "format version 2"),
    ("wrong-format", _set_index(format="zip"), BundleError, "not a problem-registry bundle"),
    ("missing-index", lambda b, o: (b / "bundle.json").unlink(), BundleError, "no bundle.json"),
    ("unlisted-manifest", _set_index(problems=[SLUG, OTHER]), BundleError, "is not listed"),
    ("listed-but-missing", _set_index(problems=[SLUG, OTHER, "empty-problem", "ghost"]),
     BundleError, "is missing"),
    ("invalid-slug", _set_index(problems=["Not A Slug"]), BundleError, "not a valid problem slug"),
    ("slug-mismatch", _edit(lambda d: d.update(slug=OTHER)), BundleError, "must match"),
    ("unknown-key", _edit(lambda d: d.update(colour="red")), BundleError, "unknown key 'colour'"),
    ("bad-gate", _edit(lambda d: d.update(max_error_rate=1.5)), BundleError, "outside 0..1"),
    ("bad-type", _edit(lambda d: d.update(allowed_regressions="2")), BundleError,
     "must be integer"),
    ("bad-expectation", _edit(lambda d: _first_image(d).update(expect={"kind": "exact"})),
     BundleError, "labels"),
    ("bad-polarity", _edit(lambda d: _first_image(d).update(polarity="neutral")), BundleError,
     "not one of positive, negative"),
    ("bad-sha", _edit(lambda d: _first_image(d).update(sha256="abc")), BundleError, "64 lowercase"),
    ("wrong-kind", _edit(lambda d: _first_image(d).update(kind="text")), CorruptPattern,
     "says kind 'text'"),
    ("bad-timestamp", _edit(lambda d: _first_image(d).update(added_at="yesterday")), BundleError,
     "not a timestamp"),
    ("same-file-twice", _edit(lambda d: d["patterns"].append(dict(_first_image(d)))), BundleError,
     "twice"),
    # Found by the hostile-input fuzz: JSON's "\udce9" escape gives a lone surrogate, which no
    # driver encodes and no OS call takes; PostgreSQL refuses NUL. Each was a traceback.
    ("surrogate-description", _edit(lambda d: d.update(description="caf\udce9")), BundleError,
     "description is not valid UTF-8"),
    ("surrogate-name", _edit(lambda d: _first_image(d).update(original_name="\udce9.png")),
     BundleError, "original_name is not valid UTF-8"),
    ("surrogate-path", _edit(lambda d: _first_image(d).update(file="files/\ud800.png")),
     BundleError, "file is not valid UTF-8"),
    ("nul-note", _edit(lambda d: _first_image(d).update(note="nul\x00")), BundleError,
     "note contains a NUL"),
    ("nested-too-deep", lambda b, o: (b / "problems" / f"{SLUG}.json").write_text("[" * 100_000),
     BundleError, "not valid JSON"),
    ("timestamp-out-of-range",
     _edit(lambda d: _first_image(d).update(added_at="0001-01-01T00:00:00+01:00")), BundleError,
     "not a timestamp"),
    ("file-is-a-folder", _edit(lambda d: _first_image(d).update(file="files")), BundleError,
     "not a regular file"),
]  # fmt: skip


def test_every_bad_bundle_is_refused_with_one_clear_error_and_nothing_written(
    exported: Path, fresh_registry: Registry, registry: Registry, tmp_path: Path
) -> None:
    """Each case spoils a copy of a good bundle and imports it into an empty registry and into
    the one that wrote it (which knows every file). One test runs every case, so each backend
    pays for its databases once; a failure names its cases."""
    before = snapshot(fresh_registry), snapshot(registry), contents(registry)
    failures: list[str] = []
    for name, change, error, fragment in REFUSALS:
        bundle, outside = tmp_path / "cases" / name, tmp_path / "outside" / name
        shutil.copytree(exported, bundle)
        outside.mkdir(parents=True)
        change(bundle, outside)
        for target in (fresh_registry, registry):
            try:
                import_bundle(target, bundle)
            except RegistryError as exc:
                message = str(exc)
                if type(exc) is not error or fragment not in message or str(bundle) not in message:
                    failures.append(f"{name}: {type(exc).__name__}: {message}")
                elif "\n" in message:
                    failures.append(f"{name}: message spans lines: {message!r}")
            else:
                failures.append(f"{name}: imported without an error")
    assert failures == []
    assert (snapshot(fresh_registry), snapshot(registry), contents(registry)) == before


def test_read_bundle_checks_everything_and_writes_nothing(exported: Path) -> None:
    before = tree(exported)

    bundle = read_bundle(exported)

    assert [problem.slug for problem in bundle.problems] == [SLUG, "empty-problem", OTHER]
    assert len(bundle.files) == 4
    assert tree(exported) == before
