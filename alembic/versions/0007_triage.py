"""triage

Production feedback (issue 20): ``triage_batch`` (one ingested batch, identified by its cases),
``triage_case`` (a production prediction awaiting a tester, its input content-addressed in the
pattern store) and ``triage_answer`` (registered versions' answers on case inputs, cached for the
queue's champion-vs-candidate disagreement). New tables only: every existing row is untouched,
and downgrading drops just these three.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "triage_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("ingested_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triage_batch")),
        sa.UniqueConstraint("digest", name=op.f("uq_triage_batch_digest")),
    )
    op.create_table(
        "triage_answer",
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("predicted", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("scores", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("fk_triage_answer_model_version_id_model_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_version_id", "sha256", name=op.f("pk_triage_answer")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "triage_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("extension", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("original_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=201), nullable=False),
        sa.Column("predicted", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("scores", sa.Text(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("correction", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("pattern_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('image', 'text', 'json')", name=op.f("ck_triage_case_kind_valid")
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'accepted', 'discarded')",
            name=op.f("ck_triage_case_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["triage_batch.id"],
            name=op.f("fk_triage_case_batch_id_triage_batch"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pattern_id"],
            ["pattern.id"],
            name=op.f("fk_triage_case_pattern_id_pattern"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triage_case")),
        sa.UniqueConstraint("key", name=op.f("uq_triage_case_key")),
    )
    with op.batch_alter_table("triage_case", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_triage_case_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_triage_case_sha256"), ["sha256"], unique=False)
        batch_op.create_index("ix_triage_case_status_model", ["status", "model"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("triage_case", schema=None) as batch_op:
        batch_op.drop_index("ix_triage_case_status_model")
        batch_op.drop_index(batch_op.f("ix_triage_case_sha256"))
        batch_op.drop_index(batch_op.f("ix_triage_case_batch_id"))

    op.drop_table("triage_case")
    op.drop_table("triage_answer")
    op.drop_table("triage_batch")
