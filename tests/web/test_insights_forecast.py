"""/lagebild/prognose and /api/v1/lagebild/prognose through the real app."""

from __future__ import annotations

import datetime as dt
import io
import re

import numpy as np
from openpyxl import load_workbook
from sqlalchemy import func, select

from rathaus.core.models import InsightDataset, SeriesPoint
from tests.factories import PASSWORD
from tests.web.conftest import csrf_of, login

API = "/api/v1/lagebild/prognose"


def series_csv(days: int = 84, encoding: str = "utf-8") -> bytes:
    rng = np.random.default_rng(2)
    start = dt.date(2025, 1, 6)
    lines = ["Datum;Amt;Anzahl"]
    for i in range(days):
        day = start + dt.timedelta(days=i)
        for unit, base in (("Bürgeramt", 20), ("Straßenverkehr", 6)):
            mean = base if day.weekday() < 5 else 1
            lines.append(f"{day:%d.%m.%Y};{unit};{rng.poisson(mean)}")
    return ("\n".join(lines) + "\n").encode(encoding)


def upload(client, data: bytes, name: str = "eingaenge.csv", **fields):  # type: ignore[no-untyped-def]
    return client.post(
        "/lagebild/prognose/import",
        data={"csrf_token": csrf_of(client), **fields},
        files={"datei": (name, data, "text/csv")},
    )


def _dataset_id(db) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(select(func.max(InsightDataset.id)))


def test_import_then_forecast_page_with_chart_backtest_and_table(client, worlds, db):
    login(client, "leitung")
    response = upload(client, series_csv(encoding="cp1252"), name="Eingänge 2025")
    assert response.status_code == 303, response.text
    dataset_id = _dataset_id(db)
    assert f"datensatz%3A{dataset_id}%3AB%C3%BCrgeramt" in response.headers["location"]
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    html = page.text
    assert "importiert" in html and "<svg" in html and "80-%-Intervall" in html
    assert "Rückblick (Back-Test)" in html and "MASE" in html
    assert html.count("<tr>") >= 28 + 1  # default horizon: 28 days, plus the header
    # Weekly with staffing
    page = client.get(
        "/lagebild/prognose",
        params={
            "quelle": f"datensatz:{dataset_id}:Bürgeramt",
            "aufloesung": "woche",
            "horizont": "6",
            "faelle_je_personentag": "12,5",
        },
    )
    assert page.status_code == 200
    assert "Personalbedarf" in page.text and "12,5 Fälle je Personentag" in page.text
    rows = re.findall(r"<td class=\"num\">([\d,]+)</td>", page.text)
    assert rows  # numbers in German notation


def test_bad_inputs_are_german_messages(client, worlds, db):
    login(client, "leitung")
    upload(client, series_csv())
    dataset_id = _dataset_id(db)
    page = client.get(
        "/lagebild/prognose",
        params={"quelle": f"datensatz:{dataset_id}:Bürgeramt", "horizont": "x"},
    )
    assert "keine ganze Zahl" in page.text
    page = client.get(
        "/lagebild/prognose",
        params={"quelle": f"datensatz:{dataset_id}:Bürgeramt", "faelle_je_personentag": "0"},
    )
    assert "größer als 0" in page.text
    page = client.get("/lagebild/prognose")  # own cases: the test world's three came in today
    assert page.status_code == 200 and "Alle Eingänge" in page.text
    assert "noch keine Vorgänge" in page.text


def test_failed_import_writes_nothing_and_names_the_row(client, worlds, db):
    login(client, "leitung")
    bad = series_csv(days=10) + "32.01.2025;Bürgeramt;3\n".encode()
    response = upload(client, bad)
    assert response.status_code == 422
    assert "Zeile 22, Feld „Datum“" in response.text
    response = upload(client, b"Wann;Anzahl\n01.01.2025;3\n")
    assert response.status_code == 422 and "Pflichtspalte fehlt: „Datum“" in response.text
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(InsightDataset)) == 0
        assert session.scalar(select(func.count()).select_from(SeriesPoint)) == 0


def test_permissions_and_csrf(client, worlds, db):
    login(client, "sb")  # Sachbearbeitung: no Lagebild
    assert client.get("/lagebild/prognose").status_code == 403
    assert client.get(API).status_code == 403
    client.cookies.clear()
    login(client, "dsb")  # may view, not import
    assert client.get("/lagebild/prognose").status_code == 200
    assert "Zeitreihe importieren" not in client.get("/lagebild/prognose").text
    assert upload(client, series_csv()).status_code == 403
    client.cookies.clear()
    login(client, "leitung")
    response = client.post(
        "/lagebild/prognose/import",
        data={"csrf_token": "falsch"},
        files={"datei": ("a.csv", series_csv(), "text/csv")},
    )
    assert response.status_code == 403
    client.cookies.clear()
    assert client.get(API).status_code == 401


