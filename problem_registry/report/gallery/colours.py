"""The colours every gallery picture uses, so a pass is the same green everywhere.

Okabe-Ito, which readers with any common colour-vision deficiency can tell apart: the grid, the
contact sheet and the thumbnail cards take their colours from here and never pick their own.
Colour is never the only sign of an outcome (the pictures add marks and words), but where it is
used it means the same thing in every picture.
"""

# Okabe-Ito: told apart with every common colour-vision deficiency.
PASS = (0, 158, 115)  # bluish green
FAIL = (213, 94, 0)  # vermillion
ERRORED = (230, 159, 0)  # orange
MISSING = (215, 215, 215)
INK = (34, 34, 34)
MUTED = (110, 110, 110)
PAPER = (255, 255, 255)
CHAMPION_SHADE = (226, 242, 251)  # behind a champion's column: the charts' pale sky blue
