"""Real pattern files for tests: small PNGs, text and JSON written where the test says."""

from __future__ import annotations

import io
import json
import struct
import zlib
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


def png_bytes(color: tuple[int, int, int] = (255, 0, 0), size: tuple[int, int] = (8, 8)) -> bytes:
    """What :func:`write_png` writes, as bytes."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG (valid CRCs) whose header claims ``width`` x ``height`` 1-bit pixels,
    with a few bytes of pixel data: what a decompression bomb looks like before it is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


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


def assert_one_clear_error(stderr: str, stdout: str = "") -> None:
    """A user error as the CLI must print it: one line ``error: ...`` on stderr, no traceback."""
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("error: "), stderr
    assert "Traceback" not in stderr + stdout


def lose_content(registry: Any, sha256: str, relative_file: str) -> None:
    """Delete a pattern's content everywhere it lives (issue 17): its database row and its
    cached file, as a hand edit or a lost backup would; the pattern rows stay."""
    import sqlalchemy as sa

    (registry.store.root / relative_file).unlink(missing_ok=True)
    with registry.writing() as session:
        session.execute(sa.text("DELETE FROM pattern_blob WHERE sha256 = :s"), {"s": sha256})
