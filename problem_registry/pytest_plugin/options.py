"""The plugin's options, read once at ``pytest_configure`` into a frozen :class:`RegistryOptions`.

Each setting is a flag or, failing that, the ini value of the same ``dest`` (the same precedence as
the CLI's flag > file). A value that cannot be used is refused here, as a one-line usage error,
before the registry is opened, anything is collected or the session's heavy modules are imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from problem_registry.errors import InvalidValue, RegistryError
from problem_registry.refs import ModelRef
from problem_registry.replay.shards import Shard


@dataclass(frozen=True)
class RegistryOptions:
    """What a ``--registry`` run asked for; the session reads this, never the config."""

    url: str | None = None
    candidate: ModelRef | None = None  # None: the newest registered version of the only model
    baseline: ModelRef | None = None  # None: the champion of the candidate's model
    candidate_loader: str | None = None
    candidate_artifact: Path | None = None
    candidate_repeats: int = 1
    problems: tuple[str, ...] | None = None  # sorted slugs; None: every problem not retired
    report_dir: Path | None = None  # absolute: relative values start at the invocation folder
    drift_file: Path | None = None  # a production batch to warn on (issue 20); absolute too
    shard: Shard | None = None  # replay this share only, and judge nothing (issue 17)

    @classmethod
    def from_config(cls, config: pytest.Config) -> RegistryOptions:
        """The options of this run, or a one-line usage error naming the value that is wrong."""
        try:
            return cls._parse(config)
        except RegistryError as exc:
            raise pytest.UsageError(f"problem-registry: {exc}") from None

    @classmethod
    def _parse(cls, config: pytest.Config) -> RegistryOptions:
        candidate = _setting(config, "registry_candidate")
        baseline = _setting(config, "registry_baseline")
        loader = _setting(config, "registry_candidate_loader")
        artifact = _setting(config, "registry_candidate_artifact")
        problems = _setting(config, "registry_problems")
        report_dir = _setting(config, "registry_report")
        drift_file = _setting(config, "registry_drift")
        shard = _setting(config, "registry_shard")
        if loader and candidate is None:
            raise InvalidValue("--candidate-loader needs --candidate NAME@VERSION")
        if artifact and not loader:
            raise InvalidValue("--candidate-artifact needs --candidate-loader")
        repeats = _setting(config, "registry_candidate_repeats")
        if repeats and not loader:
            raise InvalidValue("--candidate-repeats needs --candidate-loader")
        if repeats and not str(repeats).strip().isdigit():
            raise InvalidValue(f"--candidate-repeats must be a whole number, got {repeats!r}")
        return cls(
            url=_setting(config, "registry_url") or None,
            candidate=None if candidate is None else ModelRef.parse(candidate),
            baseline=None if baseline is None else ModelRef.parse(baseline),
            candidate_loader=loader or None,
            candidate_artifact=Path(artifact) if artifact else None,
            candidate_repeats=int(repeats) if repeats else 1,
            problems=tuple(sorted({s.strip() for s in problems.split(",") if s.strip()}))
            if problems
            else None,
            report_dir=Path(config.invocation_params.dir, report_dir) if report_dir else None,
            drift_file=Path(config.invocation_params.dir, drift_file) if drift_file else None,
            shard=Shard.parse(shard) if shard else None,
        )


def _setting(config: pytest.Config, dest: str) -> Any:
    """A flag if given, else the ini value."""
    value = config.getoption(dest)
    return value if value is not None else config.getini(dest)
