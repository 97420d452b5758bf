"""What one benchmark run found: measurements, targets, the machine; as a table and as JSON.

Every measurement carries the parameters it ran with and a note saying how it was taken; every
target is a ratio or a difference computed from measurements of the same run.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Measurement:
    key: str  # "c_cold_replay", ...
    label: str
    value: float | None
    unit: str  # "s", "MB", "us"
    parameters: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Target:
    name: str
    measured: float | None
    limit: float
    unit: str  # "x" for a ratio, "s", "ms"
    detail: str  # how ``measured`` was computed

    @property
    def met(self) -> bool | None:
        return None if self.measured is None else self.measured <= self.limit

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def machine() -> dict[str, Any]:
    """What the numbers were measured on, and how busy it was when the run started."""
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        first = meminfo.read_text(encoding="utf-8").splitlines()[0].split()
        memory_gb = round(int(first[1]) / 1024 / 1024, 1)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "memory_gb": memory_gb,
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def document(
    parameters: dict[str, Any],
    measurements: list[Measurement],
    targets: list[Target],
    headline: float | None,
    info: dict[str, Any],
) -> dict[str, Any]:
    return {
        "machine": info,
        "parameters": parameters,
        "measurements": {m.key: asdict(m) for m in measurements},
        "targets": [t.to_dict() for t in targets],
        "headline_times_faster_than_handwritten": headline,
    }


def write_json(data: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def table(measurements: list[Measurement], targets: list[Target], headline: float | None) -> str:
    """Plain text, fixed columns: readable in a terminal and pasteable into Markdown docs."""
    lines = ["| measurement | value | parameters | how |", "|---|---:|---|---|"]
    for m in measurements:
        params = ", ".join(f"{k}={v}" for k, v in m.parameters.items())
        lines.append(f"| {m.label} | {_value(m.value, m.unit)} | {params} | {m.note} |")
    lines += ["", "| target | measured | limit | met | how |", "|---|---:|---:|---|---|"]
    for t in targets:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t.met]
        lines.append(
            f"| {t.name} | {_value(t.measured, t.unit)} | {_value(t.limit, t.unit)} | "
            f"{verdict} | {t.detail} |"
        )
    if headline is not None:
        lines += [
            "",
            f"headline: replay is {headline:.0f}x faster than (e), the hand-written tests",
        ]
    return "\n".join(lines)


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:.1f} {unit}"
