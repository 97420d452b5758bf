"""result scores

A nullable ``scores`` column on ``result``: a model's per-label probabilities as compact JSON
text, keys sorted (issue 15 item 2, issue 18 item 4). Every existing row is kept, with scores
NULL. Plain ``ADD COLUMN`` on both backends, not a batch rebuild: SQLite adds a nullable column
in place, so the result table (1.5 M rows at full scale) is neither copied nor exposed to the
foreign-key cascade pitfall of a rebuild; PostgreSQL adds it without rewriting the table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("result", sa.Column("scores", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place (Python's sqlite3 ships a newer one).
    op.drop_column("result", "scores")
