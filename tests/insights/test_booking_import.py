"""Import of payment lists and the review queue on SQLite and PostgreSQL: encodings,
delimiters, German dates and amounts, missing columns, bad rows (nothing written), skipping,
re-running checks keeps decisions, CLI and eval on a slice."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from rathaus.core.db import Database
from rathaus.core.models import AiSuggestion, AuditEvent, BookingFlag, InsightDataset, Payment
from rathaus.core.storage import OriginalStore
from rathaus.insights import bookings
from rathaus.insights.booking_checks import CheckConfig
from rathaus.insights.tabular import TableError
from tests.factories import build_tenant

OXFORD = (
    Path(__file__).resolve().parents[2].parent
    / "shared/data/bookings/oxford_spend_over_500_2014-2018_harmonised.csv.gz"
)

GERMAN = (
    "Kreditor;Betrag;Buchungsdatum;Belegnummer;Kostenart\n"
    "Müller Straßenbau GmbH;1.471,60 €;31.12.2015;B-1;Tiefbau\n"
    "Müller Straßenbau GmbH;1.471,60 €;31.12.2015;B-1;Tiefbau\n"
    "Bäckerei Schön;250,00;04.01.2016;B-2;Bewirtung\n"
)


def _import(db: Database, tmp_path: Path, data: bytes, **kwargs):  # type: ignore[no-untyped-def]
    from rathaus.core.models import Tenant

    with db.session() as session:
        if session.scalar(select(Tenant).where(Tenant.slug == "alpha")) is None:
            build_tenant(session, "alpha")
    with db.session() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "alpha"))
        dataset = bookings.import_payments(
            session,
            tenant=tenant,
            data=data,
            filename=kwargs.pop("filename", "zahlungen.csv"),
            actor="test",
            store=OriginalStore(tmp_path / "originals"),
            **kwargs,
        )
        return tenant.id, dataset.id


def _count(db: Database, model) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_windows_1252_semicolon_german_dates_and_amounts(db: Database, tmp_path: Path):
    _, dataset_id = _import(db, tmp_path, GERMAN.encode("cp1252"))
    with db.session() as session:
        rows = session.scalars(select(Payment).order_by(Payment.row_number)).all()
        dataset = session.get(InsightDataset, dataset_id)
        assert [r.supplier for r in rows][0] == "Müller Straßenbau GmbH"
        assert rows[0].amount_cents == 147160 and rows[0].booked_on.isoformat() == "2015-12-31"
        assert rows[0].category == "Tiefbau" and rows[0].row_number == 2
        assert dataset.mapping["supplier"] == "Kreditor"
        assert "Windows-1252" in " ".join(dataset.summary["notes"])
        assert dataset.original_sha256
    assert (tmp_path / "originals").rglob("*")


def test_english_headers_of_the_oxford_file_are_recognised():
    text = (
        "unit_or_fund,expenditure_category,paid_date,trans_no,amount,supplier_name\n"
        "Housing,Materials,2015-02-24,600_1,780.26,GRAFTON\n"
    )
    parsed = bookings.parse_payments(text.encode())
    assert parsed.columns == {
        "supplier": "supplier_name",
        "amount": "amount",
        "date": "paid_date",
        "reference": "trans_no",
        "category": "expenditure_category",
        "unit": "unit_or_fund",
    }
    assert parsed.rows[0]["amount_cents"] == 78026


def test_explicit_mapping_and_unknown_column():
    text = "Wer;Wieviel;Wann\nA;10,00;01.02.2024\n"
    mapping = {"supplier": "Wer", "amount": "Wieviel", "date": "Wann"}
    assert bookings.parse_payments(text.encode(), mapping=mapping).rows[0]["amount_cents"] == 1000
    with pytest.raises(TableError, match="„Nix“"):
        bookings.parse_payments(text.encode(), mapping={"supplier": "Nix"})


def test_missing_column_names_it(db: Database, tmp_path: Path):
    with pytest.raises(TableError, match="Pflichtspalte fehlt: „Betrag“"):
        _import(db, tmp_path, b"Kreditor;Buchungsdatum\nA;01.01.2024\n")
    assert _count(db, InsightDataset) == 0


def test_wrong_delimiter_is_explained():
    with pytest.raises(TableError, match="Trennzeichen"):
        bookings.parse_payments(b"Kreditor:Betrag:Datum\nA:1:01.01.2024\n")


def test_bad_row_writes_nothing(db: Database, tmp_path: Path):
    data = (GERMAN + "Meier;zwölf Euro;05.01.2016;B-3;X\n").encode()
    with pytest.raises(TableError, match="Zeile 5, Feld „Betrag“"):
        _import(db, tmp_path, data)
    data = (GERMAN + "Meier;12,00;32.13.2016;B-3;X\n").encode()
    with pytest.raises(TableError, match="Zeile 5, Feld „Datum“"):
        _import(db, tmp_path, data)
    assert _count(db, Payment) == 0 and _count(db, InsightDataset) == 0


def test_skip_invalid_reports_rows(db: Database, tmp_path: Path):
    data = (GERMAN + "Meier;12,00;;B-3;X\n").encode()
    _, dataset_id = _import(db, tmp_path, data, skip_invalid=True)
    with db.session() as session:
        dataset = session.get(InsightDataset, dataset_id)
        assert dataset.rows == 3 and dataset.summary["skipped"] == 1
        assert dataset.summary["skipped_rows"][0]["row"] == 5
        assert "Datum" in dataset.summary["skipped_rows"][0]["reason"]


def test_xlsx_import(db: Database, tmp_path: Path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Lieferant", "Betrag", "Datum"])
    ws.append(["Stadtwerke", 1234.5, "2024-03-01"])
    path = tmp_path / "z.xlsx"
    wb.save(path)
    _import(db, tmp_path, path.read_bytes(), filename="z.xlsx")
    with db.session() as session:
        assert session.scalar(select(Payment.amount_cents)) == 123450


def test_rerun_keeps_decisions_and_does_not_duplicate(db: Database, tmp_path: Path):
    tenant_id, dataset_id = _import(db, tmp_path, GERMAN.encode())
    config = CheckConfig(holiday_country="DE", holiday_subdiv="BW")
    with db.session() as session:
        from rathaus.core.models import Tenant

        tenant = session.get(Tenant, tenant_id)
        dataset = session.get(InsightDataset, dataset_id)
        first = bookings.run_checks(
            session, tenant=tenant, dataset=dataset, config=config, actor="t"
        )
        assert first.counts["duplikat"] == 1
        flag = session.scalars(select(BookingFlag).where(BookingFlag.kind == "duplikat")).one()
        bookings.decide(
            session,
            tenant=tenant,
            flag_id=flag.id,
            status="unauffaellig",
            note="Gutschrift",
            actor="kaemmerin",
        )
        flag_id = flag.id
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        dataset = session.get(InsightDataset, dataset_id)
        again = bookings.run_checks(
            session, tenant=tenant, dataset=dataset, config=config, actor="t"
        )
        assert again.new == 0 and again.updated == first.new
        flags = session.scalars(select(BookingFlag)).all()
        assert len(flags) == first.new
        kept = session.get(BookingFlag, flag_id)
        assert (kept.status, kept.decision_note, kept.decided_by) == (
            "unauffaellig",
            "Gutschrift",
            "kaemmerin",
        )
        # checks switched off: open flags go, the decided one stays and is marked
        only = CheckConfig(checks=("benford",))
        bookings.run_checks(session, tenant=tenant, dataset=dataset, config=only, actor="t")
        assert [f.id for f in session.scalars(select(BookingFlag))] == [flag_id]
        assert session.get(BookingFlag, flag_id).details["not_found_again"] is True
        events = session.scalars(select(AuditEvent.kind)).all()
        assert "booking_flag_decided" in events
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        with pytest.raises(bookings.BookingError):
            bookings.decide(
                session, tenant=tenant, flag_id=flag_id, status="schuldig", note="", actor="x"
            )
    # Deleting the data set takes the recorded suggestions about its flags along.
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        about_flags = select(func.count(AiSuggestion.id)).where(
            AiSuggestion.subject_type == "booking_flag"
        )
        assert session.scalar(about_flags) >= 1
        bookings.delete_dataset(session, tenant=tenant, dataset_id=dataset_id, actor="t")
        assert session.scalar(about_flags) == 0


def test_cli_import_check_list(db: Database, tmp_path: Path):
    from tests.test_cli import in_process

    with db.session() as session:
        build_tenant(session, "alpha")
    cli = in_process(tmp_path, db, queue=None)
    path = tmp_path / "liste.csv"
    path.write_bytes((GERMAN + "Meier;12,00;;B-3;X\n").encode("cp1252"))
    failed = cli("lage", "buchungen-import", str(path))
    assert failed.exit_code == 1 and "Zeile 5" in failed.output, failed.output
    done = cli("lage", "buchungen-import", str(path), "--ueberspringen")
    assert done.exit_code == 0, done.output
    assert "Übersprungen: 1" in done.output
    checked = cli("lage", "buchungen-pruefen", "--wertgrenzen", "1000;25000")
    assert checked.exit_code == 0, checked.output
    listed = cli("lage", "buchungen", "--json", "--art", "duplikat")
    data = json.loads(listed.output)
    assert data["total"] == 1 and data["flags"][0]["kind"] == "duplikat"


@pytest.mark.skipif(not OXFORD.exists(), reason="shared data not available")
def test_eval_on_a_slice(tmp_path: Path):
    from rathaus.cli import app

    sliced = tmp_path / "slice.csv.gz"
    lines = gzip.decompress(OXFORD.read_bytes()).split(b"\n")
    sliced.write_bytes(
        gzip.compress(b"\n".join(lines[15000:15001] and [lines[0], *lines[15000:21000]]))
    )
    result = CliRunner().invoke(
        app, ["eval", "bookings", "--data", str(sliced), "--json", "--anzahl", "10"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["injected_anomalies"] == 40 and data["real_payments"] > 5000
    assert data["recall_by_kind"]["duplikat"] == 1.0
    assert data["recall"] >= 0.8
    assert set(data["recall_by_kind"]) == {"duplikat", "aehnlich", "splitting", "ausreisser"}
