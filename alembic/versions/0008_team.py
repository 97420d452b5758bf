"""team registry: pattern content in the database, and replay leases

Issue 17. ``pattern_blob`` holds every pattern file's bytes, keyed by sha256, so a runner with
only the database URL can replay; the files under ``patterns/`` become a verified local cache.
``replay_lease`` holds concurrent runners' claims on (version, block of files) while they predict.

Every existing pattern file is copied into ``pattern_blob`` from the pattern folder the upgrade is
given (``problem-registry db upgrade`` passes the registry's): each read as a plain file (never a
link), hash-checked and inserted one at a time, so memory holds one file. A file missing or
altered on disk is not copied and is counted in ``config.attributes["content_missing"]``;
the registry stays usable, and any command run where the file is intact puts it in the database
(``store.blobs``), while a replay names the patterns whose content is nowhere.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The largest file this copies: the store's own cap (50 MB by default) has always applied to
# what was added; a file larger than 4 GB is not a pattern file.
_MAX_COPY_BYTES = 4096 * 1024 * 1024


def upgrade() -> None:
    op.create_table(
        "pattern_blob",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["pattern_file.sha256"],
            name=op.f("fk_pattern_blob_sha256_pattern_file"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_pattern_blob")),
    )
    op.create_table(
        "replay_lease",
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("fk_replay_lease_model_version_id_model_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_version_id", "block", name=op.f("pk_replay_lease")),
    )
    op.create_index(op.f("ix_replay_lease_holder"), "replay_lease", ["holder"], unique=False)
    _copy_files()


def _copy_files() -> None:
    attributes = context.config.attributes
    folder = attributes.get("patterns_dir")
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT sha256, extension FROM pattern_file ORDER BY id")).all()
    missing = 0
    insert = sa.text("INSERT INTO pattern_blob (sha256, data) VALUES (:sha256, :data)")
    for sha256, extension in rows:
        data = _read(Path(folder), sha256, extension) if folder else None
        if data is None:
            missing += 1
            continue
        bind.execute(insert, {"sha256": sha256, "data": data})
    attributes["content_copied"] = len(rows) - missing
    attributes["content_missing"] = missing


def _read(folder: Path, sha256: str, extension: str) -> bytes | None:
    from problem_registry.plain_files import read_plain

    if len(sha256) != 64 or not extension.isalnum():
        return None
    try:
        data = read_plain(
            folder / sha256[:2] / f"{sha256}.{extension}",
            max_bytes=_MAX_COPY_BYTES,
            follow_links=False,
        )
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None


def downgrade() -> None:
    # The files stay in the pattern folder (the cache): nothing is lost by dropping the copies,
    # except content that was only in the database; a downgrade is for going back on one machine.
    op.drop_index(op.f("ix_replay_lease_holder"), table_name="replay_lease")
    op.drop_table("replay_lease")
    op.drop_table("pattern_blob")
