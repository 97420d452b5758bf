"""`problem-registry model ...`: register model versions in order and name the champion."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from problem_registry.adapters import check_loadable
from problem_registry.adapters.sources import SourceSettings, model_source
from problem_registry.cli.context import (
    JsonOption,
    fail,
    note,
    output,
    print_fields,
    print_table,
    registry,
)
from problem_registry.cli.help import choices
from problem_registry.enums import PatternKind
from problem_registry.refs import ModelRef
from problem_registry.replay.probe import LoadCheck, check_loads, location
from problem_registry.store.model_versions import parse_metrics
from problem_registry.store.views import ModelVersionView

app = typer.Typer(help="Register, list and promote model versions.", no_args_is_help=True)


@app.command("register")
def register(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name, e.g. digits.", metavar="NAME"),
    version: str = typer.Argument(
        ..., help="Version, e.g. v3. Versions are kept in order.", metavar="VERSION"
    ),
    loader: str | None = typer.Option(
        None,
        "--loader",
        help="module:callable returning a batch predict function.",
        metavar="MODULE:CALLABLE",
    ),
    artifact: Path | None = typer.Option(
        None,
        "--artifact",
        help="Model file passed to the loader; its sha256 is recorded.",
        metavar="FILE",
    ),
    predictions: Path | None = typer.Option(
        None,
        "--predictions",
        help="Instead of --loader: a JSONL or CSV file of answers keyed by pattern sha256 "
        "(columns sha256,prediction[,confidence][,scores]), for a model that runs elsewhere.",
        metavar="FILE",
    ),
    onnx: Path | None = typer.Option(
        None, "--onnx", help="Instead of --loader: an ONNX file, run by onnxruntime (extra onnx)."
    ),
    endpoint: str | None = typer.Option(
        None,
        "--endpoint",
        help="Instead of --loader: an HTTP model server, a KServe v2 / Open Inference Protocol "
        "URL (http://host/v2/models/NAME) or, with --protocol json, any URL taking JSON. A "
        "bearer token comes from $PROBLEM_REGISTRY_ENDPOINT_TOKEN, never from here.",
    ),
    mlflow: str | None = typer.Option(
        None,
        "--mlflow",
        help="Instead of --loader: an MLflow model URI (models:/NAME/VERSION, models:/NAME@ALIAS, "
        "runs:/RUN/PATH), loaded as a pyfunc (extra mlflow); an alias is fixed to its version now.",
    ),
    preprocess: str | None = typer.Option(
        None,
        "--preprocess",
        help="module:callable turning one decoded pattern into the model's input (--onnx, "
        "--endpoint, --mlflow); default: image pixels or a JSON list as float32.",
    ),
    classes: str | None = typer.Option(
        None,
        "--classes",
        help="The labels of the model's probability columns, in order: cat,dog or @FILE "
        "(one a line); default 0..N-1.",
    ),
    protocol: str | None = typer.Option(
        None, "--protocol", help="--endpoint: v2 (default for /v2/models/ URLs) or json."
    ),
    batch: int = typer.Option(32, "--batch", min=1, help="--endpoint: patterns per request."),
    concurrency: int = typer.Option(
        4, "--concurrency", min=1, help="--endpoint: requests in flight at once."
    ),
    timeout: float = typer.Option(
        30.0, "--timeout", min=0.1, help="--endpoint: seconds before a request is given up."
    ),
    retries: int = typer.Option(
        3, "--retries", min=0, help="--endpoint: retries after a 429, 503 or a dropped connection."
    ),
    outputs: str | None = typer.Option(
        None,
        "--outputs",
        help="--endpoint v2: the outputs to ask for, e.g. predict,predict_proba (default: those "
        "the model's metadata declares).",
    ),
    repeats: int = typer.Option(
        1,
        "--repeats",
        min=1,
        help="For a non-deterministic model: ask it this many times per pattern; its gates judge "
        "how often it is right, and patterns whose answer changes are reported as flaky.",
    ),
    metric: list[str] | None = typer.Option(
        None,
        "--metric",
        "-m",
        help="Headline metric KEY=VALUE; repeat for several.",
        metavar="KEY=VALUE",
    ),
    note_text: str = typer.Option(
        "", "--note", help="Free text: what changed in this version.", metavar="TEXT"
    ),
    input_kind: PatternKind | None = typer.Option(
        None,
        "--input-kind",
        help="The kind of pattern the model takes; the problems naming this model (problem add "
        "--model) then refuse patterns of another kind.",
        metavar=choices(PatternKind),
    ),
    as_json: bool = JsonOption,
) -> None:
    """Register a model version (after those already registered).

    The model must load now: a loader that does not import, an ONNX file that does not open or
    an endpoint that does not answer is refused here, not in CI.

    Example: problem-registry model register digits v3 --loader my_models:load
    --artifact models/v3.joblib --metric accuracy=0.97

    Example: problem-registry model register digits v4 --onnx models/v4.onnx

    Example: problem-registry model register digits v5 --endpoint http://127.0.0.1:8080/v2/models/digits

    Example: problem-registry model register digits v6 --mlflow models:/digits@champion
    """
    given = {
        "--loader": loader,
        "--predictions": predictions,
        "--onnx": onnx,
        "--endpoint": endpoint,
        "--mlflow": mlflow,
    }
    chosen = [flag for flag, value in given.items() if value is not None]
    if len(chosen) != 1:
        raise typer.BadParameter(
            "give one of --loader (with an optional --artifact), --predictions, --onnx, "
            "--endpoint or --mlflow"
        )
    if artifact is not None and loader is None:
        raise typer.BadParameter("--artifact goes with --loader")
    if (preprocess or classes) and (loader or predictions):
        raise typer.BadParameter("--preprocess and --classes go with --onnx, --endpoint, --mlflow")
    source = model_source(
        loader=loader,
        artifact=artifact,
        predictions=predictions,
        onnx=onnx,
        endpoint=endpoint,
        mlflow=mlflow,
        settings=SourceSettings(
            preprocess=preprocess,
            classes=classes,
            protocol=protocol,
            batch=batch,
            concurrency=concurrency,
            timeout=timeout,
            retries=retries,
            outputs=outputs,
        ),
    )
    view = registry(ctx).models.register(
        name,
        version,
        loader=source.loader,
        loader_kind=source.kind,
        artifact=source.artifact,
        options=source.options,
        metrics=parse_metrics(metric or []),
        note=note_text,
        check=check_loadable,
        repeats=repeats,
        input_kind=input_kind,
    )
    output(as_json, view, lambda: note(f"registered {view.ref} ({source.describe})"))


@app.command("show")
def show(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME@VERSION, e.g. digits@v3."),
    no_load: bool = typer.Option(False, "--no-load", help="Do not try loading the model."),
    as_json: bool = JsonOption,
) -> None:
    """How a version loads (kind, location, sha256, options) and whether it loads now.

    Loading runs the model's code in a worker process, as replay does; an endpoint is asked
    whether its model is ready. Exit 1 when it does not load.

    Example: problem-registry model show digits@v3
    """
    parsed = ModelRef.parse(ref)
    view = registry(ctx).models.get(parsed.name, parsed.version)
    check = None if no_load else check_loads(view)
    data = {
        **view.model_dump(),
        "location": location(view),
        "loads": None if check is None else check.loads,
        "load_error": None if check is None or check.loads else check.reason,
    }

    def render() -> None:
        fields: list[tuple[str, object]] = [
            ("kind", view.loader_kind),
            ("location", location(view)),
            ("loader", view.loader if view.loader != location(view) else None),
            ("artifact sha256", view.artifact_sha256),
            ("takes", view.input_kind),  # declared with --input-kind; None: not said
            *((f"option {key}", value) for key, value in view.loader_options.items()),
            ("repeats", view.repeats if view.repeats > 1 else None),
            ("champion", "yes" if view.is_champion else "no"),
            ("registered", f"{view.registered_at} by {view.registered_by}"),
            ("loads now", _loads_text(check)),
        ]
        # A reason or a URL may hold brackets: shown as text, never read as rich markup.
        print_fields(view.ref, [(key, escape(str(v))) for key, v in fields if v is not None])

    output(as_json, data, render)
    if check is not None and not check.loads:
        fail(f"{view.ref} does not load now: {check.reason}")


def _loads_text(check: LoadCheck | None) -> str:
    if check is None:
        return "not checked (--no-load)"
    return "yes" if check.loads else f"no: {check.reason}"


@app.command("list")
def list_(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="Only versions of this model.", metavar="NAME"),
    as_json: bool = JsonOption,
) -> None:
    """List model versions in registration order; the champion is starred."""
    views = registry(ctx).models.list(name)
    output(as_json, views, lambda: _print_models(views))


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name.", metavar="NAME"),
    version: str = typer.Argument(..., help="The version to promote.", metavar="VERSION"),
    as_json: bool = JsonOption,
) -> None:
    """Make a version the champion of its model: candidates are compared against it."""
    view = registry(ctx).models.promote(name, version)
    output(as_json, view, lambda: note(f"{view.ref} is now the champion of {view.name}"))


def _print_models(views: list[ModelVersionView]) -> None:
    print_table(
        None,
        ["model", "version", "champion", "kind", "loader", "artifact", "metrics", "registered"],
        (
            [
                v.name,
                v.version,
                "*" if v.is_champion else "",
                v.loader_kind,
                v.loader,
                (v.artifact_sha256 or "")[:12],
                ", ".join(f"{key}={value:g}" for key, value in v.metrics.items()),
                f"{v.registered_at} by {v.registered_by}",
            ]
            for v in views
        ),
        empty="no model versions yet; add one with `problem-registry model register NAME VERSION`",
    )
