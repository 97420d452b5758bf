"""The report's triage page: the production queue by reason, each case's thumbnail and nearest
neighbours (by perceptual hash or text), and the drift of each version's latest batch.

Written beside the index as ``triage.html`` with its pictures under ``triage/``, only when the
registry holds production cases. Read-only: the queue is ranked from cached answers, no model
loads while a report is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from problem_registry.plain_files import write_atomically
from problem_registry.report.charts import figure_png, image_png
from problem_registry.report.gallery.neighbours import item_thumbnail
from problem_registry.report.html import render
from problem_registry.store.registry import Registry
from problem_registry.triage.cases import CaseView, read_cases
from problem_registry.triage.drift import Comparison, queue_drift
from problem_registry.triage.ingest import ContentReader
from problem_registry.triage.items import case_items, fingerprint_all, pattern_items
from problem_registry.triage.queue import REASONS, rank
from problem_registry.triage.similarity import Item, Neighbour, nearest

PAGE = "triage.html"
FOLDER = "triage"
SHOWN_PER_REASON = 24
NEIGHBOURS = 4
THUMB = 64


@dataclass
class Row:
    case: CaseView
    thumb: str
    neighbours: list[tuple[Neighbour, str]] = field(default_factory=list)


@dataclass
class Group:
    reason: str
    total: int
    rows: list[Row]


def write_triage_page(registry: Registry, root: Path, data: object) -> str | None:
    """Write the page (and its pictures) into ``root``; its link, or None without cases."""
    if not read_cases(registry):
        return None
    queue = rank(registry, replay=False)
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    everyone = case_items(
        registry, [c for c in read_cases(registry) if c.status != "discarded"], None
    )
    everyone += pattern_items(registry, None)
    fingerprint_all(registry, everyone)
    by_key = {(i.kind, i.id): i for i in everyone}
    drawn: dict[str, str] = {}
    reader = ContentReader(registry)  # a case's input, from the database when not cached here

    def picture(item: Item) -> str:
        if item.sha256 not in drawn:
            name = f"{FOLDER}/{item.sha256[:16]}.png"
            write_atomically(root / name, image_png(item_thumbnail(reader, item, THUMB)))
            drawn[item.sha256] = name
        return drawn[item.sha256]

    groups = []
    for reason in REASONS:
        mine = [c for c in queue.cases if c.reasons and c.reasons[0] == reason]
        rows = []
        for case in mine[:SHOWN_PER_REASON]:
            item = by_key[("case", case.id)]
            near = nearest(item, [i for i in everyone if i is not item], NEIGHBOURS)
            rows.append(Row(case, picture(item), [(n, picture(n.item)) for n in near]))
        groups.append(Group(reason, len(mine), rows))
    comparisons: list[Comparison] = queue_drift(registry)
    chart = None
    if comparisons:
        from problem_registry.report.charts.drift import drift_chart

        chart = f"{FOLDER}/drift.png"
        write_atomically(root / chart, figure_png(drift_chart(comparisons)))
    html = render(
        "triage.html.j2",
        data=data,
        root="",
        title="Production triage",
        groups=groups,
        queue=queue,
        comparisons=comparisons,
        chart=chart,
    )
    write_atomically(root / PAGE, html.encode("utf-8"))
    return PAGE
