"""A model worker does not run the caller's script again (issue 18: replay's own cost).

multiprocessing runs the parent's main script in every child it starts, and forkserver's
``__main__`` preload that should spare it is broken up to CPython 3.13 (python/cpython#137996):
each worker imported the whole caller again (the CLI, pytest, a benchmark), 0.3-0.6 s of CPU per
worker. A real script, a real replay, a real worker process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SCRIPT = """
from pathlib import Path

with open({marker!r}, "a") as handle:  # each run of this file, under any name, leaves a line
    handle.write(__name__ + "\\n")

if __name__ == "__main__":
    from problem_registry.expectations import Expectation
    from problem_registry.replay.engine import replay
    from problem_registry.store.patterns import NewPattern
    from problem_registry.store.registry import Registry
    from tests.helpers import write_png

    folder = Path({folder!r})
    registry = Registry.open(
        url=f"sqlite:///{{folder / 'registry.db'}}", patterns_dir=folder / "store", user="t"
    )
    registry.problems.add("colours")
    red = NewPattern(write_png(folder / "red.png"), Expectation.exact("1"))
    registry.patterns.add("colours", [red])
    registry.models.register("m", "v1", loader="tests.models.digits:load_slow")
    summary = replay(registry, ["m@v1"])
    assert summary.predicted == 1 and summary.errored == 0, summary
    registry.close()
"""


def test_the_callers_script_runs_once_not_again_in_each_worker(tmp_path: Path) -> None:
    marker = tmp_path / "runs.txt"
    script = tmp_path / "caller.py"
    script.write_text(textwrap.dedent(SCRIPT.format(marker=str(marker), folder=str(tmp_path))))
    env = {**os.environ, "PYTHONPATH": str(REPO), "DIGITS_SLOW_SECONDS": "0"}
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert marker.read_text().split() == ["__main__"]  # the worker ran no "__mp_main__" copy
