"""Index for the assistant's change check on the knowledge base

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-22 09:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Count and newest change of a tenant's published entries come from the index alone.
    with op.batch_alter_table("knowledge_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_knowledge_entries_changes",
            ["tenant_id", "is_published", "updated_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("knowledge_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_knowledge_entries_changes")
