"""The report's colours, in a module free of matplotlib: the charts (matplotlib) and the
problem pages' inline SVG charts (written as text, :mod:`.svg_chart`) draw with the same ones.

Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision
deficiency. Yellow (#F0E442) is left out: it vanishes on white.
"""

from __future__ import annotations

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
BLUE, VERMILLION, GREEN, PURPLE, ORANGE, SKY, BLACK = OKABE_ITO
GREY = "#B8B8B8"
