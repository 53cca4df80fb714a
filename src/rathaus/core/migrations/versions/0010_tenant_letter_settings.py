"""Letter settings per tenant (the bank details in the footer of its DIN 5008 letters)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-15 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One JSON column with an empty object for the rows that exist already.
    with op.batch_alter_table("tenant_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("letter_settings", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("tenant_settings", schema=None) as batch_op:
        batch_op.drop_column("letter_settings")
