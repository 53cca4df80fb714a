"""Timestamps without a time zone: read as the municipality's wall clock (``Europe/Berlin`` unless
the import names another zone), never as the server's zone; written offsets are kept."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from rathaus.core.db import Database
from rathaus.core.models import ProcessEvent
from rathaus.insights import eventlog_store as store
from rathaus.insights.eventlog import DEFAULT_ZONE, parse_event_log, zone_of
from rathaus.insights.eventlog_store import to_us
from rathaus.insights.process import analyse, from_columns
from rathaus.insights.process_hours import WorkingHours, local_time_us
from rathaus.insights.tabular import TableError
from tests.factories import build_tenant

UTC = dt.UTC
US = 1_000_000
NAIVE_AS_UTC_DIFFERING_MEDIANS = 2  # of 99; see docs/process-mining.md

NAIVE_CSV = (
    b"case;activity;timestamp\n"
    b"A-1;Eingang;2024-03-04 08:15:00\n"  # Monday, winter time (+01:00)
    b"A-1;Bescheid;2024-07-01 08:15:00\n"  # Monday, summer time (+02:00)
)


def _utc(log) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.timestamp.isoformat() for e in log.events]


def _xes(stamps: list[str]) -> bytes:
    events = "".join(
        f'<event><string key="concept:name" value="S{i}"/>'
        f'<date key="time:timestamp" value="{s}"/></event>'
        for i, s in enumerate(stamps)
    )
    return (
        f'<?xml version="1.0"?><log xes.version="1.0"><trace>'
        f'<string key="concept:name" value="A-1"/>{events}</trace></log>'
    ).encode()


def _ocel_json(stamps: list[str]) -> bytes:
    return json.dumps(
        {
            "objectTypes": [{"name": "antrag", "attributes": []}],
            "eventTypes": [{"name": f"S{i}", "attributes": []} for i in range(len(stamps))],
            "objects": [{"id": "A-1", "type": "antrag"}],
            "events": [
                {
                    "id": f"e{i}",
                    "type": f"S{i}",
                    "time": s,
                    "relationships": [{"objectId": "A-1", "qualifier": ""}],
                }
                for i, s in enumerate(stamps)
            ],
        }
    ).encode()


def _ocel_sqlite(tmp_path: Path, stamps: list[str]) -> bytes:
    path = tmp_path / "ocel.sqlite"
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE event (ocel_id TEXT, ocel_type TEXT);
        CREATE TABLE object (ocel_id TEXT, ocel_type TEXT);
        CREATE TABLE event_object (ocel_event_id TEXT, ocel_object_id TEXT, ocel_qualifier TEXT);
        CREATE TABLE event_map_type (ocel_type TEXT, ocel_type_map TEXT);
        CREATE TABLE event_Schritt (ocel_id TEXT, ocel_time TIMESTAMP);
        INSERT INTO object VALUES ('A-1', 'antrag');
        INSERT INTO event_map_type VALUES ('Schritt', 'Schritt');
        """
    )
    for i, stamp in enumerate(stamps):
        con.execute("INSERT INTO event VALUES (?, 'Schritt')", (f"e{i}",))
        con.execute("INSERT INTO event_Schritt VALUES (?, ?)", (f"e{i}", stamp))
        con.execute("INSERT INTO event_object VALUES (?, 'A-1', '')", (f"e{i}",))
    con.commit()
    con.close()
    return path.read_bytes()


