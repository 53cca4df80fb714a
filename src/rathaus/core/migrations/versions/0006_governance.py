"""Governance: pseudonym maps, retention rules, access log, privacy requests, eval runs,
AI suggestions about other objects than cases, and an append-only audit log

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

APPEND_ONLY = "Das Prüfprotokoll (audit_events) ist unveränderlich: nur Anhängen ist erlaubt."


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"],
        ["tenants.id"],
        name=op.f(f"fk_{table}_tenant_id_tenants"),
        ondelete="CASCADE",
    )


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


INDEXES = {
    "pseudonym_maps": ("case_id", "tenant_id"),
    "retention_rules": ("tenant_id",),
    "case_access_log": ("case_id", "created_at", "tenant_id"),
    "privacy_requests": ("tenant_id",),
    "eval_runs": ("created_at", "name", "tenant_id"),
}


def _append_only_triggers() -> None:
    """Refuse UPDATE and DELETE on ``audit_events`` in the database itself."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION rathaus_audit_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{APPEND_ONLY}';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION rathaus_audit_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{action.lower()} BEFORE {action} "
                f"ON audit_events BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )


def _drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS rathaus_audit_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")


def upgrade() -> None:
    op.create_table(
        "pseudonym_maps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        _fk("pseudonym_maps", "case_id", "cases", "CASCADE"),
        _tenant_fk("pseudonym_maps"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pseudonym_maps")),
        sa.UniqueConstraint("tenant_id", "scope", name=op.f("uq_pseudonym_maps_tenant_id")),
    )
    op.create_table(
        "retention_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=30), nullable=False),
        sa.Column("request_type", sa.String(length=30), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        _tenant_fk("retention_rules"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_rules")),
        sa.UniqueConstraint(
            "tenant_id", "target", "request_type", name=op.f("uq_retention_rules_tenant_id")
        ),
    )
    op.create_table(
        "case_access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("case_reference", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        _fk("case_access_log", "case_id", "cases", "SET NULL"),
        _fk("case_access_log", "user_id", "users", "SET NULL"),
        _tenant_fk("case_access_log"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_access_log")),
    )
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subject_sha256", sa.String(length=64), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        _tenant_fk("privacy_requests"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_requests")),
    )
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("data", sa.String(length=500), nullable=False),
        sa.Column("command", sa.String(length=500), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk("eval_runs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_runs")),
    )
    for table, columns in INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("anonymized_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("ai_suggestions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_type", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("subject_id", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_ai_suggestions_subject_type"), ["subject_type"], unique=False
        )
    _append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    with op.batch_alter_table("ai_suggestions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_suggestions_subject_type"))
        batch_op.drop_column("subject_id")
        batch_op.drop_column("subject_type")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("anonymized_at")
    for table, columns in reversed(INDEXES.items()):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))
        op.drop_table(table)
