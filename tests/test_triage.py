"""Production feedback (issue 20): a real production-like batch of digits, answered by a real
scikit-learn version, ingested, ranked, reviewed into patterns that the next gate replays; the
drift signal; hostile batches refused whole."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from problem_registry.cli import app
from problem_registry.errors import InvalidValue, RegistryError
from problem_registry.replay.engine import replay
from problem_registry.store.tables import PatternBlob
from problem_registry.triage.batch_file import read_batch
from problem_registry.triage.drift import Answers, compare, noise_level, psi_terms
from problem_registry.verdicts.metrics import pattern_results
from tests.digit_registry import Digits
from tests.helpers import assert_one_clear_error, png_bytes, snapshot
from tests.models.digits import features, write_digit
from tests.test_plugin import run_registry  # noqa: F401  (the fixture)

PRODUCTION = "v2"  # the champion, answering production
CORRUPTED = range(0, 300, 25)  # rows whose top half was lost on the way (still valid PNGs)


def production_batch(
    digits: Digits, folder: Path, rows: Sequence[int], *, name: str = "batch.jsonl"
) -> Path:
    """Digits as production saw them: v2's answers with predict_proba's confidence and scores,
    some inputs corrupted, and users correcting some of v2's mistakes and rating a few."""
    model = digits.trained.models[PRODUCTION]
    lines = []
    for n, row in enumerate(rows):
        pixels = digits.trained.test_x[row].copy()
        if row in CORRUPTED:
            pixels[:32] = 0
        path = write_digit(folder / "inputs" / f"{row}.png", pixels)
        probabilities = model.predict_proba(pixels.reshape(1, -1))[0]
        predicted = int(model.classes_[probabilities.argmax()])
        truth = int(digits.trained.test_y[row])
        line: dict[str, object] = {
            "id": f"req-{row}",
            "path": f"inputs/{row}.png",
            "version": f"digits@{PRODUCTION}",
            "prediction": str(predicted),
            "confidence": float(probabilities.max()),
        }
        if n % 2:  # half the rows carry every score, as a richer service would log them
            line["scores"] = {
                str(k): float(p) for k, p in zip(model.classes_, probabilities, strict=True)
            }
        if predicted != truth and n % 3 == 0:
            line["correction"] = str(truth)
            line["rating"] = 1
        elif n % 7 == 0:
            line["rating"] = 5
        lines.append(json.dumps(line))
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def triage_cli(digits: Digits, database_url: str, monkeypatch: pytest.MonkeyPatch):
    """``problem-registry --url ... ARGS`` on the digits registry; the models' loaders are in
    this repository's tests package, which the model workers must import too."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    runner = CliRunner()
    store = digits.registry.store.root

    def run(*args: str, code: int = 0) -> tuple[str, str]:
        result = runner.invoke(
            app,
            ["--url", database_url, "--patterns-dir", str(store), "--user", "tess", *args],
            catch_exceptions=False,
        )
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        if code == 1:
            assert_one_clear_error(result.stderr, result.stdout)
        return result.stdout, result.stderr

    return run


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_production_batch_becomes_patterns_the_next_gate_replays(
    digits: Digits,
    triage_cli: Callable[..., tuple[str, str]],
    run_registry,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    registry = digits.registry
    registry.models.promote("digits", PRODUCTION)  # v3 is the latest candidate
    first = production_batch(digits, tmp_path / "monday", range(0, 300))

    _out, err = triage_cli("triage", "add", str(first))
    assert "300 row(s), 300 new case(s) as batch 1" in err
    before = snapshot(registry)
    _out, err = triage_cli("triage", "add", str(first))  # the same batch again: nothing
    assert "0 new case(s)" in err and "300 already known" in err
    assert snapshot(registry) == before

    queue = json.loads(triage_cli("triage", "list", "--json")[0])
    cases = queue["cases"]
    reasons = {reason for case in cases for reason in case["reasons"]}
    assert {"low-confidence", "correction", "bad-rating", "disagreement"} <= reasons
    priorities = [case["priority"] for case in cases]
    assert priorities == sorted(priorities, reverse=True)
    corrected = [c for c in cases if "correction" in c["reasons"]]
    assert corrected and all(c["correction"] != c["prediction"] for c in corrected)
    # Every corrupted row v2 got wrong or was unsure of is queued.
    assert all(set(c["answers"]) == {"digits@v2", "digits@v3"} for c in cases if c["answers"])
    # The champion and the candidate really do disagree where the queue says so.
    for case in (c for c in cases if "disagreement" in c["reasons"]):
        assert case["answers"]["digits@v2"] != case["answers"]["digits@v3"]
    # Replayed once: a second listing loads no model.
    again = json.loads(triage_cli("triage", "list", "--json")[0])
    assert again["predicted"] == 0 and again["cases"] == cases
    only = json.loads(triage_cli("triage", "list", "--reason", "correction", "--json")[0])["cases"]
    assert [c["id"] for c in only] == [c["id"] for c in corrected]

    chosen = corrected[:3]
    first_case, *others = chosen
    triage_cli(
        "triage", "accept", str(first_case["id"]), "production-misreads", "--expect",
        first_case["correction"], "--open", "Digits production misread",
    )  # fmt: skip
    for case in others:
        triage_cli(
            "triage",
            "accept",
            str(case["id"]),
            "production-misreads",
            "--expect",
            case["correction"],
        )
    patterns = registry.patterns.list("production-misreads")
    assert len(patterns) == 3
    for pattern, case in zip(patterns, chosen, strict=True):
        assert pattern.source == "production" and pattern.added_by == "tess"
        assert f"production case {case['id']}" in pattern.note
        assert (
            f"answered '{case['prediction']}'" in pattern.note
            and "accepted by tess" in pattern.note
        )
        assert pattern.expected == case["correction"]
    # Decided: never proposed again, and deciding twice is refused in one line.
    left = json.loads(triage_cli("triage", "list", "--json")[0])["cases"]
    assert not {c["id"] for c in chosen} & {c["id"] for c in left}
    triage_cli("triage", "discard", str(first_case["id"]), "--reason", "again", code=1)
    triage_cli("triage", "discard", str(left[-1]["id"]), "--reason", "a blurry upload")
    assert left[-1]["id"] not in {
        c["id"] for c in json.loads(triage_cli("triage", "list", "--json")[0])["cases"]
    }

    result = run_registry("--candidate", "digits@v3", "-v")
    result.stdout.fnmatch_lines(["*problem-registry::production-misreads *"])
    replayed = [
        r for r in pattern_results(registry, problems=["production-misreads"]) if r.answered
    ]
    assert {(r.pattern_id, r.version) for r in replayed} >= {
        (p.id, v) for p in patterns for v in ("v2", "v3")
    }
    for r in replayed:  # what the registry stored is what scikit-learn says of the same pixels
        pixels = features_of(registry, r.sha256)
        assert r.predicted == str(digits.trained.models[r.version].predict(pixels)[0])

    # "More like this", by v2's scores and by the input's perceptual hash, and its sheet.
    target = str(cases[0]["id"])
    near = json.loads(triage_cli("triage", "similar", target, "--json")[0])
    assert near["by"] in ("scores", "content") and len(near["neighbours"]) == 8
    distances = [n["distance"] for n in near["neighbours"]]
    assert distances == sorted(distances)
    by_hash = json.loads(triage_cli("triage", "similar", target, "--by", "content", "--json")[0])
    assert by_hash["by"] == "content" and {n["by"] for n in by_hash["neighbours"]} == {"image hash"}
    around = json.loads(
        triage_cli("triage", "similar", "--pattern", str(patterns[0].id), "--json")[0]
    )
    assert around["neighbours"]
    sheet = tmp_path / "like.png"
    triage_cli("triage", "sheet", target, "--out", str(sheet))
    assert sheet.read_bytes().startswith(b"\x89PNG")


def features_of(registry, sha256: str) -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    data = registry.store.read(sha256, "png")
    return features(Image.open(BytesIO(data))).reshape(1, -1)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_drift_verdict_flips_when_the_label_mix_shifts(
    digits: Digits,
    triage_cli: Callable[..., tuple[str, str]],
    run_registry,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    digits.registry.models.promote("digits", PRODUCTION)
    replay(digits.registry, versions=[f"digits@{PRODUCTION}"])
    triage_cli("triage", "add", str(production_batch(digits, tmp_path / "a", range(0, 300))))
    same = production_batch(digits, tmp_path / "b", range(300, 597))
    y = digits.trained.test_y
    low = [int(i) for i in np.flatnonzero(y[300:] <= 2) + 300]
    shifted = production_batch(digits, tmp_path / "c", (low * 4)[:297])

    steady = json.loads(triage_cli("report", "--production", str(same), "--json")[0])
    earlier = steady["comparisons"][0]
    assert earlier["reference"].startswith("batch 1") and earlier["verdict"] == "stable"
    assert "stable" in earlier["sentence"]
    moved = json.loads(triage_cli("report", "--production", str(shifted), "--json")[0])
    assert moved["comparisons"][0]["verdict"] == "drifted"
    assert moved["comparisons"][0]["label_psi"] > 0.25
    # Against the registry's own replay of v2 too (its patterns are hand-picked, not a sample).
    assert any(c["reference"].startswith("the registry's replay") for c in moved["comparisons"])
    out, _err = triage_cli("triage", "drift", str(shifted), "--chart", str(tmp_path / "d.png"))
    assert "drifted" in out and (tmp_path / "d.png").read_bytes().startswith(b"\x89PNG")
    # The plugin warns on it, and stays green for it.
    result = run_registry("--candidate", "digits@v3", "--registry-drift", str(shifted))
    result.stdout.fnmatch_lines(
        ["*warning: production drift: digits@v2: file batch.jsonl*drifted*"]
    )
    quiet = run_registry("--candidate", "digits@v3", "--registry-drift", str(same))
    assert "production drift" not in quiet.stdout.str()


def test_hostile_batches_are_refused_whole_with_one_line(
    digits: Digits, triage_cli: Callable[..., tuple[str, str]], tmp_path: Path
) -> None:
    registry = digits.registry
    good = production_batch(digits, tmp_path, range(0, 5), name="good.jsonl").read_text()
    (tmp_path / "cut.png").write_bytes(png_bytes()[:30])
    outside = tmp_path.parent / "outside.png"
    outside.write_bytes(png_bytes())
    eps = base64.b64encode(b"%!PS-Adobe-3.0 EPSF\n").decode()
    row = '{"version": "digits@v2", "prediction": "3", '
    hostile = {
        "truncated": row + '"path": "cut.png"}',
        "escapes": row + '"path": "../outside.png"}',
        "absolute": row + f'"path": "{outside}"}}',
        "bad base64": row + '"input_base64": "%%%"}',
        "eps": row + f'"input_base64": "{eps}"}}',
        "no version": '{"prediction": "3", "path": "inputs/0.png"}',
        "bad version": '{"version": "digits", "prediction": "3", "path": "inputs/0.png"}',
        "confidence": row.replace("{", '{"confidence": 7, ') + '"path": "inputs/0.png"}',
        "scores": row + '"scores": {"3": "lots"}, "path": "inputs/0.png"}',
        "rating": row + '"rating": 11, "path": "inputs/0.png"}',
        "nul": '{"version": "digits@v2", "prediction": "3\\u0000", "path": "inputs/0.png"}',
        "two inputs": row + '"path": "inputs/0.png", "input_base64": "AA=="}',
        "not json": "{nope",
        "unknown field": row + '"path": "inputs/0.png", "shell": "rm -rf /"}',
    }
    before = snapshot(registry)
    for name, line in hostile.items():
        batch = tmp_path / f"{name.replace(' ', '-')}.jsonl"
        batch.write_text(good + line + "\n", encoding="utf-8")
        _out, err = triage_cli("triage", "add", str(batch), code=1)
        assert "line 6" in err, (name, err)
        assert snapshot(registry) == before, name
    fifo = tmp_path / "fifo.jsonl"
    import os

    os.mkfifo(fifo)
    triage_cli("triage", "add", str(fifo), code=1)
    triage_cli("triage", "accept", "999", "threes-vs-eights", "--expect", "3", code=1)
    triage_cli("triage", "discard", "x", "--reason", "no", code=1)
    assert snapshot(registry) == before


def test_csv_and_base64_rows_are_one_case_each_and_ingest_is_idempotent(
    digits: Digits, triage_cli: Callable[..., tuple[str, str]], tmp_path: Path
) -> None:
    encoded = base64.b64encode(png_bytes((10, 200, 30))).decode()
    (tmp_path / "cat.txt").write_text("a tabby on a mat", encoding="utf-8")
    batch = tmp_path / "b.csv"
    batch.write_text(
        "version,prediction,confidence,input_base64,path,correction\n"
        f"digits@v2,7,0.41,{encoded},,\n"
        "digits@v9,dog,0.99,,cat.txt,cat\n",
        encoding="utf-8",
    )
    _out, err = triage_cli("triage", "add", str(batch))
    assert "2 new case(s)" in err
    _out, err = triage_cli("triage", "add", str(batch))
    assert "0 new case(s)" in err
    queue = json.loads(triage_cli("triage", "list", "--no-replay", "--json")[0])
    assert {c["version"]: c["reasons"] for c in queue["cases"]} == {
        "digits@v2": ["low-confidence"],
        "digits@v9": ["correction"],  # a model the registry does not hold is still triaged
    }
    assert (
        json.loads(triage_cli("triage", "list", "--version", "digits@v9", "--json")[0])["cases"][0][
            "name"
        ]
        == "cat.txt"
    )
    ids = {c["version"]: c["id"] for c in queue["cases"]}
    triage_cli(
        "triage", "accept", str(ids["digits@v9"]), "pets", "--expect", "cat", "--open", "Pets"
    )
    triage_cli("triage", "discard", str(ids["digits@v2"]), "--reason", "a red square, no digit")
    assert json.loads(triage_cli("triage", "list", "--no-replay", "--json")[0])["cases"] == []
    shown = json.loads(triage_cli("triage", "show", str(ids["digits@v2"]), "--json")[0])
    assert shown["status"] == "discarded" and shown["decided_by"] == "tess"
    (pattern,) = digits.registry.patterns.list("pets")
    assert pattern.original_name == "cat.txt" and pattern.source == "production"
    out, err = triage_cli("check")  # case inputs in the store are no orphans
    assert "0 warning(s)" in out + err


def test_an_accept_that_opens_a_problem_and_fails_leaves_no_problem_behind(
    digits: Digits, triage_cli: Callable[..., tuple[str, str]], tmp_path: Path
) -> None:
    encoded = base64.b64encode(png_bytes((200, 10, 30))).decode()
    batch = tmp_path / "b.csv"
    batch.write_text(
        f"version,prediction,confidence,input_base64\ndigits@v2,7,0.41,{encoded}\n",
        encoding="utf-8",
    )
    triage_cli("triage", "add", str(batch))
    (case,) = json.loads(triage_cli("triage", "list", "--no-replay", "--json")[0])["cases"]
    stored = next(digits.registry.store.root.rglob(f"{case['sha256']}.*"))
    stored.unlink()  # the case's input is gone from this runner's cache, and from the database
    with digits.registry.writing() as session:
        session.execute(sa.delete(PatternBlob).where(PatternBlob.sha256 == case["sha256"]))
    accept = ("triage", "accept", str(case["id"]), "reds", "--expect", "7", "--open", "Reds")
    triage_cli(*accept, code=1)
    assert "reds" not in {p.slug for p in digits.registry.problems.list()}
    shown = json.loads(triage_cli("triage", "show", str(case["id"]), "--json")[0])
    assert shown["status"] == "queued"  # still there to accept once its input is back


def test_removing_a_pattern_keeps_the_input_a_queued_case_shares_with_it(
    digits: Digits, triage_cli: Callable[..., tuple[str, str]], tmp_path: Path
) -> None:
    image = tmp_path / "same.png"
    image.write_bytes(png_bytes((20, 90, 160)))
    batch = tmp_path / "b.csv"
    batch.write_text("version,prediction,confidence,path\ndigits@v2,7,0.3,same.png\n")
    triage_cli("triage", "add", str(batch))
    (case,) = json.loads(triage_cli("triage", "list", "--no-replay", "--json")[0])["cases"]
    slug = next(iter(digits.cases))
    triage_cli("pattern", "add", slug, str(image), "--expect", "7")
    (pattern,) = [p for p in digits.registry.patterns.list(slug) if p.sha256 == case["sha256"]]
    lone = tmp_path / "lone.png"
    lone.write_bytes(png_bytes((160, 90, 20)))
    triage_cli("pattern", "add", slug, str(lone), "--expect", "7")
    (other,) = [p for p in digits.registry.patterns.list(slug) if p.original_name == "lone.png"]
    triage_cli("pattern", "remove", str(pattern.id))
    triage_cli("pattern", "remove", str(other.id))
    assert list(digits.registry.store.root.rglob(f"{case['sha256']}.*")), "the case's input"
    with digits.registry.reading() as session:  # the content a case names stays, not the other
        kept = set(session.execute(sa.select(PatternBlob.sha256)).scalars())  # type: ignore[call-overload]
    assert case["sha256"] in kept and other.sha256 not in kept
    triage_cli("triage", "accept", str(case["id"]), slug, "--expect", "7")
    out, err = triage_cli("check")
    assert "0 warning(s)" in out + err


def test_psi_matches_its_definition_and_the_noise_level_grows_as_batches_shrink() -> None:
    reference = Answers("a", __import__("collections").Counter({"1": 50, "2": 50}))
    current = Answers("b", __import__("collections").Counter({"1": 80, "2": 20}))
    terms = psi_terms(reference.labels, current.labels)
    p = [(50 + 0.5) / 101, (50 + 0.5) / 101]
    q = [(80 + 0.5) / 101, (20 + 0.5) / 101]
    expected = sum((b - a) * np.log(b / a) for a, b in zip(p, q, strict=True))
    assert sum(t.psi for t in terms) == pytest.approx(expected)
    scipy_stats = pytest.importorskip("scipy.stats")
    for bins, n in ((10, 300), (3, 50)):  # Wilson-Hilferty against scipy's exact quantile
        exact = scipy_stats.chi2.ppf(0.99, bins - 1) * (2 / n)
        assert noise_level(bins, n, n) == pytest.approx(exact, rel=0.01)
    assert compare("m@v", reference, current).verdict == "drifted"
    assert compare("m@v", reference, Answers("c", reference.labels)).verdict == "stable"
    tiny = Answers("t", __import__("collections").Counter({"1": 4, "2": 1}))
    assert compare("m@v", tiny, tiny).verdict == "too few answers"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "version",
                "prediction",
                "confidence",
                "scores",
                "rating",
                "correction",
                "id",
                "input_base64",
            ]
        ),
        st.one_of(
            st.text(),
            st.integers(),
            st.floats(),
            st.none(),
            st.booleans(),
            st.dictionaries(st.text(), st.floats()),
        ),
    )
)
def test_any_row_is_read_or_refused_as_a_user_error(tmp_path: Path, row: dict) -> None:
    batch = tmp_path / "fuzz.jsonl"
    batch.write_text(json.dumps(row) + "\n", encoding="utf-8")
    try:
        read_batch(batch)
    except RegistryError as exc:
        assert isinstance(exc, InvalidValue) and "\n" not in str(exc)


def test_the_report_links_a_triage_page_that_keeps_hostile_labels_as_text(
    digits: Digits, triage_cli: Callable[..., tuple[str, str]], tmp_path: Path
) -> None:
    encoded = base64.b64encode(png_bytes((200, 20, 20))).decode()
    batch = tmp_path / "b.jsonl"
    rows = [
        {
            "version": "digits@v2",
            "prediction": "<script>alert(1)</script>",
            "confidence": 0.1,
            "input_base64": encoded,
            "correction": "<b>7</b>",
        },
        {"version": "digits@v2", "prediction": "4", "confidence": 0.2, "path": "note.txt"},
    ]
    (tmp_path / "note.txt").write_text("\x1b]0;owned\x07 a text case", encoding="utf-8")
    batch.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    triage_cli("triage", "add", str(batch))
    out, _err = triage_cli("triage", "list", "--no-replay")
    assert "\x1b" not in out and "<script>alert(1)</script>" in out
    triage_cli("report", "--html", str(tmp_path / "report"), "--jobs", "1")
    index = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert 'href="triage.html"' in index
    page = (tmp_path / "report" / "triage.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;7&lt;/b&gt;" in page
    pictures = sorted((tmp_path / "report" / "triage").glob("*.png"))
    assert len(pictures) >= 2 and all(p.read_bytes().startswith(b"\x89PNG") for p in pictures)
