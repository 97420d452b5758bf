"""Where a report is drawn: in this process (``jobs=1``) or in ``jobs - 1`` worker processes.

Workers are started with ``forkserver`` (``spawn`` where there is none), never ``fork``: the
main process holds a database engine, maybe its connection pool's threads, and forking those
is unsafe. A worker gets the report's :class:`~problem_registry.report.pages.Site` once, when
it starts, then plain data per page (a :class:`~problem_registry.report.pages.Page`); it reads
no database, only pattern files, and imports no matplotlib: the pages' pictures are Pillow's
and their charts SVG. The index's charts (matplotlib, every row) are drawn by the main process,
which holds the rows already (:func:`draw_index_pictures`).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, wait
from pathlib import Path
from types import TracebackType
from typing import Any

from problem_registry.plain_files import write_atomically
from problem_registry.replay.main_module import main_hidden
from problem_registry.report.pages import Page, PageDrawer, Site
from problem_registry.store.views import ModelVersionView
from problem_registry.verdicts.metrics import ProblemVersionMetrics

# Pages go to a worker a few at a time: with one page a task the worker sat idle between tasks
# (~7 ms each, against ~16 ms to draw a page) while this busy process handed it the next
# (issue 19 item 13, docs/performance.md).
PAGES_PER_TASK = 8
# Tasks queued for the workers at most; past that this process does its spare work, else draws
# the next page itself rather than wait (the worker drew for longer than this process read, which
# then waited). Small, so the workers' queue left at the end is short.
PENDING_TASKS = 4

_drawer: PageDrawer | None = None  # in a worker: set once by _start


def _start(site: Site, root: Path) -> None:
    global _drawer
    _drawer = PageDrawer(site, root)


def _ready() -> None:
    """Nothing: submitted at once, so each worker starts (and imports) while this process reads."""


def _draw_pages(pages: list[tuple[Page, list[str]]]) -> None:
    assert _drawer is not None, "a worker draws pages only once started"
    for page, paths in pages:
        _drawer.draw(page, paths)


def draw_index_pictures(
    pictures: Sequence[tuple[str, Path]],
    rows: Sequence[ProblemVersionMetrics],
    versions: Sequence[ModelVersionView],
    failing: Sequence[str] = (),
) -> list[str]:
    """The index's charts, each ``(kind, path)``: ``overview``, ``heatmap`` or ``multiples``;
    ``failing``: the problems whose gate failed, drawn as failures. In the main process, the
    one that holds the rows: a worker sent them held a copy (issue 19 item 13: ~300 MB apiece
    at 1,000 problems with matplotlib)."""
    if not pictures:
        return []
    from problem_registry.report import charts  # matplotlib: only when there is a chart to draw

    for kind, path in pictures:
        if kind == "overview":
            figure = charts.overview_chart(rows, versions)
        elif kind == "heatmap":
            figure = charts.heatmap_chart(rows)
        else:
            figure = charts.small_multiples(rows, failing=failing)
        write_atomically(path, charts.figure_png(figure))
        figure.clear()
    return [str(path) for _kind, path in pictures]


class _InProcess(Executor):
    """An executor that runs each task at once, here: ``jobs=1``, and what tests use."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


class Workers:
    """Draws pages in ``jobs - 1`` processes (in this one when ``jobs`` is 1); :meth:`wait`
    raises what failed."""

    def __init__(self, jobs: int, site: Site, root: Path) -> None:
        # This process is one of the jobs: it reads and plans the pages (and draws the index's
        # charts, and pages while the others have enough queued), the others draw pages. A worker
        # per CPU beside it ran three busy processes on two
        # cores, each with its own memory (issue 19 item 13: 500 MB for the whole build).
        self.jobs = max(1, jobs)
        self._site, self._root = site, root
        # Tasks sent and not yet collected, with the pages of each (none: not a page's task).
        self._pending: dict[Future[Any], list[tuple[Page, list[str]]]] = {}
        self._batch: list[tuple[Page, list[str]]] = []
        self._spare: list[Callable[[], object]] = []
        self._drawer: PageDrawer | None = None
        self._executor: Executor
        if self.jobs == 1:
            self._drawer = PageDrawer(site, root)
            self._executor = _InProcess()
        else:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context(
                "forkserver" if "forkserver" in methods else "spawn"
            )
            self._executor = ProcessPoolExecutor(
                max_workers=self.jobs - 1,
                mp_context=context,
                initializer=_start,
                initargs=(site, root),
            )
            with main_hidden():  # the workers start here: not running the caller's script again
                for _ in range(self.jobs - 1):
                    self._pending[self._executor.submit(_ready)] = []

    def __enter__(self) -> Workers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._executor.shutdown(wait=True, cancel_futures=error is not None)

    def page(self, page: Page, paths: list[str]) -> None:
        """Draw ``paths`` of ``page``: by a worker, or here while the workers have enough queued
        (:data:`PENDING_TASKS`) and this process has no :meth:`spare` work left. Either draws the
        same bytes."""
        if self.jobs > 1:
            self._batch.append((page, paths))
            if len(self._batch) < PAGES_PER_TASK:
                return
            if len(self._pending) >= PENDING_TASKS:
                self._reap()
            if len(self._pending) >= PENDING_TASKS and self._spare:
                self._spare.pop(0)()  # the workers have enough to draw meanwhile
                self._reap()
            if len(self._pending) < PENDING_TASKS:
                self._send()
                return
            page, paths = self._batch.pop()
        self._draw_here([(page, paths)])

    def spare(self, work: Callable[[], object]) -> None:
        """Run ``work`` here once the workers have pages enough to draw meanwhile (at the latest
        in :meth:`wait`), not while they have none: each of the index's charts (~0.6-0.9 s at
        1,000 problems) drawn before the first page left the worker idle (issue 19 item 13).
        At once with ``jobs=1``."""
        if self.jobs == 1:
            work()
        else:
            self._spare.append(work)

    def _send(self) -> None:
        self._pending[self._executor.submit(_draw_pages, self._batch)] = self._batch
        self._batch = []

    def _draw_here(self, pages: list[tuple[Page, list[str]]]) -> None:
        if self._drawer is None:
            self._drawer = PageDrawer(self._site, self._root)  # Pillow and Jinja2 only
        for page, paths in pages:
            self._drawer.draw(page, paths)

    def _reap(self) -> None:
        """Forget the finished pages, raising the first failure."""
        for future in [future for future in self._pending if future.done()]:
            del self._pending[future]
            future.result()

    def wait(self) -> None:
        """Until everything queued is drawn; the first failure is raised here.

        The pages still queued and not started are taken back and drawn here, the last first,
        rather than waited for (the queue's last ~0.5 s, issue 19 item 13)."""
        while self._spare:
            self._spare.pop(0)()
        self._draw_here(self._batch)
        self._batch = []
        for future, pages in reversed(list(self._pending.items())):
            if pages and future.cancel():
                del self._pending[future]
                self._draw_here(pages)
        for future in wait(self._pending).done:
            future.result()
        self._pending.clear()
