"""What a replay did, as its callers (the CLI, the pytest plugin, the demo) read it: each
version's outcome, the pattern files refused, and the progress reported while it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ReplayProgress:
    """Reported after every batch: ``done`` of ``total`` missing pairs handled so far."""

    done: int
    total: int
    version: str | None = None


ProgressCallback = Callable[[ReplayProgress], None]


@dataclass
class VersionReplay:
    """What one version got: ``status`` is ``up-to-date``, ``replayed`` or ``unavailable``."""

    ref: str
    name: str
    version: str
    status: str = "up-to-date"
    predicted: int = 0
    errored: int = 0
    reason: str = ""  # why the version is unavailable
    # The first error this replay stored for the version, one line ("ValueError: ..."): an
    # "errored" count alone gave no clue where to look (issue 19).
    first_error: str = ""
    # Patterns whose answer changed between the repeats of a non-deterministic version.
    flaky: int = 0

    def remarks(self) -> str:
        """What needs a look, as one line (``3 errored (first: ValueError: ...), 2 flaky``)."""
        parts = []
        if self.errored:
            # The first error names where to look; the rest are in `report` (issue 19).
            parts.append(f"{self.errored} errored (first: {self.first_error})")
        if self.flaky:
            parts.append(f"{self.flaky} flaky (answers changed between repeats)")
        return ", ".join(parts)


@dataclass
class RefusedPattern:
    """A pattern file that could not be used (missing or altered on disk, or undecodable)."""

    sha256: str
    reason: str
    patterns: list[str] = field(default_factory=list)  # "slug/original_name"


@dataclass
class ReplaySummary:
    run_id: int
    status: str
    versions: list[VersionReplay]
    refused: list[RefusedPattern]
    predicted: int = 0  # results stored by this replay, errored ones included
    errored: int = 0  # of those, how many are the model's exception (or a missing prediction)
    reused: int = 0  # pairs that already had a result: nothing was computed for them
    seconds: float = 0.0

    @property
    def unavailable(self) -> list[VersionReplay]:
        return [v for v in self.versions if v.status == "unavailable"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def problems(self) -> str:
        """The versions that could not be replayed and the refused pattern files, one line."""
        parts = [f"{v.ref} unavailable: {v.reason}" for v in self.unavailable]
        parts += [f"refused pattern file {r.sha256[:12]}: {r.reason}" for r in self.refused]
        return "; ".join(parts)
