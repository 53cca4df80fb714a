"""CSV import of historical cases: mapping, delimiters, encodings, idempotency, the Konstanz file."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rathaus.core.db import Database
from rathaus.core.models import (
    Case,
    CaseEvent,
    CaseStatus,
    Message,
    OrgUnit,
    OrgUnitKind,
    Service,
    Tenant,
)
from rathaus.inbox import history_import as hi
from tests.factories import build_tenant

KONSTANZ = Path(__file__).resolve().parents[2].parent / "shared/data/inbox"
KONSTANZ_FILE = KONSTANZ / "konstanz_maengelmelder_2020-2022.csv"
HEADER = ["Nr", "Eingang", "Erledigt", "Amt", "Leistung", "Anliegen", "Betreff", "Text"]
ROWS = [
    ["1", "01.03.2024 14:30", "05.03.2024 09:00", "BA", "", "Antrag", "Meldebescheinigung",
     "Ich brauche eine Meldebescheinigung."],
    ["2", "2023-12-30 08:00", "", "ordnungsamt", "", "Beschwerde", "",
     "Lärm in der Nacht.\nSeit Wochen jeden Freitag."],
    ["3", "2024-01-02", "", "", "Gewerbeanmeldung", "", "Gewerbe", "Ich melde ein Gewerbe an."],
]  # fmt: skip
MAPPING = "text=Text,betreff=Betreff,amt=Amt,leistung=Leistung,eingang=Eingang,erledigt=Erledigt,art=Anliegen"


def csv_bytes(rows, *, delimiter=";", header=HEADER, encoding="utf-8") -> bytes:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


@pytest.fixture
def tenant_id(db: Database) -> int:
    with db.session() as session:
        world = build_tenant(session, "alpha")
        session.add(
            Service(
                tenant_id=world.tenant.id,
                org_unit_id=world.units["OA-GW"].id,
                code="GEW-AN",
                name="Gewerbeanmeldung",
                sla_working_days=5,
            )
        )
        return world.tenant.id


def run(db: Database, tenant_id: int, data: bytes, mapping: str = MAPPING, **options):  # type: ignore[no-untyped-def]
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        return hi.import_csv(
            session, tenant=tenant, data=data, mapping=hi.parse_mapping(mapping), **options
        )


def imported(db: Database) -> list[Case]:
    with db.session() as session:
        return list(
            session.scalars(select(Case).where(Case.channel == "import").order_by(Case.received_at))
        )


def test_mapping_creates_decided_cases_with_messages_and_events(db, tenant_id):
    progress: list[tuple[int, int]] = []
    report = run(
        db, tenant_id, csv_bytes(ROWS), batch_size=2, progress=lambda *a: progress.append(a)
    )
    assert (report.rows, report.imported, report.duplicates, report.skipped) == (3, 3, 0, [])
    assert report.delimiter == ";" and report.encoding == "utf-8"
    assert progress == [(0, 3), (2, 3), (3, 3)]

    noise, registration, business = imported(db)
    with db.session() as session:
        units = {u.id: u.code for u in session.scalars(select(OrgUnit))}
        service = session.scalar(select(Service).where(Service.code == "GEW-AN"))
        # Closed → erledigt with closed_at; local time (CET) stored as UTC.
        assert business.status == CaseStatus.ERLEDIGT and units[business.org_unit_id] == "BA"
        assert business.received_at.replace(tzinfo=dt.UTC) == dt.datetime(
            2024, 3, 1, 13, 30, tzinfo=dt.UTC
        )
        assert business.closed_at.replace(tzinfo=dt.UTC) == dt.datetime(
            2024, 3, 5, 8, 0, tzinfo=dt.UTC
        )
        assert business.subject == "Meldebescheinigung" and business.request_type == "Antrag"
        # Unit by name, no closed date → zugewiesen; subject from the first line of the text.
        assert noise.status == CaseStatus.ZUGEWIESEN and units[noise.org_unit_id] == "OA"
        assert noise.subject == "Lärm in der Nacht." and noise.closed_at is None
        assert noise.request_type == "Beschwerde"
        # Service by name; its unit is used; the SLA gives a due date.
        assert registration.service_id == service.id and units[registration.org_unit_id] == "OA-GW"
        assert registration.due_at is not None
        # Aktenzeichen per received year (Berlin time: 30.12.2023 is 2023).
        assert noise.reference == "RH-2023-000001"
        assert {business.reference, registration.reference} == {"RH-2024-000001", "RH-2024-000002"}

        message = session.scalar(select(Message).where(Message.case_id == noise.id))
        assert message.direction == "in" and message.channel == "import"
        assert message.body == "Lärm in der Nacht.\nSeit Wochen jeden Freitag."
        events = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == business.id).order_by(CaseEvent.id)
        ).all()
        assert [(e.kind, e.from_status, e.to_status) for e in events] == [
            ("created", None, "neu"),
            ("status", "neu", "erledigt"),
        ]
        assert events[1].created_at.replace(tzinfo=dt.UTC) == business.closed_at.replace(
            tzinfo=dt.UTC
        )
        assert all(e.actor_label == "import" for e in events)
        assert business.fields["import_line"] == 2 and len(business.fields["import_key"]) == 64


def test_imported_history_is_training_data(db, tenant_id):
    from rathaus.inbox.training import training_set

    run(db, tenant_id, csv_bytes(ROWS))
    with db.session() as session:
        data = training_set(session, tenant_id)
    assert len(data) == 3 + 2  # plus the two routed cases of build_tenant
    assert "Lärm in der Nacht." in "\n".join(data.texts)


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_is_detected(db, tenant_id, delimiter):
    report = run(db, tenant_id, csv_bytes(ROWS, delimiter=delimiter))
    assert report.delimiter == delimiter and report.imported == 3


def test_explicit_delimiter_and_unknown_column_message(db, tenant_id):
    data = csv_bytes(ROWS, delimiter="\t")
    assert run(db, tenant_id, data, delimiter="tab").imported == 3
    with pytest.raises(hi.HistoryImportError) as caught:
        run(db, tenant_id, csv_bytes(ROWS), mapping="text=Beschreibung")
    message = caught.value.message
    assert "Die Spalte „Beschreibung“ gibt es in der Datei nicht" in message
    assert "Vorhandene Spalten: Nr, Eingang" in message and caught.value.exit_code == 2
    with pytest.raises(hi.HistoryImportError, match="Trennzeichen „|“"):
        run(db, tenant_id, data, delimiter="|")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("amt=Amt", "Die Spalte mit dem Text fehlt"),
        ("text=Text,farbe=Rot", "Das Feld „farbe“ gibt es nicht"),
        ("text", "keine Zuordnung"),
        ("text=Text,amt=A,einheit=B", "mehrfach"),
    ],
)
def test_bad_mappings_are_explained(db, tenant_id, spec, expected):
    with pytest.raises(hi.HistoryImportError, match=expected):
        run(db, tenant_id, csv_bytes(ROWS), mapping=spec)


def test_reimport_is_idempotent_and_identical_rows_count_twice(db, tenant_id):
    rows = [*ROWS, ROWS[0]]  # the same row twice in one file: two cases
    first = run(db, tenant_id, csv_bytes(rows))
    assert first.imported == 4
    again = run(db, tenant_id, csv_bytes(rows, delimiter=","))  # re-saved with commas
    assert (again.imported, again.duplicates) == (0, 4)
    with db.session() as session:
        assert session.scalar(select(func.count(Case.id)).where(Case.channel == "import")) == 4
        assert (
            session.scalar(select(func.count(Message.id)).where(Message.channel == "import")) == 4
        )
    longer = run(db, tenant_id, csv_bytes([*rows, ROWS[0]]))  # a third copy is new
    assert (longer.imported, longer.duplicates) == (1, 4)


def test_aktenzeichen_continue_after_existing_ones(db, tenant_id):
    with db.session() as session:
        session.add(Case(tenant_id=tenant_id, reference="RH-2024-000041", subject="alt"))
    run(db, tenant_id, csv_bytes(ROWS))
    refs = sorted(c.reference for c in imported(db))
    assert refs == ["RH-2023-000001", "RH-2024-000042", "RH-2024-000043"]


def test_unknown_units_are_reported_or_created(db, tenant_id):
    rows = [
        ["1", "2024-02-01", "", "Bauamt", "", "", "", "Bauantrag Garage"],
        ["2", "2024-02-02", "", "BA", "", "", "", "Zeile\nmit\nUmbrüchen"],
        ["3", "2024-02-03", "", "Grünflächenamt", "", "", "", "Baum umgestürzt"],
        ["4", "2024-02-04", "", "BA", "Hundesteuer", "", "", "Hund abmelden"],
        ["5", "2024-02-05", "", "Bauamt", "", "", "", "Noch ein Bauantrag"],
    ]
    report = run(db, tenant_id, csv_bytes(rows))
    assert report.imported == 1
    assert [(s.line, s.reason.split(" (")[0]) for s in report.skipped] == [
        (2, "Das Amt „Bauamt“ gibt es nicht"),
        (6, "Das Amt „Grünflächenamt“ gibt es nicht"),
        (7, "Die Leistung „Hundesteuer“ gibt es nicht"),
        (8, "Das Amt „Bauamt“ gibt es nicht"),
    ]
    assert "--neue-aemter" in report.skipped[0].reason

    created = run(db, tenant_id, csv_bytes(rows), create_units=True)
    assert (created.imported, created.duplicates, len(created.skipped)) == (3, 1, 1)
    assert created.created_units == ["IMP-BAUAMT (Bauamt)", "IMP-GRUENFLAECHENAMT (Grünflächenamt)"]
    with db.session() as session:
        parent = session.scalar(select(OrgUnit).where(OrgUnit.code == "IMPORT"))
        children = session.scalars(select(OrgUnit).where(OrgUnit.parent_id == parent.id)).all()
        assert parent.kind == OrgUnitKind.AMT
        assert sorted(u.name for u in children) == ["Bauamt", "Grünflächenamt"]
        assert all(u.kind == OrgUnitKind.SACHGEBIET for u in children)
    third = run(db, tenant_id, csv_bytes(rows), create_units=True)
    assert third.imported == 0 and third.created_units == []


def test_bad_rows_are_skipped_with_their_line(db, tenant_id):
    rows = [
        ["1", "gestern", "", "BA", "", "", "", "Datum kaputt"],
        ["2", "2024-02-01", "2024-01-01", "BA", "", "", "", "Zu früh erledigt"],
        ["3", "2024-02-01", "", "BA", "", "", "", ""],
        ["4", "", "", "BA", "", "", "", "Ohne Eingang"],
        ["5", "2024-02-01", "", "", "", "", "", "Ohne Amt"],
        ["6", "2024-02-01", "", "BA", "", "", "", "Gut"],
    ]
    data = csv_bytes(rows) + b"7;2024-02-01;BA\r\n"
    report = run(db, tenant_id, data)
    assert report.imported == 1
    reasons = {s.line: s.reason for s in report.skipped}
    assert "„gestern“ ist kein Datum" in reasons[2]
    assert "vor dem Eingangsdatum" in reasons[3]
    assert "keinen Text" in reasons[4]
    assert "Eingangsdatum fehlt" in reasons[5]
    assert "kein Amt" in reasons[6]
    assert "3 statt 8 Spalten" in reasons[8]


def test_status_column(db, tenant_id):
    header = ["Text", "Amt", "Eingang", "Status"]
    rows = [
        ["a", "BA", "2024-01-01", "abgeschlossen"],
        ["b", "BA", "2024-01-02", "in Bearbeitung"],
        ["c", "BA", "2024-01-03", "verschollen"],
    ]
    report = run(
        db,
        tenant_id,
        csv_bytes(rows, header=header, delimiter=","),
        mapping="text=Text,amt=Amt,eingang=Eingang,status=Status",
    )
    assert report.imported == 2 and "verschollen" in report.skipped[0].reason
    assert [c.status for c in imported(db)] == [CaseStatus.ERLEDIGT, CaseStatus.IN_BEARBEITUNG]


def test_windows_1252_is_detected_and_reported(db, tenant_id):
    data = csv_bytes(ROWS, encoding="cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    report = run(db, tenant_id, data)
    assert report.encoding == "cp1252" and report.imported == 3
    assert "Windows-1252" in report.notes[0] and "CSV UTF-8" in report.notes[0]
    assert any(c.subject == "Lärm in der Nacht." for c in imported(db))


def test_mixed_encoding_is_refused_in_german(db, tenant_id):
    good = csv_bytes(ROWS)  # UTF-8 umlauts …
    broken = good + "4;2024-01-05;;BA;;;;Straße gefegt\r\n".encode(
        "cp1252"
    )  # … then one cp1252 line
    with pytest.raises(hi.HistoryImportError) as caught:
        run(db, tenant_id, broken)
    assert "nicht UTF-8-kodiert (erstes unlesbares Zeichen in Zeile 6)" in caught.value.message
    assert "CSV UTF-8" in caught.value.message
    assert imported(db) == []


def test_utf8_with_bom(db, tenant_id):
    report = run(db, tenant_id, b"\xef\xbb\xbf" + csv_bytes(ROWS), mapping="text=Nr")
    assert report.imported == 3 and report.encoding == "utf-8"


def test_cli_import_prints_a_german_summary(db, tenant_id, tmp_path):
    import typer

    from rathaus.cli import inbox_io
    from tests.test_cli import in_process

    app = typer.Typer()
    inbox_io.register(app)
    path = tmp_path / "alt.csv"
    path.write_bytes(csv_bytes([*ROWS, ["9", "2024-01-01", "", "Bauamt", "", "", "", "x"]]))
    cli = in_process(tmp_path, db, app=app, queue=None)
    result = cli("import-csv", str(path), "--spalten", MAPPING)
    assert result.exit_code == 0, result.output
    assert "Importiert: 3 Vorgänge" in result.output
    assert "Zeile 6: Das Amt „Bauamt“ gibt es nicht" in result.output
    again = cli("import-csv", str(path), "--spalten", MAPPING, "--neue-aemter")
    assert "Importiert: 1 Vorgänge" in again.output and "Dubletten): 3" in again.output
    assert "IMP-BAUAMT" in again.output
    bad = cli("import-csv", str(path), "--spalten", "text=Fehlt")
    assert isinstance(bad.exception, hi.HistoryImportError) and bad.exception.exit_code == 2
    missing = cli("import-csv", str(tmp_path / "x.csv"), "--spalten", MAPPING)
    assert "gibt es nicht" in str(missing.exception)


@pytest.mark.slow
@pytest.mark.skipif(not KONSTANZ_FILE.exists(), reason=f"Konstanz-Daten fehlen ({KONSTANZ_FILE})")
def test_konstanz_file_imports_with_new_units(db, tenant_id):
    mapping = "text=Text,amt=Gruppe,eingang=Gemeldet-am,erledigt=Geprueft-am"
    data = KONSTANZ_FILE.read_bytes()
    report = run(db, tenant_id, data, mapping=mapping, create_units=True)
    with KONSTANZ_FILE.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with_unit = [r for r in rows if r["Gruppe"].strip()]
    assert report.rows == len(rows) == 3791
    assert report.imported == len(with_unit)
    assert {s.reason for s in report.skipped} == {"Die Zeile nennt kein Amt."}
    assert len(report.created_units) == len({" ".join(r["Gruppe"].split()) for r in with_unit})
    with db.session() as session:
        counts = dict(
            session.execute(
                select(Case.status, func.count(Case.id))
                .where(Case.channel == "import")
                .group_by(Case.status)
            ).all()
        )
        per_year = session.scalar(
            select(func.count(Case.id)).where(Case.reference.like("RH-2020-%"))
        )
    assert counts[CaseStatus.ERLEDIGT] == sum(1 for r in with_unit if r["Geprueft-am"].strip())
    assert counts[CaseStatus.ZUGEWIESEN] == sum(
        1 for r in with_unit if not r["Geprueft-am"].strip()
    )
    assert per_year == sum(1 for r in with_unit if r["Jahr"] == "2020")
    again = run(db, tenant_id, data, mapping=mapping, create_units=True)
    assert (again.imported, again.duplicates) == (0, len(with_unit))
