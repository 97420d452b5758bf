"""production cases' inputs in the database too

Issue 20. A triage case's input lived only in the local pattern folder of the machine that
ingested its batch, so another runner read "input missing". Now ``pattern_blob`` holds case
inputs as it holds pattern files (one row per content, whichever names it): its foreign key to
``pattern_file`` goes, since a case's input need not be a pattern file; a blob row goes when
neither a ``pattern_file`` row nor a case names it (``store.unreferenced``).

Every existing case input the database lacks is copied in from the pattern folder the upgrade is
given, exactly as 0008 copied pattern files (its reader is reused: a plain file, never a link,
hash-checked, one in memory at a time). One missing or altered on disk is not copied and is
counted in ``config.attributes["content_missing"]`` (added to 0008's counts when both run), and
``problem-registry check`` run where the file is intact puts it in the database later.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FOREIGN_KEY = "fk_pattern_blob_sha256_pattern_file"


def upgrade() -> None:
    with op.batch_alter_table("pattern_blob", schema=None) as batch_op:
        batch_op.drop_constraint(_FOREIGN_KEY, type_="foreignkey")
    _copy_case_inputs()


def _copy_case_inputs() -> None:
    attributes = context.config.attributes
    folder = attributes.get("patterns_dir")
    read = _migration_0008().module._read  # the same reader as pattern files': one rule
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT sha256, min(extension) FROM triage_case"
            " WHERE NOT EXISTS (SELECT 1 FROM pattern_blob WHERE pattern_blob.sha256 ="
            " triage_case.sha256) GROUP BY sha256 ORDER BY sha256"
        )
    ).all()
    missing = 0
    insert = sa.text("INSERT INTO pattern_blob (sha256, data) VALUES (:sha256, :data)")
    for sha256, extension in rows:
        data = read(Path(folder), sha256, extension) if folder else None
        if data is None:
            missing += 1
            continue
        bind.execute(insert, {"sha256": sha256, "data": data})
    attributes["content_copied"] = attributes.get("content_copied", 0) + len(rows) - missing
    attributes["content_missing"] = attributes.get("content_missing", 0) + missing


def _migration_0008() -> Any:
    return context.script.get_revision("0008")


def downgrade() -> None:
    # Content only cases name cannot stay under the foreign key: it goes (the local cache keeps
    # its files, so an upgrade on this machine copies them back).
    op.execute(
        "DELETE FROM pattern_blob WHERE NOT EXISTS"
        " (SELECT 1 FROM pattern_file WHERE pattern_file.sha256 = pattern_blob.sha256)"
    )
    with op.batch_alter_table("pattern_blob", schema=None) as batch_op:
        batch_op.create_foreign_key(
            _FOREIGN_KEY, "pattern_file", ["sha256"], ["sha256"], ondelete="CASCADE"
        )
