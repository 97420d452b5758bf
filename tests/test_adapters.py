"""Loading models: Python loaders from the working directory, predictions files, output shapes."""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from problem_registry.adapters import (
    ModelUnavailable,
    Prediction,
    check_loadable,
    load_model,
    normalise,
    per_item,
)
from problem_registry.adapters.predictions import read_predictions
from problem_registry.adapters.python import import_callable
from problem_registry.enums import LoaderKind
from problem_registry.errors import DuplicateModel, InvalidValue
from problem_registry.store.registry import Registry

SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("muffin", Prediction("muffin", None, None)),
        (3, Prediction("3", 3.0, None)),
        (3.0, Prediction("3", 3.0, None)),  # a regressor's 3.0 meets --expect 3
        (3.25, Prediction("3.25", 3.25, None)),
        ("3.5", Prediction("3.5", 3.5, None)),  # numeric text keeps its value (CSV files)
        (np.int64(7), Prediction("7", 7.0, None)),
        (np.float32(0.5), Prediction("0.5", 0.5, None)),
        (np.str_("dog"), Prediction("dog", None, None)),
        (True, Prediction("true", None, None)),
        (("cat", 0.75), Prediction("cat", None, 0.75)),
        (["cat", np.float64(0.75)], Prediction("cat", None, 0.75)),
        ({"label": "cat", "confidence": 0.5}, Prediction("cat", None, 0.5)),
        ({"label": 4}, Prediction("4", 4.0, None)),
        (float("nan"), Prediction("nan", None, None)),
        ("nan", Prediction("nan", None, None)),
    ],
)
def test_every_documented_output_shape_is_normalised(output: object, expected: Prediction) -> None:
    assert normalise(output) == expected


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ({"confidence": 0.2}, "no 'label' key"),
        (("a", 0.1, 0.2), "sequence of 3"),
        (np.array([0.1, 0.9]), "is an array"),  # class probabilities are not (label, conf)
        (("a", "high"), "confidence 'high' is not a number"),
        (("a", float("inf")), "not a finite number"),
        (object(), "cannot read output"),
        (None, "cannot read output"),
    ],
)
def test_unusable_outputs_are_refused_with_the_reason(output: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalise(output)


def test_per_item_adapts_a_one_input_function_into_a_batch_function() -> None:
    def shout(text: str) -> str:
        """Upper-case it."""
        return text.upper()

    batch = per_item(shout)
    assert batch(["a", "b"]) == ["A", "B"]
    assert batch([]) == []
    assert batch.__name__ == "shout" and batch.__doc__ == "Upper-case it."


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project folder as the working directory, holding its own (uninstalled) loader module."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("beside_project"):
            del sys.modules[name]


def write_module(folder: Path, name: str, code: str) -> None:
    (folder / f"{name}.py").write_text(code, encoding="utf-8")


def test_a_loader_beside_the_project_imports_from_the_working_directory(project: Path) -> None:
    write_module(
        project,
        "beside_project_ok",
        "def load(path=None):\n    return lambda xs: [len(x) for x in xs]\n",
    )
    factory = import_callable("beside_project_ok:load")
    assert factory()(["ab", "c"]) == [2, 1]
    model = load_model("m@v1", "python", "beside_project_ok:load", None, None)
    assert model.needs_inputs and model.predict(["abc"], [SHA_A]) == [3]


@pytest.mark.parametrize(
    ("code", "spec", "reason"),
    [
        (None, "beside_project_none:load", "cannot import beside_project_none"),
        ("import not_installed_anywhere\n", "beside_project_dep:load", "No module named"),
        ("raise RuntimeError('no GPU')\n", "beside_project_boom:load", "RuntimeError: no GPU"),
        ("x = 1\n", "beside_project_attr:load", "has no attribute 'load'"),
        ("load = 42\n", "beside_project_int:load", "not callable"),
        ("def (:\n", "beside_project_syntax:load", "SyntaxError"),
    ],
)
def test_a_loader_that_cannot_be_imported_is_unavailable_with_the_reason(
    project: Path, code: str | None, spec: str, reason: str
) -> None:
    if code is not None:
        write_module(project, spec.split(":")[0], code)
    with pytest.raises(ModelUnavailable, match=reason):
        import_callable(spec)
    with pytest.raises(InvalidValue, match=f"--loader {spec}: .*{reason}"):
        check_loadable(LoaderKind.python, spec, None)


def test_the_factory_gets_the_artifact_and_a_changed_artifact_is_refused(
    project: Path, tmp_path: Path
) -> None:
    write_module(
        project,
        "beside_project_art",
        "from pathlib import Path\n"
        "def load(path):\n"
        "    weight = len(Path(path).read_bytes())\n"
        "    return lambda xs: [weight for _ in xs]\n",
    )
    artifact = tmp_path / "weights.bin"
    artifact.write_bytes(b"12345")
    sha = hashlib.sha256(b"12345").hexdigest()
    model = load_model("m@v1", "python", "beside_project_art:load", str(artifact), sha)
    assert model.predict(["x"], [SHA_A]) == [5]

    artifact.write_bytes(b"retrained")
    with pytest.raises(
        ModelUnavailable, match=r"m@v1: artifact .* changed since it was registered"
    ):
        load_model("m@v1", "python", "beside_project_art:load", str(artifact), sha)
    artifact.unlink()
    with pytest.raises(ModelUnavailable, match="cannot be read"):
        load_model("m@v1", "python", "beside_project_art:load", str(artifact), sha)


def test_a_factory_that_raises_or_returns_no_function_is_unavailable(project: Path) -> None:
    write_module(
        project,
        "beside_project_bad",
        "def boom():\n    raise OSError('weights server down')\n"
        "def not_a_function():\n    return 'model'\n",
    )
    with pytest.raises(ModelUnavailable, match="raised OSError: weights server down"):
        load_model("m@v1", "python", "beside_project_bad:boom", None, None)
    with pytest.raises(ModelUnavailable, match="returned a str; it must return a function"):
        load_model("m@v1", "python", "beside_project_bad:not_a_function", None, None)


def test_predictions_files_are_read_as_jsonl_or_csv(tmp_path: Path) -> None:
    jsonl = tmp_path / "answers.jsonl"
    jsonl.write_text(
        json.dumps({"sha256": SHA_A, "prediction": "cat", "confidence": 0.9})
        + "\n\n"
        + json.dumps({"sha256": SHA_B.upper(), "prediction": 4.5})
        + "\n",
        encoding="utf-8",
    )
    assert read_predictions(jsonl) == {SHA_A: ("cat", 0.9), SHA_B: 4.5}
    answers = tmp_path / "answers.csv"
    answers.write_text(f"sha256,prediction,confidence\n{SHA_A},cat,0.9\n{SHA_B},dog,\n")
    assert read_predictions(answers) == {SHA_A: ("cat", 0.9), SHA_B: "dog"}

    sha = hashlib.sha256(answers.read_bytes()).hexdigest()
    model = load_model("remote@v1", "predictions", str(answers), str(answers), sha)
    assert not model.needs_inputs
    outputs = model.predict([None, None, None], [SHA_B, SHA_A, "c" * 64])
    assert outputs[:2] == ["dog", ("cat", 0.9)]
    assert "no prediction for this pattern in answers.csv" in str(outputs[2])

    answers.write_text(f"sha256,prediction\n{SHA_A},edited\n")
    with pytest.raises(ModelUnavailable, match="changed since it was registered"):
        load_model("remote@v1", "predictions", str(answers), str(answers), sha)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        (
            "a.jsonl",
            '{"sha256": "abc", "prediction": 1}\n',
            "line 1: 'abc' is not a pattern sha256",
        ),
        ("a.jsonl", f'{{"sha256": "{SHA_A}"}}\n', "line 1: expected"),
        ("a.jsonl", "not json\n", "line 1: not valid JSON"),
        ("a.jsonl", f'{{"sha256": "{SHA_A}", "prediction": {{"x": 1}}}}\n', "no 'label' key"),
        (
            "a.jsonl",
            f'{{"sha256": "{SHA_A}", "prediction": 1}}\n{{"sha256": "{SHA_A}", "prediction": 2}}\n',
            "line 2: a second, different prediction",
        ),
        ("a.csv", "hash,label\n", "header must be sha256,prediction"),
        ("a.csv", f"sha256,prediction,confidence\n{SHA_A},x,high\n", "line 2: confidence"),
        ("a.txt", "whatever", "must end in .jsonl"),
        ("a.csv", "sha256,prediction\n", "holds no predictions"),
    ],
)
def test_malformed_predictions_files_are_refused_naming_the_line(
    tmp_path: Path, name: str, content: str, reason: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidValue, match=reason):
        read_predictions(path)


