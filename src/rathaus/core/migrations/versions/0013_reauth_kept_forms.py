"""Forms kept during a confirmation at the identity provider (accounts without a password)

Revision ID: 0013
Revises: 0012
Create Date: 2027-01-12 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A new table only; nothing existing is altered.
    op.create_table(
        "reauth_kept_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("web_session_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("files_left_out", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["web_session_id"],
            ["web_sessions.id"],
            name=op.f("fk_reauth_kept_forms_web_session_id_web_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reauth_kept_forms")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_reauth_kept_forms_token_hash")),
    )
    with op.batch_alter_table("reauth_kept_forms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reauth_kept_forms_web_session_id"), ["web_session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reauth_kept_forms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reauth_kept_forms_web_session_id"))
    op.drop_table("reauth_kept_forms")
