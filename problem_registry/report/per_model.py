"""The HTML report of a registry holding several models: one report per model, and a page
linking them (issue 19, item 3: ``report --html`` refused "several models").

Each model's report is the ordinary one, built into ``DIR/models/<NAME>/`` (model names are
letters, digits and ``. _ + -``, validated at registration, so they are safe folder names) with
the problems that belong to it; ``DIR/index.html`` lists the models with a link to each.
``report --html DIR --model NAME`` still builds the one model's report into ``DIR`` itself.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from problem_registry.errors import UnsafePath
from problem_registry.plain_files import write_atomically
from problem_registry.report.builder import ReportBuild, write_report
from problem_registry.store.registry import Registry

MODELS_DIR = "models"


def model_names(registry: Registry) -> list[str]:
    """The registry's model names, in the order they were first registered."""
    return list(dict.fromkeys(view.name for view in registry.models.list()))


def write_reports_per_model(
    registry: Registry, directory: str | Path, *, jobs: int = 1
) -> tuple[Path, dict[str, ReportBuild]]:
    """One report per model under ``DIR/models/``, and ``DIR/index.html`` linking them."""
    root = Path(directory)
    folder = root / MODELS_DIR
    for path in (root, folder):
        if path.is_symlink():
            raise UnsafePath(
                f"{path} is a symbolic link; a report writes only real files and folders: "
                "remove the link or choose another folder"
            )
    builds = {
        name: write_report(registry, folder / name, model=name, jobs=jobs)
        for name in model_names(registry)
    }
    index = root / "index.html"
    write_atomically(index, _index(builds).encode("utf-8"))
    return index, builds


def _index(builds: dict[str, ReportBuild]) -> str:
    """The page linking each model's report, styled by the first one's stylesheet."""
    items = "\n".join(
        f'    <li><a href="{MODELS_DIR}/{escape(name)}/index.html">{escape(name)}</a></li>'
        for name in builds
    )
    style = next(
        (
            f'<link rel="stylesheet" href="{MODELS_DIR}/{escape(name)}/style.css">\n'
            for name in builds
        ),
        "",
    )
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>problem-registry report: {len(builds)} models</title>\n{style}</head>\n"
        "<body>\n<main>\n<h1>problem-registry report</h1>\n"
        f"<p>This registry holds {len(builds)} models; each has its own report, with the "
        "problems that belong to it (a problem naming no model is in every one).</p>\n<ul>\n"
        f"{items}\n</ul>\n</main>\n</body>\n</html>\n"
    )
