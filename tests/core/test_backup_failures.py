"""What a backup refuses, and that a refused or failed restore leaves the target as it was:
damaged, truncated or foreign archives, a newer schema, a non-empty or unreachable target, a
failure in the middle of the restore, members that try to leave the data directory."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, text

from rathaus.core import audit
from rathaus.core.archive import BackupError, verify_archive
from rathaus.core.backup import snapshot, write_archive
from rathaus.core.db import Database
from rathaus.core.migrate import current_revision, head_revision, upgrade
from rathaus.core.models import Tenant
from rathaus.core.restore import copy_database, postgres_url_for_engine, restore_archive
from rathaus.core.storage import OriginalStore
from rathaus.inbox.service import IncomingItem, receive
from tests.core.backup_support import (
    PDF,
    dump,
    fresh_pg_database,
    rewrite_archive,
    table_names,
)
from tests.factories import build_tenant


@dataclass
class Small:
    db: Database
    data_dir: Path
    archive: Path


def _fill(db: Database, data_dir: Path) -> None:
    with db.session() as session:
        world = build_tenant(session, "alpha")
        receive(
            session,
            tenant=world.tenant,
            item=IncomingItem(
                channel="upload", original=PDF, filename="a.pdf", media_type="application/pdf"
            ),
            store=OriginalStore(data_dir / "originals"),
        )
        audit.record(session, audit.Event(kind="test", actor="x", tenant_id=world.tenant.id))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite_template: Path) -> Small:
    """A small SQLite installation (one tenant, one original, one audit event) and its archive."""
    root = tmp_path_factory.mktemp("klein")
    shutil.copy(migrated_sqlite_template, root / "rathaus.db")
    db = Database(f"sqlite:///{root / 'rathaus.db'}")
    _fill(db, root)
    archive = write_archive(db, root, root.parent / "klein.tar.gz").path
    return Small(db, root, archive)


@pytest.fixture
def empty_target(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'ziel' / 'rathaus.db'}")
    yield db
    db.dispose()


def _untouched(db: Database, data_dir: Path) -> None:
    """Nothing was created: no table, no schema revision, no file in the data directory."""
    assert table_names(db) == []
    assert not (data_dir / "originals").exists()
    assert not [p for p in data_dir.glob(".wiederherstellung-*")]


def _manifest(archive: Path) -> dict:  # type: ignore[type-arg]
    with tarfile.open(archive, "r:gz") as tar:
        return json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]


def _refused(archive: Path, target: Database, data_dir: Path, *words: str) -> str:
    with pytest.raises(BackupError) as excinfo:
        verify_archive(archive)
    message = excinfo.value.message
    for word in words:
        assert word in message
    with pytest.raises(BackupError):
        restore_archive(archive, target, data_dir)
    _untouched(target, data_dir)
    return message


def test_a_changed_table_member_is_refused(small, empty_target, tmp_path):
    def flip(name: str, data: bytes) -> bytes:
        return data.replace(b'"alpha"', b'"alphb"') if name.endswith("-tenants.jsonl") else data

    bad = tmp_path / "veraendert.tar.gz"
    rewrite_archive(small.archive, bad, flip)
    message = _refused(bad, empty_target, tmp_path / "daten", "Prüfsumme", "tenants")
    assert "nichts verändert" in message


def test_a_changed_original_is_refused(small, empty_target, tmp_path):
    def flip(name: str, data: bytes) -> bytes:
        return data[:-1] + b"X" if name.startswith("files/originals/") else data

    bad = tmp_path / "original.tar.gz"
    rewrite_archive(small.archive, bad, flip)
    _refused(bad, empty_target, tmp_path / "daten", "Originals")


def test_a_truncated_archive_is_refused(small, empty_target, tmp_path):
    data = small.archive.read_bytes()
    bad = tmp_path / "abgeschnitten.tar.gz"
    bad.write_bytes(data[: len(data) * 2 // 3])
    _refused(bad, empty_target, tmp_path / "daten", "beschädigt oder unvollständig")


def test_a_damaged_compressed_stream_is_refused(small, empty_target, tmp_path):
    data = bytearray(small.archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "kaputt.tar.gz"
    bad.write_bytes(bytes(data))
    _refused(bad, empty_target, tmp_path / "daten", "beschädigt")


def test_a_wrong_gzip_checksum_is_refused(small, empty_target, tmp_path):
    """The CRC-32 at the end of the gzip stream covers what no member hash covers (the tar
    padding, fields of the manifest that are not compared): it is checked, too."""
    data = bytearray(small.archive.read_bytes())
    data[-8] ^= 0xFF  # the first byte of the CRC-32 in the gzip trailer
    bad = tmp_path / "pruefsumme.tar.gz"
    bad.write_bytes(bytes(data))
    _refused(bad, empty_target, tmp_path / "daten", "beschädigt")


def test_an_archive_without_manifest_or_with_a_missing_member_is_refused(
    small, empty_target, tmp_path
):
    no_manifest = tmp_path / "ohne.tar.gz"
    rewrite_archive(small.archive, no_manifest, lambda n, d: None if n == "manifest.json" else d)
    _refused(no_manifest, empty_target, tmp_path / "daten", "manifest.json fehlt")
    no_users = tmp_path / "ohne-users.tar.gz"
    rewrite_archive(small.archive, no_users, lambda n, d: None if "-users." in n else d)
    _refused(no_users, empty_target, tmp_path / "daten", "users", "fehlt")


def test_other_files_are_not_rathaus_archives(empty_target, tmp_path):
    plain = tmp_path / "kein-archiv.tar.gz"
    plain.write_bytes(gzip.compress(b"hallo"))
    _refused(plain, empty_target, tmp_path / "daten", "beschädigt")
    with pytest.raises(BackupError, match="gibt es nicht"):
        verify_archive(tmp_path / "fehlt.tar.gz")


def test_members_that_leave_the_data_directory_are_refused(small, empty_target, tmp_path):
    escaping = tmp_path / "ausbruch.tar.gz"
    rewrite_archive(small.archive, escaping, lambda n, d: d, extra=[("files/../../boese", b"x")])
    _refused(escaping, empty_target, tmp_path / "daten", "unerwarteter Eintrag")
    link = tmp_path / "link.tar.gz"
    with tarfile.open(small.archive, "r:gz") as src, tarfile.open(link, "w:gz") as out:
        for info in src.getmembers():
            out.addfile(info, src.extractfile(info))
        symlink = tarfile.TarInfo("files/originals/1/ab/link")
        symlink.type, symlink.linkname = tarfile.SYMTYPE, "/etc/passwd"
        out.addfile(symlink)
    _refused(link, empty_target, tmp_path / "daten", "unerwarteter Eintrag")


def test_an_archive_from_a_newer_schema_is_refused(small, empty_target, tmp_path):
    def newer(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["alembic_revision"] = "0999"
        return json.dumps(manifest).encode()

    bad = tmp_path / "neuer.tar.gz"
    rewrite_archive(small.archive, bad, newer)
    assert verify_archive(bad).revision == "0999"  # intact, only too new
    with pytest.raises(BackupError, match="neueren Version") as excinfo:
        restore_archive(bad, empty_target, tmp_path / "daten")
    assert "0999" in excinfo.value.message
    _untouched(empty_target, tmp_path / "daten")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_failure_in_the_middle_rolls_everything_back(small, tmp_path, kind):
    """The archive is intact but one row cannot be inserted (duplicate key): the migrations and
    every row already inserted are undone, and no file reaches the data directory."""

    def duplicate(name: str, data: bytes) -> bytes:
        if name.endswith("-cases.jsonl"):
            return data + data.splitlines(keepends=True)[0]
        return data

    bad = tmp_path / "doppelt.tar.gz"
    rewrite_archive(small.archive, bad, duplicate)
    manifest = _manifest(bad)
    cases = next(t for t in manifest["tables"] if t["name"] == "cases")
    with tarfile.open(bad, "r:gz") as tar:
        data = tar.extractfile(cases["member"]).read()  # type: ignore[union-attr]
    cases.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data), rows=cases["rows"] + 1)
    consistent = tmp_path / "doppelt-aber-stimmig.tar.gz"
    rewrite_archive(
        bad,
        consistent,
        lambda n, d: json.dumps(manifest).encode() if n == "manifest.json" else d,
    )
    verify_archive(consistent)  # every checksum fits: only the database can notice
    data_dir = tmp_path / "daten"
    if kind == "sqlite":
        target = Database(f"sqlite:///{tmp_path / 'ziel.db'}")
        _run_failing_restore(consistent, target, data_dir)
        target.dispose()
    else:
        with fresh_pg_database() as url:
            target = Database(url)
            _run_failing_restore(consistent, target, data_dir)
            target.dispose()


def _run_failing_restore(archive: Path, target: Database, data_dir: Path) -> None:
    with pytest.raises(BackupError) as excinfo:
        restore_archive(archive, target, data_dir)
    assert "unverändert" in excinfo.value.message
    _untouched(target, data_dir)


def test_a_non_empty_target_is_refused_and_kept(small, db, tmp_path):
    with db.session() as session:
        build_tenant(session, "beta")
    before = dump(db)
    with pytest.raises(BackupError, match="nicht leer") as excinfo:
        restore_archive(small.archive, db, tmp_path / "daten")
    assert "--ersetzen" in excinfo.value.message and "cases: 3" in excinfo.value.message
    assert dump(db) == before
    assert not (tmp_path / "daten" / "originals").exists()


def test_replace_swaps_the_whole_content_despite_the_append_only_audit_log(small, db, tmp_path):
    with db.session() as session:
        world = build_tenant(session, "beta")
        audit.record(session, audit.Event(kind="alt", actor="x", tenant_id=world.tenant.id))
    restore_archive(small.archive, db, tmp_path / "daten", replace=True)
    assert dump(db) == dump(small.db)
    with db.session() as session:
        assert list(session.scalars(select(Tenant.slug))) == ["alpha"]
        assert audit.verify(session, 1).ok and audit.verify(session, 1).checked == 1
    assert (tmp_path / "daten" / "originals").exists()


def test_the_unreachable_postgres_gets_a_german_message_without_the_password(small):
    target = Database("postgresql+psycopg://rathaus:streng-geheim@127.0.0.1:1/rathaus")
    with pytest.raises(BackupError) as excinfo:
        copy_database(small.db, target)
    message = excinfo.value.message
    assert "nicht erreichbar" in message and "127.0.0.1:1" in message
    assert "streng-geheim" not in message
    with pytest.raises(BackupError, match="keine PostgreSQL-Adresse") as wrong:
        postgres_url_for_engine("mysql://rathaus:streng-geheim@db/rathaus")
    assert "streng-geheim" not in wrong.value.message
    assert postgres_url_for_engine("postgres://u:p@h/d") == "postgresql+psycopg://u:p@h/d"


def test_the_snapshot_is_consistent_while_others_write(db):
    """What is written after the snapshot began is not in it (SQLite WAL lets the writer go on;
    PostgreSQL's REPEATABLE READ keeps the view)."""
    with db.session() as session:
        build_tenant(session, "alpha")
    with snapshot(db) as snap:
        spec = next(s for s in snap.specs() if s.name == "tenants")
        table = next(t for t in snap.tables if t.name == "tenants")
        first = list(snap.stream(table, spec))
        with db.session() as session:
            build_tenant(session, "beta")
        again = list(snap.stream(table, spec))
    slug = [name for name, _ in spec.columns].index("slug")
    assert [row[slug] for row in first] == [row[slug] for row in again] == ["alpha"]
    with db.session() as session:
        assert sorted(session.scalars(select(Tenant.slug))) == ["alpha", "beta"]


def test_an_archive_of_an_older_schema_is_restored_and_migrated(tmp_path):
    """A backup taken before an upgrade: the target is migrated to the archive's revision,
    filled, then brought to the newest revision."""
    old = Database(f"sqlite:///{tmp_path / 'alt.db'}")
    upgrade(old, "0005")
    with old.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenants (id, slug, name, street, postal_code, city, phone, email,"
                " website, land, reference_prefix, is_active, created_at) VALUES (7, 'alt',"
                " 'Altstadt', '', '', '', '', '', '', 'BY', 'AS', 1, '2025-01-02 03:04:05.000000')"
            )
        )
    archive = write_archive(old, tmp_path / "alt-daten", tmp_path / "alt.tar.gz")
    assert archive.manifest["alembic_revision"] == "0005"
    assert archive.manifest["audit_chains"] is None  # no audit table at 0005
    target = Database(f"sqlite:///{tmp_path / 'neu' / 'rathaus.db'}")
    report = restore_archive(archive.path, target, tmp_path / "neu")
    assert report.migrated_from == "0005" and current_revision(target) == head_revision()
    # An empty database already at the newest revision is first taken back to 0005.
    migrated = Database(f"sqlite:///{tmp_path / 'migriert.db'}")
    upgrade(migrated)
    restore_archive(archive.path, migrated, tmp_path / "migriert")
    for db in (target, migrated):
        assert current_revision(db) == head_revision()
        with db.session() as session:
            tenant = session.get(Tenant, 7)
            assert tenant is not None and tenant.name == "Altstadt" and tenant.land == "BY"
        db.dispose()
    old.dispose()


