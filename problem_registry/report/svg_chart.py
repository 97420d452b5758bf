"""A problem's error rate across versions as inline SVG, written as text from its rows.

The problem page's chart (issue 19 item 13): a new version changes every problem's chart, and
drawing a thousand of them with matplotlib was a third of a report's drawing time and the reason
its workers loaded matplotlib. Written straight from the data it costs well under a millisecond,
fetches nothing, scales with the page and needs no script. It shows what the ``chart`` command's
picture shows (:func:`problem_registry.report.charts.problem_chart`, kept for that command): the
error rate with its 95% Wilson band, the positive and negative patterns' rates, the points that
miss ``max_error_rate`` crossed in vermillion, the limit dashed, the champion's column shaded and
its point starred, versions without a result greyed; each point says its numbers on hover.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from problem_registry.report.palette import BLACK, BLUE, GREEN, ORANGE, PURPLE, VERMILLION
from problem_registry.verdicts.rows import ProblemVersionMetrics
from problem_registry.verdicts.status import percent

HEIGHT = 320
MIN_WIDTH, MAX_WIDTH, PER_VERSION = 860, 1400, 22  # pixels: wider with more versions
LEFT, RIGHT, TOP, BOTTOM = 46, 14, 50, 46  # the top: two rows of legend
PLOT_H = HEIGHT - TOP - BOTTOM
CHAR_PX = 6.6  # a character of the 11 px labels, generously: labels are spaced by this
NUMBERS_UP_TO = 16  # versions: up to this many, "wrong/answered" is written under each point
SHADE = "#D9ECF7"  # the champion's column: Okabe-Ito sky, lightened
NO_RESULT = "#EEEEEE"


def problem_svg(
    rows: Sequence[ProblemVersionMetrics], *, champion: str | None, label: str
) -> Markup:
    """``rows`` (one problem, one per version in registration order) as an ``<svg>`` element;
    ``champion``: the ref to star; ``label``: what the picture says to a screen reader."""
    n = len(rows)
    width = min(MAX_WIDTH, max(MIN_WIDTH, LEFT + RIGHT + n * PER_VERSION))
    plot_w = width - LEFT - RIGHT
    step = plot_w / max(n, 1)
    xs = [LEFT + (i + 0.5) * step for i in range(n)]
    rates = [row.error_rate for row in rows]
    starred = [i for i, row in enumerate(rows) if row.ref == champion or row.is_champion]
    parts = [
        f'<svg class="chart" width="{width}" height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}" '
        'role="img" '
        'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" '
        f'font-size="11"><title>{escape(label)}</title>',
        _frame(rows, xs, step, starred, plot_w),
    ]
    legend = []
    band = _band(rows, xs)
    if band:
        parts.append(band)
        legend.append(("band", "95% Wilson interval"))
    for name, colour, dash in (("positive", PURPLE, "2 3"), ("negative", GREEN, "6 3")):
        values = [getattr(row, name).error_rate for row in rows]
        if any(v is not None for v in values) and any(getattr(r, name).patterns for r in rows):
            parts.extend(
                f'<polyline points="{points}" fill="none" stroke="{colour}" '
                f'stroke-width="1.2" stroke-dasharray="{dash}"/>'
                for points in _runs(xs, values)
            )
            legend.append((name, f"{name} patterns only"))
    parts.extend(
        f'<polyline points="{points}" fill="none" stroke="{BLUE}" stroke-width="2.4" '
        'stroke-linejoin="round"/>'
        for points in _runs(xs, rates)
    )
    legend.append(("rate", "error rate"))
    limit = rows[0].max_error_rate if rows else None
    if limit is not None:
        y = _y(limit)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{VERMILLION}" stroke-width="1.3" stroke-dasharray="7 4"/>'
        )
        legend.append(("limit", f"max error rate {limit:.0%}"))
    marks, missed = _points(rows, xs, n, starred)
    parts.append(marks)
    if missed:
        legend.append(("miss", "misses max error rate"))
    if any(rates[i] is not None for i in starred):
        legend.append(("star", "champion"))
    if any(rate is None for rate in rates):
        legend.append(("none", "no result"))
    parts.append(_legend(legend, width))
    parts.append("</svg>")
    return Markup("".join(parts))


def _y(rate: float) -> float:
    return TOP + (1 - rate) * PLOT_H


def _frame(
    rows: Sequence[ProblemVersionMetrics],
    xs: list[float],
    step: float,
    starred: list[int],
    plot_w: float,
) -> str:
    """Gridlines, percent labels, the champion's and the unanswered columns, version labels."""
    out = []
    for i in starred:
        out.append(
            f'<rect x="{xs[i] - step / 2:.1f}" y="{TOP}" width="{step:.1f}" height="{PLOT_H}" '
            f'fill="{SHADE}"/>'
        )
    for i, row in enumerate(rows):
        if not row.answered:
            out.append(
                f'<rect x="{xs[i] - step / 2:.1f}" y="{TOP}" width="{step:.1f}" '
                f'height="{PLOT_H}" fill="{NO_RESULT}"/>'
            )
    for tick in (0, 0.25, 0.5, 0.75, 1):
        y = _y(tick)
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{"#999999" if tick == 0 else "#E3E3E3"}" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:.0%}</text>'
        )
    labels = [row.version if len({r.model for r in rows}) == 1 else row.ref for row in rows]
    room = (max((len(label) for label in labels), default=2) + 3) * CHAR_PX
    every = max(1, math.ceil(room / step))
    shown = {i for i in range(len(rows)) if i % every == 0} | {len(rows) - 1}
    for i in starred:  # the champion always named; its neighbours give way
        shown -= {j for j in range(i - every + 1, i + every) if j != i}
        shown.add(i)
    for i in sorted(shown):
        if i < 0 or i >= len(rows):
            continue
        if i == len(rows) - 1 and i not in starred and any(0 < i - j < every for j in shown):
            continue  # the last version's label would overlap its neighbour's
        star = i in starred
        weight = ' font-weight="bold"' if star else ""
        out.append(
            f'<text x="{xs[i]:.1f}" y="{TOP + PLOT_H + 16}" text-anchor="middle"{weight}>'
            f"{escape(labels[i])}{' ★' if star else ''}</text>"
        )
    caption = "model version, in registration order (★ champion)"
    if len(rows) <= NUMBERS_UP_TO:
        caption += "; under each point: wrong/answered"
    out.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" '
        f'fill="#444444">{caption}</text>'
        f'<text x="12" y="{TOP + PLOT_H / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + PLOT_H / 2:.1f})">error rate</text>'
    )
    return "".join(out)


