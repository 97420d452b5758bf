"""pytest plugin: ``pytest --registry`` turns every registered problem into a test of the candidate.

This module is imported by every pytest run in every project that installs problem-registry, so it
holds only options and hooks, imports nothing heavy at module level, and does nothing at all
unless ``--registry`` (or ``registry = true`` in the ini file) is given. The options are read
once into :class:`~problem_registry.pytest_plugin.options.RegistryOptions`; the work happens in
:class:`problem_registry.pytest_plugin.session.RegistrySession`, which holds them.

Under pytest-xdist the controller replays (once), fixes the list of problems and hands it to the
workers, so every worker collects the same items; workers only read the registry.
"""

from __future__ import annotations

import pytest

# (option, dest, ini type, help) for every setting that also reads [tool.pytest.ini_options].
_OPTIONS: list[tuple[str, str, str, str]] = [
    ("--registry-url", "registry_url", "string", "Registry database URL (default: as the CLI)."),
    (
        "--candidate",
        "registry_candidate",
        "string",
        "The model version under test, NAME@VERSION (default: the newest registered).",
    ),
    (
        "--baseline",
        "registry_baseline",
        "string",
        "Compare the candidate with this version, NAME@VERSION (default: its model's champion).",
    ),
    (
        "--candidate-loader",
        "registry_candidate_loader",
        "string",
        "Register the candidate with this module:callable loader if it is not registered yet.",
    ),
    (
        "--candidate-artifact",
        "registry_candidate_artifact",
        "string",
        "Model file for --candidate-loader (its sha256 is recorded).",
    ),
    (
        "--candidate-repeats",
        "registry_candidate_repeats",
        "string",
        "With --candidate-loader, for a non-deterministic model: ask it N times per pattern.",
    ),
    (
        "--registry-problems",
        "registry_problems",
        "string",
        "Comma-separated problem slugs to test (default: every problem not retired).",
    ),
    (
        "--registry-shard",
        "registry_shard",
        "string",
        "Replay only shard I/N of the pattern files and judge nothing: one job of a CI matrix "
        "(a final run without it gates on every shard's results).",
    ),
    (
        "--registry-report",
        "registry_report",
        "string",
        "Write the report (charts, summary.json, summary.md) into this folder.",
    ),
    (
        "--registry-drift",
        "registry_drift",
        "string",
        "Warn when this production batch (JSONL or CSV) drifted from the one before (PSI).",
    ),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("problem-registry", "problem-registry: canary tests for models")
    group.addoption(
        "--registry",
        action="store_true",
        dest="registry_enabled",
        default=None,
        help="Replay the problem registry against the candidate; one test per problem.",
    )
    parser.addini("registry", type="bool", default=False, help="Same as --registry.")
    for flag, dest, kind, text in _OPTIONS:
        group.addoption(flag, dest=dest, default=None, help=text)
        parser.addini(dest, type=kind, default=None, help=f"Same as {flag}.")  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "problem_registry: a problem of the problem registry, gated on the candidate"
    )
    if not config.getoption("registry_enabled") and not config.getini("registry"):
        # A flag of ours without --registry would otherwise run nothing, silently (issue 19).
        # Ini values are left alone: a project may keep them for the runs that add --registry.
        given = [flag for flag, dest, _, _ in _OPTIONS if config.getoption(dest) is not None]
        if given:
            raise pytest.UsageError(
                f"problem-registry: {given[0]} needs --registry (or registry = true in the ini "
                "file); without it the plugin does nothing"
            )
        return  # and imports nothing more: even the options module costs ~2 ms to import
    from problem_registry.pytest_plugin.options import RegistryOptions

    options = RegistryOptions.from_config(config)  # a bad value is a usage error here, once
    from problem_registry.pytest_plugin.session import RegistrySession

    config.pluginmanager.register(RegistrySession(config, options), RegistrySession.NAME)
