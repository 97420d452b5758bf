"""Start-up: what a process pays before doing any work, and what the pytest plugin costs unused.

Each figure is the median of ``repeats`` child processes. The plugin's cost is measured on a
one-test project, two ways, the runs alternated (ABBA) so drift in the machine's load hits both
alike, in CPU time (user + system of the child): a pytest run's wall time on a shared machine
varies by tens of milliseconds from one run to the next, more than the cost being measured:

* as a user meets it: ``pytest`` with every installed plugin, against the same run with
  ``-p no:problem_registry``. Other plugins (Hypothesis's alone imports for ~1 s here) make this
  difference noisy;
* isolated: with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, bare pytest against bare pytest plus
  ``-p problem_registry.pytest_plugin.hooks``: the same hooks and import, without the others' noise.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from measure import cli, median_seconds, run_child


@dataclass(frozen=True)
class Startup:
    python_s: float  # python -c pass
    sqlalchemy_s: float  # python -c "import sqlalchemy, sqlmodel": the library's floor
    cli_version_s: float  # problem-registry --version
    cli_import_s: float  # python -c "import problem_registry.cli"


@dataclass(frozen=True)
class PluginCost:
    with_plugin_s: float  # medians of each kind of run, CPU seconds
    without_plugin_s: float
    difference_s: float  # the median of the paired differences
    runs: int


def measure(folder: Path, repeats: int) -> Startup:
    def python(code: str) -> float:
        return run_child([sys.executable, "-c", code], cwd=folder).seconds

    return Startup(
        python_s=median_seconds(repeats, lambda: python("pass")),
        sqlalchemy_s=median_seconds(repeats, lambda: python("import sqlalchemy, sqlmodel")),
        cli_version_s=median_seconds(
            repeats, lambda: run_child([cli(), "--version"], cwd=folder).seconds
        ),
        cli_import_s=median_seconds(repeats, lambda: python("import problem_registry.cli")),
    )


def plugin_cost(folder: Path, runs: int, *, isolated: bool) -> PluginCost:
    """Median cost of the plugin installed but unused (see the module's docstring)."""
    project = folder / "plugin-cost"
    project.mkdir(parents=True, exist_ok=True)
    (project / "test_one.py").write_text("def test_one():\n    pass\n", encoding="utf-8")
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_one.py"]
    # Bytecode cached, as on a developer's machine and in CI after its first run: where it is
    # not written (PYTHONDONTWRITEBYTECODE, set on this machine), pytest rewrites every plugin's
    # modules again on every run, ~0.6 s of Hypothesis's alone, whose noise drowns the plugin's.
    env = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(project / "pycache")}
    if isolated:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        enabled, disabled = [*base, "-p", "problem_registry.pytest_plugin.hooks"], base
    else:
        enabled, disabled = base, [*base, "-p", "no:problem_registry"]
    for args in (enabled, disabled):  # the first runs write the bytecode
        run_child(args, cwd=project, env=env)
    with_plugin: list[float] = []
    without: list[float] = []
    for index in range(runs):
        # ABBA order: whichever runs second in a pair must not always be the same one.
        pair = [(enabled, with_plugin), (disabled, without)]
        for args, into in pair if index % 2 == 0 else reversed(pair):
            into.append(run_child(args, cwd=project, env=env).cpu_seconds)
    return PluginCost(
        statistics.median(with_plugin),
        statistics.median(without),
        statistics.median(w - wo for w, wo in zip(with_plugin, without, strict=True)),
        runs,
    )
