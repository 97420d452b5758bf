"""Several runners on one PostgreSQL registry (issue 17, item 5): predictions and wall time.

The registry is the replay benchmark's (P problems x 15 patterns, M versions of the numpy bench
model, no result stored), built once on a throwaway PostgreSQL server (``tests.throwaway_postgres``)
and copied (``CREATE DATABASE ... TEMPLATE``) before each scenario:

1. one runner: ``problem-registry replay --all``;
2. three runners started at once, each its own process;
3. three runners started at once, one killed (SIGKILL) half-way through scenario 1's time.

The model appends a line per batch to a log (``BENCH_MODEL_COUNT``), so the predictions are
counted by the model itself, whichever runner made them; the results stored are counted in the
database. Every runner gets ``--jobs 1``: on this 2-core machine three runners already share the
cores. ``$PROBLEM_REGISTRY_LEASE_SECONDS`` is 10 here, so the killed runner's claims expire in
seconds rather than the default minute::

    python benchmarks/team_scale.py --problems 100 --versions 20
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import replay
from measure import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.throwaway_postgres import throwaway_server


def _results(url: str) -> int:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as connection:
        row = connection.execute("SELECT count(*) FROM result").fetchone()
    return int(row[0]) if row else 0


def _scenario(
    template: str, server: object, folder: Path, runners: int, kill_after: float | None
) -> dict[str, object]:
    name = f"s_{runners}_{'kill' if kill_after else 'ok'}_{int(time.time() * 1000) % 100000}"
    server.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')  # type: ignore[attr-defined]
    url = server.url(name)  # type: ignore[attr-defined]
    log = folder / f"{name}.log"
    env = {
        **os.environ,
        "BENCH_MODEL_COUNT": str(log),
        "PROBLEM_REGISTRY_LEASE_SECONDS": "10",
    }
    args = [cli(), "--url", url, "replay", "--all", "--jobs", "1"]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            args,
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(folder / f"{name}-{index}.err").open("w"),
        )
        for index in range(runners)
    ]
    killed = False
    if kill_after is not None:
        time.sleep(kill_after)
        if processes[0].poll() is None:
            processes[0].send_signal(signal.SIGKILL)
            killed = True
    codes = [process.wait() for process in processes]
    seconds = time.perf_counter() - started
    predicted = sum(int(line) for line in log.read_text().split()) if log.exists() else 0
    return {
        "runners": runners,
        "killed_one": killed,
        "seconds": round(seconds, 3),
        "exit_codes": codes,
        "predicted": predicted,
        "results": _results(url),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--cost-ms", type=float, default=0.2)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-team-"))
    os.chdir(folder)  # bench_model is imported from the working directory, as replay does
    with throwaway_server() as server:
        url = server.create_database()
        built = replay.build(folder, url, args.problems, args.versions, args.cost_ms)
        built.registry.close()
        template = url.rsplit("/", 1)[1]
        pairs = args.problems * 15 * args.versions
        one = _scenario(template, server, folder, 1, None)
        three = _scenario(template, server, folder, 3, None)
        half = float(one["seconds"]) / 2  # type: ignore[arg-type]
        killed = _scenario(template, server, folder, 3, half)
    rows = [one, three, killed]
    print(f"P={args.problems} M={args.versions} pairs={pairs} cost={args.cost_ms} ms/input")
    for row in rows:
        print(
            f"  {row['runners']} runner(s){' (one killed half-way)' if row['killed_one'] else ''}:"
            f" {row['seconds']} s, {row['predicted']} predicted, {row['results']} stored, "
            f"exit codes {row['exit_codes']}"
        )
    if args.json_out:
        document = {"pairs": pairs, "scenarios": rows, "load_average": os.getloadavg()}
        args.json_out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
