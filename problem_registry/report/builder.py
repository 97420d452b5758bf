"""Write the static HTML report: an index and one page per problem, images beside them.

The folder opens from a CI artifact with no server and no network: every link and image is a
relative path inside it, the stylesheet is a file beside the pages, and there is no script.
Templates autoescape, so a problem title or a label such as ``<script>`` stays text. Layout::

    DIR/index.html               overview chart, heatmap, versions, one row per problem
    DIR/style.css
    DIR/images/overview.png, heatmap.png
    DIR/problems/<slug>.html     chart, timeline, outcome grid, contact sheets, patterns
    DIR/problems/<slug>/*.png

File names come from problem slugs (lowercase letters, digits and hyphens, validated when the
problem was added) and fixed words, never from titles or labels. Nothing in the pages depends on
the clock, so the same registry gives the same HTML.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from problem_registry import charts, gallery
from problem_registry.registry import Registry
from problem_registry.report.data import ProblemReport, ReportData, gather
from problem_registry.status import percent

TEMPLATES = Path(__file__).parent / "templates"
STYLESHEET = "style.css"
MULTIPLES_FROM = 6  # more problems than the overview colours: add one small chart per problem


@dataclass(frozen=True)
class Picture:
    """An image written beside a page: ``src`` is relative to the page that shows it."""

    src: str
    alt: str
    caption: str = ""


def build_report(
    registry: Registry,
    directory: str | Path,
    *,
    model: str | None = None,
    candidate: str | None = None,
) -> Path:
    """Write the report for ``model`` (or the candidate's model) into ``directory``; index.html.

    ``candidate`` (``NAME@VERSION``) is the version the status lines, contact sheets and gates
    describe, compared with the champion; without it, the latest version compared with the one
    before it. A registry holding several models needs ``model`` or ``candidate``.
    """
    data = gather(registry, model=model, candidate=candidate)
    root = Path(directory)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "problems").mkdir(exist_ok=True)
    shutil.copyfile(TEMPLATES / STYLESHEET, root / STYLESHEET)
    environment = _environment()

    overview = _index_pictures(data, root)
    for problem in data.problems:
        pictures = _problem_pictures(registry, data, problem, root / "problems" / problem.slug)
        page = environment.get_template("problem.html.j2").render(
            data=data, problem=problem, pictures=pictures, root="../", title=problem.problem.title
        )
        _write(root / "problems" / f"{problem.slug}.html", page)
    index = environment.get_template("index.html.j2").render(
        data=data, pictures=overview, root="", title="Problem registry report"
    )
    _write(root / "index.html", index)
    return root / "index.html"


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        # Every template is HTML: escape by default, including names that select_autoescape's
        # extension list would miss (Jinja2 does not autoescape unless told).
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["percent"] = lambda rate: "–" if rate is None else percent(rate)
    return environment


def _index_pictures(data: ReportData, root: Path) -> dict[str, Picture]:
    if not data.rows:
        return {}
    folder = root / "images"
    pictures = {
        "overview": _figure(
            charts.overview_chart(data.rows, data.versions),
            folder / "overview.png",
            "images/overview.png",
            "Error rate of every problem across model versions, beside the headline metrics",
        ),
        "heatmap": _figure(
            charts.heatmap_chart(data.rows),
            folder / "heatmap.png",
            "images/heatmap.png",
            "Problems × versions heatmap of error rates",
        ),
    }
    if len(data.problems) > MULTIPLES_FROM:
        # The overview colours only the worst few and greys the rest: one panel each as well.
        pictures["multiples"] = _figure(
            charts.small_multiples(data.rows),
            folder / "multiples.png",
            "images/multiples.png",
            "One small chart per problem: error rate across versions against its limit",
        )
    return pictures


def _problem_pictures(
    registry: Registry, data: ReportData, problem: ProblemReport, folder: Path
) -> dict[str, Any]:
    """The images of one problem's page; a picture with nothing to show is left out."""
    pictures: dict[str, Any] = {"sheets": []}
    if not problem.rows or not any(row.answered for row in problem.rows):
        return pictures
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{problem.slug}/"
    champion = data.champion
    pictures["chart"] = _figure(
        charts.problem_chart(problem.rows, champion=champion),
        folder / "error-rate.png",
        base + "error-rate.png",
        f"Error rate of {problem.slug} across versions, with its 95% Wilson band",
    )
    if problem.patterns:
        pictures["grid"] = _image(
            # Every version by default; naming them costs a lookup each, so only when needed.
            gallery.outcome_grid(
                registry,
                problem.slug,
                versions=None if data.only_model else [v.ref for v in data.versions],
            ),
            folder / "outcomes.png",
            base + "outcomes.png",
            f"Pass or fail of each pattern of {problem.slug} in each version",
        )
    # The version the report is about, every pattern; then the champion's wrong answers only,
    # to hold against it (the outcome grid above already compares every version).
    sheets = [("candidate" if data.candidate else "latest", data.focus, False)]
    if champion is not None and champion != data.focus:
        sheets.append(("champion", champion, True))
    for role, ref, only_failing in sheets:
        row = problem.row(ref)
        if ref is None or row is None or not row.answered:
            continue
        pictures["sheets"].append(
            _image(
                gallery.contact_sheet(
                    registry,
                    problem.slug,
                    ref,
                    champion=champion if ref != champion else None,
                    only_failing=only_failing,
                ),
                folder / f"sheet-{role}.png",
                base + f"sheet-{role}.png",
                f"{'Wrong answers' if only_failing else 'Patterns'} of {problem.slug} on {ref}, "
                "captioned expected / got",
                caption=f"The {role}, {ref}" + (": its wrong answers only" if only_failing else ""),
            )
        )
    focus = problem.row(data.focus)
    if focus is not None and focus.confusion is not None and focus.confusion.labels:
        pictures["confusion"] = _figure(
            charts.confusion_chart(focus),
            folder / "confusion.png",
            base + "confusion.png",
            f"Confusion matrix of {problem.slug} on {focus.ref}",
        )
    return pictures


def _figure(figure: Any, path: Path, src: str, alt: str, caption: str = "") -> Picture:
    charts.save_figure(figure, path)
    return Picture(src, alt, caption)


def _image(image: Any, path: Path, src: str, alt: str, caption: str = "") -> Picture:
    image.save(path, format="PNG")
    return Picture(src, alt, caption)


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
