"""Migrations run up and down on SQLite and PostgreSQL and match the ORM models."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from rathaus.core.db import Database
from rathaus.core.migrate import (
    current_revision,
    downgrade,
    head_revision,
    include_object,
    upgrade,
)
from rathaus.core.models import Base
from tests.conftest import PG_ADMIN_URL, _pg_admin


def _roundtrip(db: Database) -> None:
    upgrade(db)
    assert current_revision(db) == head_revision()
    tables = set(inspect(db.engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    downgrade(db, "base")
    remaining = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    assert remaining == set()
    upgrade(db)
    assert current_revision(db) == head_revision()


def test_migrations_up_down_sqlite(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    _roundtrip(db)
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


@pytest.mark.postgres
def test_migrations_up_down_postgres():
    name = f"rathaus_mig_{uuid.uuid4().hex[:8]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        _roundtrip(db)
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()