def test_a_pickle_posing_as_predictions_is_never_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"

    class Trap:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("unpickled!",))

    path.write_bytes(pickle.dumps(Trap()))
    with pytest.raises(InvalidValue, match=r"cannot read predictions file|not valid JSON"):
        read_predictions(path)


def test_registration_with_check_refuses_what_could_never_load(
    registry: Registry, project: Path
) -> None:
    write_module(project, "beside_project_reg", "def load(path=None):\n    return list\n")
    view = registry.models.register(
        "m", "v1", loader="beside_project_reg:load", check=check_loadable
    )
    assert view.loader == "beside_project_reg:load"
    with pytest.raises(InvalidValue, match=r"--loader beside_project_reg:missing: .* no attribute"):
        registry.models.register(
            "m", "v2", loader="beside_project_reg:missing", check=check_loadable
        )
    with pytest.raises(DuplicateModel):  # a duplicate says so before any import is tried
        registry.models.register("m", "v1", loader="nowhere_at_all:load", check=check_loadable)
    answers = project / "answers.csv"
    answers.write_text(f"sha256,prediction\n{SHA_A},cat\n")
    remote = registry.models.register(
        "m",
        "remote",
        loader=str(answers),
        loader_kind=LoaderKind.predictions,
        artifact=answers,
        check=check_loadable,
    )
    assert remote.artifact_sha256 == hashlib.sha256(answers.read_bytes()).hexdigest()
    assert [v.version for v in registry.models.list("m")] == ["v1", "remote"]
