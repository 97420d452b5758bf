"""One problem's page and its pictures: planned from plain data, then drawn where convenient.

:func:`plan_page` (main process) decides what a problem's page shows and gives each file its
content key (:mod:`.keys`); :class:`PageDrawer` (a worker, or the main process with ``--jobs
1``) draws the files it is told to, from that plan alone: no database, only the pattern files
for thumbnails. Both sides run the same code whatever the number of workers, so the report is
the same bytes with one process or many.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from problem_registry.plain_files import write_atomically
from problem_registry.report import gallery
from problem_registry.report.data import ProblemReport, ReportData
from problem_registry.report.gallery import Sheet, grid_parts
from problem_registry.report.gallery.grid import (
    HEADER_W,
    cell_width,
    column_labels,
    in_grid_order,
    label_height,
)
from problem_registry.report.gallery.grid_parts import blocks
from problem_registry.report.html import render
from problem_registry.report.keys import content_key
from problem_registry.report.png import image_png
from problem_registry.report.svg_chart import problem_svg
from problem_registry.store.content import PatternStore
from problem_registry.store.views import PatternView
from problem_registry.verdicts.metrics import PatternResult
from problem_registry.verdicts.pattern_grid import OutcomeMatrix


@dataclass(frozen=True)
class Picture:
    """An image written beside a page: ``src`` is relative to the page that shows it."""

    src: str  # "": drawn into the page itself (a problem's chart, inline SVG)
    alt: str
    caption: str = ""
    heading: str = ""  # what a contact sheet says of itself, written on the page, not drawn
    width: int = 0  # pixels, for the outcome grid's parts laid side by side at one scale


@dataclass(frozen=True)
class Output:
    """A file of the report: ``path`` relative to its folder, what draws it, its content key."""

    path: str
    kind: str  # "page", "grid-heads", "grid-block" or "sheet"
    key: str
    part: int = -1  # for a sheet: which of the page's sheets; for a grid block, which block


@dataclass
class Site:
    """What every page of one report shares; a worker gets it once, when it starts."""

    data: ReportData  # its rows, problems, gates, patterns and answers left out: a page needs the
    store: PatternStore  # versions and refs (and each page its own problem's, in its Page)

    @classmethod
    def of(cls, data: ReportData, store: PatternStore) -> Site:
        return cls(
            replace(data, rows=[], problems=[], gates={}, pattern_views=None, shown_answers=None),
            store,
        )

    @property
    def champions(self) -> list[str]:
        return [version.ref for version in self.data.versions if version.is_champion]

    def key(self) -> str:
        return content_key("site", self.data)


@dataclass
class GridPlan:
    """The outcome grid as its parts draw it (see :mod:`.gallery.grid_parts`): the rows'
    patterns, each row's cells and each column's wrong answers, the column labels."""

    patterns: list[PatternView]
    body: list[str]  # each row's cells, a letter each (grid_parts.CELL_LETTERS)
    wrong: list[int]
    labels: list[str]
    champions: list[int]  # column positions
    label_h: int
    cell_w: int


@dataclass
class Page:
    """One problem's page as planned: its pictures, its files and the data they are drawn from.

    ``results`` stay in the main process: what a worker draws is planned from them (the grid's
    cells, the sheets' tiles), so a page travels without its 1,500 results.
    """

    problem: ProblemReport
    results: list[PatternResult]  # the answers of the versions the page shows
    outcomes: OutcomeMatrix | None  # every version's: the grid's cells
    pictures: dict[str, Picture] = field(default_factory=dict)
    grid: GridPlan | None = None
    grid_parts: list[Picture] = field(default_factory=list)
    sheets: list[Sheet] = field(default_factory=list)
    sheet_pictures: list[Picture] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return self.problem.slug

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "results": [], "outcomes": None}


def plan_page(
    site: Site,
    site_key: str,
    problem: ProblemReport,
    results: list[PatternResult],
    outcomes: OutcomeMatrix | None = None,
) -> Page:
    """What ``problem``'s page shows, each file keyed by the data it is drawn from.

    A picture with nothing to show is left out. The contact sheets' headings (which name the
    version) are written on the page rather than drawn, so a sheet whose tiles did not change
    keeps its key when a new version becomes the latest.
    """
    slug = problem.slug
    page = Page(problem, results, outcomes)
    if problem.rows and any(row.answered for row in problem.rows):
        # Inline SVG, written into the page (svg_chart.py): no file of its own.
        page.pictures["chart"] = Picture(
            "", f"Error rate of {slug} across versions, with its 95% Wilson band"
        )
        if problem.patterns and outcomes is not None:
            _plan_grid(site, page)
        _plan_sheets(site, page)
    page_key = content_key(
        "page", site_key, problem, page.pictures, page.grid_parts, page.sheet_pictures
    )
    page.outputs.insert(0, Output(f"problems/{slug}.html", "page", page_key))
    return page


def _plan_grid(site: Site, page: Page) -> None:
    """The outcome grid's parts: the rows' heads, then a picture per block of versions, each
    keyed by exactly what it draws, so a new version redraws only the last block."""
    slug, folder = page.slug, f"problems/{page.slug}/"
    patterns = in_grid_order([row.pattern for row in page.problem.patterns])
    champions, outcomes = site.champions, page.outcomes
    assert outcomes is not None, "a grid is planned from every version's outcomes"
    columns = outcomes.refs
    body, wrong = grid_parts.cells_of_matrix(outcomes, patterns, champions)
    labels = column_labels(columns, champions)
    starred = [i for i, ref in enumerate(columns) if ref in champions]
    plan = GridPlan(
        patterns, body, wrong, labels, starred, label_height(labels), cell_width(len(columns))
    )
    page.grid = plan
    page.pictures["grid"] = Picture(
        "",
        f"Pass or fail of each pattern of {slug} in each version",
        caption=f"{len(patterns)} patterns x {len(columns)} versions",
    )
    heads = content_key(
        "grid-heads",
        plan.label_h,
        [
            (v.id, v.sha256, v.kind, v.file, v.original_name, v.expected, v.polarity)
            for v in patterns
        ],
    )
    page.grid_parts.append(
        Picture(
            f"{slug}/outcomes-patterns.png",
            f"The patterns of {slug}, one per row: thumbnail, file and expected answer",
            width=HEADER_W,
        )
    )
    page.outputs.append(Output(folder + "outcomes-patterns.png", "grid-heads", heads))
    for number, block in enumerate(blocks(len(columns)), start=1):
        first, last = block.start, block.stop - 1
        key = content_key(
            "grid-block",
            plan.label_h,
            plan.cell_w,
            labels[first : last + 1],
            [i - first for i in starred if first <= i <= last],
            [row[first : last + 1] for row in body],
            wrong[first : last + 1],
        )
        name = f"outcomes-{number}.png"
        span = labels[first] if first == last else f"{labels[first]} to {labels[last]}"
        page.grid_parts.append(
            Picture(
                f"{slug}/{name}",
                f"Pass or fail of each pattern of {slug} in versions {span}",
                width=len(block) * plan.cell_w,
            )
        )
        page.outputs.append(Output(folder + name, "grid-block", key, number - 1))


def _plan_sheets(site: Site, page: Page) -> None:
    # The version the report is about, every pattern; then the champion's wrong answers only,
    # to hold against it (the outcome grid already compares every version).
    data, problem, slug = site.data, page.problem, page.slug
    sheets = [("candidate" if data.candidate else "latest", data.focus, False)]
    if data.champion is not None and data.champion != data.focus:
        sheets.append(("champion", data.champion, True))
    views = [row.pattern for row in problem.patterns]
    for role, ref, only_failing in sheets:
        row = problem.row(ref)
        if ref is None or row is None or not row.answered:
            continue
        sheet = gallery.sheet_from(
            slug,
            views,
            page.results,
            ref,
            champion=data.champion if ref != data.champion else None,
            only_failing=only_failing,
        )
        page.sheet_pictures.append(
            Picture(
                f"{slug}/sheet-{role}.png",
                f"{'Wrong answers' if only_failing else 'Patterns'} of {slug} on {ref}, "
                "captioned expected / got",
                caption=f"The {role}, {ref}" + (": its wrong answers only" if only_failing else ""),
                heading=f"{sheet.heading}; {sheet.subheading}",
            )
        )
        tiles = [
            (
                tile.pattern,
                tile.outcome,
                None if tile.result is None else (tile.result.got, tile.result.confidence),
                None if tile.champion is None else tile.champion.got,
            )
            for tile in sheet.tiles
        ]
        key = content_key("sheet", bool(sheet.champion), sheet.only_failing, tiles)
        page.outputs.append(
            Output(f"problems/{slug}/sheet-{role}.png", "sheet", key, part=len(page.sheets))
        )
        page.sheets.append(sheet)


class PageDrawer:
    """Draws the files of planned pages into the report's folder; one per process.

    Pillow and Jinja2 only: the pages' charts are SVG, so a process that draws pages never
    loads matplotlib (~50 MB each, issue 19 item 13).
    """

    def __init__(self, site: Site, root: Path) -> None:
        self.site, self.root = site, root

    def draw(self, page: Page, paths: list[str]) -> list[str]:
        """Write ``paths`` (some of ``page.outputs``); return them."""
        wanted = set(paths)
        for output in page.outputs:
            if output.path in wanted:
                write_atomically(self.root / output.path, self._draw(page, output))
        return paths

    def _draw(self, page: Page, output: Output) -> bytes:
        problem, data, grid = page.problem, self.site.data, page.grid
        if output.kind == "page":
            chart = page.pictures.get("chart")
            html = render(
                "problem.html.j2",
                data=data,
                problem=problem,
                pictures={**page.pictures, "sheets": page.sheet_pictures},
                grid_parts=page.grid_parts,
                chart=None
                if chart is None
                else problem_svg(problem.rows, champion=data.champion, label=chart.alt),
                root="../",
                title=problem.problem.title,
            )
            return html.encode("utf-8")
        if output.kind == "grid-heads" and grid is not None:
            image = grid_parts.draw_grid_heads(
                grid.patterns, label_h=grid.label_h, store=self.site.store
            )
        elif output.kind == "grid-block" and grid is not None:
            block = blocks(len(grid.labels))[output.part]
            first, stop = block.start, block.stop
            image = grid_parts.draw_grid_block(
                grid_parts.cells_from_text([row[first:stop] for row in grid.body]),
                grid.wrong[first:stop],
                grid.labels[first:stop],
                [i - first for i in grid.champions if first <= i < stop],
                label_h=grid.label_h,
                cell_w=grid.cell_w,
            )
        else:
            image = gallery.draw_contact_sheet(
                page.sheets[output.part], self.site.store, heading=False
            )
        return image_png(image)
