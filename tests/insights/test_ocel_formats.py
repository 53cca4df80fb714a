"""OCEL 2.0 as XML and as SQLite: the same log in all three serialisations gives the same events
and the same analysis; bad, hostile or foreign files are refused in German and write nothing.

The XML and SQLite files are written here from an OCEL JSON document by two small writers that
follow the OCEL 2.0 specification (XML schema; relational tables ``event``, ``object``,
``event_object``, ``object_object``, ``event_map_type``, ``object_map_type``, ``event_<Typ>``,
``object_<Typ>``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from rathaus.core.models import InsightDataset, ProcessEvent
from rathaus.insights import eventlog_store as store
from rathaus.insights.eventlog import detect_format, parse_event_log, parse_ocel, zone_of
from rathaus.insights.ocel import parse_ocel_sqlite, parse_ocel_xml
from rathaus.insights.process import analyse
from rathaus.insights.tabular import TableError
from tests.factories import build_tenant

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "eventlogs"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared/data/eventlogs fehlt")

# two object types; e1 belongs to two orders, e3 has typed attributes
OCEL: dict[str, Any] = {
    "objectTypes": [
        {"name": "order", "attributes": [{"name": "wert", "type": "float"}]},
        {"name": "item", "attributes": []},
    ],
    "eventTypes": [
        {"name": "place order", "attributes": [{"name": "org:resource", "type": "string"}]},
        {"name": "ship", "attributes": []},
        {
            "name": "pay",
            "attributes": [
                {"name": "betrag", "type": "float"},
                {"name": "raten", "type": "integer"},
                {"name": "bar", "type": "boolean"},
                {"name": "notiz", "type": "string"},
            ],
        },
    ],
    "objects": [
        {
            "id": "o1",
            "type": "order",
            "attributes": [{"name": "wert", "time": "1970-01-01T00:00:00Z", "value": 9.5}],
            "relationships": [{"objectId": "i1", "qualifier": "enthält"}],
        },
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
            "relationships": [{"objectId": "o1", "qualifier": ""}, {"objectId": "i1"}],
        },
        {
            "id": "e3",
            "type": "pay",
            "time": "2024-01-03T08:30:15.250000Z",
            "attributes": [
                {"name": "betrag", "value": 12.5},
                {"name": "raten", "value": 3},
                {"name": "bar", "value": True},
                {"name": "notiz", "value": "Größe <M> & „Ü“"},
            ],
            "relationships": [{"objectId": "o2", "qualifier": "bezahlt"}],
        },
    ],
}


# -- writers (test only) -----------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_xml(doc: dict[str, Any], *, xsd_relations: bool = False) -> bytes:
    """OCEL 2.0 XML. ``xsd_relations`` writes relations as ``<object object-id>`` (the XSD's
    element) instead of ``<relationship object-id>`` (the specification's examples)."""
    log = ET.Element("log")
    for section, item, key in (
        ("object-types", "object-type", "objectTypes"),
        ("event-types", "event-type", "eventTypes"),
    ):
        parent = ET.SubElement(log, section)
        for kind in doc.get(key, []):
            node = ET.SubElement(parent, item, name=kind["name"])
            attributes = ET.SubElement(node, "attributes")
            for a in kind["attributes"]:
                ET.SubElement(attributes, "attribute", name=a["name"], type=a["type"])
    relation_tag = "object" if xsd_relations else "relationship"
    objects = ET.SubElement(log, "objects")
    for o in doc["objects"]:
        node = ET.SubElement(objects, "object", id=o["id"], type=o["type"])
        attributes = ET.SubElement(node, "attributes")
        for a in o.get("attributes", []):
            ET.SubElement(attributes, "attribute", name=a["name"], time=a["time"]).text = _text(
                a["value"]
            )
        rels = ET.SubElement(node, "objects")
        for r in o.get("relationships", []):
            ET.SubElement(
                rels, relation_tag, {"object-id": r["objectId"]}, qualifier=r["qualifier"]
            )
    events = ET.SubElement(log, "events")
    for e in doc["events"]:
        node = ET.SubElement(events, "event", id=e["id"], type=e["type"], time=e["time"])
        attributes = ET.SubElement(node, "attributes")
        for a in e["attributes"]:
            ET.SubElement(attributes, "attribute", name=a["name"]).text = _text(a["value"])
        rels = ET.SubElement(node, "objects")
        for r in e["relationships"]:
            attrs = {"object-id": r["objectId"], "qualifier": r.get("qualifier", "")}
            ET.SubElement(rels, relation_tag, attrs)
    ET.indent(log)
    return ET.tostring(log, encoding="utf-8", xml_declaration=True)


def _table_suffix(name: str, used: set[str]) -> str:
    base = re.sub(r"\W+", "", name.title()) or "Typ"
    suffix, n = base, 1
    while suffix.lower() in used:
        n += 1
        suffix = f"{base}{n}"
    used.add(suffix.lower())
    return suffix


def _sql_time(value: str) -> str:
    """Times as many SQLite exporters write them: UTC, without offset, space as separator
    (text that is no time is written as it is)."""
    if not value[:1].isdigit():
        return value
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)
    return moment.replace(tzinfo=None).isoformat(sep=" ")


