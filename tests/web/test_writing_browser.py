"""A real Chromium: a case worker writes a Niederschrift from a typed agenda and a transcript,
then checks a sentence for Leichte Sprache — once by labels, once by the keyboard alone."""

from __future__ import annotations

import pytest

from tests.a11y import assert_accessible
from tests.browser.keyboard import focused, login, press_on, tab_to
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


@pytest.mark.browser
def test_case_worker_writes_minutes_and_checks_plain_language(writing_server, page):  # noqa: F811
    login(page, writing_server, "sb", PASSWORD)
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


@pytest.mark.browser
def test_minutes_from_a_transcript_by_keyboard_only(writing_server, page):  # noqa: F811
    """The same journey without a mouse: Tab and Shift+Tab, Enter, Space, arrow keys; every
    element passed on the way shows its focus (tests/browser/keyboard.py)."""
    server = writing_server
    login(page, server, "sb", PASSWORD)
    press_on(page, "Texte", exact=True)
    page.wait_for_url(server + "/texte")
    press_on(page, "Niederschrift", exact=True)
    page.wait_for_url("**/texte/niederschriften")
    press_on(page, "Neue Niederschrift")
    page.wait_for_url("**/texte/niederschriften/neu")

    tab_to(page, "#titel")
    page.keyboard.type("Gemeinderat 12. Sitzung")
    tab_to(page, "#gremium")
    page.keyboard.type("Gemeinderat")
    tab_to(page, "#tagesordnung")
    page.keyboard.type("TOP 1 Eröffnung")
    page.keyboard.press("Enter")  # a new line in the textarea, not a submit
    page.keyboard.type("TOP 2 Sanierung der Grundschule")
    press_on(page, "Niederschrift anlegen")
    page.wait_for_url("**/texte/niederschriften/*")
    assert_accessible(page, "tastatur-niederschrift-angelegt")

    tab_to(page, "#transkript")
    page.keyboard.type(TRANSCRIPT)
    press_on(page, "Niederschrift erstellen")
    result = page.get_by_role("heading", name="Ergebnis")
    result.wait_for()
    assert focused(page)["id"] == "ergebnis", "the result takes the focus"
    item = page.locator("article.minutes-item", has_text="Sanierung der Grundschule")
    votes = item.get_by_role("table", name="Abstimmungen").inner_text()
    assert "12" in votes and "3" in votes

    tab_to(page, "#beschluss_1")  # TOP 2: the decision, edited by keyboard
    page.keyboard.press("Control+End")
    page.keyboard.type(" (geprüft)")
    press_on(page, "Änderungen speichern")
    page.wait_for_url("**meldung=gespeichert*")
    assert page.get_by_label("Beschluss", exact=False).nth(1).input_value().endswith("(geprüft)")

    with page.expect_download() as download:
        press_on(page, "DOCX herunterladen")  # the first link after the result
    assert download.value.suggested_filename.endswith(".docx")
    press_on(page, "Als fertig markieren", key="Space")
    page.wait_for_url("**meldung=fertig*")
    assert page.get_by_text("fertig", exact=True).first.is_visible()
    assert_accessible(page, "tastatur-niederschrift-fertig")
    assert page.console_errors == []  # type: ignore[attr-defined]
