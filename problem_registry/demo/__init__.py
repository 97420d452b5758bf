"""``problem-registry demo``: a real registry built from data that ships with scikit-learn.

The library side of the demo (no typer or rich here): :mod:`.digits` holds the data and the
held-out split, :mod:`.models` the four model versions and their loader, :mod:`.bundled` finds the
curated problems, and :mod:`.run` builds the registry, trains, replays and reports. The curated
problems themselves live in the repository's top-level ``patterns/`` (copied into the wheel), with
the script that curated them.
"""

from __future__ import annotations

from problem_registry.errors import RegistryError


class DemoError(RegistryError):
    """The demo cannot run here: a folder that is not ours, or a broken installation."""
