"""pytest plugin: ``pytest --registry`` turns every registered problem into a test of the candidate.

This module is imported by every pytest run in every project that installs problem-registry, so it
holds only options and hooks, imports nothing heavy at module level, and does nothing at all
unless ``--registry`` (or ``registry = true`` in the ini file) is given. The work happens in
:class:`problem_registry.pytest_plugin.session.RegistrySession`.

Under pytest-xdist the controller replays (once), fixes the list of problems and hands it to the
workers, so every worker collects the same items; workers only read the registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from problem_registry.pytest_plugin.session import RegistrySession

WORKER_SNAPSHOT = "problem_registry_snapshot"

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
        "--registry-problems",
        "registry_problems",
        "string",
        "Comma-separated problem slugs to test (default: every problem not retired).",
    ),
    (
        "--registry-report",
        "registry_report",
        "string",
        "Write the report (charts, summary.json, summary.md) into this folder.",
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


def setting(config: pytest.Config, dest: str) -> Any:
    """A flag if given, else the ini value: the same precedence as the CLI's flag > file."""
    value = config.getoption(dest)
    return value if value is not None else config.getini(dest)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "problem_registry: a problem of the problem registry, gated on the candidate"
    )
    if not config.getoption("registry_enabled") and not config.getini("registry"):
        return
    from problem_registry.pytest_plugin.session import RegistrySession

    session = RegistrySession(config, setting)
    config.pluginmanager.register(session, "problem-registry-session")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(session), "problem-registry-xdist")


class _XdistHooks:
    """Registered only when xdist is present: pytest refuses unknown hook names otherwise."""

    def __init__(self, session: RegistrySession) -> None:
        self.session = session

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKER_SNAPSHOT] = self.session.snapshot_for_workers()
