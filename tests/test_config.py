"""Settings precedence: flag > environment > [tool.problem-registry] in pyproject.toml > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from problem_registry.config import find_project_root, resolve_settings
from problem_registry.errors import ConfigError
from problem_registry.store.registry import Registry
from tests.helpers import write_text


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose pyproject.toml names its own registry, with a subfolder to work from."""
    root = tmp_path / "project"
    write_text(
        root / "pyproject.toml",
        '[project]\nname = "demo"\n\n'
        "[tool.problem-registry]\n"
        'url = "sqlite:///data/team.db"\n'
        'patterns = "cases"\n'
        'user = "from-pyproject"\n',
    )
    (root / "src" / "deep").mkdir(parents=True)
    return root


def test_defaults_put_the_registry_in_the_working_folder(tmp_path: Path) -> None:
    settings = resolve_settings(cwd=tmp_path, environ={})

    assert settings.root == tmp_path.resolve()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/registry.db"
    assert settings.patterns_dir == tmp_path.resolve() / "patterns"
    assert settings.url_source == "default"
    assert settings.user == "unknown"


def test_defaults_sit_at_the_project_root_when_run_from_a_subfolder(tmp_path: Path) -> None:
    write_text(tmp_path / "pyproject.toml", '[project]\nname = "demo"\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)

    settings = resolve_settings(cwd=sub, environ={})

    assert settings.root == tmp_path.resolve()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/registry.db"
    assert settings.patterns_dir == tmp_path.resolve() / "patterns"


def test_project_root_is_the_nearest_folder_with_a_pyproject(project: Path) -> None:
    nested = project / "src" / "deep" / "inner"
    write_text(nested / "pyproject.toml", "")

    assert find_project_root(project / "src" / "deep") == project.resolve()
    assert find_project_root(nested) == nested.resolve()
    assert find_project_root(project) == project.resolve()


def test_pyproject_beats_defaults_and_its_relative_paths_are_from_the_root(
    project: Path,
) -> None:
    settings = resolve_settings(cwd=project / "src" / "deep", environ={})

    assert settings.database_url == f"sqlite:///{project.resolve()}/data/team.db"
    assert settings.patterns_dir == project.resolve() / "cases"
    assert settings.user == "from-pyproject"
    assert settings.url_source == "pyproject.toml"


def test_environment_beats_pyproject_and_its_relative_paths_are_from_the_working_folder(
    project: Path,
) -> None:
    cwd = project / "src"
    environ = {
        "PROBLEM_REGISTRY_URL": "sqlite:///env.db",
        "PROBLEM_REGISTRY_PATTERNS": "env-patterns",
        "PROBLEM_REGISTRY_USER": "from-env",
    }

    settings = resolve_settings(cwd=cwd, environ=environ)

    assert settings.database_url == f"sqlite:///{cwd.resolve()}/env.db"
    assert settings.patterns_dir == cwd.resolve() / "env-patterns"
    assert settings.user == "from-env"
    assert settings.url_source == "environment"


def test_flags_beat_the_environment(project: Path, tmp_path: Path) -> None:
    cwd = project / "src"
    environ = {
        "PROBLEM_REGISTRY_URL": "sqlite:///env.db",
        "PROBLEM_REGISTRY_PATTERNS": "env-patterns",
        "PROBLEM_REGISTRY_USER": "from-env",
    }

    settings = resolve_settings(
        url="sqlite:///flag.db",
        patterns_dir="flag-patterns",
        user="from-flag",
        cwd=cwd,
        environ=environ,
    )

    assert settings.database_url == f"sqlite:///{cwd.resolve()}/flag.db"
    assert settings.patterns_dir == cwd.resolve() / "flag-patterns"
    assert settings.user == "from-flag"
    assert settings.url_source == "flag"

    absolute = resolve_settings(url=f"sqlite:///{tmp_path}/abs.db", cwd=cwd, environ=environ)
    assert absolute.database_url == f"sqlite:///{tmp_path}/abs.db"


def test_each_setting_falls_through_on_its_own(project: Path) -> None:
    """Setting only the URL in the environment leaves patterns and user to pyproject.toml."""
    settings = resolve_settings(
        cwd=project, environ={"PROBLEM_REGISTRY_URL": "sqlite:////srv/shared.db"}
    )

    assert settings.database_url == "sqlite:////srv/shared.db"
    assert settings.patterns_dir == project.resolve() / "cases"
    assert settings.user == "from-pyproject"


def test_empty_environment_variables_count_as_unset(project: Path) -> None:
    environ = {"PROBLEM_REGISTRY_URL": "", "PROBLEM_REGISTRY_PATTERNS": ""}

    settings = resolve_settings(cwd=project, environ=environ)

    assert settings.url_source == "pyproject.toml"
    assert settings.patterns_dir == project.resolve() / "cases"


def test_default_patterns_sit_beside_the_sqlite_file_chosen(tmp_path: Path) -> None:
    settings = resolve_settings(
        cwd=tmp_path, environ={"PROBLEM_REGISTRY_URL": "sqlite:///store/reg.db"}
    )

    assert settings.patterns_dir == tmp_path.resolve() / "store" / "patterns"


def test_postgresql_and_in_memory_urls_are_left_alone(tmp_path: Path) -> None:
    pg = "postgresql+psycopg://alice:secret@db.example:5432/registry"

    postgres = resolve_settings(url=pg, cwd=tmp_path, environ={})
    memory = resolve_settings(url="sqlite:///:memory:", cwd=tmp_path, environ={})
    with_query = resolve_settings(url="sqlite:///rel.db?timeout=5", cwd=tmp_path, environ={})

    assert postgres.database_url == pg
    assert postgres.patterns_dir == tmp_path.resolve() / "patterns"
    assert memory.database_url == "sqlite:///:memory:"
    assert with_query.database_url == f"sqlite:///{tmp_path.resolve()}/rel.db?timeout=5"


def test_user_falls_back_to_the_ci_or_login_name(tmp_path: Path) -> None:
    def user(environ: dict[str, str]) -> str:
        return resolve_settings(cwd=tmp_path, environ=environ).user

    assert user({"USER": "alice"}) == "alice"
    assert user({"USER": "alice", "GITHUB_ACTOR": "octocat"}) == "octocat"
    assert user({"LOGNAME": "bob"}) == "bob"
    assert user({}) == "unknown"


def test_invalid_toml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    write_text(tmp_path / "pyproject.toml", "[tool.problem-registry\nurl = ")

    with pytest.raises(ConfigError, match=r"pyproject\.toml is not valid TOML"):
        resolve_settings(cwd=tmp_path, environ={})


def test_non_utf8_pyproject_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.problem-registry]\nuser = '\xff'\n")

    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_settings(cwd=tmp_path, environ={})


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('[tool.problem-registry]\ndatabase = "sqlite:///x.db"\n', "unknown key 'database'"),
        ("[tool.problem-registry]\nurl = 5\n", "url .* must be a string"),
        ('[tool]\nproblem-registry = "sqlite:///x.db"\n', "must be a table"),
    ],
)
def test_bad_pyproject_section_is_a_config_error(
    tmp_path: Path, section: str, message: str
) -> None:
    write_text(tmp_path / "pyproject.toml", section)

    with pytest.raises(ConfigError, match=message):
        resolve_settings(cwd=tmp_path, environ={})


def test_a_flag_does_not_hide_a_broken_pyproject(tmp_path: Path) -> None:
    """Even with --url given the file is read: a typo in it is reported, not silently ignored."""
    write_text(tmp_path / "pyproject.toml", "[tool.problem-registry]\nurll = 'x'\n")

    with pytest.raises(ConfigError, match="unknown key 'urll'"):
        resolve_settings(url="sqlite:///x.db", cwd=tmp_path, environ={})


def test_registry_opened_from_a_subfolder_uses_the_project_registry(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PROBLEM_REGISTRY_URL", "PROBLEM_REGISTRY_PATTERNS", "PROBLEM_REGISTRY_USER"):
        monkeypatch.delenv(name, raising=False)
    (project / "data").mkdir()
    monkeypatch.chdir(project / "src" / "deep")

    with Registry.open() as registry:
        registry.problems.add("hats")
        assert registry.user == "from-pyproject"
        assert registry.store.root == project.resolve() / "cases"

    assert (project / "data" / "team.db").is_file()
    monkeypatch.chdir(project)
    with Registry.open() as again:
        assert [p.slug for p in again.problems.list()] == ["hats"]
