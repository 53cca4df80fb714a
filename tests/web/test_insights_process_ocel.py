"""Lagebild › Prozesse: OCEL 2.0 as XML and SQLite through the import form and the JSON API."""

from __future__ import annotations

from sqlalchemy import func, select

from rathaus.core.models import InsightDataset, ProcessEvent
from tests.insights.test_ocel_formats import OCEL, to_sqlite, to_xml
from tests.web.conftest import csrf_of, login


def _count(db) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return (
            session.scalar(select(func.count(InsightDataset.id))),
            session.scalar(select(func.count(ProcessEvent.id))),
        )


def test_form_imports_ocel_xml_and_sqlite(client, worlds, db, tmp_path):
    login(client, "leitung")
    page = client.get("/lagebild/prozesse")
    assert ".xmlocel" in page.text and "OCEL 2.0 (JSON, XML, SQLite)" in page.text
    for filename, data in (
        ("bestellungen.xmlocel", to_xml(OCEL)),
        ("bestellungen.sqlite", to_sqlite(OCEL, tmp_path / "b.sqlite")),
    ):
        answer = client.post(
            "/lagebild/prozesse",
            data={"csrf_token": csrf_of(client), "name": filename, "objekttyp": "order"},
            files={"datei": (filename, data, "application/octet-stream")},
        )
        assert answer.status_code == 303, answer.text
        detail = client.get(answer.headers["location"])
        assert detail.status_code == 200 and "place order" in detail.text
        ocel = client.get(answer.headers["location"] + "/ocel").json()
        assert {o["type"] for o in ocel["objects"]} == {"order", "item"}
    assert _count(db) == (2, 8)
    bad = client.post(
        "/lagebild/prozesse",
        data={"csrf_token": csrf_of(client), "format": "ocel"},
        files={"datei": ("x.sqlite", b"SQLite format 3\x00" + b"\x00" * 50, "x")},
    )
    assert bad.status_code == 422 and "SQLite-Datei ist beschädigt" in bad.text
    assert _count(db) == (2, 8)


def test_api_imports_ocel_xml_and_sqlite_and_refuses_hostile_files(client, worlds, db, tmp_path):
    login(client, "leitung")
    headers = {"X-CSRF-Token": csrf_of(client)}
    api = "/api/v1/lagebild/prozesse"
    created = client.post(
        api,
        files={"datei": ("log.xml", to_xml(OCEL), "text/xml")},
        data={"objekttyp": "item"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert dataset["mapping"]["ocel_format"] == "xml" and dataset["summary"]["cases"] == 1
    sqlite = client.post(
        api,
        files={"datei": ("log.sqlite", to_sqlite(OCEL, tmp_path / "a.sqlite"), "x")},
        headers=headers,
    )
    assert sqlite.status_code == 201, sqlite.text
    analysis = client.get(sqlite.json()["url"]).json()
    assert {(e["source"], e["target"]) for e in analysis["edges"]} == {
        ("place order", "ship"),
        ("place order", "pay"),
    }
    entity = b'<?xml version="1.0"?><!DOCTYPE log [<!ENTITY x "y">]><log><events/></log>'
    for filename, data, message in (
        ("log.xmlocel", entity, "DOCTYPE- oder ENTITY-Deklaration"),
        ("log.xmlocel", b"<log><events><event></log>", "XML-Datei ist fehlerhaft"),
        ("log.sqlite", b"MZ\x90\x00 kein SQLite", "keine SQLite-Datenbank"),
    ):
        refused = client.post(api, files={"datei": (filename, data, "x")}, headers=headers)
        assert refused.status_code == 422 and message in refused.json()["detail"], refused.text
    assert _count(db) == (2, 6)  # 2 item events + 4 order events
