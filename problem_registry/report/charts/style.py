"""How every chart looks: the palette, the size caps, and labels shortened to fit.

The colours, markers and limits that all charts share live here, so a chart never picks a
colour or a figure size of its own and the pictures of one report agree with each other; the
Okabe-Ito palette (lines) and viridis (heatmap) are ones colour-blind readers can tell apart.
Also the empty-state figure every chart returns when it has nothing to draw.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from problem_registry.report import palette

# Okabe-Ito (see palette.py): shared with the pages' SVG charts, which import no matplotlib.
OKABE_ITO = palette.OKABE_ITO
BLUE, VERMILLION, GREEN, PURPLE, ORANGE, SKY, BLACK = OKABE_ITO
GREY = palette.GREY

MARKERS = ("o", "s", "^", "D", "v", "P", "X")
# 0% light, 100% dark, and no grey anywhere on the way (cividis passed through grey at 40-60%,
# the grey that meant "no result"): the worst cells stand out, a missing one is hatched.
HEATMAP = "viridis_r"
MISSING_COLOUR = "#BBBBBB"  # the hatching of a cell without a result

MAX_WIDTH = 16.0  # inches: 1600 px at the default 100 dpi
MAX_HEIGHT = 22.0
LABEL_CHARS = 28  # problem slugs longer than this are shortened in legends and tick labels


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    """Shortened in the middle: slugs often differ only at the end (``...-muffin-017``)."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def _width_for(versions: int, *, base: float = 7.0, per_version: float = 0.2) -> float:
    return min(MAX_WIDTH, max(base, 3.5 + per_version * versions))


def _message_figure(title: str, message: str) -> Figure:
    figure = Figure(figsize=(7, 3), layout="constrained")
    ax = figure.add_subplot()
    ax.set_axis_off()
    ax.set_title(title, loc="left", fontsize=11)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, color="#555555", wrap=True)
    return figure
