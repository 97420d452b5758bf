"""first hour

Issue 19 (items 3 and 10): a problem names the model(s) it belongs to (``problem_model``), a
model version may declare the kind of input it takes (``model_version.input_kind``, nullable),
and a lead's sign-offs are recorded with the numbers at the time (``signoff``). Every existing
row is kept: problems name no model (they belong to every model, as before) and versions declare
no input kind. ``input_kind`` is a plain ``ADD COLUMN`` on both backends (no batch rebuild of
``model_version``, so no foreign-key cascade can fire).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "model_version",
        sa.Column("input_kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    )
    op.create_table(
        "problem_model",
        sa.Column("problem_id", sa.Integer(), nullable=False),
        sa.Column("model_name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["problem_id"],
            ["problem.id"],
            name=op.f("fk_problem_model_problem_id_problem"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("problem_id", "model_name", name=op.f("pk_problem_model")),
    )
    op.create_table(
        "signoff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("signed_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("wrong", sa.Integer(), nullable=False),
        sa.Column("error_rate", sa.Float(), nullable=True),
        sa.Column("interval_low", sa.Float(), nullable=True),
        sa.Column("interval_high", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("fk_signoff_model_version_id_model_version"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["problem_id"],
            ["problem.id"],
            name=op.f("fk_signoff_problem_id_problem"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signoff")),
    )
    with op.batch_alter_table("signoff", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signoff_problem_id"), ["problem_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signoff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signoff_problem_id"))
    op.drop_table("signoff")
    op.drop_table("problem_model")
    # SQLite >= 3.35 drops a column in place (Python's sqlite3 ships a newer one).
    op.drop_column("model_version", "input_kind")
