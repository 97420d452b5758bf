"""model sources

Models from where they live (issue 18): ``loader_kind`` may now also be ``onnx``, ``endpoint`` or
``mlflow``, and a nullable ``loader_options`` column holds each adapter's settings as JSON text
(an ONNX class list, an endpoint's batch size and timeouts; never credentials). Every existing
row is kept, with options NULL. The CHECK constraint is replaced in a batch on SQLite (a rebuild
of the small ``model_version`` table; ``migrations.upgrade`` turns foreign keys off around it,
so the results' ``ON DELETE CASCADE`` cannot fire) and in place on PostgreSQL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "ck_model_version_loader_kind_valid"
OLD_KINDS = "loader_kind IN ('python', 'predictions')"
NEW_KINDS = "loader_kind IN ('python', 'predictions', 'onnx', 'endpoint', 'mlflow')"


def upgrade() -> None:
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("loader_options", sa.Text(), nullable=True))
        batch_op.drop_constraint(op.f(CHECK), type_="check")
        batch_op.create_check_constraint(op.f(CHECK), NEW_KINDS)


def downgrade() -> None:
    # Versions of the new kinds cannot be described by the old schema: refuse rather than drop.
    bind = op.get_bind()
    count = bind.execute(
        sa.text(
            "SELECT COUNT(*) FROM model_version WHERE loader_kind NOT IN ('python', 'predictions')"
        )
    ).scalar_one()
    if count:
        raise RuntimeError(
            f"{count} model version(s) load from ONNX, an endpoint or MLflow, which revision 0003 "
            "cannot hold; remove them before downgrading"
        )
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(CHECK), type_="check")
        batch_op.create_check_constraint(op.f(CHECK), OLD_KINDS)
        batch_op.drop_column("loader_options")
