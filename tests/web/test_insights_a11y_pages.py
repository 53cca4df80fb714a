"""axe-core (WCAG 2.1 A/AA) on every page of the Lagebild in a real Chromium, each page also kept
as a screenshot: Kennzahlen, Prognose (with an imported series and the staffing table),
Prozesse (list, own log, imported log), Buchungsprüfung (list, review item) and Winterdienst
(list, plan before and after planning)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.a11y import PageAudit
from tests.browser.keyboard import login
from tests.factories import PASSWORD
from tests.web.test_browser import page  # noqa: F401 - the shared browser fixture
from tests.web.test_insights_browser import insights_server  # noqa: F401 - 20 weeks of cases

WINTER = Path(__file__).resolve().parents[3] / "shared" / "data" / "winter"

PROCESS_CSV = (
    "Aktenzeichen;Tätigkeit;Zeitpunkt;Sachgebiet\r\n"
    "BA-1;Antrag eingegangen;02.01.2024 08:00;Poststelle\r\n"
    "BA-1;Prüfung;03.01.2024 09:30;Bürgeramt\r\n"
    "BA-1;Nachforderung;04.01.2024 09:30;Bürgeramt\r\n"
    "BA-1;Prüfung;08.01.2024 10:00;Bürgeramt\r\n"
    "BA-1;Bescheid;09.01.2024 12:00;Bürgeramt\r\n"
    "BA-2;Antrag eingegangen;02.01.2024 10:00;Poststelle\r\n"
    "BA-2;Prüfung;02.01.2024 11:00;Bürgeramt\r\n"
    "BA-2;Bescheid;04.01.2024 12:00;Bürgeramt\r\n"
).encode("cp1252")

BOOKINGS_CSV = (
    "Kreditor;Betrag;Buchungsdatum;Belegnummer\n"
    "Müller GmbH;1.471,60;31.12.2015;B-1\n"
    "Müller GmbH;1.471,60;31.12.2015;B-1\n"
    "Schön KG;250,00;04.01.2016;B-2\n"
    "Schön KG;4.990,00;05.01.2016;B-3\n"
    "Schön KG;4.980,00;06.01.2016;B-4\n"
).encode("cp1252")


def _series_csv() -> bytes:
    start = dt.date(2025, 1, 6)
    lines = ["Datum;Amt;Anzahl"]
    for i in range(84):
        day = start + dt.timedelta(days=i)
        lines.append(f"{day:%d.%m.%Y};Bürgeramt;{(20 if day.weekday() < 5 else 1) + i % 3}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _upload(page, name: str, data: bytes, mime: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """Choose a file in the page's upload field (``#datei`` on every Lagebild form)."""
    page.locator("input[type=file]#datei").set_input_files(
        {"name": name, "mimeType": mime, "buffer": data}
    )


@pytest.mark.browser
def test_every_insights_page_passes_axe(insights_server, page):  # noqa: F811
    server = insights_server
    audit = PageAudit(page)
    login(page, server, "leitung", PASSWORD)

    audit.visit(server + "/lagebild", "lagebild-kennzahlen")
    audit.visit(server + "/lagebild?von=31.02.2026", "lagebild-kennzahlen-fehler", status=422)

    # Prognose: form, the own cases, an imported series with the staffing table, an error
    audit.visit(server + "/lagebild/prognose", "lagebild-prognose-formular")
    page.get_by_role("button", name="Prognose anzeigen").click()
    page.locator("section[aria-labelledby=prognose-h]").wait_for()
    audit.check("lagebild-prognose")
    _upload(page, "eingaenge.csv", _series_csv(), "text/csv")
    page.get_by_label("Name des Datensatzes").fill("Eingänge 2025")
    page.get_by_role("button", name="Importieren").click()
    page.get_by_role("status").first.wait_for()
    page.get_by_label("Fälle je Personentag").fill("4")
    page.get_by_role("button", name="Prognose anzeigen").click()
    page.get_by_role("heading", name="Personalbedarf").wait_for()
    audit.check("lagebild-prognose-datensatz")
    page.get_by_label("Horizont").fill("9999")
    page.get_by_role("button", name="Prognose anzeigen").click()
    page.wait_for_load_state()
    audit.refused()
    audit.check("lagebild-prognose-fehler")

    # Prozesse: list, an imported log, the own log's map
    audit.visit(server + "/lagebild/prozesse", "lagebild-prozesse")
    _upload(page, "protokoll.csv", PROCESS_CSV, "text/csv")
    page.get_by_label("Name", exact=True).fill("Anträge 2024")
    page.get_by_role("button", name="Importieren").click()
    page.wait_for_url("**/lagebild/prozesse/*")
    audit.check("lagebild-prozess-import")
    audit.visit(server + "/lagebild/prozesse", "lagebild-prozesse-liste")
    audit.visit(server + "/lagebild/prozesse/eigen", "lagebild-prozess-eigen")
    page.locator(".pm-node").first.focus()
    page.keyboard.press("Enter")  # a selected activity, its details beside the map
    audit.check("lagebild-prozess-eigen-auswahl")

    # Buchungsprüfung: empty, imported, checked, one review item
    audit.visit(server + "/lagebild/buchungen", "lagebild-buchungen-leer")
    _upload(page, "liste.csv", BOOKINGS_CSV, "text/csv")
    page.get_by_label("Name (optional)").fill("Testliste")
    page.get_by_role("button", name="Importieren").click()
    page.wait_for_url("**/lagebild/buchungen?datensatz=*")
    audit.check("lagebild-buchungen-importiert")
    page.get_by_role("button", name="Prüfungen starten").click()
    page.wait_for_url("**/lagebild/buchungen?datensatz=*")
    audit.check("lagebild-buchungen")
    page.get_by_role("table").filter(has_text="Erläuterung").get_by_role("link").first.click()
    page.wait_for_url("**/lagebild/buchungen/hinweise/*")
    audit.check("lagebild-buchung-hinweis")
    page.get_by_label("prüfen (weiter verfolgen)").check()
    page.get_by_label("Notiz").fill("Beleg anfordern")
    page.get_by_role("button", name="Entscheidung speichern").click()
    page.wait_for_url("**/lagebild/buchungen/hinweise/*")
    audit.check("lagebild-buchung-hinweis-entschieden")

    # Winterdienst: empty, a bad file, a plan before and after planning
    audit.visit(server + "/lagebild/winterdienst", "lagebild-winterdienst-leer")
    _upload(page, "kaputt.json", b"[1, 2]", "application/json")
    page.get_by_role("button", name="Importieren").click()
    page.get_by_role("alert").wait_for()
    audit.refused()
    audit.check("lagebild-winterdienst-fehler")
    data = (WINTER / "gualandi_gualandi.json").read_bytes()
    _upload(page, "gualandi.json", data, "application/json")
    page.get_by_label("Name (optional)").fill("Testnetz")
    page.get_by_role("button", name="Importieren").click()
    page.wait_for_url("**/lagebild/winterdienst/*")
    audit.check("lagebild-winterdienst-plan")
    page.get_by_label("Rechenzeit (Sekunden)").fill("1")
    page.get_by_role("button", name="Touren planen").click()
    page.get_by_role("heading", name="Abbiegeliste").wait_for(timeout=60_000)
    audit.check("lagebild-winterdienst-ergebnis")
    audit.visit(server + "/lagebild/winterdienst", "lagebild-winterdienst")

    audit.assert_clean()
