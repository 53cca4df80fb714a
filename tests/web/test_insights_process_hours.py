"""Lagebild › Prozesse in business hours through the page, the exports and the JSON API."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from tests.web.conftest import csrf_of, login

# Berlin wall-clock times with their offsets; the test tenant's Land is Baden-Württemberg.
CSV = (
    "Aktenzeichen;Tätigkeit;Zeitpunkt\r\n"
    "BA-1;Antrag eingegangen;2024-03-08T15:00:00+01:00\r\n"  # Friday
    "BA-1;Prüfung;2024-03-11T09:00:00+01:00\r\n"  # Monday: 2 office hours, 66 calendar hours
    "BA-2;Antrag eingegangen;2024-05-29T15:00:00+02:00\r\n"
    "BA-2;Prüfung;2024-05-31T09:00:00+02:00\r\n"  # Fronleichnam between: 2 h, 42 h
).encode()


def _import(client) -> str:  # type: ignore[no-untyped-def]
    done = client.post(
        "/lagebild/prozesse",
        data={"csrf_token": csrf_of(client), "name": "Anträge"},
        files={"datei": ("a.csv", CSV, "text/csv")},
    )
    assert done.status_code == 303, done.text
    return done.headers["location"]


def test_page_exports_and_api_in_business_hours(client, worlds, db):
    login(client, "leitung")
    url = _import(client)
    calendar = client.get(url)
    assert "Zeitbasis: Kalenderzeit." in calendar.text
    assert "2,2 Tage" in calendar.text  # median of 66 h and 42 h = 54 h
    office = client.get(url, params={"zeit": "arbeitszeit", "von": "08:00", "bis": "16:00"})
    assert office.status_code == 200
    html = office.text
    assert "Zeitbasis: Arbeitszeit." in html
    assert "Mo–Fr von 08:00 bis 16:00 Uhr" in html and "des Landes (BW)" in html
    assert '<option value="arbeitszeit" selected>' in html
    assert "2,0 Std." in html and "2,2 Tage" not in html
    assert "zeit=arbeitszeit&amp;von=08%3A00&amp;bis=16%3A00" in html  # export links keep it
    csv = client.get(f"{url}/export/uebergaenge?format=csv&zeit=arbeitszeit&von=08:00&bis=16:00")
    assert "arbeitszeit" in csv.headers["content-disposition"]
    body = csv.content.decode("utf-8-sig")
    assert "Wartezeit Median (Arbeitsstd.)" in body
    assert "Antrag eingegangen;Prüfung;2;2;2" in body  # 2,0 office hours
    xlsx = client.get(f"{url}/export/durchlaufzeit?format=xlsx&zeit=arbeitszeit&von=07:30")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.cell(1, 2).value == "Wert (Arbeitstage à 8,5 Std.)"
    # 07:30–16:00: Friday 1 h + Monday 1.5 h = 2.5 h; Wed 1 h + Fri 1.5 h = 2.5 h
    assert sheet.cell(2, 2).value == round(2.5 / 8.5, 4)

    api = f"/api/v1/lagebild/prozesse/{url.rsplit('/', 1)[1]}"
    data = client.get(api, params={"time_mode": "arbeitszeit"}).json()
    assert data["time_basis"]["mode"] == "arbeitszeit" and data["time_basis"]["land"] == "BW"
    edge = data["edges"][0]
    assert (edge["median_s"], edge["max_s"]) == (2 * 3600, 2 * 3600)
    plain = client.get(api).json()
    assert plain["time_basis"]["mode"] == "kalender"
    assert plain["edges"][0]["median_s"] == 54 * 3600


def test_bad_hours_keep_the_page_and_say_why(client, worlds, db):
    login(client, "leitung")
    url = _import(client)
    page = client.get(url, params={"zeit": "arbeitszeit", "von": "16:00", "bis": "08:00"})
    assert page.status_code == 200
    assert "Der Beginn muss vor dem Ende liegen" in page.text
    assert "Angezeigt wird deshalb Kalenderzeit." in page.text
    assert 'value="16:00"' in page.text and 'value="08:00"' in page.text  # input kept
    assert '<option value="arbeitszeit" selected>' in page.text
    api = f"/api/v1/lagebild/prozesse/{url.rsplit('/', 1)[1]}"
    bad = client.get(api, params={"time_mode": "arbeitszeit", "work_start": "25:00"})
    assert bad.status_code == 400 and "keine Uhrzeit" in bad.json()["detail"]
    unknown = client.get(api, params={"time_mode": "woche"})
    assert unknown.status_code == 400 and "kalender oder arbeitszeit" in unknown.json()["detail"]