def _xlsx(stamps: list[dt.datetime]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Aktenzeichen", "Tätigkeit", "Zeitpunkt"])
    for i, stamp in enumerate(stamps):
        sheet.append(["A-1", f"S{i}", stamp])  # a real Excel date cell: it has no zone
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- every reader --------------------------------------------------------------------------------


def test_naive_csv_is_berlin_wall_time_in_winter_and_summer():
    log = parse_event_log(NAIVE_CSV, "log.csv")
    assert _utc(log) == ["2024-03-04T07:15:00+00:00", "2024-07-01T06:15:00+00:00"]
    assert log.mapping["timezone"] == DEFAULT_ZONE == "Europe/Berlin"
    assert "Alle Zeitpunkte ohne Zeitzone wurden als Uhrzeit in Europe/Berlin gelesen" in (
        " ".join(log.notes)
    )


@pytest.mark.parametrize(
    "stamp",
    ["2024-03-04 08:15:00", "04.03.2024 08:15", "2024-03-04T08:15:00", "04/03/2024 08:15"],
)
def test_every_naive_spelling_is_read_the_same(stamp):
    data = f"case;activity;timestamp\nA-1;Eingang;{stamp}\n".encode()
    assert _utc(parse_event_log(data, "log.csv")) == ["2024-03-04T07:15:00+00:00"]


def test_written_offsets_and_z_keep_their_instant():
    data = (
        b"case;activity;timestamp\n"
        b"A-1;S1;2024-03-04T08:15:00Z\n"
        b"A-1;S2;2024-03-04 08:15:00+05:30\n"
        b"A-1;S3;2024-03-04 08:15:00\n"
    )
    for zone in (None, "UTC", "America/New_York"):
        log = parse_event_log(data, "log.csv", zone=zone)
        assert _utc(log)[:2] == ["2024-03-04T08:15:00+00:00", "2024-03-04T02:45:00+00:00"]
    assert "1 von 3 Zeitpunkte ohne Zeitzone" in " ".join(parse_event_log(data, "log.csv").notes)


def test_a_log_with_offsets_only_gets_no_time_zone_note():
    data = b"case;activity;timestamp\nA-1;S1;2024-03-04T08:15:00Z\n"
    assert not any("Zeitzone" in n for n in parse_event_log(data, "log.csv").notes)


def test_xes_ocel_json_ocel_sqlite_and_xlsx_read_naive_times_alike(tmp_path):
    naive = ["2024-03-04T08:15:00", "2024-07-01T08:15:00"]
    expected = ["2024-03-04T07:15:00+00:00", "2024-07-01T06:15:00+00:00"]
    assert _utc(parse_event_log(_xes(naive), "log.xes")) == expected
    assert _utc(parse_event_log(_ocel_json(naive), "log.jsonocel")) == expected
    sqlite_naive = [s.replace("T", " ") for s in naive]  # as SQLite exports write them
    assert _utc(parse_event_log(_ocel_sqlite(tmp_path, sqlite_naive), "log.sqlite")) == expected
    cells = [dt.datetime(2024, 3, 4, 8, 15), dt.datetime(2024, 7, 1, 8, 15)]
    assert _utc(parse_event_log(_xlsx(cells), "log.xlsx")) == expected
    # the zone of the import applies to every format
    as_utc = parse_event_log(_ocel_sqlite(tmp_path, sqlite_naive), "log.sqlite", zone="UTC")
    assert _utc(as_utc) == ["2024-03-04T08:15:00+00:00", "2024-07-01T08:15:00+00:00"]


def test_xes_and_ocel_keep_written_offsets():
    zoned = ["2024-03-04T08:15:00.000+01:00", "2024-07-01T08:15:00Z"]
    expected = ["2024-03-04T07:15:00+00:00", "2024-07-01T08:15:00+00:00"]
    for zone in (None, "America/New_York"):
        assert _utc(parse_event_log(_xes(zoned), "log.xes", zone=zone)) == expected
        assert _utc(parse_event_log(_ocel_json(zoned), "log.json", zone=zone)) == expected


# -- the two edges of daylight saving time -------------------------------------------------------


def test_the_autumn_hour_that_occurs_twice_is_read_as_its_first_occurrence():
    data = (
        b"case;activity;timestamp\n"
        b"A-1;S1;27.10.2024 01:30\n"
        b"A-1;S2;27.10.2024 02:30\n"  # exists twice: 00:30Z (summer) and 01:30Z (winter)
        b"A-1;S3;27.10.2024 03:30\n"
    )
    log = parse_event_log(data, "log.csv")
    assert _utc(log) == [
        "2024-10-26T23:30:00+00:00",
        "2024-10-27T00:30:00+00:00",
        "2024-10-27T02:30:00+00:00",
    ]
    notes = " ".join(log.notes)
    assert "1 Zeitpunkt(e) lagen in der doppelten Stunde" in notes
    assert "27.10.2024 02:30" in notes and "erste Auftreten (noch Sommerzeit)" in notes


def test_the_spring_hour_that_does_not_exist_is_shifted_forward():
    data = (
        b"case;activity;timestamp\n"
        b"A-1;S1;31.03.2024 01:30\n"
        b"A-1;S2;31.03.2024 02:30\n"  # no such wall time in Berlin: read as 03:30 summer time
        b"A-1;S3;31.03.2024 03:30\n"
    )
    log = parse_event_log(data, "log.csv")
    assert _utc(log) == [
        "2024-03-31T00:30:00+00:00",
        "2024-03-31T01:30:00+00:00",
        "2024-03-31T01:30:00+00:00",
    ]
    notes = " ".join(log.notes)
    assert "1 Zeitpunkt(e) lagen in der Stunde, die bei der Umstellung auf Sommerzeit" in notes
    assert "(02:30 → 03:30 Uhr)" in notes
    assert "doppelten Stunde" not in notes


def test_dst_edges_follow_the_chosen_zone():
    # New York changes on other days and at other hours than Berlin
    data = b"case;activity;timestamp\nA-1;S1;2024-03-10 02:30\nA-1;S2;2024-11-03 01:30\n"
    log = parse_event_log(data, "log.csv", zone="America/New_York")
    assert _utc(log) == ["2024-03-10T07:30:00+00:00", "2024-11-03T05:30:00+00:00"]
    assert log.mapping["timezone"] == "America/New_York"
    berlin = parse_event_log(data, "log.csv")
    assert not any("Umstellung" in n for n in berlin.notes)


# -- the zone of an import -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Mars/Olympus", "../etc/passwd", "/etc/localtime", "Europe"])
def test_an_unknown_zone_is_a_german_error(name):
    with pytest.raises(TableError, match="Die Zeitzone „.*“ ist unbekannt.*Europe/Berlin"):
        parse_event_log(NAIVE_CSV, "log.csv", zone=name)


def test_an_empty_zone_is_the_default():
    assert zone_of("") is zone_of(None) is zone_of(" Europe/Berlin ")


def test_the_import_keeps_the_zone_in_mapping_and_audit(sqlite_db: Database):
    from rathaus.core.models import AuditEvent

    with sqlite_db.session() as session:
        tenant = build_tenant(session, "alpha").tenant
        result = store.import_event_log(
            session, tenant.id, NAIVE_CSV, filename="log.csv", zone="Europe/Vienna"
        )
        assert result.dataset.mapping["timezone"] == "Europe/Vienna"
        entry = session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "insights.eventlog_imported")
        ).one()
        assert entry.data["timezone"] == "Europe/Vienna"


