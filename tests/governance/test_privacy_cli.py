"""``rathaus datenschutz`` run as a real process on a real SQLite database."""

from __future__ import annotations

import zipfile

from sqlalchemy import func, select

from rathaus.core import audit
from rathaus.core.db import Database
from rathaus.core.models import Case, CaseAccess, CaseStatus, PrivacyRequest
from rathaus.core.storage import OriginalStore
from tests.factories import build_tenant
from tests.governance.test_retention import make_case
from tests.test_cli import run


def _setup(tmp_path):
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    db = Database(f"sqlite:///{tmp_path / 'data' / 'rathaus.db'}")
    store = OriginalStore(tmp_path / "data" / "originals")
    with db.session() as session:
        world = build_tenant(session, "musterstadt")
        make_case(session, world, store, reference="MUS-P-1")
        make_case(
            session, world, store, reference="MUS-P-2", status=CaseStatus.IN_BEARBEITUNG,
            closed_days_ago=None, document=b"offen",
        )  # fmt: skip
        access = world.cases["BA"]
        session.add(CaseAccess(tenant_id=world.tenant.id, case_id=access.id,
                               case_reference=access.reference, username="sb"))  # fmt: skip
        tenant_id = world.tenant.id
    return db, tenant_id


def test_retention_commands(tmp_path):
    db, tenant_id = _setup(tmp_path)
    bad = run(["datenschutz", "aufbewahrung-setzen", "--tage", "0"], tmp_path)
    assert bad.returncode == 1 and "zwischen 1 und 36500" in bad.stderr
    assert "Traceback" not in bad.stderr
    ok = run(["datenschutz", "aufbewahrung-setzen", "--tage", "30", "--art", "antrag"], tmp_path)
    assert ok.returncode == 0 and "Vorgänge (Antrag): 30 Tage, löschen" in ok.stdout
    listed = run(["datenschutz", "aufbewahrung"], tmp_path)
    assert "Vorgänge (Antrag): 30 Tage" in listed.stdout and "30 Tage (Einstellung" in listed.stdout
    dry = run(["datenschutz", "aufbewahrung-anwenden", "--probelauf"], tmp_path)
    assert dry.returncode == 0 and "MUS-P-1" in dry.stdout and "würde löschen" in dry.stdout
    assert "MUS-P-2" not in dry.stdout  # open
    with db.session() as session:
        assert session.scalar(select(Case).where(Case.reference == "MUS-P-1")) is not None
    done = run(["datenschutz", "aufbewahrung-anwenden"], tmp_path)
    assert done.returncode == 0 and "Erledigt: 1 Vorgang/Vorgänge gelöscht" in done.stdout
    with db.session() as session:
        assert session.scalar(select(Case).where(Case.reference == "MUS-P-1")) is None
        assert session.scalar(select(Case).where(Case.reference == "MUS-P-2")) is not None
    gone = run(["datenschutz", "aufbewahrung-entfernen", "--art", "Beschwerde"], tmp_path)
    assert gone.returncode == 1 and "gibt es" in gone.stderr
    assert (
        run(["datenschutz", "aufbewahrung-entfernen", "--art", "Antrag"], tmp_path).returncode == 0
    )


def test_access_erasure_and_log_commands(tmp_path):
    db, tenant_id = _setup(tmp_path)
    out = tmp_path / "auskunft.zip"
    given = ["--name", "Erika Beispiel", "--email", "ERIKA.beispiel@example.org"]
    result = run(["datenschutz", "auskunft", "--ausgabe", str(out), *given], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 Vorgang/Vorgänge betreffen die Person" in result.stdout
    assert {"anschreiben.txt", "auskunft.json"} <= set(zipfile.ZipFile(out).namelist())
    again = run(["datenschutz", "auskunft", "--ausgabe", str(out), *given], tmp_path)
    assert again.returncode == 1 and "gibt es schon" in again.stderr

    unknown = run(
        ["datenschutz", "loeschen", "--email", "nora@example.net", "--bestaetigen"], tmp_path
    )
    assert unknown.returncode == 1
    assert "keine Daten gefunden; es wurde nichts gelöscht" in unknown.stderr
    vague = run(["datenschutz", "loeschen", "--name", "Erika"], tmp_path)
    assert vague.returncode == 1 and "Vor- und Nachnamen" in vague.stderr

    dry = run(["datenschutz", "loeschen", *given], tmp_path)
    assert dry.returncode == 0 and "Probelauf – nichts gelöscht" in dry.stdout
    assert "übersprungen: Vorgang ist noch offen" in dry.stdout
    with db.session() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Case).where(Case.reference.like("MUS-P-%"))
            )
            == 2
        )
    done = run(["datenschutz", "loeschen", *given, "--bestaetigen"], tmp_path)
    assert done.returncode == 0 and "ausgeführt: 1 Vorgang/Vorgänge gelöscht" in done.stdout
    with db.session() as session:
        refs = set(session.scalars(select(Case.reference)))
        assert "MUS-P-1" not in refs and "MUS-P-2" in refs
        kinds = sorted(r.kind for r in session.scalars(select(PrivacyRequest)))
        assert kinds == ["auskunft", "loeschung"]
        assert audit.verify_chain(session, tenant_id) is None

    log = run(["datenschutz", "zugriffe", "--benutzer", "cli"], tmp_path)
    assert log.returncode == 0 and "MUS-P-1" in log.stdout and "DSGVO-Auskunft" in log.stdout
    csv_file = tmp_path / "zugriffe.csv"
    exported = run(["datenschutz", "zugriffe", "--csv", str(csv_file)], tmp_path)
    assert exported.returncode == 0 and "3 Einträge" in exported.stdout
    assert csv_file.read_text(encoding="utf-8-sig").startswith("Zeitpunkt (UTC);Aktenzeichen")
    bad_date = run(["datenschutz", "zugriffe", "--von", "gestern"], tmp_path)
    assert bad_date.returncode == 1 and "kein gültiges Datum" in bad_date.stderr
