"""A lead's HTML report rebuilt into its folder: after one new version, and with nothing changed.

Issue 19 item 13's targets, at P problems x 15 patterns x M versions (the issue's: 1,000 x 100):

- ``report --html DIR`` after one new version is registered and replayed: within 20 s of wall
  time and 500 MB of memory, the peak resident memory of each process of the build (the CLI,
  its fork server, its drawing workers) summed;
- the same command with nothing changed since: within 2x ``report --json`` of the same registry,
  the floor, timed in the same run, interleaved with it;
- what a lead sees first, the index and the pages of the problems listed first (those that
  fail, need a review or miss their limit), is written before the rest: when each was written
  is reported against the build's wall time.

The registry is synthetic (``synthetic.py``): M-1 versions with their results, a first build
(timed, not a target), then version M registered with its results written as a replay would.
Memory is read from ``/proc`` (each process's ``VmHWM``, its own peak) every 50 ms, so no tool
beyond Python is needed; a process living less than that may be missed::

    python benchmarks/report_rebuild.py                                  # 60 x 20, a minute
    python benchmarks/report_rebuild.py --problems 1000 --versions 100 --json-out r.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from measure import cli, run_child
from synthetic import _insert_results, build_registry

POLL_S = 0.05
ATTENTION_ROW = re.compile(
    r'<tr class="(?:misses|gate-fail|gate-review)">\s*<td class="problem">'
    r'<a href="(problems/[a-z0-9-]+\.html)"'
)


@dataclass
class Build:
    """One ``report --html`` run: wall seconds, summed peak memory, what it said it did."""

    seconds: float
    peak_mb_summed: float
    processes: int
    said: str
    peaks_mb: list[tuple[str, float]] = field(default_factory=list)  # each process, largest first
    # CPU seconds (user + system) of each process, as last seen: on a machine shared with other
    # work, what the build itself cost, whatever the wall time.
    cpu_s: list[tuple[str, float]] = field(default_factory=list)
    index_written_s: float | None = None  # after the start; None: not written by this build
    lead_pages_written_s: float | None = None  # the last of the pages listed first
    lead_pages: int = 0


@dataclass
class Result:
    problems: int
    versions: int
    jobs: int | None
    first_build: Build
    new_version: Build
    unchanged_s: list[float] = field(default_factory=list)
    report_json_s: list[float] = field(default_factory=list)

    def verdicts(self) -> list[tuple[str, str, str, bool]]:
        floor = statistics.median(self.report_json_s)
        unchanged = statistics.median(self.unchanged_s)
        new = self.new_version
        return [
            ("after one new version: wall", f"{new.seconds:.1f} s", "20 s", new.seconds <= 20),
            (
                "after one new version: peak memory, summed over processes",
                f"{new.peak_mb_summed:.0f} MB",
                "500 MB",
                new.peak_mb_summed <= 500,
            ),
            (
                "nothing changed: x report --json",
                f"{unchanged / floor:.2f}x ({unchanged:.2f} s against {floor:.2f} s)",
                "2x",
                unchanged <= 2 * floor,
            ),
        ]


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _name(pid: int) -> str:
    """What a process of the build is: the CLI, the fork server, a worker, or what else."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    text = " ".join(words)
    if "forkserver" in text:
        return "forkserver or worker"
    if "resource_tracker" in text:
        return "resource tracker"
    return "report --html" if "report" in text else Path(words[0]).name


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _peak_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def build_html(url: str, folder: Path, site: Path, jobs: int | None) -> Build:
    """``report --html site`` as a child, its process tree's peak memory watched meanwhile."""
    args = [cli(), "--url", url, "report", "--html", str(site)]
    if jobs is not None:
        args += ["--jobs", str(jobs)]
    peaks: dict[int, int] = {}
    ticks: dict[int, int] = {}
    names: dict[int, str] = {}
    started_wall = time.time()
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for pid in _descendants(process.pid):
                peaks[pid] = max(peaks.get(pid, 0), _peak_kb(pid))
                ticks[pid] = max(ticks.get(pid, 0), _cpu_ticks(pid))
                if pid not in names:
                    names[pid] = _name(pid)
            done.wait(POLL_S)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _out, err = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    if process.returncode != 0:
        raise RuntimeError(f"report --html exited {process.returncode}: {err.decode()[-2000:]}")
    build = Build(
        seconds, sum(peaks.values()) / 1024, len(peaks), err.decode().strip().splitlines()[-1]
    )
    build.peaks_mb = sorted(
        ((names.get(pid, "?"), kb / 1024) for pid, kb in peaks.items()), key=lambda p: -p[1]
    )
    tick = os.sysconf("SC_CLK_TCK")
    build.cpu_s = sorted(
        ((names.get(pid, "?"), n / tick) for pid, n in ticks.items() if n), key=lambda p: -p[1]
    )
    index = site / "index.html"
    if index.stat().st_mtime >= started_wall:
        build.index_written_s = index.stat().st_mtime - started_wall
    lead = ATTENTION_ROW.findall(index.read_text(encoding="utf-8"))
    build.lead_pages = len(lead)
    written = [(site / page).stat().st_mtime - started_wall for page in lead]
    if written and max(written) >= 0:
        build.lead_pages_written_s = max(written)
    return build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=60)
    parser.add_argument("--versions", type=int, default=20, help="after the new one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="report --jobs (default: CPUs)")
    parser.add_argument("--workdir", type=Path, default=None, help="kept there to look at")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.workdir or Path(scratch)
        database = folder / "registry.db"
        url = f"sqlite:///{database}"
        print(f"building {args.problems} problems x {args.versions - 1} versions ...", flush=True)
        built = build_registry(folder, url, args.problems, args.versions - 1)
        site = folder / "report"
        first = build_html(url, folder, site, args.jobs)
        print(f"first build: {first.seconds:.1f} s ({first.said})", flush=True)
        registry = built.registry
        try:
            registry.models.register("synthetic", f"v{args.versions - 1}", loader="x:load")
            _insert_results(registry, 1, np.random.default_rng(args.versions))
        finally:
            registry.close()
        new = build_html(url, folder, site, args.jobs)
        print(f"after one new version: {new.seconds:.1f} s ({new.said})", flush=True)
        result = Result(args.problems, args.versions, args.jobs, first, new)
        json_args = [cli(), "--url", url, "report", "--json"]
        for _ in range(args.repeats):  # interleaved: the machine's load falls on both alike
            unchanged = build_html(url, folder, site, args.jobs)
            if "0 files drawn" not in unchanged.said:
                raise RuntimeError(f"the rebuild drew something: {unchanged.said}")
            result.unchanged_s.append(unchanged.seconds)
            result.report_json_s.append(run_child(json_args, cwd=folder).seconds)
    _print(result)
    if args.json_out:
        document = {**asdict(result), "verdicts": result.verdicts()}
        args.json_out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _print(result: Result) -> None:
    new = result.new_version
    print(f"\nP={result.problems}, M={result.versions}, --jobs {result.jobs or 'default'}")
    for name, build in (("first build", result.first_build), ("one new version", new)):
        print(
            f"{name}: {build.seconds:.1f} s, peak {build.peak_mb_summed:.0f} MB summed over "
            f"{build.processes} processes; {build.said}"
        )
        print("  " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in build.peaks_mb))
        print("  CPU: " + ", ".join(f"{name} {s:.1f} s" for name, s in build.cpu_s))
    print(
        f"  index written at {new.index_written_s and f'{new.index_written_s:.1f} s'}, the "
        f"{new.lead_pages} pages listed first by "
        f"{new.lead_pages_written_s and f'{new.lead_pages_written_s:.1f} s'}"
    )
    print(f"nothing changed: {', '.join(f'{s:.2f}' for s in result.unchanged_s)} s")
    print(f"report --json (floor): {', '.join(f'{s:.2f}' for s in result.report_json_s)} s")
    for name, value, target, met in result.verdicts():
        print(f"{'met' if met else 'MISSED':>6}  {name}: {value} (target {target})")


if __name__ == "__main__":
    main()
