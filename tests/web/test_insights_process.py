"""Lagebild › Prozesse in the browser's place: import form, detail page, exports, JSON API."""

from __future__ import annotations

import io
import json

from openpyxl import load_workbook
from sqlalchemy import func, select

from rathaus.core.models import InsightDataset, ProcessEvent
from tests.web.conftest import csrf_of, login

CSV = (
    "Aktenzeichen;Tätigkeit;Zeitpunkt;Sachgebiet\r\n"
    "BA-1;Antrag eingegangen;02.01.2024 08:00;Poststelle\r\n"
    "BA-1;Prüfung;03.01.2024 09:30;Bürgeramt\r\n"
    "BA-2;Prüfung;02.01.2024 11:00;Bürgeramt\r\n"  # later than the next row of its case
    "BA-2;Antrag eingegangen;02.01.2024 10:00;Poststelle\r\n"
    "BA-1;Bescheid;05.01.2024 12:00;Bürgeramt\r\n"
    "BA-2;Bescheid;04.01.2024 12:00;Bürgeramt\r\n"
).encode("cp1252")


def _upload(client, data: bytes = CSV, filename: str = "protokoll.csv", **fields):  # type: ignore[no-untyped-def]
    form = {"csrf_token": csrf_of(client), "name": "Anträge 2024", **fields}
    return client.post(
        "/lagebild/prozesse", data=form, files={"datei": (filename, data, "text/csv")}
    )


def _count(db) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return (
            session.scalar(select(func.count(InsightDataset.id))),
            session.scalar(select(func.count(ProcessEvent.id))),
        )


