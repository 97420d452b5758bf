"""Write the static HTML report: an index and one page per problem, images beside them.

The folder opens from a CI artifact with no server and no network: every link and image is a
relative path inside it, the stylesheet is a file beside the pages, and there is no script.
Templates autoescape, so a problem title or a label such as ``<script>`` stays text. Layout::

    DIR/index.html               overview chart, heatmap, versions, one row per problem
    DIR/style.css
    DIR/images/overview.png, heatmap.png, multiples.png, outcome-legend.png
    DIR/problems/<slug>.html     chart (inline SVG), timeline, outcome grid, contact sheets,
                                 confusion, patterns
    DIR/problems/<slug>/*.png    the outcome grid's parts (outcomes-patterns.png, then
                                 outcomes-1.png... per 25 versions), the contact sheets
    DIR/.report-manifest.json    each file's content key (see keys.py)

File names come from problem slugs (lowercase letters, digits and hyphens, validated when the
problem was added) and fixed words, never from titles or labels. Nothing in the pages depends on
the clock or on how many processes drew them, so the same registry gives the same bytes.

Built into a folder that holds an earlier report, only the files whose data changed are drawn again,
and the files the new report no longer has (a deleted problem's page) are removed. The folder may
come from anyone (a downloaded CI artifact), so the report touches only plain files of its own names
inside it, never through a link: a linked ``images`` or ``problems`` folder is refused before
anything is written, and a manifest entry naming anything else is ignored (docs/security.md). The
main process reads the registry a chunk of problems at a time and hands each page's plain data to
``jobs - 1`` worker processes (:mod:`.workers`).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from problem_registry.errors import OutputError, UnsafePath
from problem_registry.plain_files import write_atomically
from problem_registry.report.keys import Manifest, content_key, is_plain_file_inside
from problem_registry.store.digest import registry_digest
from problem_registry.store.registry import Registry

if TYPE_CHECKING:
    from problem_registry.report.data import ReportData
    from problem_registry.report.pages import Picture

STYLESHEET = "style.css"
LEGEND = "images/outcome-legend.png"  # under every page's outcome grid
MULTIPLES_FROM = 6  # more problems than the overview colours: add one small chart per problem
# What a report writes besides index.html and the stylesheet: the files it may delete again.
OWNED = ("images/*.png", "problems/*.html", "problems/*/*.png")


@dataclass
class ReportBuild:
    """What a build did to its folder, by path relative to it."""

    index: Path
    drawn: list[str] = field(default_factory=list)  # written: new, or their data changed
    kept: list[str] = field(default_factory=list)  # left as they were: their data did not change
    deleted: list[str] = field(default_factory=list)  # the previous report's, gone from this one

    def describe(self) -> str:
        return (
            f"{len(self.drawn)} files drawn, {len(self.kept)} unchanged, "
            f"{len(self.deleted)} deleted"
        )


def build_report(
    registry: Registry,
    directory: str | Path,
    *,
    model: str | None = None,
    candidate: str | None = None,
    baseline: str | None = None,
    jobs: int = 1,
) -> Path:
    """Write the report for ``model`` (or the candidate's model) into ``directory``; index.html.

    ``candidate`` (``NAME@VERSION``) is the version the status lines, contact sheets and gates
    describe, compared with ``baseline`` (default: the champion); without it, the latest version
    compared with the one before it. A registry holding several models needs ``model`` or
    ``candidate``. ``jobs``: processes that build it, this one reading and planning, the others
    (``jobs - 1``) drawing the pages (1: this one does all); with more, a script that calls this
    needs the usual ``if __name__ == "__main__":`` guard, as any program starting processes without
    ``fork``. See :func:`write_report` for what was drawn again.
    """
    return write_report(
        registry, directory, model=model, candidate=candidate, baseline=baseline, jobs=jobs
    ).index


def write_report(
    registry: Registry,
    directory: str | Path,
    *,
    model: str | None = None,
    candidate: str | None = None,
    baseline: str | None = None,
    jobs: int = 1,
) -> ReportBuild:
    """:func:`build_report`, saying which files were drawn, kept as they were, or deleted."""
    root = Path(directory)
    # Read before anything else, so a registry written to during the build gives a later build
    # a different key: at worst a redraw too many, never a page left behind.
    source = content_key("source", registry_digest(registry), model, candidate, baseline)
    try:
        unchanged = _unchanged(root, source)
        if unchanged is not None:
            return unchanged
        # Imported only when something is drawn: matplotlib, Pillow and Jinja2 are most of a
        # no-change rebuild's time otherwise.
        from problem_registry.report.data import read_overview

        data = read_overview(registry, model=model, candidate=candidate, baseline=baseline)
        return _write(registry, data, root, jobs, source)
    except OSError as exc:  # a file where the folder should be, no right, a full disk (item 11)
        raise OutputError(
            f"cannot write the report into {root}: {exc.strerror or exc}"
            + (f" ({exc.filename2 or exc.filename})" if exc.filename else "")
            + "; choose a folder you can write to, with free space"
        ) from None


def _unchanged(root: Path, source: str) -> ReportBuild | None:
    """The build of a folder already drawn from exactly this registry and these options, every
    file of it still there; None: something must be drawn (issue 19 item 13: a rebuild of an
    unchanged registry took 8x ``report --json``, reading every result to find nothing new)."""
    if not root.is_dir():
        return None
    _refuse_linked_folders(root)
    previous = Manifest.load(root)
    if previous.source != source or not previous.files:
        return None
    index = root / "index.html"
    if not all(_is_plain_file(root / name) for name in (index.name, STYLESHEET)):
        return None
    if not all(previous.is_current(root, path, key) for path, key in previous.files.items()):
        return None
    return ReportBuild(index, kept=sorted(previous.files))


def _is_plain_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _write(registry: Registry, data: ReportData, root: Path, jobs: int, source: str) -> ReportBuild:
    from problem_registry.report.data import read_index, read_problems
    from problem_registry.report.html import TEMPLATES, render
    from problem_registry.report.pages import Site, plan_page
    from problem_registry.report.triage_page import write_triage_page
    from problem_registry.report.workers import Workers, draw_index_pictures

    root.mkdir(parents=True, exist_ok=True)
    _refuse_linked_folders(root)
    previous, current = Manifest.load(root), Manifest(source=source)
    build = ReportBuild(root / "index.html")

    def wanted(path: str, key: str) -> bool:
        current.files[path] = key
        fresh = not previous.is_current(root, path, key)
        (build.drawn if fresh else build.kept).append(path)
        return fresh

    site = Site.of(data, registry.store)
    site_key = site.key()
    with Workers(jobs, site, root) as workers:
        overview = _index_pictures(data)
        index_key = _rows_key(data)
        stale = [
            (kind, root / picture.src)
            for kind, picture in overview.items()
            if wanted(picture.src, content_key(kind, index_key))
        ]
        if data.rows and wanted(LEGEND, content_key("outcome-legend")):
            # What the cells of every page's outcome grid mean: one picture for all of them.
            from problem_registry.report.gallery.grid_parts import draw_grid_legend
            from problem_registry.report.png import image_png

            write_atomically(root / LEGEND, image_png(draw_grid_legend()))
        # Then the index, before any page: what a lead opens first is never behind the
        # registry, even while the pages are drawn or if the build is stopped (issue 19 item 13).
        data.problems = read_index(registry, data)
        _write_if_changed(root / STYLESHEET, (TEMPLATES / STYLESHEET).read_bytes())
        triage = write_triage_page(registry, root, data)  # issue 20: None without any case
        index = render(
            "index.html.j2",
            data=data,
            pictures=overview,
            root="",
            title="Problem registry report",
            triage=triage,
        )
        _write_if_changed(build.index, index.encode("utf-8"))
        # Its charts here, this process holds the rows already (a worker sent them held a copy
        # beside matplotlib, ~300 MB at 1,000 problems: issue 19 item 13), each once the worker
        # has pages to draw meanwhile.
        for picture in stale:
            workers.spare(
                partial(draw_index_pictures, [picture], data.rows, data.versions, data.failing())
            )
        # The pages a lead reads next first: those the index lists first, then those that changed.
        lead = [p.slug for p in data.problems_worst_first() if data.needs_attention(p)]
        lead += [p.slug for p in data.problems if p.changed and not data.needs_attention(p)]
        data.problems = []  # the pages read their own: let the index's go
        for chunk in read_problems(registry, data, order=lead):
            for problem, results, outcomes in chunk:
                page = plan_page(site, site_key, problem, results, outcomes)
                page.results, page.outcomes = [], None  # planned: a worker needs neither
                paths = [o.path for o in page.outputs if wanted(o.path, o.key)]
                if paths:
                    workers.page(page, paths)
        workers.wait()
    build.deleted = _remove_stale(root, previous, current)
    current.save(root)
    return build


def _refuse_linked_folders(root: Path) -> None:
    """Refuse a folder whose report subfolders, or what they hold, are links (or the subfolders
    not folders): pages written there would land in the link's target, and stale ones be
    deleted from it (issue 16)."""
    folders = [root / "images", root / "problems"]
    for folder in list(folders):
        if folder.is_dir() and not folder.is_symlink():
            folders += sorted(folder.iterdir())
    for folder in folders:
        if folder.is_symlink():
            raise UnsafePath(
                f"{folder} is a symbolic link; a report writes only real files and folders inside "
                f"{root}: remove the link or choose another folder"
            )
        if folder.parent == root and folder.exists() and not folder.is_dir():
            raise UnsafePath(
                f"{folder} is not a folder; a report needs it for its own files: move it away "
                "or choose another folder"
            )


def _index_pictures(data: ReportData) -> dict[str, Picture]:
    from problem_registry.report.pages import Picture

    if not data.rows:
        return {}
    pictures = {
        "overview": Picture(
            "images/overview.png",
            "Error rate of every problem across model versions, beside the headline metrics",
        ),
        "heatmap": Picture("images/heatmap.png", "Problems × versions heatmap of error rates"),
    }
    if len({row.problem for row in data.rows}) > MULTIPLES_FROM:
        # The overview colours only the worst few and greys the rest: one panel each as well.
        pictures["multiples"] = Picture(
            "images/multiples.png",
            "One small chart per problem: error rate across versions against its limit",
        )
    return pictures


def _rows_key(data: ReportData) -> str:
    """What the index's charts draw: every row's counts, the versions' headline metrics, and
    which problems' gates failed."""
    return content_key(
        "rows",
        data.failing(),
        [(v.ref, v.is_champion, sorted(v.metrics.items())) for v in data.versions],
        [
            (r.problem, r.ref, r.is_champion, r.max_error_rate, r.patterns, r.answered, r.wrong)
            for r in data.rows
        ],
    )


def _write_if_changed(path: Path, data: bytes) -> None:
    if not path.is_file() or path.read_bytes() != data:
        write_atomically(path, data)


def _remove_stale(root: Path, previous: Manifest, current: Manifest) -> list[str]:
    """Delete what the report wrote before and no longer has, and folders left empty.

    Besides the previous manifest's files, any file in the report's own places (:data:`OWNED`)
    that this build did not write: a folder written before reports kept a manifest still loses
    the pages of deleted problems.
    """
    found = set(previous.files)
    for pattern in OWNED:
        found.update(path.relative_to(root).as_posix() for path in root.glob(pattern))
    # Only plain files of the report's own names, reached without a link (issue 16).
    deleted = sorted(
        path for path in found if path not in current.files and is_plain_file_inside(root, path)
    )
    for path in deleted:
        (root / path).unlink(missing_ok=True)
    problems = root / "problems"
    if problems.is_dir() and not problems.is_symlink():
        for folder in problems.iterdir():
            if not folder.is_symlink() and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return deleted
