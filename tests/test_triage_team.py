"""Production cases' inputs in the database (issue 20, after issue 17): a runner holding only the
URL and an empty folder ranks, replays, draws, accepts and reports another runner's batch; an
accepted case's pattern shares its content row; an older registry's case inputs are copied in by
migration 0009; ``check`` covers case content like pattern content."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from problem_registry.cli import app
from problem_registry.store import migrations
from problem_registry.store.engines import create_registry_engine
from problem_registry.store.integrity import check
from problem_registry.store.registry import Registry
from problem_registry.store.tables import PatternBlob, PatternFile, TriageCase
from problem_registry.triage.ingest import ingest
from tests.digit_registry import Digits
from tests.helpers import png_bytes
from tests.test_triage import PRODUCTION, production_batch, triage_cli  # noqa: F401

BLOB = PatternBlob.__table__  # type: ignore[attr-defined]


def blob_count(registry: Registry, shas: list[str] | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(BLOB)
    if shas is not None:
        query = query.where(BLOB.c.sha256.in_(shas))
    with registry.reading() as session:
        return int(session.execute(query).scalar_one())


def named_contents(registry: Registry) -> set[str]:
    with registry.reading() as session:
        files = set(session.execute(sa.select(PatternFile.sha256)).scalars())  # type: ignore[call-overload]
        cases = set(session.execute(sa.select(TriageCase.sha256)).scalars())  # type: ignore[call-overload]
    return files | cases


def test_a_runner_with_only_the_url_works_the_queue_another_ingested(
    digits: Digits,
    database_url: str,
    triage_cli: Callable[..., tuple[str, str]],  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = digits.registry
    registry.models.promote("digits", PRODUCTION)  # v3 is the latest candidate
    batch = production_batch(digits, tmp_path / "tester", range(0, 24))
    (tmp_path / "tester" / "note.txt").write_text("a seven, said the user", encoding="utf-8")
    with batch.open("a", encoding="utf-8") as lines:
        lines.write('{"version": "digits@v2", "prediction": "7", "path": "note.txt"}\n')
    triage_cli("triage", "add", str(batch))  # the tester, in their own folder
    assert blob_count(registry) == len(named_contents(registry))  # every input, in the database

    # The runner: an empty folder as working directory and as its (cache) pattern folder.
    folder = tmp_path / "runner"
    folder.mkdir()
    monkeypatch.chdir(folder)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(
            app,
            ["--url", database_url, "--patterns-dir", str(folder / "patterns"), *args],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        assert "missing" not in result.stdout + result.stderr
        return result.stdout

    listed = json.loads(run("triage", "list", "--json"))
    cases = listed["cases"]
    images = {c["sha256"] for c in cases if c["kind"] == "image"}
    # The champion and the candidate both answered every image case from the database's copy.
    assert images and listed["predicted"] >= 2 * len(images)
    assert all(
        set(c["answers"]) == {"digits@v2", "digits@v3"} for c in cases if c["sha256"] in images
    )

    with registry.reading() as session:
        text_id, text_sha = session.execute(
            sa.select(TriageCase.id, TriageCase.sha256).where(TriageCase.kind == "text")
        ).one()
    assert str(folder / "patterns") in run("triage", "show", str(text_id))
    assert list((folder / "patterns").rglob(f"{text_sha}.txt")), "the file shown is there"
    target = next(c for c in cases if c["kind"] == "image")
    run("triage", "sheet", str(target["id"]), "--by", "content", "--out", str(folder / "like.png"))
    assert (folder / "like.png").read_bytes().startswith(b"\x89PNG")
    assert list((folder / "patterns").rglob(f"{target['sha256']}.png")), "read through the cache"

    run("triage", "accept", str(target["id"]), "threes-vs-eights", "--expect", "3")
    (pattern,) = [
        p for p in registry.patterns.list("threes-vs-eights") if p.sha256 == target["sha256"]
    ]
    assert pattern.source == "production"
    assert blob_count(registry, [target["sha256"]]) == 1  # the case's row, not a second copy
    assert blob_count(registry) == len(named_contents(registry))

    run("report", "--html", str(folder / "report"), "--jobs", "1")
    page = (folder / "report" / "triage.html").read_text(encoding="utf-8")
    drawn = {p.stem for p in (folder / "report" / "triage").glob("*.png") if p.stem != "drift"}
    cached = {p.stem[:16] for p in (folder / "patterns").rglob("*.*")}
    assert drawn and drawn <= cached  # every thumbnail drawn from the real input
    assert "input missing" not in page
    assert "comparisons" in json.loads(run("triage", "drift", str(batch), "--json"))


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_migration_0009_copies_case_inputs_and_check_covers_them(
    database_url: str, tmp_path: Path
) -> None:
    picture, text = png_bytes((9, 99, 199)), b"a case typed by a user"
    batch = tmp_path / "b.jsonl"
    rows = [
        {"version": "m@v1", "prediction": "cat", "input_base64": base64.b64encode(data).decode()}
        for data in (picture, text, b"gone from every disk")
    ]
    batch.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    patterns = tmp_path / "patterns"
    with Registry.open(url=database_url, patterns_dir=patterns, user="tess") as registry:
        ingest(registry, batch)
        assert blob_count(registry) == 3
        with registry.reading() as session:
            gone = session.execute(
                sa.select(TriageCase.sha256, TriageCase.extension, TriageCase.id).where(
                    TriageCase.original_name.like("line-3.%")  # type: ignore[attr-defined]
                )
            ).one()

    engine = create_registry_engine(database_url)
    try:
        migrations.downgrade(engine, "0008")  # as a registry of issue 17 held them
        with engine.connect() as connection:
            assert connection.execute(sa.select(sa.func.count()).select_from(BLOB)).scalar() == 0
        kept = (patterns / gone[0][:2] / f"{gone[0]}.{gone[1]}").read_bytes()
        (patterns / gone[0][:2] / f"{gone[0]}.{gone[1]}").unlink()
        state = migrations.upgrade(engine, patterns_dir=patterns)
    finally:
        engine.dispose()
    assert state.current == "0009"
    assert (state.content_copied, state.content_missing) == (2, 1)

    with Registry.open(url=database_url, patterns_dir=tmp_path / "elsewhere") as registry:
        report = check(registry)
        assert [f.code for f in report.errors] == ["missing-file"]
        assert f"production case {gone[2]}" in report.errors[0].message
    (patterns / gone[0][:2] / f"{gone[0]}.{gone[1]}").write_bytes(kept)  # back where it was
    with Registry.open(url=database_url, patterns_dir=patterns) as registry:
        report = check(registry)  # puts it in the database, as for a pattern file
        assert report.ok and [w.code for w in report.warnings] == ["content-uploaded"]
    with Registry.open(url=database_url, patterns_dir=tmp_path / "elsewhere") as registry:
        with registry.writing() as session:  # edited by hand: every case's content altered
            session.execute(sa.update(BLOB).values(data=b"tampered"))
        assert [f.code for f in check(registry).errors] == ["altered-file"] * 3
