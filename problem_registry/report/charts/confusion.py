"""One problem on one version as a confusion matrix, with precision, recall and F1 per label.

The chart for classification problems: which label was taken for which, drawn from a row of
``problem_metrics(..., confusion=True)`` (the counting itself lives in the core's
:mod:`problem_registry.verdicts.confusion`; this module only draws it).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from problem_registry.report.charts.style import _message_figure, _short
from problem_registry.verdicts.metrics import ProblemVersionMetrics


def confusion_chart(row: ProblemVersionMetrics) -> Figure:
    """One problem on one version: expected x predicted counts, and precision / recall / F1.

    ``row`` must come from ``problem_metrics(..., confusion=True)``. Only exact-label patterns
    take part (see :mod:`problem_registry.verdicts.confusion`); the last column counts errored
    answers.
    """
    if row.confusion is None:
        raise ValueError("confusion_chart needs a row from problem_metrics(..., confusion=True)")
    confusion = row.confusion
    heading = f"{row.problem} on {row.ref}"
    if not confusion.cells:
        return _message_figure(
            heading, "no confusion matrix: no exact-label pattern of this problem was answered"
        )
    labels = confusion.labels  # already in label_order: "2" before "10"
    full = np.array(confusion.matrix(), dtype=float)
    # Rows: the labels some pattern expects (a label only ever predicted has an empty row).
    expected = [i for i, label in enumerate(labels) if full[i].sum() > 0]
    matrix = full[expected]
    columns = [_short(label, 14) for label in labels] + ["error"]
    size = len(labels)
    side = min(9.0, max(3.2, 0.55 * (size + 1) + 1.6))
    figure = Figure(
        figsize=(side + 4.2, max(3.6, 0.55 * len(expected) + 2.4)), layout="constrained"
    )
    ax, table_ax = figure.subplots(1, 2, width_ratios=[side, 4.0])
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(1.0, matrix.max()), aspect="equal")
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            ax.text(
                j,
                i,
                f"{int(value)}",
                ha="center",
                va="center",
                fontsize=9 if size <= 12 else 7,
                color="white" if value > matrix.max() * 0.6 else "black",
                fontweight="bold" if j == expected[i] else "normal",
            )
    ax.set_xticks(range(size + 1))
    ax.set_xticklabels(columns, fontsize=8)
    if size > 6 or max(len(c) for c in columns) > 5:
        for text in ax.get_xticklabels():
            text.set_rotation(45)
            text.set_horizontalalignment("right")
            text.set_rotation_mode("anchor")
    ax.set_yticks(range(len(expected)))
    ax.set_yticklabels([_short(labels[i], 14) for i in expected], fontsize=8)
    ax.set_xlabel("predicted (bold: right)")
    ax.set_ylabel("expected")
    ax.axvline(size - 0.5, color="#888888", linewidth=0.8)
    scores = confusion.scores()
    table_ax.set_axis_off()
    cell_text = [
        [
            _short(label, 14),
            f"{scores[label].precision:.2f}",
            f"{scores[label].recall:.2f}",
            f"{scores[label].f1:.2f}",
            str(scores[label].support),
        ]
        for label in labels[:24]
    ]
    table = table_ax.table(
        cellText=cell_text,
        colLabels=["label", "precision", "recall", "F1", "support"],
        loc="upper center",
        cellLoc="center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.25)
    macro = confusion.macro_f1
    table_ax.set_title(
        f"macro F1 {macro:.2f}" if macro is not None else "macro F1 -", fontsize=10, loc="left"
    )
    figure.suptitle(
        f"{heading}: confusion matrix of exact-label patterns ({row.right} of {row.answered} "
        "answered right overall)",
        x=0.01,
        ha="left",
        fontsize=11,
    )
    return figure
