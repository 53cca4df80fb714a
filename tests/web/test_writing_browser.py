"""A real Chromium: a case worker writes a Niederschrift from a typed agenda and a transcript,
then checks a sentence for Leichte Sprache — keyboard and labels only."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD, build_tenant
from tests.web.test_browser import _serve, page  # noqa: F401 - the shared browser fixture

TRANSCRIPT = """Tagesordnungspunkt 1: Eröffnung. Die Bürgermeisterin eröffnet die Sitzung.
Tagesordnungspunkt 2: Sanierung der Grundschule. Herr Weber stellt den Antrag, die Fenster 2027 zu erneuern.
Der Gemeinderat beschließt die Sanierung der Grundschule mit 12 Ja-Stimmen, 3 Nein-Stimmen und 1 Enthaltung.
Die Verwaltung wird beauftragt, bis März die Ausschreibung vorzubereiten."""


@pytest.fixture
def writing_server(sqlite_db, tmp_path):
    with sqlite_db.session() as session:
        build_tenant(session, "alpha", "Stadt Alpha")
    yield from _serve(sqlite_db, tmp_path)


def _login(page, server: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    page.goto(server + "/login")
    page.get_by_label("Benutzername").fill("sb")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(server + "/")


@pytest.mark.browser
def test_case_worker_writes_minutes_and_checks_plain_language(writing_server, page):  # noqa: F811
    _login(page, writing_server)
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role("link", name="Texte").click()
    page.wait_for_url(writing_server + "/texte")
    page.get_by_role("link", name="Niederschrift").click()
    page.wait_for_url("**/texte/niederschriften")

    page.goto(writing_server + "/texte/niederschriften/neu")
    page.get_by_label("Titel").fill("Gemeinderat 12. Sitzung")
    page.get_by_label("Gremium").fill("Gemeinderat")
    page.get_by_label("Tagesordnung eingeben").fill(
        "TOP 1 Eröffnung\nTOP 2 Sanierung der Grundschule"
    )
    page.get_by_role("button", name="Niederschrift anlegen").press("Enter")
    page.wait_for_url("**/texte/niederschriften/*")

    page.get_by_role("textbox", name="Transkript").fill(TRANSCRIPT)
    page.get_by_role("button", name="Niederschrift erstellen").press("Enter")
    page.wait_for_load_state()
    item = page.locator("article.minutes-item", has_text="Sanierung der Grundschule")
    votes = item.get_by_role("table", name="Abstimmungen").inner_text()
    assert "12" in votes and "3" in votes and "1" in votes
    assert "beschließt die Sanierung" in item.get_by_label("Beschluss", exact=False).input_value()
    assert "Ausschreibung" in item.inner_text()

    page.goto(writing_server + "/texte/leichte-sprache")
    page.get_by_label("Text", exact=True).fill(
        "Der Antrag wurde aufgrund fehlender Unterlagen nicht bearbeitet."
    )
    page.get_by_role("button", name="Prüfen", exact=True).press("Enter")
    page.wait_for_load_state()
    report = page.locator("ol.plain-sentences").inner_text()
    assert "Passiv" in report or "passiv" in report
    assert page.console_errors == []  # type: ignore[attr-defined]
