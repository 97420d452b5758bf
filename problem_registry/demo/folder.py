"""Where the demo reads and writes: its curated bundle, and the folder it builds a registry in.

Re-running the demo into the same folder starts afresh rather than adding to it: a folder the demo
made carries a marker file, and the demo replaces only the entries it writes itself. Any other
non-empty folder is refused, so ``problem-registry demo .`` in a project never deletes anything.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from problem_registry.demo import DemoError

DEFAULT_DIRECTORY = Path("problem-registry-demo")
MARKER = ".problem-registry-demo"
# Everything the demo writes; a marked folder holding anything else is not rebuilt.
OWNED = {MARKER, "registry.db", "registry.db-wal", "registry.db-shm", "registry.db-journal",
         "patterns", "models", "report", "report.json"}  # fmt: skip


def demo_patterns_dir() -> Path:
    """The curated bundle shipped in the wheel, or the checkout's top-level patterns/ (editable)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_demo_patterns", package.parent / "patterns"):
        if (candidate / "bundle.json").is_file():
            return candidate
    raise DemoError(  # pragma: no cover - a broken installation
        f"the demo's curated problems are missing (looked in {package / '_demo_patterns'}); "
        "reinstall problem-registry"
    )


def prepare_folder(directory: Path) -> None:
    """Make ``directory`` an empty demo folder: new, empty, or a previous demo (cleared)."""
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise DemoError(f"{directory} is not a folder; give a new or empty folder for the demo")
    if directory.exists():
        present = {entry.name for entry in directory.iterdir()}
        if present and (MARKER not in present or not present <= OWNED):
            raise DemoError(
                f"{directory} is not empty and not a previous demo; give a new or empty folder, "
                "e.g. problem-registry demo ./problem-registry-demo"
            )
        for name in sorted(present):
            entry = directory / name
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text(
        "Made by `problem-registry demo`; running the demo here again rebuilds this folder.\n",
        encoding="utf-8",
    )