def _runs(xs: list[float], values: Sequence[float | None]) -> list[str]:
    """Polyline points of each unbroken run of values (a version without one breaks the line)."""
    runs: list[list[str]] = [[]]
    for x, value in zip(xs, values, strict=True):
        if value is None:
            runs.append([])
        else:
            runs[-1].append(f"{x:.1f},{_y(value):.1f}")
    return [" ".join(run) for run in runs if run]


def _band(rows: Sequence[ProblemVersionMetrics], xs: list[float]) -> str:
    """The 95% Wilson interval, one polygon per unbroken run of answered versions."""
    out, run = [], []
    for x, row in [*zip(xs, rows, strict=True), (None, None)]:
        interval = row.interval if row is not None else None
        if interval is not None and x is not None:
            run.append((x, interval))
            continue
        if run:
            upper = [f"{x:.1f},{_y(high):.1f}" for x, (_low, high) in run]
            lower = [f"{x:.1f},{_y(low):.1f}" for x, (low, _high) in reversed(run)]
            if len(run) == 1:  # a lone version: a bar the width of a line
                upper.append(f"{run[0][0] + 1:.1f},{_y(run[0][1][1]):.1f}")
                lower.insert(0, f"{run[0][0] + 1:.1f},{_y(run[0][1][0]):.1f}")
            out.append(
                f'<polygon points="{" ".join(upper + lower)}" fill="{BLUE}" fill-opacity="0.18"/>'
            )
            run = []
    return "".join(out)


