"""Backup and restore round trips on real SQLite and PostgreSQL: the demo municipality plus
conversations, originals, a trained routing model and audit chains come back row for row and
byte for byte, and the restored installation works (login, case, original, answers, new ids)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from rathaus.core.backup import write_archive
from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.migrate import current_revision, head_revision, upgrade
from rathaus.core.models import Case, CaseStatus, KnowledgeChunk, Tenant, WebSession
from rathaus.core.restore import copy_database, restore_archive
from rathaus.governance.audit_log import verify_all
from tests.core.backup_support import (
    PDF,
    SECRET,
    dump,
    files_below,
    fresh_pg_database,
    populate,
)

pytestmark = [pytest.mark.slow, pytest.mark.model]


@dataclass
class Installation:
    db: Database
    data_dir: Path
    facts: dict[str, Any]
    kind: str


@pytest.fixture(scope="module")
def sqlite_source(
    tmp_path_factory: pytest.TempPathFactory, migrated_sqlite_template: Path
) -> Iterator[Installation]:
    root = tmp_path_factory.mktemp("quelle-sqlite")
    shutil.copy(migrated_sqlite_template, root / "rathaus.db")
    db = Database(f"sqlite:///{root / 'rathaus.db'}")
    facts = populate(db, root)
    yield Installation(db, root, facts, "sqlite")
    db.dispose()


@pytest.fixture(scope="module")
def pg_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    root = tmp_path_factory.mktemp("quelle-pg")
    with fresh_pg_database() as url:
        db = Database(url)
        upgrade(db)
        facts = populate(db, root)
        yield Installation(db, root, facts, "postgresql")
        db.dispose()


@pytest.fixture
def pg_target() -> Iterator[Database]:
    with fresh_pg_database() as url:
        db = Database(url)
        yield db
        db.dispose()


def _sqlite_target(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'ziel' / 'rathaus.db'}")


def _chains(db: Database) -> list[tuple[str, int, bool]]:
    with db.session() as session:
        return [(r.label, r.result.checked, r.ok) for r in verify_all(session)]


def check_restored(source: Installation, target: Database, target_dir: Path | None) -> None:
    """The target holds exactly what the source holds, and works."""
    assert current_revision(target) == head_revision()
    expected, restored = dump(source.db), dump(target)
    assert restored.keys() == expected.keys()
    for name in expected:
        assert restored[name] == expected[name], f"Tabelle {name} unterscheidet sich"
    assert sum(len(rows) for rows in restored.values()) > 3000
    with target.session() as session:
        assert session.scalar(select(func.count()).select_from(WebSession)) == 0
    chains = _chains(target)
    assert chains == _chains(source.db)
    assert len(chains) == 3 and all(ok for _, _, ok in chains)
    assert sum(n for _, n, _ in chains) >= 5
    if target_dir is not None:
        for part in ("originals", "models"):
            original = files_below(source.data_dir / part)
            assert original and files_below(target_dir / part) == original
    _new_ids_follow(source, target)
    if target.is_sqlite:
        with target.engine.connect() as conn:
            fts = conn.execute(text("SELECT count(*) FROM knowledge_fts")).scalar()
        with target.session() as session:
            assert fts == session.scalar(select(func.count()).select_from(KnowledgeChunk)) > 0


def _new_ids_follow(source: Installation, target: Database) -> None:
    """A new case gets a fresh id: after the largest restored one, and on PostgreSQL also
    after the source's high-water mark (the deleted case's id is never handed out again)."""
    with target.session() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "musterstadt"))
        largest = session.scalar(select(func.max(Case.id)))
        case = Case(
            tenant_id=tenant.id,
            reference="MS-2026-NEU-1",
            subject="nach der Wiederherstellung",
            status=CaseStatus.NEU,
            channel="upload",
        )
        session.add(case)
        session.flush()
        new_id = case.id
    deleted = source.facts["deleted_case_id"]
    assert new_id > largest and largest < deleted
    if not target.is_sqlite and source.kind == "postgresql":
        with source.db.engine.connect() as conn:
            last = conn.execute(
                text("SELECT pg_sequence_last_value(pg_get_serial_sequence('cases', 'id'))")
            ).scalar()
        assert new_id == last + 1 > deleted
    else:
        assert new_id >= deleted


def check_app(target: Database, target_dir: Path, facts: dict[str, Any]) -> None:
    """Log in to the restored installation, open the letter's case and download its original;
    the citizen assistant answers from the restored knowledge base."""
    from rathaus.web.app import create_app

    settings = load_settings(
        mode="demo",
        data_dir=target_dir,
        database_url=target.url,
        default_tenant="musterstadt",
        secret_key=SECRET,
        queue={"backend": "memory"},
    )
    app = create_app(settings, database=target)
    with TestClient(app, follow_redirects=False) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        login = client.post(
            "/login",
            data={
                "username": "admin",
                "password": "demo-admin-2026",
                "kommune": "musterstadt",
                "csrf_token": token,
            },
        )
        assert login.status_code == 303, login.text[:500]
        case_page = client.get(f"/vorgaenge/{facts['letter_case_id']}")
        assert case_page.status_code == 200
        assert "Glatteis" in case_page.text
        original = client.get(
            f"/vorgaenge/{facts['letter_case_id']}/dokumente/{facts['letter_document_id']}"
        )
        assert original.status_code == 200 and original.content == PDF
    from rathaus.inbox.training import live_model

    with target.session() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "musterstadt"))
        live = live_model(session, tenant, data_dir=target_dir, secret_key=SECRET)
        assert live is not None and live.models  # files restored and their HMAC verified
    _answers(target)


def _answers(target: Database) -> None:
    from rathaus.assistant import service
    from rathaus.assistant.answer import AssistantKit
    from rathaus.core.config import AssistantSettings
    from tests.assistant.test_service import AUSWEIS_URL, EMBEDDER

    kit = AssistantKit(embedder=EMBEDDER, language_model=None, settings=AssistantSettings())
    with target.session() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "musterstadt"))
        _, turn, answer = service.ask(
            session,
            tenant=tenant,
            conversation_public_id=None,
            question="Wie viel kostet der Personalausweis?",
            channel="web",
            kit=kit,
        )
        assert not answer.abstained
        assert AUSWEIS_URL in str(turn.answer)


def test_sqlite_archive_restores_into_a_new_sqlite_installation(sqlite_source, tmp_path):
    result = write_archive(sqlite_source.db, sqlite_source.data_dir, tmp_path / "sicherung.tar.gz")
    assert result.path.stat().st_mode & 0o777 == 0o600
    assert result.manifest["source"]["kind"] == "sqlite"
    assert result.warnings == []
    target_dir = tmp_path / "ziel"
    target = _sqlite_target(tmp_path)
    report = restore_archive(result.path, target, target_dir)
    assert report.originals == 2 and report.files == 3
    check_restored(sqlite_source, target, target_dir)
    check_app(target, target_dir, sqlite_source.facts)
    target.dispose()


@pytest.mark.postgres
def test_postgres_archive_restores_into_a_new_postgres_database(pg_source, pg_target, tmp_path):
    result = write_archive(pg_source.db, pg_source.data_dir, tmp_path / "sicherung.tar.gz")
    assert result.manifest["source"]["kind"] == "postgresql"
    target_dir = tmp_path / "ziel"
    restore_archive(result.path, pg_target, target_dir)
    check_restored(pg_source, pg_target, target_dir)
    check_app(pg_target, target_dir, pg_source.facts)


@pytest.mark.postgres
def test_migrate_to_postgres_copies_the_sqlite_installation(sqlite_source, pg_target):
    report = copy_database(sqlite_source.db, pg_target)
    assert report.tables >= 39 and report.rows > 3000
    check_restored(sqlite_source, pg_target, None)
    # Files stay in the data directory that both databases serve.
    check_app(pg_target, sqlite_source.data_dir, sqlite_source.facts)


@pytest.mark.postgres
def test_postgres_archive_restores_into_sqlite(pg_source, tmp_path):
    result = write_archive(pg_source.db, pg_source.data_dir, tmp_path)
    target = _sqlite_target(tmp_path)
    restore_archive(result.path, target, tmp_path / "ziel")
    check_restored(pg_source, target, tmp_path / "ziel")
    target.dispose()
