"""Draw docs/architecture.png from the code: the layers, their modules, and who imports whom.

The import graph comes from grimp (import-linter's engine), so the picture cannot drift from the
code: run it again after moving a module::

    python docs/architecture_diagram.py            # writes docs/architecture.png
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import grimp
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

ROOT = "problem_registry"
# Top to bottom, as the import-linter contract in pyproject.toml states them; a package listed
# here holds every module below it.
LAYERS: list[tuple[str, list[str]]] = [
    ("surfaces", ["cli", "demo", "pytest_plugin"]),
    ("report", ["report"]),
    ("triage", ["triage"]),
    ("verdicts", ["verdicts"]),
    ("replay", ["replay"]),
    ("adapters", ["adapters"]),
    ("store", ["store"]),
    ("vocabulary", ["vocabulary"]),
]
# The vocabulary is a handful of top-level modules, drawn (and counted) as one box.
VOCABULARY = ["errors", "config", "enums", "refs", "text", "redaction", "expectations"]
FILL = {
    "surfaces": "#dbe9f6",
    "report": "#e3f1e0",
    "triage": "#e0eef0",
    "verdicts": "#fde9cf",
    "replay": "#f3e1f0",
    "adapters": "#efe6d8",
    "store": "#e6e6e6",
    "vocabulary": "#f7f7f7",
}


def owner(module: str) -> str:
    """The box a module is drawn in: its first name under the root package."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else parts[0]
    return "vocabulary" if name in VOCABULARY else name


def edges(graph: grimp.ImportGraph) -> Counter[tuple[str, str]]:
    """How many module-to-module imports go from one box to another."""
    counted: Counter[tuple[str, str]] = Counter()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            source, target = owner(module), owner(imported)
            if source != target and imported.startswith(ROOT):
                counted[(source, target)] += 1
    return counted


def contents(package: str) -> tuple[int, int, str]:
    """(modules, lines of code, what is inside) of a box, read from the files."""
    base = Path(__file__).resolve().parents[1] / ROOT
    if package == "vocabulary":
        files = [base / f"{name}.py" for name in VOCABULARY]
        inside = ", ".join(VOCABULARY)
    else:
        files = sorted((base / package).rglob("*.py"))
        folders = sorted(
            f.name + "/" for f in (base / package).iterdir() if (f / "__init__.py").exists()
        )
        inside = ", ".join(folders)
    return len(files), sum(len(f.read_text().splitlines()) for f in files), inside


def draw(out: Path) -> None:
    graph = grimp.build_graph(ROOT)
    counted = edges(graph)
    figure = Figure(figsize=(11, 8.5), dpi=110)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, len(LAYERS) + 0.6)
    ax.axis("off")
    centres: dict[str, tuple[float, float]] = {}
    widths: dict[str, float] = {}
    order = [package for _layer, packages in LAYERS for package in packages]
    for row, (layer, packages) in enumerate(LAYERS):
        y = len(LAYERS) - row - 0.35
        ax.text(0.15, y, layer, fontsize=11, fontweight="bold", va="center", color="#444")
        width = min(3.2, 8.7 / len(packages) - 0.15)
        start = 1.9 + (8.85 - len(packages) * (width + 0.15)) / 2
        for index, package in enumerate(packages):
            x = start + index * (width + 0.15)
            modules, lines, inside = contents(package)
            ax.add_patch(
                FancyBboxPatch(
                    (x, y - 0.3),
                    width,
                    0.6,
                    boxstyle="round,pad=0.02",
                    facecolor=FILL[layer],
                    edgecolor="#888",
                    zorder=3,  # opaque, above the arrows: an arrow shows between the layers
                )
            )
            label = "errors, config, enums, refs, ..." if package == "vocabulary" else f"{package}/"
            ax.text(
                x + width / 2, y + 0.12, label, ha="center", va="center", fontsize=9.5, zorder=4
            )
            detail = f"{modules} modules, {lines:,} lines"
            if inside and package != "vocabulary":
                detail += f"; {inside}"
            ax.text(
                x + width / 2,
                y - 0.14,
                detail,
                ha="center",
                va="center",
                fontsize=7.5,
                color="#555",
            )
            centres[package] = (x + width / 2, y)
            widths[package] = width
    for (source, target), count in sorted(counted.items()):
        if source not in centres or target not in centres:
            continue
        (x0, y0), (x1, y1) = centres[source], centres[target]
        # Spread the ends over the boxes' width, by the other end, so arrows do not coincide.
        x0 += widths[source] * (order.index(target) / len(order) - 0.5) * 0.8
        x1 += widths[target] * (order.index(source) / len(order) - 0.5) * 0.8
        upward = y1 > y0
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0 - 0.3),
                (x1, y1 + 0.3),
                arrowstyle="-|>",
                mutation_scale=8,
                linewidth=0.4 + 0.15 * min(count, 12),
                color="#c0392b" if upward else "#5d6d7e",
                alpha=0.55,
                connectionstyle="arc3,rad=0.08",
                zorder=1,
            )
        )
    ax.text(
        0.15,
        0.12,
        "Arrows: imports (width: how many), all pointing down the layers; import-linter keeps "
        "it so (pyproject.toml). Drawn from the code by docs/architecture_diagram.py.",
        fontsize=8,
        color="#555",
    )
    figure.savefig(out)


if __name__ == "__main__":
    default = Path(__file__).with_name("architecture.png")
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    draw(target)
    print(f"wrote {target}")
