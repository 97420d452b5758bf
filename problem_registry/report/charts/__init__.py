"""Charts of the registry's numbers: matplotlib ``Figure`` objects in, PNG files out.

Plain data in (rows of :func:`problem_registry.verdicts.metrics.problem_metrics`, model versions
from ``registry.models.list()``), a :class:`matplotlib.figure.Figure` out; nothing here opens a
database or a window. Figures are built directly, never through ``pyplot``, and the backend is
never switched (``matplotlib.use``): pyplot keeps global state that leaks figures in a
long-running process and fights whatever backend a notebook chose. :func:`save_figure` renders
through an Agg canvas of its own, so no display is needed. The API::

    rows = problem_metrics(registry, model="digits")
    save_figure(overview_chart(rows, registry.models.list("digits")), out / "overview.png")
    save_figure(problem_chart([r for r in rows if r.problem == "threes"]), out / "threes.png")
    save_figure(heatmap_chart(rows), out / "heatmap.png")
    save_figure(small_multiples(rows), out / "multiples.png")
    save_figure(confusion_chart(row_with_confusion), out / "confusion.png")

Readable from 1 to 50+ versions and 100+ problems: version labels are rotated and thinned,
figures grow with their data up to a cap, the overview colours only the worst and most changed
problems (the rest grey) once there are more than the palette holds, and colours come from the
Okabe-Ito palette (lines) and viridis (heatmap), which colour-blind readers can tell apart.
Only this package imports matplotlib; the core never imports it.

One module per chart (:mod:`.overview`, :mod:`.problem`, :mod:`.multiples`, :mod:`.heatmap`,
:mod:`.confusion`), over the pieces they share: :mod:`.style` (palette, sizes, labels),
:mod:`.axis` (the version axis) and :mod:`.rates` (the problems x versions matrix); writing a
file is :mod:`.output`. (A report's per-problem charts are SVG, ``report/svg_chart.py``.)
Import from here: the submodules are not an API.
"""

from __future__ import annotations

from problem_registry.report.charts.confusion import confusion_chart
from problem_registry.report.charts.heatmap import heatmap_chart
from problem_registry.report.charts.multiples import small_multiples
from problem_registry.report.charts.output import figure_png, image_png, save_figure
from problem_registry.report.charts.overview import overview_chart
from problem_registry.report.charts.problem import problem_chart
from problem_registry.report.charts.style import OKABE_ITO

__all__ = [
    "OKABE_ITO",
    "confusion_chart",
    "figure_png",
    "heatmap_chart",
    "image_png",
    "overview_chart",
    "problem_chart",
    "save_figure",
    "small_multiples",
]
