"""One problem's page and its pictures: planned from plain data, then drawn where convenient.

:func:`plan_page` (main process) decides what a problem's page shows and gives each file its
content key (:mod:`.keys`); :class:`PageDrawer` (a worker, or the main process with ``--jobs
1``) draws the files it is told to, from that plan alone: no database, only the pattern files
for thumbnails. Both sides run the same code whatever the number of workers, so the report is
the same bytes with one process or many.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from pathlib import Path
from typing import Any

from problem_registry.plain_files import write_atomically
from problem_registry.report import gallery
from problem_registry.report.data import ProblemReport, ReportData
from problem_registry.report.gallery import Sheet
from problem_registry.report.html import render
from problem_registry.report.keys import content_key
from problem_registry.store.content import PatternStore
from problem_registry.verdicts.metrics import PatternResult, ProblemVersionMetrics


@dataclass(frozen=True)
class Picture:
    """An image written beside a page: ``src`` is relative to the page that shows it."""

    src: str
    alt: str
    caption: str = ""
    heading: str = ""  # what a contact sheet says of itself, written on the page, not drawn


@dataclass(frozen=True)
class Output:
    """A file of the report: ``path`` relative to its folder, what draws it, its content key."""

    path: str
    kind: str  # "page", "chart", "grid" or "sheet"
    key: str
    sheet: int = -1  # for a sheet: which of the page's sheets


@dataclass
class Site:
    """What every page of one report shares; a worker gets it once, when it starts."""

    data: ReportData  # its rows, problems, gates and patterns left out: a page needs only the
    store: PatternStore  # versions and refs (and each page its own problem's, in its Page)

    @classmethod
    def of(cls, data: ReportData, store: PatternStore) -> Site:
        return cls(replace(data, rows=[], problems=[], gates={}, pattern_views=None), store)

    @property
    def columns(self) -> list[str]:
        return [version.ref for version in self.data.versions]

    @property
    def champions(self) -> list[str]:
        return [version.ref for version in self.data.versions if version.is_champion]

    def key(self) -> str:
        return content_key("site", self.data)


@dataclass
class Page:
    """One problem's page as planned: its pictures, its files and the data they are drawn from."""

    problem: ProblemReport
    results: list[PatternResult]
    pictures: dict[str, Picture] = field(default_factory=dict)
    sheets: list[Sheet] = field(default_factory=list)
    sheet_pictures: list[Picture] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return self.problem.slug

    def __getstate__(self) -> dict[str, Any]:
        # Results travel to a worker as tuples: pickling result objects was the main process's
        # largest cost after reading (docs/performance.md).
        return {**self.__dict__, "results": [_RESULT_FIELDS(result) for result in self.results]}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["results"] = [PatternResult(*values) for values in state["results"]]
        self.__dict__.update(state)


_RESULT_FIELDS = attrgetter(*(field.name for field in fields(PatternResult)))


def plan_page(
    site: Site, site_key: str, problem: ProblemReport, results: list[PatternResult]
) -> Page:
    """What ``problem``'s page shows, each file keyed by the data it is drawn from.

    A picture with nothing to show is left out. The contact sheets' headings (which name the
    version) are written on the page rather than drawn, so a sheet whose tiles did not change
    keeps its key when a new version becomes the latest.
    """
    data, slug = site.data, problem.slug
    page = Page(problem, results)
    folder = f"problems/{slug}/"
    if problem.rows and any(row.answered for row in problem.rows):
        page.pictures["chart"] = Picture(
            f"{slug}/error-rate.png",
            f"Error rate of {slug} across versions, with its 95% Wilson band",
        )
        page.outputs.append(
            Output(folder + "error-rate.png", "chart", _chart_key(data.champion, problem.rows))
        )
        if problem.patterns:
            page.pictures["grid"] = Picture(
                f"{slug}/outcomes.png",
                f"Pass or fail of each pattern of {slug} in each version",
            )
            grid = content_key(
                "grid",
                _columns(site, results),
                site.champions,
                [row.pattern for row in problem.patterns],
                [
                    (r.pattern_id, r.model, r.version, r.answered, r.correct, r.error)
                    for r in results
                ],
            )
            page.outputs.append(Output(folder + "outcomes.png", "grid", grid))
        _plan_sheets(site, page)
    page_key = content_key("page", site_key, problem, page.pictures, page.sheet_pictures)
    page.outputs.insert(0, Output(f"problems/{slug}.html", "page", page_key))
    return page


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
            Output(f"problems/{slug}/sheet-{role}.png", "sheet", key, len(page.sheets))
        )
        page.sheets.append(sheet)


def _chart_key(champion: str | None, rows: list[ProblemVersionMetrics]) -> str:
    # Every field the chart draws, none it does not (the title, the status line and the
    # confusion matrix are on the page).
    return content_key(
        "chart",
        champion,
        [
            (
                r.ref,
                r.is_champion,
                r.max_error_rate,
                r.patterns,
                r.answered,
                r.wrong,
                r.errored,
                r.positive,
                r.negative,
            )
            for r in rows
        ],
    )


def _columns(site: Site, results: list[PatternResult]) -> list[str]:
    return list(dict.fromkeys(r.ref for r in results)) or site.columns


class PageDrawer:
    """Draws the files of planned pages into the report's folder; one per process."""

    def __init__(self, site: Site, root: Path) -> None:
        self.site, self.root = site, root
        # matplotlib only where pictures are drawn: the main process of a report drawn by
        # workers never loads it (~50 MB, issue 19 item 13).
        from problem_registry.report import charts

        self.charts = charts.ProblemCharts()  # the version axis drawn once, not per problem
        self._png = charts.image_png

    def draw(self, page: Page, paths: list[str]) -> list[str]:
        """Write ``paths`` (some of ``page.outputs``); return them."""
        wanted = set(paths)
        for output in page.outputs:
            if output.path in wanted:
                write_atomically(self.root / output.path, self._draw(page, output))
        return paths

    def _draw(self, page: Page, output: Output) -> bytes:
        problem, data = page.problem, self.site.data
        if output.kind == "page":
            pictures = {**page.pictures, "sheets": page.sheet_pictures}
            html = render(
                "problem.html.j2",
                data=data,
                problem=problem,
                pictures=pictures,
                root="../",
                title=problem.problem.title,
            )
            return html.encode("utf-8")
        if output.kind == "chart":
            # Untitled: the page writes the problem's title and status line above it.
            return self.charts.png(problem.rows, champion=data.champion, titled=False)
        if output.kind == "grid":
            image = gallery.draw_outcome_grid(
                page.slug,
                [row.pattern for row in problem.patterns],
                page.results,
                columns=_columns(self.site, page.results),
                champions=self.site.champions,
                store=self.site.store,
            )
        else:
            image = gallery.draw_contact_sheet(
                page.sheets[output.sheet], self.site.store, heading=False
            )
        return self._png(image)
