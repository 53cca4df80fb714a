"""Originals are on disk for good before the transaction that records their cases commits; the
files of one transaction are synced together, and a failed sync records nothing."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from rathaus.core import storage
from rathaus.core.db import Database
from rathaus.core.models import Case, Tenant
from rathaus.core.storage import OriginalStore, StorageError
from rathaus.inbox.service import receive
from tests.factories import build_tenant
from tests.inbox.test_pipeline import text_item


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What was fsynced, in order (the real fsync still runs); ``commit`` marks each commit."""
    calls: list[str] = []
    real = storage._fsync

    def recording(path: Path) -> None:
        real(path)
        calls.append(str(path))

    monkeypatch.setattr(storage, "_fsync", recording)
    return calls


def _files(calls: list[str]) -> list[str]:
    return [c for c in calls if Path(c).is_file()]


def test_originals_are_synced_together_right_before_the_commit(
    db: Database, tmp_path: Path, synced: list[str]
) -> None:
    store = OriginalStore(tmp_path / "originals")
    texts = ["Laterne defekt", "Schlagloch in der Hauptstraße", "Sperrmüll abholen"]
    with db.session() as session:
        tenant = build_tenant(session, "alpha").tenant
        # the database's own commit (releasing a savepoint is none)
        event.listen(db.engine, "commit", mark := lambda conn: synced.append("commit"))
        stored = [
            receive(session, tenant=tenant, item=text_item(t), store=store).document for t in texts
        ]
        assert synced == []  # written, not yet synced: that waits for the commit
        with session.begin_nested():  # releasing a savepoint is not the commit
            session.flush()
        assert synced == []
    event.remove(db.engine, "commit", mark)
    paths = {str(store.root / d.storage_path) for d in stored}
    assert set(_files(synced)) == paths
    assert synced[-1] == "commit" and synced.count("commit") == 1
    # the folders that name the files are synced too
    assert {str(Path(p).parent) for p in paths} <= set(synced)
    for document, text in zip(stored, texts, strict=True):
        assert store.get(document.tenant_id, document.sha256).decode() == ("\n" + text)


def test_a_failed_sync_fails_the_commit_and_records_nothing(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = OriginalStore(tmp_path / "originals")
    with db.session() as session:
        tenant_id = build_tenant(session, "alpha").tenant.id
        before = session.scalar(select(func.count(Case.id)))

    def full(path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage, "_fsync", full)
    with (
        pytest.raises(StorageError, match="nicht gespeichert.*Speicherplatz"),
        db.session() as session,
    ):
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        receive(session, tenant=tenant, item=text_item("Baum umgestürzt"), store=store)
    with db.session() as session:
        assert session.scalar(select(func.count(Case.id))) == before


def test_a_rolled_back_savepoint_keeps_the_other_originals_to_sync(
    db: Database, tmp_path: Path, synced: list[str]
) -> None:
    store = OriginalStore(tmp_path / "originals")
    with db.session() as session:
        tenant = build_tenant(session, "alpha").tenant
        kept = receive(session, tenant=tenant, item=text_item("Ampel aus"), store=store)
        with pytest.raises(RuntimeError), session.begin_nested():
            receive(session, tenant=tenant, item=text_item("Hund bellt"), store=store)
            raise RuntimeError("Schritt fehlgeschlagen")
    assert str(store.root / kept.document.storage_path) in _files(synced)


def test_a_rolled_back_transaction_leaves_nothing_to_sync(
    db: Database, tmp_path: Path, synced: list[str]
) -> None:
    store = OriginalStore(tmp_path / "originals")
    with db.session() as session:
        tenant_id = build_tenant(session, "alpha").tenant.id
    session = db.sessionmaker()
    try:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        gone = receive(session, tenant=tenant, item=text_item("Erster Versuch"), store=store)
        gone_path = store.root / gone.document.storage_path
        session.rollback()
        gone_path.chmod(0o640)
        gone_path.unlink()  # e.g. cleaned up meanwhile: must not fail the next commit
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        kept = receive(session, tenant=tenant, item=text_item("Zweiter Versuch"), store=store)
        session.commit()
    finally:
        session.close()
    assert _files(synced) == [str(store.root / kept.document.storage_path)]
