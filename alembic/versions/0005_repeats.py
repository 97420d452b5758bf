"""repeats

Non-deterministic models (issue 15, item 5): ``model_version.repeats`` says how many times replay
asks a version for each pattern (1, the server default, for every existing version), and
``result_repeat`` holds the answers after the first, which stays in ``result``. Existing rows
are untouched: a new column with a default and a new table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repeats", sa.Integer(), server_default="1", nullable=False))
    op.create_table(
        "result_repeat",
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("predicted", sa.Text(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("scores", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["pattern_file.id"],
            name=op.f("fk_result_repeat_file_id_pattern_file"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("fk_result_repeat_model_version_id_model_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "model_version_id", "file_id", "repeat", name=op.f("pk_result_repeat")
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("result_repeat")
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.drop_column("repeats")
