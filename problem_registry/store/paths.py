"""The path guard for inputs that name other files: a CSV's rows, a bundle's manifests."""

from __future__ import annotations

from pathlib import Path

from problem_registry.errors import UnsafePath


def inside(base: Path, relative: Path, *, what: str) -> Path:
    """``base / relative``, refused when it is absolute or resolves (through links) outside base."""
    if relative.is_absolute():
        raise UnsafePath(f"{what} is absolute; give a path relative to {base}")
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base.resolve()):
        raise UnsafePath(f"{what} resolves outside {base}; keep the files beside it")
    return candidate
