"""`problem-registry chart`: draw one picture of the registry to a PNG file.

matplotlib is imported only when a chart is drawn, so every other command starts without it.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import typer

from problem_registry.cli.context import fail, note, registry
from problem_registry.plain_files import write_atomically
from problem_registry.store.registry import Registry


class Kind(str, Enum):
    overview = "overview"
    multiples = "multiples"
    problem = "problem"
    heatmap = "heatmap"
    confusion = "confusion"
    grid = "grid"
    sheet = "sheet"


ONE_PROBLEM = {Kind.problem, Kind.confusion, Kind.grid, Kind.sheet}


def chart(
    ctx: typer.Context,
    slugs: list[str] | None = typer.Argument(
        None,
        metavar="SLUG",
        help="Problems to draw (default: all); problem, confusion, grid and sheet take one.",
        show_default=False,
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="PNG file to write (folders created).", metavar="FILE"
    ),
    kind: Kind = typer.Option(
        Kind.overview, "--kind", "-k", help="What to draw (see above).", metavar="KIND"
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Only the versions of this model (default: every model).",
        metavar="NAME",
    ),
    version: str | None = typer.Option(
        None,
        "--version",
        help="For confusion and sheet: the version, V or NAME@V (default: the latest).",
        metavar="VERSION",
    ),
    dpi: int = typer.Option(
        100, "--dpi", min=50, max=400, help="Resolution of charts.", metavar="N"
    ),
) -> None:
    """Draw a chart or a failure gallery of stored results to a PNG file.

    Kinds (--kind):
    overview   every problem across versions, under the headline metrics (default)
    multiples  one small panel per problem
    problem    one problem: 95% band, max error rate, champion
    heatmap    problems x versions
    confusion  one problem's confusion matrix and F1 on --version
    grid       one problem's patterns x versions: which a version fixed or broke
    sheet      one version's patterns as thumbnails captioned expected / got

    Example: problem-registry chart --out overview.png

    Example, on the demo's registry (after `problem-registry demo`):
    problem-registry --url sqlite:///problem-registry-demo/registry.db
    chart faint-strokes --kind sheet --version v4 --out v4.png
    """
    if out.suffix.lower() != ".png":
        raise typer.BadParameter(f"must end in .png, not {out.name}", param_hint="--out")
    if out.is_dir():
        raise typer.BadParameter(f"{out.name} is a folder; give a file name", param_hint="--out")
    chosen = list(dict.fromkeys(slugs or []))
    if kind in ONE_PROBLEM and len(chosen) != 1:
        fail(f"--kind {kind.value} draws one problem; name exactly one, e.g. chart SLUG ...")
    if version is not None and kind not in (Kind.confusion, Kind.sheet):
        fail(f"--version is for --kind confusion or sheet, not {kind.value}")
    reg = registry(ctx)
    for slug in chosen:
        reg.problems.get(slug)  # an unknown slug is a one-line error before anything is drawn
    versions = reg.models.list(model)
    if not versions:
        fail("no model versions yet: register one (model register) and replay before charting")
    ref = reg.models.resolve([version], model=model)[0] if version is not None else versions[-1].ref
    try:
        written = _draw(reg, kind, chosen or None, model, ref, versions, out, dpi)
    except OSError as exc:  # not a folder on the way, no right, a full disk: nothing is left
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(out) else ""
        fail(f"cannot write {out}: {exc.strerror or exc}{where}; choose a path you can write to")
    with_size = f" ({written[0]}x{written[1]} px)" if written else ""
    note(f"wrote {out}{with_size}")


def _draw(
    reg: Registry,
    kind: Kind,
    slugs: list[str] | None,
    model: str | None,
    ref: str,
    versions: list[Any],
    out: Path,
    dpi: int,
) -> tuple[int, int] | None:
    from problem_registry.report import charts, gallery
    from problem_registry.verdicts.metrics import problem_metrics

    if kind is Kind.grid:
        image = gallery.outcome_grid(reg, slugs[0], versions=[v.ref for v in versions])  # type: ignore[index]
    elif kind is Kind.sheet:
        image = gallery.contact_sheet(reg, slugs[0], ref)  # type: ignore[index]
    else:
        image = None
    if image is not None:
        write_atomically(out, charts.image_png(image))  # whole or nothing (issue 16, item 11)
        return image.size
    if kind is Kind.confusion:
        rows = problem_metrics(reg, versions=[ref], problems=slugs, confusion=True)
        figure = charts.confusion_chart(rows[0])
    else:
        rows = problem_metrics(reg, model=model, problems=slugs)
        if kind is Kind.overview:
            figure = charts.overview_chart(rows, versions)
        elif kind is Kind.multiples:
            figure = charts.small_multiples(rows)
        elif kind is Kind.heatmap:
            figure = charts.heatmap_chart(rows)
        else:
            figure = charts.problem_chart(rows)
    size = figure.get_size_inches() * dpi
    charts.save_figure(figure, out, dpi=dpi)
    return (int(size[0]), int(size[1]))
