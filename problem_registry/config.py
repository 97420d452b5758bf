"""Settings are resolved once, in one place: CLI flag > environment > pyproject.toml > default.

The project root is the nearest folder, from the working directory up, that holds a
``pyproject.toml``; without one it is the working directory. Defaults and relative paths in
``[tool.problem-registry]`` are taken relative to that root, so every subfolder of a project sees
the same registry.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from problem_registry.errors import UNKNOWN_USER, ConfigError
from problem_registry.plain_files import read_plain

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_DATABASE_FILE = "registry.db"
DEFAULT_PATTERNS_DIR = "patterns"
ENV_URL = "PROBLEM_REGISTRY_URL"
ENV_PATTERNS = "PROBLEM_REGISTRY_PATTERNS"
ENV_USER = "PROBLEM_REGISTRY_USER"
PYPROJECT_SECTION = "problem-registry"
_KNOWN_KEYS = {"url", "patterns", "user"}
MAX_PYPROJECT_BYTES = 4 * 1024 * 1024
ENV_MAX_PATTERN_MB = "PROBLEM_REGISTRY_MAX_PATTERN_MB"
DEFAULT_MAX_PATTERN_MB = 50


@dataclass(frozen=True)
class Settings:
    """Where the registry lives and who is writing to it."""

    database_url: str
    patterns_dir: Path
    root: Path
    user: str
    # Which layer supplied the URL: shown by `init`, so a user can tell why a registry was chosen.
    url_source: str = "default"


def find_project_root(start: Path | None = None) -> Path:
    """The nearest ancestor of ``start`` holding a pyproject.toml, else ``start`` itself."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return here


def read_pyproject_section(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        # A plain file of bounded size (issue 16, item 9): a FIFO here hung every command.
        text = read_plain(path, max_bytes=MAX_PYPROJECT_BYTES).decode("utf-8")
        document = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}; fix the file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix the file") from None
    except RecursionError:  # tables or arrays nested thousands deep (issue 16, item 11)
        raise ConfigError(f"{path} is nested too deeply to read; fix the file") from None
    section = document.get("tool", {}).get(PYPROJECT_SECTION, {})
    if not isinstance(section, dict):
        raise ConfigError(f"[tool.{PYPROJECT_SECTION}] in {path} must be a table")
    unknown = sorted(set(section) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in [tool.{PYPROJECT_SECTION}] of {path}; "
            f"known keys: {', '.join(sorted(_KNOWN_KEYS))}"
        )
    for key, value in section.items():
        if not isinstance(value, str):
            raise ConfigError(f"[tool.{PYPROJECT_SECTION}] {key} in {path} must be a string")
    return section


def resolve_settings(
    *,
    url: str | None = None,
    patterns_dir: str | os.PathLike[str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Apply the precedence rules; arguments are the CLI flags (``None`` = not given)."""
    environ = os.environ if environ is None else environ
    cwd = (cwd or Path.cwd()).resolve()
    root = find_project_root(cwd)
    section = read_pyproject_section(root)

    if url:
        chosen_url, url_base, source = url, cwd, "flag"
    elif environ.get(ENV_URL):
        chosen_url, url_base, source = environ[ENV_URL], cwd, "environment"
    elif section.get("url"):
        chosen_url, url_base, source = section["url"], root, "pyproject.toml"
    else:
        chosen_url, url_base, source = f"sqlite:///{root / DEFAULT_DATABASE_FILE}", root, "default"
    chosen_url = _absolute_sqlite_url(chosen_url, url_base)

    if patterns_dir:
        store = _absolute(Path(patterns_dir), cwd)
    elif environ.get(ENV_PATTERNS):
        store = _absolute(Path(environ[ENV_PATTERNS]), cwd)
    elif section.get("patterns"):
        store = _absolute(Path(section["patterns"]), root)
    else:
        store = _default_patterns_dir(chosen_url, root)

    who = user or environ.get(ENV_USER) or section.get("user") or _login_name(environ)
    return Settings(
        database_url=chosen_url, patterns_dir=store, root=root, user=who, url_source=source
    )


def _absolute(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (base / path)


def _sqlite_file(url: str) -> str | None:
    """The file part of a SQLite URL, or None for other backends and in-memory databases."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            rest = url[len(prefix) :].split("?", 1)[0]
            return rest if rest and rest != ":memory:" else None
    return None


def _absolute_sqlite_url(url: str, base: Path) -> str:
    """Pin a relative SQLite path to the layer it came from, not to wherever the CLI runs."""
    file = _sqlite_file(url)
    if file is None or Path(file).is_absolute():
        return url
    head, _, query = url.partition("?")
    prefix = head[: len(head) - len(file)]
    absolute = f"{prefix}{_absolute(Path(file), base)}"
    return f"{absolute}?{query}" if query else absolute


def _default_patterns_dir(url: str, root: Path) -> Path:
    file = _sqlite_file(url)
    if file is not None:
        return Path(file).parent / DEFAULT_PATTERNS_DIR
    return root / DEFAULT_PATTERNS_DIR


def _login_name(environ: Mapping[str, str]) -> str:
    for key in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER", "LOGNAME", "USERNAME"):
        if environ.get(key):
            return environ[key]
    return UNKNOWN_USER


def max_pattern_bytes() -> int:
    """The largest pattern file accepted, in bytes: ``$PROBLEM_REGISTRY_MAX_PATTERN_MB`` or 50 MB.

    A bound on what one pattern costs every replay (issue 16, item 12); a JSON pattern costs far
    more in memory than its size, and has a tighter bound of its own (``store.content``).
    """
    raw = os.environ.get(ENV_MAX_PATTERN_MB, "").strip()
    if not raw:
        return DEFAULT_MAX_PATTERN_MB * 1024 * 1024
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = -1.0
    if not 0 < megabytes <= 4096:
        raise ConfigError(
            f"${ENV_MAX_PATTERN_MB} is {raw!r}; give a number of megabytes from 1 to 4096"
        )
    return int(megabytes * 1024 * 1024)