def test_import_then_detail_page_with_map_tables_and_exports(client, worlds, db):
    login(client, "leitung")
    page = client.get("/lagebild/prozesse")
    assert page.status_code == 200
    assert "Eigenes Vorgangsprotokoll" in page.text and 'name="datei"' in page.text
    done = _upload(client, spalte_ressource="Sachgebiet")
    assert done.status_code == 303, done.text
    url = done.headers["location"]
    detail = client.get(url)
    assert detail.status_code == 200
    html = detail.text
    assert "<h1>Anträge 2024</h1>" in html
    assert "nicht in zeitlicher Reihenfolge" in html  # BA-2 was sorted, with a note
    assert 'class="pm-svg"' in html and 'tabindex="0"' in html
    assert '<script src="/static/process-map.js" defer></script>' in html
    data = json.loads(
        html.split('<script type="application/json" id="pm-data">')[1].split("</script>")[0]
    )
    assert {n["name"] for n in data["nodes"]} == {"Antrag eingegangen", "Prüfung", "Bescheid"}
    assert "Poststelle" in html and "Übergaben" in html
    csv = client.get(f"{url}/export/uebergaenge?format=csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    body = csv.content.decode("utf-8-sig")
    assert "Antrag eingegangen;Prüfung;2;2;" in body
    xlsx = client.get(f"{url}/export/varianten?format=xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.cell(1, 1).value == "Rang" and sheet.cell(2, 2).value == 2
    ocel = client.get(f"{url}/ocel")
    assert ocel.status_code == 200 and "attachment" in ocel.headers["content-disposition"]
    assert len(ocel.json()["events"]) == 6
    assert client.get(f"{url}/export/gibtsnicht?format=csv").status_code == 404
    own = client.get("/lagebild/prozesse/eigen")  # no case events yet in the test tenant
    assert own.status_code == 404 and "noch leer" in own.text
    assert client.get("/static/process-map.js").status_code == 200


def test_bad_timestamp_row_shows_german_error_and_writes_nothing(client, worlds, db):
    login(client, "leitung")
    bad = CSV + "BA-3;Prüfung;32.01.2024 10:00;Poststelle\r\n".encode("cp1252")
    answer = _upload(client, bad)
    assert answer.status_code == 422
    assert "Zeile 8, Feld „Zeitpunkt“" in answer.text
    assert _count(db) == (0, 0)
    missing = _upload(client, b"Fall;Schritt\n1;A\n")
    assert missing.status_code == 422 and "Pflichtspalte fehlt" in missing.text


def test_permissions_and_tenant_isolation(client, worlds, db):
    login(client, "sb")  # Sachbearbeitung: no Lagebild
    assert client.get("/lagebild/prozesse").status_code == 403
    assert client.get("/api/v1/lagebild/prozesse").status_code == 403
    client.cookies.clear()
    login(client, "dsb")  # Datenschutz: may view, may not import
    page = client.get("/lagebild/prozesse")
    assert page.status_code == 200 and 'name="datei"' not in page.text
    assert _upload(client).status_code == 403
    client.cookies.clear()
    login(client, "leitung")
    url = _upload(client).headers["location"]
    no_csrf = client.post(
        "/lagebild/prozesse", data={"name": "x"}, files={"datei": ("a.csv", CSV, "text/csv")}
    )
    assert no_csrf.status_code == 403
    client.cookies.clear()
    login(client, "leitung", tenant="beta")
    assert client.get(url).status_code == 404
    assert client.get("/api/v1/lagebild/prozesse").json()["datasets"] == []


def test_json_api_list_import_analysis_and_ocel(client, worlds, db):
    assert client.get("/api/v1/lagebild/prozesse").status_code == 401
    login(client, "leitung")
    token = csrf_of(client)
    files = {"datei": ("p.csv", CSV, "text/csv")}
    refused = client.post("/api/v1/lagebild/prozesse", files=files)
    assert refused.status_code == 403
    created = client.post(
        "/api/v1/lagebild/prozesse",
        files=files,
        data={"spalte_ressource": "Sachgebiet"},
        headers={"X-CSRF-Token": token},
    )
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert dataset["summary"]["cases"] == 2 and dataset["original_sha256"]
    listing = client.get("/api/v1/lagebild/prozesse").json()
    assert [d["id"] for d in listing["datasets"]] == [dataset["id"]]
    assert listing["own_log"]["key"] == "eigen"
    analysis = client.get(dataset["url"]).json()
    edge = next(e for e in analysis["edges"] if e["source"] == "Prüfung")
    assert edge["target"] == "Bescheid" and edge["count"] == 2
    assert analysis["handover_summary"]["label"] == "Ressource"
    filtered = client.get(dataset["url"], params={"min_edge_count": 3}).json()
    assert filtered["edges"] == []
    ocel = client.get(dataset["url"] + "/ocel").json()
    assert {t["name"] for t in ocel["objectTypes"]} == {"Fall"}
    bad = client.post(
        "/api/v1/lagebild/prozesse",
        files={"datei": ("x.xes", b'<!DOCTYPE x [<!ENTITY a "b">]><log/>', "text/xml")},
        headers={"X-CSRF-Token": token},
    )
    assert bad.status_code == 422 and "DOCTYPE" in bad.json()["detail"]
    assert client.get("/api/v1/lagebild/prozesse/999999").status_code == 404


def test_own_case_log_page_and_api(client, worlds, db):
    import datetime as dt

    from rathaus.core.cases import record_event

    login(client, "leitung")
    empty = client.get("/api/v1/lagebild/prozesse/eigen")
    assert empty.status_code == 404 and "noch leer" in empty.json()["detail"]
    with db.session() as session:
        case = session.merge(worlds["a"].cases["BA"])
        at = dt.datetime(2024, 5, 6, 8, tzinfo=dt.UTC)
        record_event(session, case, kind="created", activity="Eingang erfasst", actor=None, at=at)
        record_event(
            session,
            case,
            kind="status",
            activity="Erledigt",
            actor=None,
            at=at + dt.timedelta(days=2),
        )
    analysis = client.get("/api/v1/lagebild/prozesse/eigen").json()
    assert analysis["edges"][0]["median_s"] == 2 * 86400
    assert analysis["handover_summary"]["label"] == "Organisationseinheit"
    page = client.get("/lagebild/prozesse/eigen")
    assert page.status_code == 200 and "Eingang erfasst" in page.text
    ocel = client.get("/api/v1/lagebild/prozesse/eigen/ocel").json()
    assert [e["type"] for e in ocel["events"]] == ["Eingang erfasst", "Erledigt"]


def _first_event(db, dataset_name: str):  # type: ignore[no-untyped-def]
    with db.session() as session:
        dataset = session.scalars(
            select(InsightDataset).where(InsightDataset.name == dataset_name)
        ).one()
        return session.scalars(
            select(ProcessEvent)
            .where(ProcessEvent.dataset_id == dataset.id)
            .order_by(ProcessEvent.timestamp)
        ).first()


def test_time_zone_of_times_without_offset_in_form_and_api(client, worlds, db):
    login(client, "leitung")
    page = client.get("/lagebild/prozesse")
    assert 'name="zeitzone"' in page.text and 'value="Europe/Berlin"' in page.text
    assert _upload(client, name="Berlin").status_code == 303
    assert _upload(client, name="UTC", zeitzone="UTC").status_code == 303
    berlin, utc = _first_event(db, "Berlin"), _first_event(db, "UTC")
    # "02.01.2024 08:00" is 07:00 UTC in Berlin (winter time) and 08:00 read as UTC.
    assert berlin.timestamp.replace(tzinfo=None).hour == 7
    assert utc.timestamp.replace(tzinfo=None).hour == 8
    refused = _upload(client, name="Falsch", zeitzone="Mond/Basis")
    assert refused.status_code == 422
    assert "Die Zeitzone „Mond/Basis“ ist unbekannt" in refused.text
    assert 'value="Mond/Basis"' in refused.text  # the form keeps what was typed
    created = client.post(
        "/api/v1/lagebild/prozesse",
        files={"datei": ("p.csv", CSV, "text/csv")},
        data={"zeitzone": "UTC"},
        headers={"X-CSRF-Token": csrf_of(client)},
    )
    assert created.status_code == 201, created.text
    assert created.json()["mapping"]["timezone"] == "UTC"
    wrong = client.post(
        "/api/v1/lagebild/prozesse",
        files={"datei": ("p.csv", CSV, "text/csv")},
        data={"zeitzone": "../etc/passwd"},
        headers={"X-CSRF-Token": csrf_of(client)},
    )
    assert wrong.status_code == 422 and "unbekannt" in wrong.json()["detail"]
