"""A password in the database URL is never written anywhere a person or a CI system can read.

The registry is a real PostgreSQL database reached with a URL that carries a password (the
throwaway server trusts loopback, so the password is accepted and ignored: the URL still holds it
everywhere the tool could print it). Every surface is then driven through its real entry point and
everything it wrote is searched for the password, in clear and percent-encoded: the CLI's stdout
and stderr (successes and one-line errors), the JSON and HTML reports, the export bundle, the pytest
plugin's terminal output, JUnit XML, Markdown step summary and ``--registry-report`` folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from problem_registry.cli import app
from tests.digit_registry import Digits

PASSWORD = "s3cr3t:p@ss/w0rd?#%"
SECRETS = (PASSWORD, quote(PASSWORD, safe=""), "s3cr3t")

# Only PostgreSQL URLs carry a password; the digits fixture builds on this database.
pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def with_password(url: str) -> str:
    """The same database, reached as the same user with a password in the URL."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{quote(PASSWORD, safe='')}@{host}"


def assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"the password appears in {where}"


def assert_no_secret_in_files(folder: Path) -> None:
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert files, f"nothing was written under {folder}"
    for path in files:
        assert_no_secret(str(path), path.read_bytes().decode("utf-8", errors="replace"))


@pytest.fixture
def secret_url(digits: Digits, database_url: str) -> str:
    return with_password(database_url)


@pytest.fixture
def run_cli(secret_url: str, digits: Digits) -> Iterator[object]:
    runner = CliRunner()
    store = str(digits.registry.store.root)

    def run(*args: str, url: str = secret_url) -> tuple[int, str]:
        result = runner.invoke(app, ["--url", url, "--patterns-dir", store, *args])
        output = result.stdout + result.stderr
        assert "Traceback" not in output, output
        assert_no_secret(f"the output of {args}", output)
        return result.exit_code, output

    yield run


def test_cli_outputs_and_files_never_hold_the_password(run_cli, tmp_path: Path) -> None:
    for args in (
        ("db", "status"),
        ("db", "status", "--json"),
        ("db", "upgrade"),
        ("problem", "list"),
        ("replay", "--all"),
        ("report", "--json"),
        ("report",),
        ("check",),
        ("check", "--json"),
    ):
        code, output = run_cli(*args)
        assert code == 0, (args, output)
    code, output = run_cli("report", "--html", str(tmp_path / "html"))
    assert code == 0, output
    assert_no_secret_in_files(tmp_path / "html")
    code, output = run_cli("export", str(tmp_path / "bundle"))
    assert code == 0, output
    assert_no_secret_in_files(tmp_path / "bundle")


def test_connection_errors_never_hold_the_password(run_cli, secret_url: str) -> None:
    scheme, rest = secret_url.split("://", 1)
    credentials, location = rest.split("@", 1)
    host_port, _database = location.split("/", 1)
    unreachable = f"{scheme}://{credentials}@127.0.0.1:1/nowhere"
    missing_database = f"{scheme}://{credentials}@{host_port}/no_such_database"
    no_driver = f"postgresql+nodriver://{credentials}@{host_port}/db"
    for url in (unreachable, missing_database, no_driver):
        code, output = run_cli("problem", "list", url=url)
        assert code == 1, output
        assert output.startswith("error: ") and len(output.strip().splitlines()) == 1, output


def test_the_pytest_plugin_never_writes_the_password(
    digits: Digits,
    secret_url: str,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PROBLEM_REGISTRY_PATTERNS", str(digits.registry.store.root))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    digits.registry.models.promote("digits", "v2")
    junit = tmp_path / "junit.xml"
    report = tmp_path / "report"
    result = pytester.runpytest_inprocess(
        "--registry",
        "--registry-url",
        secret_url,
        "--candidate",
        "digits@v1",  # a weak candidate: the failure output is printed too
        f"--junitxml={junit}",
        "--registry-report",
        str(report),
        "-v",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
    )
    # The verdict's full text is printed too: in a failure, or in a review's warning.
    text = result.stdout.str()
    assert result.parseoutcomes().get("failed", 0) >= 1 or "ReviewWarning" in text, text
    assert_no_secret("pytest's terminal output", result.stdout.str() + result.stderr.str())
    assert_no_secret("the JUnit XML", junit.read_text())
    assert_no_secret("the step summary", summary.read_text())
    assert_no_secret_in_files(report)
