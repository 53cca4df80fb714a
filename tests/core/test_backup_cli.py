"""``rathaus backup``, ``backup-pruefen``, ``restore`` and ``migrate-to-postgres`` as real
processes: exit codes, German messages, the confirmation of ``--ersetzen``, masked passwords."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from rathaus.core import audit
from rathaus.core.db import Database
from rathaus.core.storage import OriginalStore
from rathaus.inbox.service import IncomingItem, receive
from tests import test_cli
from tests.core.backup_support import PDF, dump, fresh_pg_database
from tests.factories import build_tenant

pytestmark = pytest.mark.slow


# A backup or restore reads and writes a whole installation: more time than other commands.
run = partial(test_cli.run, timeout=300)


def _installation(tmp_path: Path) -> Database:
    """``rathaus db upgrade`` plus a tenant, an original and an audit event."""
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    db = Database(f"sqlite:///{tmp_path / 'data' / 'rathaus.db'}")
    with db.session() as session:
        world = build_tenant(session, "musterstadt")
        receive(
            session,
            tenant=world.tenant,
            item=IncomingItem(
                channel="upload", original=PDF, filename="a.pdf", media_type="application/pdf"
            ),
            store=OriginalStore(tmp_path / "data" / "originals"),
        )
        audit.record(session, audit.Event(kind="t", actor="x", tenant_id=world.tenant.id))
    return db


def test_backup_check_and_restore_into_a_second_installation(tmp_path):
    source = _installation(tmp_path)
    made = run(["backup", str(tmp_path / "s.tar.gz")], tmp_path)
    assert made.returncode == 0, made.stderr
    assert "Sicherung geschrieben" in made.stdout and "tenants: 1 Zeilen" in made.stdout
    assert "RATHAUS_SECRET_KEY" in made.stdout  # reminder: keys are not in the archive
    again = run(["backup", str(tmp_path / "s.tar.gz")], tmp_path)
    assert again.returncode == 1 and "überschreibt keine Datei" in again.stderr

    checked = run(["backup-pruefen", str(tmp_path / "s.tar.gz")], tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "alle Prüfsummen und Zeilenzahlen stimmen" in checked.stdout
    assert "Prüfprotokoll: 2 Kette(n), bei der Sicherung intakt" in checked.stdout

    restored = run(["restore", str(tmp_path / "s.tar.gz")], tmp_path, data="zweite")
    assert restored.returncode == 0, restored.stderr
    assert "Wiederhergestellt: " in restored.stdout
    assert "Prüfprotokoll intakt (2 Ketten, 1 Eintrag)" in restored.stdout
    target = Database(f"sqlite:///{tmp_path / 'zweite' / 'rathaus.db'}")
    assert dump(target) == dump(source)
    verified = run(["audit", "verify"], tmp_path, data="zweite")
    assert verified.returncode == 0 and "Kette intakt" in verified.stdout
    source.dispose()
    target.dispose()


def test_restore_into_a_filled_installation_needs_ersetzen_and_a_yes(tmp_path):
    source = _installation(tmp_path)
    assert run(["backup", str(tmp_path / "s.tar.gz")], tmp_path).returncode == 0
    other = tmp_path / "andere" / "rathaus.db"
    assert run(["db", "upgrade"], tmp_path, data="andere").returncode == 0
    db = Database(f"sqlite:///{other}")
    with db.session() as session:
        build_tenant(session, "beta")
    before = dump(db)

    refused = run(["restore", str(tmp_path / "s.tar.gz")], tmp_path, data="andere")
    assert refused.returncode == 1
    assert "ist nicht leer" in refused.stderr and "--ersetzen" in refused.stderr
    declined = run(
        ["restore", "--ersetzen", str(tmp_path / "s.tar.gz")], tmp_path, data="andere", stdin=""
    )
    assert declined.returncode == 1 and "Abgebrochen, nichts verändert" in declined.stderr
    said_no = run(
        ["restore", "--ersetzen", str(tmp_path / "s.tar.gz")], tmp_path, data="andere", stdin="n\n"
    )
    assert said_no.returncode == 1 and "[j/N]" in said_no.stdout
    assert dump(db) == before

    said_yes = run(
        ["restore", "--ersetzen", str(tmp_path / "s.tar.gz")], tmp_path, data="andere", stdin="j\n"
    )
    assert said_yes.returncode == 0, said_yes.stderr
    assert dump(db) == dump(source)
    db.dispose()
    source.dispose()


def test_restore_warns_when_the_secret_key_differs(tmp_path):
    key = "ein-ganz-anderer-schluessel-mit-mehr-als-32-zeichen"
    _installation(tmp_path).dispose()
    assert run(["backup", str(tmp_path / "s.tar.gz")], tmp_path).returncode == 0
    restored = run(
        ["restore", str(tmp_path / "s.tar.gz")], tmp_path, data="dritte", RATHAUS_SECRET_KEY=key
    )
    assert restored.returncode == 0, restored.stderr
    assert "RATHAUS_SECRET_KEY ist ein anderer als bei der Sicherung" in restored.stderr


def test_a_damaged_archive_is_reported_in_german(tmp_path):
    _installation(tmp_path).dispose()
    assert run(["backup", str(tmp_path / "s.tar.gz")], tmp_path).returncode == 0
    data = (tmp_path / "s.tar.gz").read_bytes()
    (tmp_path / "halb.tar.gz").write_bytes(data[: len(data) // 2])
    for command in (["backup-pruefen"], ["restore"]):
        result = run([*command, str(tmp_path / "halb.tar.gz")], tmp_path, data="vierte")
        assert result.returncode == 1
        assert "beschädigt oder unvollständig" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "vierte" / "rathaus.db").exists()


@pytest.mark.postgres
def test_migrate_to_postgres_prints_the_settings_without_the_password(tmp_path):
    source = _installation(tmp_path)
    with fresh_pg_database() as url:
        # Trust authentication ignores the password; it must still never be printed.
        with_password = url.replace("postgres@", "postgres:streng-geheim@").replace(
            "postgresql+psycopg://", "postgresql://"
        )
        moved = run(["migrate-to-postgres", with_password], tmp_path)
        assert moved.returncode == 0, moved.stderr
        output = moved.stdout + moved.stderr
        assert "streng-geheim" not in output
        assert "RATHAUS_DATABASE_URL=postgresql://postgres:********@" in output
        assert "RATHAUS_QUEUE__BACKEND=redis" in output
        assert "Übertragen und geprüft" in output and "tenants: 1 Zeilen" in output
        target = Database(url)
        assert dump(target) == dump(source)
        verified = run(["audit", "verify"], tmp_path, RATHAUS_DATABASE_URL=with_password)
        assert verified.returncode == 0 and "Kette intakt" in verified.stdout
        twice = run(["migrate-to-postgres", with_password], tmp_path)
        assert twice.returncode == 1 and "ist nicht leer" in twice.stderr
        assert "streng-geheim" not in twice.stdout + twice.stderr
        target.dispose()
    source.dispose()


def test_migrate_to_postgres_refuses_what_it_cannot_reach(tmp_path):
    _installation(tmp_path).dispose()
    down = run(
        ["migrate-to-postgres", "postgresql://rathaus:streng-geheim@127.0.0.1:1/r"], tmp_path
    )
    assert down.returncode == 1 and "nicht erreichbar" in down.stderr
    assert "streng-geheim" not in down.stdout + down.stderr
    wrong = run(["migrate-to-postgres", "mysql://rathaus:streng-geheim@db/r"], tmp_path)
    assert wrong.returncode == 1 and "keine PostgreSQL-Adresse" in wrong.stderr
    assert "streng-geheim" not in wrong.stderr