def test_unknown_data_dir_entries_are_named_and_the_queue_stays_out(small, tmp_path):
    (small.data_dir / "notizen.txt").write_text("?")
    (small.data_dir / "jobs.db").write_bytes(b"queue")
    try:
        result = write_archive(small.db, small.data_dir, tmp_path / "mit-hinweis.tar.gz")
    finally:
        (small.data_dir / "notizen.txt").unlink()
        (small.data_dir / "jobs.db").unlink()
    assert any("notizen.txt" in w for w in result.warnings)
    assert result.manifest["data_dir_not_included"] == ["notizen.txt"]
    with tarfile.open(result.path, "r:gz") as tar:
        names = tar.getnames()
    files = [n for n in names if n.startswith("files/")]
    assert files and all(n.startswith("files/originals/") for n in files)
    with pytest.raises(BackupError, match="überschreibt keine Datei"):
        write_archive(small.db, small.data_dir, result.path)


def test_without_originals_the_archive_says_so(small, tmp_path):
    result = write_archive(
        small.db, small.data_dir, tmp_path / "ohne.tar.gz", include_originals=False
    )
    assert result.manifest["originals"]["count"] == 0
    target = Database(f"sqlite:///{tmp_path / 'ziel.db'}")
    report = restore_archive(result.path, target, tmp_path / "daten")
    assert any("ohne Originale" in w for w in report.warnings)
    assert dump(target) == dump(small.db)
    target.dispose()