def test_export_csv_and_xlsx(client, worlds, db):
    login(client, "leitung")
    upload(client, series_csv())
    quelle = f"datensatz:{_dataset_id(db)}:Straßenverkehr"
    csv = client.get(
        "/lagebild/prognose/export", params={"quelle": quelle, "horizont": "14", "format": "csv"}
    )
    assert csv.status_code == 200 and "attachment" in csv.headers["content-disposition"]
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Tag;Bis;Erwartete Eingänge;80 % von")
    assert len(lines) == 15 and re.match(r"2025-03-31;2025-03-31;\d+,\d", lines[1])
    xlsx = client.get(
        "/lagebild/prognose/export",
        params={
            "quelle": quelle,
            "aufloesung": "woche",
            "horizont": "4",
            "format": "xlsx",
            "faelle_je_personentag": "5",
            "tabelle": "personal",
        },
    )
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    values = list(sheet.values)
    assert values[0][:3] == ("Woche ab", "Erwartete Eingänge", "Personentage")
    assert len(values) == 5 and values[1][2] == round(values[1][1] / 5, 1)


def test_api_forecast_sources_and_import(client, worlds, db):
    login(client, "leitung")
    token = csrf_of(client)
    files = {"datei": ("eingaenge.csv", series_csv(), "text/csv")}
    refused = client.post(f"{API}/datensaetze", files=files)
    assert refused.status_code == 403  # no X-CSRF-Token
    created = client.post(
        f"{API}/datensaetze", files=files, data={"name": "API"}, headers={"X-CSRF-Token": token}
    )
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert dataset["name"] == "API" and set(dataset["series"]) == {"Bürgeramt", "Straßenverkehr"}
    sources = client.get(f"{API}/quellen").json()
    assert {
        "key": f"datensatz:{dataset['id']}:Bürgeramt",
        "label": "Bürgeramt",
        "group": "Datensatz „API“",
    } in sources
    result = client.get(
        API,
        params={
            "quelle": f"datensatz:{dataset['id']}:Bürgeramt",
            "horizont": 7,
            "faelle_je_personentag": 10,
        },
    )
    assert result.status_code == 200, result.text
    body = result.json()
    assert len(body["forecast"]) == 7 and body["land"] == "BW"
    assert body["backtest"]["mase"] is not None and body["backtest"]["mase"] < 1
    assert len(body["history"]) == 56 and body["staffing"]
    first = body["forecast"][0]
    assert first["lower95"] <= first["lower80"] <= first["expected"] <= first["upper80"]
    too_short = client.post(
        f"{API}/datensaetze",
        files={"datei": ("kurz.csv", series_csv(days=30), "text/csv")},
        headers={"X-CSRF-Token": token},
    )
    short_id = too_short.json()["id"]
    error = client.get(API, params={"quelle": f"datensatz:{short_id}:Bürgeramt"})
    assert error.status_code == 422 and "„Bürgeramt“ ist zu kurz" in error.json()["detail"]
    assert client.get(API, params={"quelle": "datensatz:999:x"}).status_code == 404
    bad = client.post(
        f"{API}/datensaetze",
        files={"datei": ("x.csv", b"Datum;Anzahl\n01.01.2025;viele\n", "text/csv")},
        headers={"X-CSRF-Token": token},
    )
    assert bad.status_code == 422 and "Zeile 2" in bad.json()["detail"]
    gone = client.request(
        "DELETE",
        f"{API}/datensaetze/{short_id}",
        headers={"X-CSRF-Token": token},
        json={"passwort": PASSWORD},
    )
    assert gone.status_code == 204
    assert [d["id"] for d in client.get(f"{API}/datensaetze").json()] == [dataset["id"]]
    schema = client.get("/openapi.json").json()
    assert API in schema["paths"] and f"{API}/datensaetze" in schema["paths"]


def test_tenant_separation(client, worlds, db):
    login(client, "leitung")
    upload(client, series_csv())
    dataset_id = _dataset_id(db)
    client.cookies.clear()
    login(client, "leitung", tenant="beta")
    response = client.get(API, params={"quelle": f"datensatz:{dataset_id}:Bürgeramt"})
    assert response.status_code == 404
    assert client.get(f"{API}/datensaetze").json() == []