def _sql_value(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


SQL_TYPES = {"integer": "INTEGER", "float": "REAL", "boolean": "BOOLEAN", "time": "TIMESTAMP"}
SQL_TYPES |= {"string": "TEXT"}


def to_sqlite(doc: dict[str, Any], path: Path) -> bytes:
    """OCEL 2.0 relational format as a SQLite file; returns its bytes."""
    q = '"{}"'.format
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE event (ocel_id TEXT PRIMARY KEY, ocel_type TEXT);
        CREATE TABLE object (ocel_id TEXT PRIMARY KEY, ocel_type TEXT);
        CREATE TABLE event_object (ocel_event_id TEXT, ocel_object_id TEXT, ocel_qualifier TEXT);
        CREATE TABLE object_object (ocel_source_id TEXT, ocel_target_id TEXT, ocel_qualifier TEXT);
        CREATE TABLE event_map_type (ocel_type TEXT, ocel_type_map TEXT);
        CREATE TABLE object_map_type (ocel_type TEXT, ocel_type_map TEXT);
        """
    )
    used: set[str] = set()
    event_tables: dict[str, tuple[str, list[str]]] = {}
    declared = {
        t["name"]: {a["name"]: a["type"] for a in t["attributes"]} for t in doc["eventTypes"]
    }
    for e in doc["events"]:
        for a in e["attributes"]:
            declared.setdefault(e["type"], {}).setdefault(a["name"], "string")
    for etype, attributes in declared.items():
        suffix = _table_suffix(etype, used)
        columns = "".join(f", {q(a)} {SQL_TYPES[kind]}" for a, kind in attributes.items())
        con.execute(
            f"CREATE TABLE {q('event_' + suffix)} (ocel_id TEXT, ocel_time TIMESTAMP{columns})"
        )
        con.execute("INSERT INTO event_map_type VALUES (?, ?)", (etype, suffix))
        event_tables[etype] = ("event_" + suffix, list(attributes))
    for t in doc["objectTypes"]:
        suffix = _table_suffix(t["name"], used)
        extra = "".join(f", {q(a['name'])} TEXT" for a in t["attributes"])
        con.execute(
            f"CREATE TABLE {q('object_' + suffix)} "
            f"(ocel_id TEXT, ocel_time TIMESTAMP, ocel_changed_field TEXT{extra})"
        )
        con.execute("INSERT INTO object_map_type VALUES (?, ?)", (t["name"], suffix))
    for o in doc["objects"]:
        con.execute("INSERT INTO object VALUES (?, ?)", (o["id"], o["type"]))
        for r in o.get("relationships", []):
            con.execute(
                "INSERT INTO object_object VALUES (?, ?, ?)",
                (o["id"], r["objectId"], r["qualifier"]),
            )
    for e in doc["events"]:
        con.execute("INSERT INTO event VALUES (?, ?)", (e["id"], e["type"]))
        table, attributes = event_tables[e["type"]]
        values = {a["name"]: _sql_value(a["value"]) for a in e["attributes"]}
        con.execute(
            f"INSERT INTO {q(table)} VALUES ({', '.join('?' * (2 + len(attributes)))})",
            (e["id"], _sql_time(e["time"]), *(values.get(a) for a in attributes)),
        )
        for r in e["relationships"]:
            con.execute(
                "INSERT INTO event_object VALUES (?, ?, ?)",
                (e["id"], r["objectId"], r.get("qualifier", "")),
            )
    con.commit()
    con.close()
    return path.read_bytes()


def _events(log: Any) -> list[tuple]:
    return [(e.case_key, e.activity, e.timestamp, e.resource, e.data) for e in log.events]


def _without_booleans(rows: list[tuple]) -> list[tuple]:
    """SQLite has no boolean type: ``True`` comes back as 1 (compare the rest strictly)."""
    return [
        (*row[:4], {k: (int(v) if isinstance(v, bool) else v) for k, v in row[4].items()})
        for row in rows
    ]


# -- the three serialisations give the same events ---------------------------------------------


def test_xml_reads_like_json_with_typed_attributes_and_flattening():
    as_json = parse_ocel(json.dumps(OCEL).encode(), object_type="order")
    for xsd in (False, True):
        as_xml = parse_ocel_xml(to_xml(OCEL, xsd_relations=xsd), object_type="order")
        assert _events(as_xml) == _events(as_json)
        assert as_xml.mapping["ocel_format"] == "xml"
    assert [(e.case_key, e.activity) for e in as_json.events] == [
        ("o1", "place order"),
        ("o2", "place order"),
        ("o1", "ship"),
        ("o2", "pay"),
    ]
    pay = as_json.events[3].data
    assert pay["betrag"] == 12.5 and pay["raten"] == 3 and pay["bar"] is True
    assert pay["notiz"] == "Größe <M> & „Ü“"
    # the relations of every event are kept (for the export), the other type's objects included
    assert as_json.events[0].data["ocel"]["objects"][2] == {
        "id": "i1",
        "type": "item",
        "qualifier": "contains",
    }
    chosen = parse_ocel_xml(to_xml(OCEL))
    assert chosen.mapping["object_type"] == "order" and "item" in chosen.notes[0]
    items = parse_event_log(to_xml(OCEL), "log.xmlocel", object_type="item")
    assert [e.case_key for e in items.events] == ["i1", "i1"]


def test_sqlite_reads_like_json(tmp_path):
    data = to_sqlite(OCEL, tmp_path / "log.sqlite")
    as_json = parse_ocel(json.dumps(OCEL).encode(), object_type="order")
    utc = zone_of("UTC")  # to_sqlite writes UTC without offset, like many SQLite exporters
    as_sqlite = parse_ocel_sqlite(data, object_type="order", zone=utc)
    assert _events(as_sqlite) == _without_booleans(_events(as_json))
    assert as_sqlite.mapping | {"ocel_format": "json", "timezone": "Europe/Berlin"} == (
        as_json.mapping
    )
    assert as_sqlite.events[2].timestamp.isoformat() == "2024-01-02T09:00:00+00:00"
    assert parse_ocel_sqlite(data, zone=utc).notes == [
        *parse_ocel(json.dumps(OCEL).encode()).notes,
        "Alle Zeitpunkte ohne Zeitzone wurden als Uhrzeit in UTC gelesen (nicht in der "
        "Zeitzone des Servers).",
    ]
    # without a zone the same wall-clock times are German time (winter: one hour earlier)
    berlin = parse_ocel_sqlite(data, object_type="order")
    assert berlin.events[2].timestamp.isoformat() == "2024-01-02T08:00:00+00:00"
    items = parse_event_log(data, "export.db", object_type="item")  # recognised by its header
    assert [e.case_key for e in items.events] == ["i1", "i1"]


def test_format_detection():
    xml = to_xml(OCEL)
    assert detect_format(xml, "log.xml") == "ocel"  # <log> like XES, but OCEL sections
    assert detect_format(xml, "") == "ocel"
    assert detect_format(xml, "log.xmlocel") == "ocel"
    assert detect_format(b"SQLite format 3\x00" + b"\x00" * 100, "daten.bin") == "ocel"
    assert detect_format(b"", "log.sqlite") == "ocel"
    xes = b'<?xml version="1.0"?><log xes.version="1.0"><trace><event/></trace></log>'
    assert detect_format(xes, "log.xml") == "xes"


@needs_data
@pytest.mark.slow
def test_round_trip_json_xml_sqlite_give_the_same_analysis(db, tmp_path):
    """receipt.csv → our OCEL JSON export → the same log as XML and SQLite → import each:
    activity counts, directly-follows edges, waiting times and handovers are identical."""
    with db.session() as session:
        tenant_id = build_tenant(session, "alpha").tenant.id
    csv = (DATA / "receipt.csv").read_bytes()
    with db.session() as session:
        first = store.import_event_log(session, tenant_id, csv, filename="receipt.csv")
        document = store.export_ocel(session, tenant_id, str(first.dataset.id))
        base = analyse(store.load_source(session, tenant_id, str(first.dataset.id))[0])
    files = {
        "receipt.jsonocel": json.dumps(document).encode(),
        "receipt.xml": to_xml(document),
        "receipt.sqlite": to_sqlite(document, tmp_path / "receipt.sqlite"),
    }
    results = {}
    for name, data in files.items():
        with db.session() as session:
            # to_sqlite writes UTC without offset: the import names that zone
            zone = "UTC" if name.endswith(".sqlite") else None
            imported = store.import_event_log(session, tenant_id, data, filename=name, zone=zone)
            assert imported.log.format == "ocel" and imported.dataset.summary["events"] == 8577
            dataset_id = str(imported.dataset.id)
            results[name] = analyse(store.load_source(session, tenant_id, dataset_id)[0])
            exported = store.export_ocel(session, tenant_id, dataset_id)
        assert [e["time"] for e in exported["events"]] == [e["time"] for e in document["events"]]
        assert [e["relationships"] for e in exported["events"]] == [
            e["relationships"] for e in document["events"]
        ]
    for name, result in results.items():
        assert [(a.name, a.events, a.cases) for a in result.activities] == [
            (a.name, a.events, a.cases) for a in base.activities
        ], name
        assert [(e.source, e.target, e.count, e.median_s, e.p90_s) for e in result.edges] == [
            (e.source, e.target, e.count, e.median_s, e.p90_s) for e in base.edges
        ], name
        assert [(h.source, h.target, h.count) for h in result.handovers] == [
            (h.source, h.target, h.count) for h in base.handovers
        ], name
        assert result.to_dict() == results["receipt.jsonocel"].to_dict(), name
    assert len(base.edges) == 99


# -- bad and hostile input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<log><events><event id='e1'></events></log>", "XML-Datei ist fehlerhaft"),
        (
            b'<?xml version="1.0"?><!DOCTYPE log [<!ENTITY a "aaaa">]><log>&a;</log>',
            "DOCTYPE- oder ENTITY-Deklaration",
        ),
        (
            b'<!DOCTYPE log SYSTEM "file:///etc/passwd"><log><events/></log>',
            "DOCTYPE- oder ENTITY-Deklaration",
        ),
        (b"<ocel><events/></ocel>", "Wurzelelement heißt <ocel>"),
        (b"<log><objects/></log>", "Element <events> fehlt"),
        (
            b'<log xes.version="1.0"><trace><event/></trace></log>',
            "XES-Datei, kein OCEL 2.0",
        ),
        (b"<log><objects><object id='o1'/></objects><events/></log>", "<object> Nr. 1"),
        (
            b"<log><objects><object id='o1' type='A'/></objects><events>"
            b"<event id='e1' type='X' time='gestern'><objects>"
            b"<relationship object-id='o1' qualifier=''/></objects></event></events></log>",
            "Ereignis 1 („e1“, <event>): „gestern“ ist kein Zeitpunkt",
        ),
        (
            b"<log><objects><object id='o1' type='A'/></objects><events>"
            b"<event id='e1' type='X' time='2024-01-01'/></events></log>",
            "keine Ereignisse mit Bezug zu Objekten",
        ),
    ],
)
def test_bad_xml_is_refused_in_german(data, message):
    with pytest.raises(TableError, match=re.escape(message)):
        parse_event_log(data, "log.xmlocel")


def _sqlite(tmp_path: Path, script: str) -> bytes:
    path = tmp_path / "x.sqlite"
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    con.executescript(script)
    con.commit()
    con.close()
    return path.read_bytes()


def test_bad_sqlite_is_refused_in_german(tmp_path):
    with pytest.raises(TableError, match="keine SQLite-Datenbank"):
        parse_ocel_sqlite(b"PK\x03\x04 not a database at all")
    with pytest.raises(TableError, match=r"Es fehlen die Tabellen „event“.*vorhanden: kunden"):
        parse_ocel_sqlite(_sqlite(tmp_path, "CREATE TABLE kunden (id INTEGER);"))
    good = to_sqlite(OCEL, tmp_path / "good.sqlite")
    with pytest.raises(TableError, match="beschädigt"):
        parse_ocel_sqlite(good[:4096] + b"\xff" * (len(good) - 4096))  # header fine, pages not
    with pytest.raises(TableError, match="beschädigt|kein OCEL"):
        parse_ocel_sqlite(good[:200])  # cut off
    # a view named like an OCEL table does not count: no query on it is ever run
    view = _sqlite(
        tmp_path,
        "CREATE TABLE object (ocel_id, ocel_type); CREATE TABLE event_object (ocel_event_id,"
        " ocel_object_id); CREATE TABLE event_map_type (ocel_type, ocel_type_map);"
        " CREATE VIEW event AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)"
        " SELECT n AS ocel_id, n AS ocel_type FROM r;",
    )
    with pytest.raises(TableError, match="Es fehlen die Tabellen „event“"):
        parse_ocel_sqlite(view)
    no_column = _sqlite(
        tmp_path,
        "CREATE TABLE event (ocel_id, art); CREATE TABLE object (ocel_id, ocel_type);"
        " CREATE TABLE event_object (ocel_event_id, ocel_object_id);"
        " CREATE TABLE event_map_type (ocel_type, ocel_type_map);",
    )
    with pytest.raises(TableError, match="In der Tabelle „event“ fehlen die Spalten „ocel_type“"):
        parse_ocel_sqlite(no_column)


def test_sqlite_errors_name_table_and_row(tmp_path):
    path = tmp_path / "log.sqlite"
    to_sqlite(OCEL, path)
    con = sqlite3.connect(path)
    con.execute("UPDATE event_Ship SET ocel_time = '31.02.2024' WHERE ocel_id = 'e2'")
    con.commit()
    con.close()
    with pytest.raises(
        TableError, match=r"Tabelle „event“, Zeile 2 \(Ereignis „e2“\): „31.02.2024“ ist kein"
    ):
        parse_ocel_sqlite(path.read_bytes())
    con = sqlite3.connect(path)
    con.execute("DROP TABLE event_Pay")
    con.commit()
    con.close()
    with pytest.raises(TableError, match=r"Zeile 3: .*„pay“ fehlt die Tabelle „event_Pay“"):
        parse_ocel_sqlite(path.read_bytes())
    con = sqlite3.connect(path)
    con.execute("DELETE FROM event_map_type WHERE ocel_type = 'pay'")
    con.commit()
    con.close()
    with pytest.raises(TableError, match=r"Zeile 3 \(Ereignis „e3“\): .*„pay“ gibt es in"):
        parse_ocel_sqlite(path.read_bytes())


def test_sqlite_limits_refuse_huge_tables(tmp_path, monkeypatch):
    from rathaus.insights import ocel

    data = to_sqlite(OCEL, tmp_path / "log.sqlite")
    monkeypatch.setattr(ocel, "MAX_RELATIONS", 5)  # OCEL has 6 event-object relations
    with pytest.raises(TableError, match="mehr als 5 Ereignis-Objekt-Beziehungen"):
        parse_ocel_sqlite(data)
    monkeypatch.setattr(ocel, "MAX_RELATIONS", 6)
    assert parse_ocel_sqlite(data).events
    monkeypatch.setattr(ocel, "MAX_EVENTS", 2)
    with pytest.raises(TableError, match="mehr als 2 Ereignisse"):
        parse_ocel_sqlite(data)
    with pytest.raises(TableError, match="mehr als 2 Ereignisse"):
        parse_ocel_xml(to_xml(OCEL))


def test_failed_ocel_import_writes_nothing(db, tmp_path):
    with db.session() as session:
        tenant_id = build_tenant(session, "alpha").tenant.id
    broken = json.loads(json.dumps(OCEL))
    broken["events"][2]["time"] = "nie"
    for name, data in (
        ("log.xml", to_xml(broken)),
        ("log.sqlite", to_sqlite(broken, tmp_path / "broken.sqlite")),
    ):
        with pytest.raises(TableError, match="„nie“ ist kein Zeitpunkt"), db.session() as session:
            store.import_event_log(session, tenant_id, data, filename=name)
    with db.session() as session:
        assert session.scalar(select(func.count(InsightDataset.id))) == 0
        assert session.scalar(select(func.count(ProcessEvent.id))) == 0


# -- command line ------------------------------------------------------------------------------


def test_cli_imports_xml_and_sqlite_and_refuses_a_bad_database(db, tmp_path):
    import typer

    from rathaus.cli import lage_process
    from tests.test_cli import in_process

    with db.session() as session:
        build_tenant(session, "alpha")
    app = typer.Typer()
    lage_process.register(app, typer.Typer())
    cli = in_process(tmp_path, db, app=app, queue=None)
    xml = tmp_path / "bestellungen.xml"
    xml.write_bytes(to_xml(OCEL))
    done = cli("prozess-import", str(xml), "--objekttyp", "order", "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output)
    assert (summary["events"], summary["cases"], summary["format"]) == (4, 2, "ocel")
    sqlite_file = tmp_path / "bestellungen.db"  # a neutral name: recognised by the SQLite header
    to_sqlite(OCEL, sqlite_file)
    done = cli("prozess-import", str(sqlite_file))
    assert done.exit_code == 0, done.output
    assert "4 Ereignisse, 2 Fälle" in done.output and "Objekttyp „order“" in done.output
    analysis = cli("prozess", str(summary["id"]), "--json")
    edges = {
        (e["source"], e["target"]): e["median_s"] for e in json.loads(analysis.output)["edges"]
    }
    assert edges == {("place order", "ship"): 23 * 3600.0, ("place order", "pay"): 167415.25}
    fake = tmp_path / "fake.sqlite"
    fake.write_text("id;name\n1;kein SQLite\n", encoding="utf-8")
    failed = cli("prozess-import", str(fake))
    assert failed.exit_code != 0 and "keine SQLite-Datenbank" in str(failed.exception)
    with db.session() as session:
        assert session.scalar(select(func.count(InsightDataset.id))) == 2
