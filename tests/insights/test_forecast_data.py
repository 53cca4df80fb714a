"""Importing count series (all-or-nothing, German messages) and own cases as series, on SQLite
and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import gzip
import io

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import Case, InsightDataset, OrgUnit, SeriesPoint, Tenant
from rathaus.core.storage import OriginalStore
from rathaus.insights.forecast_data import (
    delete_dataset,
    import_series,
    list_sources,
    load_source,
)
from rathaus.insights.forecast_service import export_table, run_forecast
from rathaus.insights.tabular import TableError
from tests.factories import build_tenant


@pytest.fixture
def world(db):
    with db.session() as session:
        w = build_tenant(session, "alpha")
        return w.tenant.id


def _import(db, tmp_path, data: bytes, filename: str = "reihe.csv", **kw):
    store = OriginalStore(tmp_path / "originals")
    with db.session() as session:
        dataset = import_series(
            session, store, tenant_id=kw.pop("tenant_id"), data=data, filename=filename, **kw
        )
        return dataset.id, dict(dataset.summary), store


def _counts(db):
    with db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(InsightDataset)),
            session.scalar(select(func.count()).select_from(SeriesPoint)),
        )


def test_aggregated_windows1252_semicolon_german_dates(db, world, tmp_path):
    text = (
        "Datum;Amt;Eingänge\n"
        + "".join(
            f"{(dt.date(2024, 1, 1) + dt.timedelta(days=i)):%d.%m.%Y};Bürgeramt;{i % 7 + 1}\n"
            for i in range(70)
        )
        + "05.01.2024;Straßenverkehr;2\n"
    )
    data = text.encode("cp1252")
    dataset_id, summary, store = _import(db, tmp_path, data, tenant_id=world, name="Eingänge")
    assert summary["encoding"] == "windows-1252" and summary["delimiter"] == ";"
    assert set(summary["series"]) == {"Bürgeramt", "Straßenverkehr"}
    assert summary["first_day"] == "2024-01-01" and summary["last_day"] == "2024-03-10"
    with db.session() as session:
        dataset = session.get(InsightDataset, dataset_id)
        assert dataset.mapping == {
            "datum": "Datum",
            "reihe": "Amt",
            "anzahl": "Eingänge",
            "format": "aggregiert",
        }
        assert store.get(world, dataset.original_sha256) == data  # the original is kept
        series = load_source(session, world, f"datensatz:{dataset_id}:Bürgeramt")
        assert len(series.values) == 70 and series.values[0] == 1 and series.values[6] == 7
        short = load_source(session, world, f"datensatz:{dataset_id}:Straßenverkehr")
        assert list(short.values[:2]) == [2, 0]  # zero days up to the data set's last day
        sources = {s.key: s for s in list_sources(session, world)}
        assert sources[f"datensatz:{dataset_id}:Bürgeramt"].group == "Datensatz „Eingänge“"
        assert "alle" in sources and any(k.startswith("amt:") for k in sources)


def test_one_row_per_request_is_counted_per_day(db, world, tmp_path):
    rows = ["CASE_ENQUIRY_ID,OPEN_DT,Department"]
    for i in range(3):
        rows.append(f"{i},2015-01-01 0{i}:20:09,PWDx")
    rows += ["9,2015-01-02 10:00:00,PWDx", "10,2015-01-02 11:00:00,INFO"]
    data = gzip.compress(("\n".join(rows) + "\n").encode())
    dataset_id, summary, _ = _import(
        db,
        tmp_path,
        data,
        filename="boston.csv.gz",
        tenant_id=world,
        mapping={"datum": "OPEN_DT", "reihe": "Department"},
    )
    assert summary["series"]["PWDx"]["total"] == 4
    with db.session() as session:
        points = session.execute(
            select(SeriesPoint.series, SeriesPoint.day, SeriesPoint.value)
            .where(SeriesPoint.dataset_id == dataset_id)
            .order_by(SeriesPoint.series, SeriesPoint.day)
        ).all()
        assert [tuple(p) for p in points] == [
            ("INFO", dt.date(2015, 1, 2), 1.0),
            ("PWDx", dt.date(2015, 1, 1), 3.0),
            ("PWDx", dt.date(2015, 1, 2), 1.0),
        ]
        assert session.get(InsightDataset, dataset_id).mapping["format"] == "einzeln"


def test_xlsx_single_series(db, world, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["Tag", "Anzahl"])
    for i in range(60):
        sheet.append([dt.date(2024, 3, 1) + dt.timedelta(days=i), 5])
    buffer = io.BytesIO()
    book.save(buffer)
    dataset_id, summary, _ = _import(
        db, tmp_path, buffer.getvalue(), filename="reihe.xlsx", tenant_id=world
    )
    assert summary["series"] == {
        "(ohne Angabe)": {
            "first_day": "2024-03-01",
            "last_day": "2024-04-29",
            "days": 60,
            "total": 300.0,
        }
    }


def test_missing_column_names_the_field_and_writes_nothing(db, world, tmp_path):
    data = b"Tag;Menge\n01.01.2024;3\n"
    with pytest.raises(TableError) as info:
        _import(db, tmp_path, data.replace(b"Tag", b"Wann"), tenant_id=world)
    assert "Pflichtspalte fehlt: „Datum“" in info.value.message
    assert "Wann, Menge" in info.value.message
    with pytest.raises(TableError, match="„Anzahl“"):
        _import(db, tmp_path, b"Datum;Wert2\n01.01.2024;3\n", tenant_id=world, layout="aggregiert")
    assert _counts(db) == (0, 0)


def test_wrong_delimiter_is_explained(db, world, tmp_path):
    with pytest.raises(TableError, match="nur eine Spalte"):
        _import(db, tmp_path, b"Datum:Anzahl\n01.01.2024:3\n02.01.2024:4\n", tenant_id=world)


def test_bad_row_aborts_the_whole_import(db, world, tmp_path):
    good = "".join(f"0{d}.02.2024;Bürgeramt;{d}\n" for d in range(1, 4))
    with pytest.raises(TableError) as info:
        _import(
            db,
            tmp_path,
            ("Datum;Reihe;Anzahl\n" + good + "31.02.2024;Bürgeramt;4\n").encode(),
            tenant_id=world,
        )
    assert "Zeile 5, Feld „Datum“" in info.value.message and "31.02.2024" in info.value.message
    with pytest.raises(TableError) as info:
        _import(
            db,
            tmp_path,
            ("Datum;Reihe;Anzahl\n" + good + "04.02.2024;Bürgeramt;-2\n").encode(),
            tenant_id=world,
        )
    assert "Zeile 5, Feld „Anzahl“" in info.value.message and "negativ" in info.value.message
    with pytest.raises(TableError, match="Zeile 3, Feld „Anzahl“: „drei“ ist keine Zahl"):
        _import(db, tmp_path, b"Datum;Anzahl\n01.02.2024;1\n02.02.2024;drei\n", tenant_id=world)
    assert _counts(db) == (0, 0)


def test_delete_and_tenant_separation(db, world, tmp_path):
    data = b"Datum;Anzahl\n" + b"".join(
        f"{dt.date(2024, 1, 1) + dt.timedelta(days=i)};2\n".encode() for i in range(60)
    )
    dataset_id, _, _ = _import(db, tmp_path, data, tenant_id=world)
    with db.session() as session:
        other = build_tenant(session, "beta").tenant.id
    with db.session() as session, pytest.raises(NotFoundError):
        load_source(session, other, f"datensatz:{dataset_id}:(ohne Angabe)")
    with db.session() as session:
        assert delete_dataset(session, world, dataset_id) == "reihe.csv"
    assert _counts(db) == (0, 0)


def test_own_cases_per_department_and_forecast(db, world):
    today = dt.date(2024, 6, 3)  # a Monday
    with db.session() as session:
        units = {
            u.code: u.id for u in session.scalars(select(OrgUnit).where(OrgUnit.tenant_id == world))
        }
        for i in range(84):
            day = today - dt.timedelta(days=84 - i)
            for k in range(3 if day.weekday() < 5 else 0):
                session.add(
                    Case(
                        tenant_id=world,
                        reference=f"T-{i}-{k}",
                        org_unit_id=units["BA"],
                        # 22:30 UTC is already the next day in Berlin (summer time)
                        received_at=dt.datetime.combine(day, dt.time(22, 30), dt.UTC),
                    )
                )
        for i in range(20):
            session.add(
                Case(
                    tenant_id=world,
                    reference=f"OA-{i}",
                    org_unit_id=units["OA"],
                    received_at=dt.datetime.combine(today, dt.time(9), dt.UTC)
                    - dt.timedelta(days=i + 1),
                )
            )
        session.flush()
        series = load_source(session, world, "amt:BA", today=today)
        assert series.end == today - dt.timedelta(days=1)
        assert series.name == "Bürgeramt"
        saturday = (dt.date(2024, 6, 1) - series.start).days
        assert series.values[saturday] == 3 and series.values[saturday - 5] == 0  # Monday
        tenant = session.get(Tenant, world)
        result = run_forecast(
            session, tenant, f"amt:{units['BA']}", horizon=14, cases_per_person_day=3, today=today
        )
        busy = [r.expected for r in result.forecast.rows if r.start.weekday() in (1, 2, 3, 4, 5)]
        assert all(2 < v < 4 for v in busy), busy
        assert result.land == "BW"
        assert result.staffing and result.staffing[0].person_days == pytest.approx(
            result.staffing[0].cases / 3
        )
        headers, rows = export_table(result)
        assert headers[2] == "Erwartete Eingänge" and len(rows) == 14
        with pytest.raises(RathausError, match="„Ordnungsamt“ ist zu kurz"):
            run_forecast(session, tenant, "amt:OA", horizon=7, today=today)
        with pytest.raises(RathausError, match="noch keine Vorgänge"):
            run_forecast(session, tenant, "amt:OA-GW", horizon=7, today=today)
        with pytest.raises(NotFoundError):
            load_source(session, world, "amt:XX", today=today)