# -- business hours ------------------------------------------------------------------------------


def _arrays(log):  # type: ignore[no-untyped-def]
    return from_columns(
        [e.case_key for e in log.events],
        [e.activity for e in log.events],
        [to_us(e.timestamp) for e in log.events],
        None,
        [e.position for e in log.events],
    )


def test_business_hours_of_a_naive_0815_event_start_at_0815_berlin():
    data = (
        b"case;activity;timestamp\n"
        b"A-1;Eingang;2024-03-04 07:45\n"  # Monday, before opening: counts from 08:00
        b"A-1;Pruefung;2024-03-04 08:15\n"
        b"B-1;Eingang;2024-07-01 07:45\n"  # the same in summer time
        b"B-1;Pruefung;2024-07-01 08:15\n"
    )
    log = parse_event_log(data, "log.csv")
    wall = local_time_us(np.asarray([to_us(e.timestamp) for e in log.events], dtype=np.int64))
    assert [int(w) // US % 86_400 for w in wall] == [27_900, 29_700, 27_900, 29_700]
    hours = WorkingHours(land="BW", start="08:00", end="16:00")
    edge = analyse(_arrays(log), hours=hours).edge("Eingang", "Pruefung")
    assert edge.count == 2 and edge.median_s == 15 * 60  # 08:00 → 08:15 on both days


# -- the server's own zone does not matter ------------------------------------------------------

_CHILD = """
import json, os, sys, time
from sqlalchemy import select
from rathaus.core.db import Database
from rathaus.core.models import ProcessEvent
from rathaus.insights import eventlog_store as store
from tests.factories import build_tenant

db = Database(sys.argv[1])
with db.session() as session:
    tenant = build_tenant(session, sys.argv[2]).tenant
    dataset = store.import_event_log(session, tenant.id, sys.stdin.buffer.read(),
                                     filename="log.csv").dataset
    session.commit()
with db.session() as session:
    stamps = session.scalars(select(ProcessEvent.timestamp)
                             .where(ProcessEvent.dataset_id == dataset.id)
                             .order_by(ProcessEvent.position)).all()
    document = store.export_ocel(session, tenant.id, str(dataset.id))
print(json.dumps({"offset": time.strftime("%z"), "tz": os.environ.get("TZ"),
                  "stored": [store._iso(s) for s in stamps],
                  "exported": [e["time"] for e in document["events"]]}))
"""


def test_the_same_naive_file_gives_the_same_stored_instants_whatever_tz(sqlite_db: Database):
    root = Path(__file__).resolve().parents[2]
    data = NAIVE_CSV + b"A-2;Eingang;27.10.2024 02:30\nA-2;Bescheid;31.03.2024 02:30\n"
    results = []
    for number, tz in enumerate(("UTC", "America/New_York", "Europe/Berlin")):
        path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)
        env = dict(os.environ, TZ=tz, PYTHONPATH=path)
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, sqlite_db.url, f"kommune{number}"],
            input=data,
            capture_output=True,
            env=env,
            cwd=root,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        results.append(json.loads(done.stdout.decode().strip().splitlines()[-1]))
    assert results[0]["offset"] == "+0000" and results[1]["offset"] in ("-0500", "-0400")
    expected = [
        "2024-03-04T07:15:00Z",
        "2024-07-01T06:15:00Z",
        "2024-10-27T00:30:00Z",
        "2024-03-31T01:30:00Z",
    ]
    for result in results:
        assert result["stored"] == expected, result["tz"]
        assert result["exported"] == expected, result["tz"]
    with sqlite_db.session() as session:
        assert session.query(ProcessEvent).count() == 3 * len(expected)


