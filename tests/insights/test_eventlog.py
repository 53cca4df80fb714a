"""Reading event logs: CSV variants, XES, OCEL 2.0, bad input, and the all-or-nothing import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rathaus.core.db import Database
from rathaus.core.models import Case, CaseEvent, InsightDataset, ProcessEvent
from rathaus.core.storage import OriginalStore
from rathaus.insights import eventlog_store as store
from rathaus.insights.eventlog import (
    detect_format,
    parse_csv,
    parse_event_log,
    parse_ocel,
    parse_xes,
)
from rathaus.insights.process import analyse
from rathaus.insights.tabular import TableError
from tests.factories import build_tenant

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "eventlogs"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared/data/eventlogs fehlt")

GERMAN_CSV = (
    "Aktenzeichen;Tätigkeit;Zeitpunkt;Bearbeiter;Bemerkung\r\n"
    "BA-1;Antrag eingegangen;02.01.2024 08:00;Müller;\r\n"
    "BA-1;Prüfung;03.01.2024 09:30;Schäfer;Unterlagen vollständig\r\n"
    "BA-2;Antrag eingegangen;02.01.2024 10:00;Müller;\r\n"
    "BA-1;Bescheid;05.01.2024 12:00;Müller;\r\n"
)


def test_windows_1252_semicolon_csv_with_german_dates():
    log = parse_csv(GERMAN_CSV.encode("cp1252"), "protokoll.csv", mapping={"activity": "Tätigkeit"})
    assert len(log.events) == 4 and log.cases == 2
    first = log.events[0]
    assert (first.case_key, first.activity, first.resource) == (
        "BA-1",
        "Antrag eingegangen",
        "Müller",
    )
    # no zone in the file: German wall-clock time (winter, +01:00), whatever the server's zone
    assert first.timestamp.isoformat() == "2024-01-02T07:00:00+00:00"
    assert log.events[1].data == {"Bemerkung": "Unterlagen vollständig"}
    assert log.mapping["case"] == "Aktenzeichen" and log.mapping["delimiter"] == ";"
    assert any("Windows-1252" in note for note in log.notes)


def test_pm4py_column_names_are_recognised_and_offsets_become_utc():
    data = (
        b"case:concept:name,concept:name,time:timestamp,org:resource,org:group\n"
        b"c1,A,2011-10-11 13:45:40.276000+02:00,R1,G1\n"
        b"c1,B,2011-10-12 08:26:25.398000+02:00,R2,G1\n"
    )
    log = parse_event_log(data, "log.csv")
    assert log.format == "csv"
    assert [e.activity for e in log.events] == ["A", "B"]
    assert log.events[0].timestamp.isoformat() == "2011-10-11T11:45:40.276000+00:00"
    assert log.events[1].resource == "R2" and log.events[1].data == {"group": "G1"}


def test_unordered_timestamps_are_sorted_per_case_with_a_note():
    data = (
        b"case;activity;timestamp\n"
        b"1;Ende;2024-01-03 10:00\n"
        b"1;Start;2024-01-01 10:00\n"
        b"1;Mitte-a;2024-01-02 10:00\n"
        b"1;Mitte-b;2024-01-02 10:00\n"  # same time: file order decides
        b"2;Start;2024-01-01 11:00\n"
    )
    log = parse_csv(data)
    assert any("nicht in zeitlicher Reihenfolge" in n and "1" in n for n in log.notes)
    from rathaus.insights.eventlog_store import to_us
    from rathaus.insights.process import from_columns

    arrays = from_columns(
        [e.case_key for e in log.events],
        [e.activity for e in log.events],
        [to_us(e.timestamp) for e in log.events],
        positions=[e.position for e in log.events],
    )
    result = analyse(arrays)
    assert ["Start", "Mitte-a", "Mitte-b", "Ende"] in [v.activities for v in result.variants]
    assert result.edge("Mitte-a", "Mitte-b").median_s == 0.0
    assert result.edge("Start", "Mitte-a").median_s == 86400.0


def test_bad_timestamp_names_the_row():
    data = b"case;activity;timestamp\n1;A;2024-01-01 10:00\n1;B;morgen frueh\n"
    with pytest.raises(TableError, match=r"Zeile 3, Feld „Zeitpunkt“: „morgen frueh“ ist kein"):
        parse_csv(data)


def test_missing_column_and_wrong_delimiter_are_german_messages():
    with pytest.raises(TableError, match=r"Pflichtspalte fehlt: „Zeitpunkt“"):
        parse_csv(b"case;activity;wer\n1;A;x\n")
    with pytest.raises(TableError, match="nur eine Spalte"):
        parse_csv(b"case:activity:timestamp\n1:A:2024\n")
    with pytest.raises(
        TableError, match="Spalte „Zeit“ für „Zeitpunkt“ gibt es in der Datei nicht"
    ):
        parse_csv(b"case;activity;t\n1;A;2024-01-01\n", mapping={"timestamp": "Zeit"})


@needs_data
def test_xes_stream_parse_matches_the_csv_export_of_the_same_log():
    xes = parse_xes((DATA / "roadtraffic100traces.xes").read_bytes())
    csv = parse_event_log((DATA / "roadtraffic100traces.csv").read_bytes(), "road.csv")
    assert (len(xes.events), xes.cases) == (390, 100)
    assert len(csv.events) == len(xes.events)
    assert sorted(e.activity for e in xes.events) == sorted(e.activity for e in csv.events)
    create = next(e for e in xes.events if e.activity == "Create Fine")
    assert create.resource and create.timestamp.tzinfo is not None
    assert detect_format(b"<?xml version='1.0'?><log>", "x.xml") == "xes"


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE log [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b'<log><trace><event><string key="concept:name" value="&b;"/></event></trace></log>',
        b'<?xml version="1.0"?><!doctype log SYSTEM "file:///etc/passwd"><log/>',
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE log><log/>'.encode("utf-16"),
    ],
)
def test_xml_with_doctype_or_entities_is_refused(payload):
    with pytest.raises(TableError, match="DOCTYPE- oder ENTITY-Deklaration"):
        parse_xes(payload)


def test_broken_xml_and_bad_xes_timestamp():
    with pytest.raises(TableError, match="XML-Datei ist fehlerhaft"):
        parse_xes(b"<log><trace></log>")
    bad = (
        b'<log><trace><string key="concept:name" value="c1"/><event>'
        b'<string key="concept:name" value="A"/><date key="time:timestamp" value="gestern"/>'
        b"</event></trace></log>"
    )
    with pytest.raises(TableError, match=r"Fall 1, Ereignis 1 \(A\): „gestern“ ist kein"):
        parse_xes(bad)


OCEL = {
    "objectTypes": [{"name": "order", "attributes": []}, {"name": "item", "attributes": []}],
    "eventTypes": [],
    "objects": [
        {"id": "o1", "type": "order"},
        {"id": "o2", "type": "order"},
        {"id": "i1", "type": "item"},
    ],
    "events": [
        {
            "id": "e1",
            "type": "place order",
            "time": "2024-01-01T10:00:00Z",
            "attributes": [{"name": "org:resource", "value": "Vertrieb"}],
            "relationships": [
                {"objectId": "o1", "qualifier": ""},
                {"objectId": "o2", "qualifier": ""},
                {"objectId": "i1", "qualifier": "contains"},
            ],
        },
        {
            "id": "e2",
            "type": "ship",
            "time": "2024-01-02T10:00:00+01:00",
            "attributes": [],
            "relationships": [{"objectId": "o1"}, {"objectId": "i1"}],
        },
    ],
}


def test_ocel_flattens_on_the_chosen_object_type():
    log = parse_ocel(json.dumps(OCEL).encode(), object_type="order")
    assert [(e.case_key, e.activity) for e in log.events] == [
        ("o1", "place order"),
        ("o2", "place order"),
        ("o1", "ship"),
    ]
    assert log.events[0].resource == "Vertrieb"
    assert log.events[2].timestamp.isoformat() == "2024-01-02T09:00:00+00:00"
    items = parse_ocel(json.dumps(OCEL).encode(), object_type="item")
    assert [e.case_key for e in items.events] == ["i1", "i1"]
    chosen = parse_ocel(json.dumps(OCEL).encode())
    assert chosen.mapping["object_type"] == "order" and "item" in chosen.notes[0]
    with pytest.raises(TableError, match="Objekttyp „kunde“ gibt es in der Datei nicht"):
        parse_ocel(json.dumps(OCEL).encode(), object_type="kunde")
    broken = json.loads(json.dumps(OCEL))
    broken["events"][1]["time"] = "31.02.2024"
    with pytest.raises(TableError, match=r"Ereignis 2 \(„e2“\)"):
        parse_ocel(json.dumps(broken).encode(), object_type="order")


# -- the import into the database (SQLite and PostgreSQL) ---------------------------------------


@pytest.fixture
def tenant_id(db: Database) -> int:
    with db.session() as session:
        return build_tenant(session, "alpha").tenant.id


def _counts(db: Database) -> tuple[int, int]:
    with db.session() as session:
        return (
            session.scalar(select(func.count(InsightDataset.id))),
            session.scalar(select(func.count(ProcessEvent.id))),
        )


def test_import_is_all_or_nothing(db, tenant_id, tmp_path):
    # 12,000 good rows (more than one insert batch), then one bad timestamp at the end
    lines = ["case;activity;timestamp"]
    lines += [f"c{i // 4};A{i % 4};2024-01-01 10:{i % 60:02d}" for i in range(12_000)]
    lines.append("c9999;A1;31.13.2024 10:00")
    data = "\n".join(lines).encode()
    with pytest.raises(TableError, match="Zeile 12002"), db.session() as session:
        store.import_event_log(session, tenant_id, data, filename="x.csv")
    assert _counts(db) == (0, 0)


def test_import_keeps_the_original_and_analyses_from_the_database(db, tenant_id, tmp_path):
    originals = OriginalStore(tmp_path / "originals")
    data = GERMAN_CSV.encode("cp1252")
    with db.session() as session:
        result = store.import_event_log(
            session, tenant_id, data, filename="p.csv", store=originals, actor="erika"
        )
        dataset_id = result.dataset.id
        assert result.dataset.summary["cases"] == 2
    assert _counts(db) == (1, 4)
    with db.session() as session:
        dataset = store.get_dataset(session, tenant_id, dataset_id)
        assert originals.get(tenant_id, dataset.original_sha256) == data
        arrays, title = store.load_source(session, tenant_id, str(dataset_id))
    assert title == "p.csv"
    analysis = analyse(arrays)
    assert analysis.edge("Antrag eingegangen", "Prüfung").count == 1
    assert analysis.edge("Prüfung", "Bescheid").median_s == 2 * 86400 + 2.5 * 3600


def test_ocel_round_trip_export_then_import(db, tenant_id):
    data = (
        b"case;activity;timestamp;resource\n"
        b"1;A;2024-01-01 10:00;X\n1;B;2024-01-01 12:00;Y\n2;A;2024-01-02 10:00;X\n"
        b"2;C;2024-01-03 10:00+01:00;Y\n"
    )
    with db.session() as session:
        first = store.import_event_log(session, tenant_id, data, filename="a.csv").dataset.id
        document = store.export_ocel(session, tenant_id, str(first))
    assert {o["type"] for o in document["objects"]} == {"Fall"}
    assert document["events"][3]["time"] == "2024-01-03T09:00:00Z"
    payload = json.dumps(document).encode()
    with db.session() as session:
        second = store.import_event_log(session, tenant_id, payload, filename="a.jsonocel")
        assert second.log.format == "ocel"
        again = store.export_ocel(session, tenant_id, str(second.dataset.id))
        a = analyse(store.load_source(session, tenant_id, str(first))[0])
        b = analyse(store.load_source(session, tenant_id, str(second.dataset.id))[0])
    assert [e["time"] for e in again["events"]] == [e["time"] for e in document["events"]]
    assert [(e.source, e.target, e.count, e.median_s) for e in a.edges] == [
        (e.source, e.target, e.count, e.median_s) for e in b.edges
    ]
    assert [h.count for h in a.handovers] == [h.count for h in b.handovers]


def test_own_case_log_is_a_source_without_persons(db, tenant_id):
    import datetime as dt

    from rathaus.core.cases import record_event

    with db.session() as session:
        case = session.scalars(select(Case).where(Case.tenant_id == tenant_id)).first()
        start = dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC)
        for hours, activity in ((0, "Eingang erfasst"), (5, "Zugewiesen"), (29, "Erledigt")):
            record_event(
                session,
                case,
                kind="status",
                activity=activity,
                actor=None,
                at=start + dt.timedelta(hours=hours),
            )
        session.flush()
        assert session.scalar(select(func.count(CaseEvent.id))) == 3
        arrays, title = store.load_source(session, tenant_id, store.OWN_LOG)
        document = store.export_ocel(session, tenant_id, store.OWN_LOG)
    analysis = analyse(arrays)
    assert title == store.OWN_LOG_NAME
    assert analysis.edge("Zugewiesen", "Erledigt").median_s == 24 * 3600
    assert analysis.resource_label == "Organisationseinheit"
    assert {o["type"] for o in document["objects"]} == {"Vorgang", "Organisationseinheit"}
    assert "system" not in json.dumps(document)  # the acting user is never exported


def test_own_case_log_hides_the_reference_of_confidential_cases(db, tenant_id):
    import datetime as dt

    from rathaus.core.cases import record_event
    from rathaus.core.models import Confidentiality

    with db.session() as session:
        cases = session.scalars(
            select(Case).where(Case.tenant_id == tenant_id).order_by(Case.id)
        ).all()
        secret, ordinary = cases[0], cases[1]
        secret.confidentiality = Confidentiality.VERTRAULICH
        start = dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC)
        for case in (secret, ordinary):
            for hours, activity in ((0, "Eingang erfasst"), (5, "Erledigt")):
                record_event(
                    session,
                    case,
                    kind="status",
                    activity=activity,
                    actor=None,
                    at=start + dt.timedelta(hours=hours),
                )
        session.flush()
        rows = store.own_log_rows(session, tenant_id)
        document = json.dumps(store.export_ocel(session, tenant_id, store.OWN_LOG))
        shown = {r["case"] for r in rows}
        assert ordinary.reference in shown and secret.reference not in shown
        assert secret.reference not in document
        assert len(shown) == 2  # the confidential case still counts, under a pseudonym
        assert store.own_log_rows(session, tenant_id)[0]["case"] in shown  # stable