def _points(
    rows: Sequence[ProblemVersionMetrics], xs: list[float], n: int, starred: list[int]
) -> tuple[str, bool]:
    """Each answered version's point, with its numbers on hover; crosses where the limit is
    missed, a star on the champion; under each point its wrong/answered while there is room."""
    out, missed = [], False
    size = 4.5 if n <= 40 else 3.2
    for i, row in enumerate(rows):
        rate = row.error_rate
        if rate is None:
            continue
        x, y = xs[i], _y(rate)
        words = f"{row.ref}: {row.wrong} wrong of {row.answered} answered, {percent(rate)} error"
        if row.meets_canary is False:
            words += ", misses its limit"
            missed = True
        tip = f"<title>{escape(words)}</title>"
        if i in starred:
            out.append(f'<g transform="translate({x:.1f} {y:.1f})">{_star(9)}{tip}</g>')
        elif row.meets_canary is False:
            out.append(f'<g transform="translate({x:.1f} {y:.1f})">{_cross(size)}{tip}</g>')
        else:
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size - 1:.1f}" fill="{BLUE}">{tip}</circle>'
            )
        if n <= NUMBERS_UP_TO:
            below = rate > 0.12
            dy = (18 if i in starred else 14) if below else -(12 if i in starred else 8)
            out.append(
                f'<text x="{x:.1f}" y="{y + dy:.1f}" text-anchor="middle" font-size="10" '
                f'fill="#444444">{row.wrong}/{row.answered}</text>'
            )
    return "".join(out), missed


def _cross(size: float) -> str:
    s = size
    return (
        f'<path d="M{-s},{-s}L{s},{s}M{-s},{s}L{s},{-s}" stroke="{VERMILLION}" '
        'stroke-width="3" stroke-linecap="round"/>'
    )


def _star(radius: float) -> str:
    corners = []
    for k in range(10):
        r = radius if k % 2 == 0 else radius * 0.45
        angle = math.pi / 2 + k * math.pi / 5
        corners.append(f"{r * math.cos(angle):.1f},{-r * math.sin(angle):.1f}")
    return f'<polygon points="{" ".join(corners)}" fill="{ORANGE}" stroke="{BLACK}"/>'


def _legend(entries: list[tuple[str, str]], chart_width: float) -> str:
    """Above the plot: a sample of each mark the chart holds and what it means, in rows."""
    out, x, y = [], LEFT, 16
    for kind, text in entries:
        width = 23 + len(text) * CHAR_PX
        if x > LEFT and x + width > chart_width - RIGHT:
            x, y = LEFT, y + 18
        if kind == "band":
            sample = (
                f'<rect x="{x}" y="{y - 6}" width="18" height="10" fill="{BLUE}" '
                'fill-opacity="0.18"/>'
            )
        elif kind in ("positive", "negative"):
            colour, dash = (PURPLE, "2 3") if kind == "positive" else (GREEN, "6 3")
            sample = (
                f'<line x1="{x}" x2="{x + 18}" y1="{y - 1}" y2="{y - 1}" stroke="{colour}" '
                f'stroke-width="1.2" stroke-dasharray="{dash}"/>'
            )
        elif kind == "rate":
            sample = (
                f'<line x1="{x}" x2="{x + 18}" y1="{y - 1}" y2="{y - 1}" stroke="{BLUE}" '
                'stroke-width="2.4"/>'
            )
        elif kind == "limit":
            sample = (
                f'<line x1="{x}" x2="{x + 18}" y1="{y - 1}" y2="{y - 1}" stroke="{VERMILLION}" '
                'stroke-width="1.3" stroke-dasharray="7 4"/>'
            )
        elif kind == "miss":
            sample = f'<g transform="translate({x + 9} {y - 1})">{_cross(4)}</g>'
        elif kind == "star":
            sample = f'<g transform="translate({x + 9} {y - 1})">{_star(7)}</g>'
        else:
            sample = (
                f'<rect x="{x}" y="{y - 6}" width="18" height="10" fill="{NO_RESULT}" '
                'stroke="#CCCCCC"/>'
            )
        out.append(sample + f'<text x="{x + 23}" y="{y + 3}">{escape(text)}</text>')
        x += width + 14
    return "".join(out)
