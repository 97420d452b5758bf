"""Real pattern files for tests: small PNGs, text and JSON written where the test says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image


def write_png(
    path: Path, color: tuple[int, int, int] = (255, 0, 0), size: tuple[int, int] = (8, 8)
) -> Path:
    """A solid-colour PNG; different colours give different content, hence different hashes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="PNG")
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, sort_keys=True), encoding="utf-8")
    return path


def row_counts(registry: Any) -> dict[str, int]:
    """Rows in every table of the registry's database: compared before and after a refusal."""
    import sqlalchemy as sa
    from sqlmodel import SQLModel

    with registry.engine.connect() as connection:
        return {
            name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, table in sorted(SQLModel.metadata.tables.items())
        }


def stored_files(root: Path) -> list[str]:
    """Every file under ``root`` (the pattern store, or a whole tmp_path), relative and sorted."""
    if not root.exists():
        return []
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if not path.is_dir())


def snapshot(registry: Any) -> tuple[dict[str, int], list[str]]:
    """What a refusal must leave unchanged: the rows of every table and the files of the store."""
    return row_counts(registry), stored_files(registry.store.root)