# -- the pm4py comparison on a file without zones ------------------------------------------------

RECEIPT = Path(__file__).resolve().parents[3] / "shared" / "data" / "eventlogs" / "receipt.csv"


def _medians(data: bytes, zone: str | None) -> dict[tuple[str, str], float]:
    log = parse_event_log(data, "receipt.csv", zone=zone)
    arrays = from_columns(
        [e.case_key for e in log.events],
        [e.activity for e in log.events],
        [to_us(e.timestamp) for e in log.events],
        [e.resource for e in log.events],
        [e.position for e in log.events],
    )
    return {(e.source, e.target): e.median_s for e in analyse(arrays).edges}


@pytest.mark.skipif(not RECEIPT.is_file(), reason="receipt.csv fehlt (gemeinsame Daten)")
def test_naive_receipt_read_as_berlin_gives_the_pm4py_medians_again():
    """receipt.csv (Dutch times, +01:00/+02:00 like Berlin) with every offset cut off: read as
    Europe/Berlin it is the same log; read as UTC (what pm4py does with naive times) the
    waiting times across a clock change are an hour off."""
    from tests.insights.test_process_pm4py import PM4PY_EDGES

    naive = re.sub(rb"(\d\d:\d\d:\d\d(?:\.\d+)?)[+-]\d\d:\d\d", rb"\1", RECEIPT.read_bytes())
    assert b"+01:00" not in naive and b"+02:00" not in naive
    expected = {(a, b): median for a, b, _, median in PM4PY_EDGES}
    berlin = _medians(naive, None)
    assert berlin.keys() == expected.keys()
    for key, median in expected.items():
        assert berlin[key] == pytest.approx(median, abs=1e-6), key
    as_utc = _medians(naive, "UTC")
    differing = [k for k, m in expected.items() if as_utc[k] != pytest.approx(m, abs=1e-6)]
    assert len(differing) == NAIVE_AS_UTC_DIFFERING_MEDIANS
