"""pattern scoring index

A covering index over what scoring reads from a pattern, in problem order, so SQLite's error-rate
aggregation walks versions x patterns without a table lookup or a sort (issue 7). Only an index:
no table is rebuilt, no row changes, and a downgrade just drops it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["problem_id", "polarity", "file_id", "id", "expect_kind", "expect_min", "expect_max"]


def upgrade() -> None:
    op.create_index("ix_pattern_scoring", "pattern", COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_pattern_scoring", table_name="pattern")
