"""Model versions through the library API, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from problem_registry.enums import LoaderKind
from problem_registry.errors import DuplicateModel, InvalidValue, ModelNotFound
from problem_registry.refs import ModelRef, format_ref
from problem_registry.store.model_versions import parse_metrics, version_ids
from problem_registry.store.registry import Registry
from tests.helpers import snapshot, write_text


def test_registered_version_keeps_its_loader_metrics_and_registrant(registry: Registry) -> None:
    view = registry.models.register(
        "digits", "v1", loader="my_models.digits:load", metrics={"auc": 0.91, "f1": 0.8}
    )

    assert view.ref == "digits@v1"
    assert (view.name, view.version) == ("digits", "v1")
    assert (view.loader_kind, view.loader) == ("python", "my_models.digits:load")
    assert view.metrics == {"auc": 0.91, "f1": 0.8}
    assert view.artifact_path is None
    assert view.artifact_sha256 is None
    assert view.is_champion is False
    assert view.registered_by == "tester"
    assert view.registered_at is not None
    assert registry.models.get("digits", "v1") == view


def test_artifact_is_recorded_by_absolute_path_and_sha256(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = write_text(tmp_path / "models" / "weights.bin", "pretend weights")
    monkeypatch.chdir(tmp_path)

    view = registry.models.register(
        "digits", "v1", loader="m:load", artifact=Path("models/weights.bin")
    )

    assert view.artifact_path == str(artifact.resolve())
    assert view.artifact_sha256 == hashlib.sha256(artifact.read_bytes()).hexdigest()


def test_missing_artifact_is_refused_and_nothing_written(
    registry: Registry, tmp_path: Path
) -> None:
    before = snapshot(registry)

    with pytest.raises(InvalidValue, match="is not a file"):
        registry.models.register("digits", "v1", loader="m:load", artifact=tmp_path / "nope.bin")

    assert snapshot(registry) == before


def test_duplicate_version_is_refused_and_nothing_written(registry: Registry) -> None:
    registry.models.register("digits", "v1", loader="m:load", metrics={"auc": 0.9})
    before = snapshot(registry)

    with pytest.raises(DuplicateModel, match="digits@v1 is already registered"):
        registry.models.register("digits", "v1", loader="other:load", metrics={"auc": 0.1})

    assert snapshot(registry) == before
    assert registry.models.get("digits", "v1").metrics == {"auc": 0.9}


MALFORMED_REGISTRATIONS = [
    ("has space", "v1", "m:load", {}, "model name"),
    ("digits", "v@1", "m:load", {}, "version"),
    ("", "v1", "m:load", {}, "model name"),
    ("digits", "v1", "no_colon", {}, "module:callable"),
    ("digits", "v1", "m:load:extra", {}, "module:callable"),
    ("digits", "v1", "m:load", {"bad name": 1.0}, "metric name"),
    ("digits", "v1", "m:load", {"auc": float("nan")}, "finite"),
    ("digits", "v1", "m:load", {"auc": float("inf")}, "finite"),
]


def test_malformed_registration_is_refused_and_nothing_written(registry: Registry) -> None:
    before = snapshot(registry)

    for name, version, loader, metrics, message in MALFORMED_REGISTRATIONS:
        with pytest.raises(InvalidValue, match=message):
            registry.models.register(name, version, loader=loader, metrics=metrics)

    assert snapshot(registry) == before


@pytest.mark.parametrize(
    ("note", "user", "message"),
    [
        ("a\x00b", "tester", "the note contains a NUL character"),
        ("trained on \udcff", "tester", "the note is not valid UTF-8"),
        ("", "bad\udcffname", "the user name .* is not valid UTF-8"),
        ("", "x" * 101, "the user name .* the most is 100"),
    ],
)
def test_text_no_backend_can_store_is_refused_and_nothing_written(
    registry: Registry, note: str, user: str, message: str
) -> None:
    # Found by the hostile-input fuzz on patterns: PostgreSQL refuses NUL, neither driver
    # encodes a lone surrogate, and the failure used to surface as the driver's traceback.
    before = snapshot(registry)
    writer = Registry(registry.engine, registry.store, user=user)

    with pytest.raises(InvalidValue, match=message):
        writer.models.register("digits", "v1", loader="my_models.digits:load", note=note)

    assert snapshot(registry) == before


def test_predictions_loader_need_not_be_a_python_callable(registry: Registry) -> None:
    view = registry.models.register(
        "digits", "v1", loader="predictions/v1.csv", loader_kind=LoaderKind.predictions
    )

    assert (view.loader_kind, view.loader) == ("predictions", "predictions/v1.csv")


def test_versions_are_listed_in_registration_order_not_by_name(registry: Registry) -> None:
    for version in ("v10", "v2", "v1"):
        registry.models.register("digits", version, loader="m:load")
    registry.models.register("alpha", "v1", loader="m:load")

    assert [v.ref for v in registry.models.list()] == [
        "digits@v10",
        "digits@v2",
        "digits@v1",
        "alpha@v1",
    ]
    assert [v.version for v in registry.models.list("digits")] == ["v10", "v2", "v1"]


def test_unknown_model_is_named_in_the_error(registry: Registry) -> None:
    registry.models.register("digits", "v1", loader="m:load")

    with pytest.raises(ModelNotFound, match="no model named 'cats'"):
        registry.models.list("cats")
    with pytest.raises(ModelNotFound, match="digits@v9"):
        registry.models.get("digits", "v9")
    with pytest.raises(ModelNotFound, match="digits@v9"):
        registry.models.promote("digits", "v9")


def test_promote_makes_one_champion_per_name_and_demotes_the_previous_one(
    registry: Registry,
) -> None:
    for version in ("v1", "v2", "v3"):
        registry.models.register("digits", version, loader="m:load")
    registry.models.register("faces", "v1", loader="m:load")
    assert registry.models.champion("digits") is None

    registry.models.promote("digits", "v1")
    registry.models.promote("faces", "v1")
    promoted = registry.models.promote("digits", "v2")

    assert promoted.is_champion
    champion = registry.models.champion("digits")
    assert champion is not None
    assert champion.version == "v2"
    assert [v.ref for v in registry.models.list() if v.is_champion] == ["digits@v2", "faces@v1"]


def test_promoting_the_champion_again_keeps_it_champion(registry: Registry) -> None:
    registry.models.register("digits", "v1", loader="m:load")
    registry.models.promote("digits", "v1")

    assert registry.models.promote("digits", "v1").is_champion
    assert [v.is_champion for v in registry.models.list("digits")] == [True]


def test_name_at_version_references_are_parsed_and_printed_in_one_form() -> None:
    ref = ModelRef.parse("digits@v3")
    assert (ref.name, ref.version) == ("digits", "v3")
    assert str(ref) == "digits@v3" == format_ref("digits", "v3")
    assert ModelRef.of(ref) is ref and ModelRef.of("digits@v3") == ref
    assert ModelRef.parse("a@b@c") == ModelRef("a", "b@c")  # the first @ splits
    for bad in ("digits", "@v3", "digits@", ""):
        with pytest.raises(InvalidValue, match="NAME@VERSION"):
            ModelRef.parse(bad)


def test_several_refs_resolve_in_one_lookup_and_a_missing_one_is_named(
    registry: Registry,
) -> None:
    registry.models.register("digits", "v1", loader="m:load")
    registry.models.register("faces", "v1", loader="m:load")
    wanted = [ModelRef("faces", "v1"), ModelRef("digits", "v1")]
    with registry.reading() as session:
        ids = version_ids(session, wanted)
        assert sorted(ids) == sorted(wanted) and len(set(ids.values())) == 2
        with pytest.raises(ModelNotFound, match=r"no model version digits@v9; see `problem-"):
            version_ids(session, [*wanted, ModelRef("digits", "v9")])


def test_metric_pairs_from_the_command_line_are_parsed() -> None:
    assert parse_metrics(["auc=0.91", " f1 = 0.5", "loss=1e-3"]) == {
        "auc": 0.91,
        "f1": 0.5,
        "loss": 0.001,
    }
    for bad in ("auc", "auc=high", "auc=", "0.9"):
        with pytest.raises(InvalidValue, match="KEY=NUMBER"):
            parse_metrics([bad])


def test_metric_with_an_empty_name_is_refused_at_registration(registry: Registry) -> None:
    metrics = parse_metrics(["=1"])  # parses; the name is checked where it is stored

    with pytest.raises(InvalidValue, match="metric name ''"):
        registry.models.register("digits", "v1", loader="m:load", metrics=metrics)
