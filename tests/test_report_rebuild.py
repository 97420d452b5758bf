"""Rebuilding a report into its own folder: an unchanged registry is seen as such from a digest
of the registry, without reading its results (issue 19 item 13), and any change is drawn."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from problem_registry.expectations import Expectation
from problem_registry.replay.engine import replay
from problem_registry.report.builder import write_report
from problem_registry.report.keys import MANIFEST
from problem_registry.store.digest import registry_digest
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from tests.digit_registry import register_answers
from tests.test_report import small_registry, tree


def test_an_unchanged_registry_is_rebuilt_from_its_digest_alone(tmp_path: Path) -> None:
    registry = small_registry(tmp_path, versions=2)
    try:
        first = write_report(registry, tmp_path / "site")
        before = tree(tmp_path / "site")
        again = write_report(registry, tmp_path / "site")
        after = tree(tmp_path / "site")
        other = write_report(registry, tmp_path / "site", candidate="pets@v2")
    finally:
        registry.close()
    assert again.drawn == [] and again.deleted == [] and again.kept == sorted(first.drawn)
    assert after == before  # not a byte rewritten
    assert other.drawn, "other options are another report: drawn, not kept"
    manifest = json.loads((tmp_path / "site" / MANIFEST).read_text(encoding="utf-8"))
    assert len(manifest["source"]) == 64


def test_a_missing_or_replaced_file_is_drawn_again(tmp_path: Path) -> None:
    registry = small_registry(tmp_path, versions=2)
    try:
        write_report(registry, tmp_path / "site")
        chart = tmp_path / "site" / "problems" / "cats-vs-dogs" / "outcomes-1.png"
        chart.unlink()
        (tmp_path / "site" / "index.html").unlink()
        redrawn = write_report(registry, tmp_path / "site")
        # A link planted under a report's name is drawn over, never kept (issue 16).
        chart.unlink()
        chart.symlink_to(tmp_path / "registry.db")
        relinked = write_report(registry, tmp_path / "site")
    finally:
        registry.close()
    assert redrawn.drawn == ["problems/cats-vs-dogs/outcomes-1.png"]
    assert (tmp_path / "site" / "index.html").is_file()
    assert relinked.drawn == ["problems/cats-vs-dogs/outcomes-1.png"]
    assert not chart.is_symlink()


def test_a_forged_manifest_source_never_keeps_a_stale_report(tmp_path: Path) -> None:
    registry = small_registry(tmp_path, versions=2)
    try:
        write_report(registry, tmp_path / "site")
        manifest = tmp_path / "site" / MANIFEST
        document = json.loads(manifest.read_text(encoding="utf-8"))
        document["source"] = "../../etc/passwd"
        manifest.write_text(json.dumps(document), encoding="utf-8")
        forged = write_report(registry, tmp_path / "site")
    finally:
        registry.close()
    assert forged.drawn == []  # every file's own key still matched: nothing to draw
    assert json.loads(manifest.read_text(encoding="utf-8"))["source"] != "../../etc/passwd"


def test_every_kind_of_change_moves_the_digest(tmp_path: Path) -> None:
    """Each write a report would show, made by the library or by hand in SQL, gives a new digest;
    so a rebuild after it reads and draws again."""
    registry = small_registry(tmp_path, versions=2)
    database = tmp_path / "registry.db"

    def by_hand(statement: str) -> None:
        with sqlite3.connect(database) as connection:
            connection.execute(statement)

    try:
        seen = [registry_digest(registry)]
        assert registry_digest(registry) == seen[0]  # the same registry, the same digest
        view = registry.patterns.list("cats-vs-dogs")[0]
        first_answer = (
            "file_id = (SELECT min(file_id) FROM result)"
            " AND model_version_id = (SELECT min(id) FROM model_version)"
        )
        metric = "INSERT INTO model_metric VALUES ((SELECT min(id) FROM model_version), 'auc', 0.9)"
        changes = [
            lambda: registry.problems.edit("cats-vs-dogs", title="Cats seen as dogs"),
            lambda: registry.patterns.relabel(view.id, Expectation.exact("dog")),
            lambda: registry.models.promote("pets", "v1"),
            lambda: by_hand(metric),
            # A result replaced, then turned into an error, then deleted, as by hand.
            lambda: by_hand(
                f"UPDATE result SET predicted = 'bird', run_id = 99 WHERE {first_answer}"
            ),
            lambda: by_hand(f"UPDATE result SET error = 'RuntimeError: x' WHERE {first_answer}"),
            lambda: by_hand(f"DELETE FROM result WHERE {first_answer}"),
            lambda: register_answers(registry, "pets", "v3", {}, tmp_path / "answers"),
        ]
        for change in changes:
            change()
            seen.append(registry_digest(registry))
    finally:
        registry.close()
    assert len(set(seen)) == len(seen), "a change left the digest as it was"


def test_the_digest_is_the_same_from_another_connection(tmp_path: Path) -> None:
    small_registry(tmp_path, versions=2).close()
    url = f"sqlite:///{tmp_path}/registry.db"
    with Registry.open(url=url, patterns_dir=tmp_path / "patterns") as one:
        first = registry_digest(one)
    with Registry.open(url=url, patterns_dir=tmp_path / "patterns") as two:
        assert registry_digest(two) == first


def test_the_index_is_written_first_and_the_lead_pages_before_the_rest(tmp_path: Path) -> None:
    """What a lead opens first is never behind: the index before any page, then the pages the
    index lists first (a failed gate, a review), then the rest."""
    from tests.test_report_gates import CANDIDATE, gated_registry

    registry = gated_registry(tmp_path)
    try:
        build = write_report(registry, tmp_path / "site", candidate=CANDIDATE)
    finally:
        registry.close()
    pages = [path for path in build.drawn if path.endswith(".html")]
    assert pages == [f"problems/breaks-{name}.html" for name in ("six", "two", "none")]
    site = tmp_path / "site"
    index = (site / "index.html").stat().st_mtime_ns
    assert all(index <= (site / page).stat().st_mtime_ns for page in pages)


def test_the_index_read_first_says_what_the_full_read_says(tmp_path: Path) -> None:
    """The index comes from the focus's and its baseline's results only; rendered from every
    result instead (the pages' read), it is the same text."""
    from problem_registry.report.builder import _index_pictures
    from problem_registry.report.data import gather
    from problem_registry.report.html import render
    from tests.test_report_gates import CANDIDATE, gated_registry

    registry = gated_registry(tmp_path)
    try:
        registry.models.promote("pets", "v3")  # the latest compared with another champion
        for name, candidate in (("candidate", CANDIDATE), ("latest", None)):
            write_report(registry, tmp_path / name, candidate=candidate)
            full = gather(registry, candidate=candidate)
            expected = render(
                "index.html.j2",
                data=full,
                pictures=_index_pictures(full),
                root="",
                title="Problem registry report",
                triage=None,  # no production cases
            )
            assert (tmp_path / name / "index.html").read_text(encoding="utf-8") == expected, name
    finally:
        registry.close()


def test_the_digest_is_stable_and_moves_on_both_backends(
    registry: Registry, tmp_path: Path
) -> None:
    """On SQLite and PostgreSQL alike: read twice unchanged, the same; after a stored answer or a
    relabel, different (the stamps are integer sums, so PostgreSQL's parallel aggregation cannot
    change them between reads)."""
    registry.problems.add("cats", max_error_rate=0.5)
    path = tmp_path / "inputs" / "tabby.txt"
    path.parent.mkdir(parents=True)
    path.write_text("a tabby\n", encoding="utf-8")
    (view,) = registry.patterns.add("cats", [NewPattern(path, Expectation.exact("cat"))]).added
    register_answers(registry, "pets", "v1", {view.sha256: "dog"}, tmp_path / "answers")
    seen = [registry_digest(registry)]
    assert registry_digest(registry) == seen[0]
    replay(registry, trigger="test")
    seen.append(registry_digest(registry))
    assert registry_digest(registry) == seen[-1]
    registry.patterns.relabel(view.id, Expectation.exact("dog"))
    seen.append(registry_digest(registry))
    assert len(set(seen)) == len(seen)
