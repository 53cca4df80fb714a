"""The Bürgerassistent with the keyboard alone, in a real Chromium: a citizen skips to the
question, reads a sourced answer, follows a citation, gives feedback, gets an honest abstention
and hands the conversation over with consent; on a municipality's own site the widget opens,
answers and closes without a mouse."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from rathaus.core.models import Case
from tests.a11y import assert_accessible, axe_violations, describe, wait_for_js
from tests.assistant.test_service import AUSWEIS_URL
from tests.browser.keyboard import focused, press_on, tab_to
from tests.web.test_assistant_browser import QUESTION, assistant_server, host_site  # noqa: F401


@pytest.mark.browser
def test_citizen_asks_and_is_handed_over_by_keyboard_alone(assistant_server, page, sqlite_db):  # type: ignore[no-untyped-def]  # noqa: F811
    page.goto(assistant_server + "/assistent")
    page.keyboard.press("Tab")
    assert focused(page)["name"] == "Zur Frage springen"
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "frage"
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    answer = page.locator(".answer").first
    answer.locator(".feedback").wait_for(timeout=60_000)
    assert focused(page)["id"] == "frage"

    # the citation: Shift+Tab back into the answer, Enter jumps to the source
    press_on(page, "Quelle 1", exact=True, back=True)
    assert page.evaluate("location.hash").endswith("-1")
    assert page.evaluate("location.hash").startswith("#quelle-")
    source = tab_to(page, "Personalausweis beantragen")
    assert source["tag"] == "a"
    assert answer.locator(".sources a").first.get_attribute("href") == AUSWEIS_URL
    # the extract opens with Enter, feedback with Space
    tab_to(page, "Auszug", exact=True)
    page.keyboard.press("Enter")
    expect(answer.locator(".sources details").first).to_have_attribute("open", "")
    press_on(page, "Ja, hilfreich", key="Space")
    expect(answer.locator(".feedback-status")).to_have_text(
        "Vielen Dank für Ihre Rückmeldung.", timeout=30_000
    )

    # an unanswerable question: an abstention, then the hand-over
    tab_to(page, "#frage")
    page.keyboard.type("Wie viele Monde hat der Planet Jupiter?")
    page.keyboard.press("Enter")
    abstention = page.locator(".answer").nth(1)
    abstention.locator(".feedback").wait_for(timeout=60_000)
    expect(abstention.locator(".abstain")).to_contain_text("Mitarbeiter")
    press_on(page, "Anliegen an die Verwaltung weitergeben", back=True)
    assert focused(page)["id"] == "weitergabe-h"
    tab_to(page, "#einwilligung")
    page.keyboard.press("Space")
    assert page.locator("#einwilligung").is_checked()
    tab_to(page, "#kontakt-email")
    page.keyboard.type("erika@example.org")
    press_on(page, "Gespräch weitergeben", exact=True)
    status = page.locator("[data-handover-status]")
    expect(status).to_contain_text("Aktenzeichen", timeout=30_000)
    expect(status).to_be_focused()
    with sqlite_db.session() as session:
        case = session.scalars(select(Case).where(Case.channel == "assistent")).one()
        assert case.reference in status.inner_text()
        assert case.sender_contact == "erika@example.org"
    # the switch to easy language is toggled with Space
    tab_to(page, "#leichte-sprache", back=True)
    page.keyboard.press("Space")
    assert page.get_by_role("switch", name="Leichte Sprache").is_checked()
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.mark.browser
def test_widget_by_keyboard_alone_and_accessible(host_site, page):  # type: ignore[no-untyped-def]  # noqa: F811
    page.goto(host_site)
    press_on(page, "Fragen? Bürgerassistent", exact=True)
    frame_locator = page.frame_locator("iframe[title^='Bürgerassistent']")
    field = frame_locator.get_by_label("Ihre Frage")
    field.wait_for()
    frame = next(f for f in page.frames if "/assistent/einbetten" in f.url)
    wait_for_js(frame, "document.activeElement && document.activeElement.id === 'frage'")
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    frame_locator.locator(".answer .feedback").wait_for(timeout=60_000)
    # the host page with the open widget, and the assistant inside its frame
    assert_accessible(page, "assistent-widget-offen")
    inner = axe_violations(frame)
    assert not inner, "axe-core im Widget-Rahmen:\n" + describe(inner)
    # Tab moves through the answer inside the frame; every stop shows its focus
    tab_to(frame, "Ja, hilfreich", keyboard=page.keyboard)
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert focused(page)["name"] == "Fragen? Bürgerassistent"
    # open again and close with the visible close button
    page.keyboard.press("Enter")
    wait_for_js(frame, "document.activeElement && document.activeElement.id === 'frage'")
    press_on(page, "Bürgerassistent schließen", exact=True, back=True)
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert focused(page)["name"] == "Fragen? Bürgerassistent"
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.mark.browser
def test_assistant_without_its_script_is_accessible(assistant_server, page, sqlite_db):  # type: ignore[no-untyped-def]  # noqa: F811
    """Without assistant.js (blocked, or an old browser) the forms are answered by the server:
    the same journey, the server-rendered pages pass axe-core too."""
    page.route(
        "**/static/assistant.js",
        lambda route: route.fulfill(status=200, content_type="text/javascript", body=""),
    )
    page.goto(assistant_server + "/assistent?kommune=gibt-es-nicht")
    assert page.get_by_role("alert").is_visible()
    assert_accessible(page, "assistent-unbekannte-kommune")

    page.goto(assistant_server + "/assistent")
    page.get_by_label("Ihre Frage").fill(QUESTION)
    with page.expect_navigation():
        page.get_by_role("button", name="Frage senden").click()
    answer = page.locator(".answer").first
    assert answer.locator(".sources a").first.get_attribute("href") == AUSWEIS_URL
    answer.get_by_text("Auszug").first.click()
    assert_accessible(page, "assistent-ohne-skript-antwort")
    with page.expect_navigation():
        answer.get_by_role("button", name="Nein, nicht hilfreich").click()
    expect(
        page.locator(".answer").first.get_by_role("button", name="Nein, nicht hilfreich")
    ).to_have_attribute("aria-pressed", "true")
    assert_accessible(page, "assistent-ohne-skript-rueckmeldung")

    page.get_by_label("Ihre Frage").fill("Wie viele Monde hat der Planet Jupiter?")
    with page.expect_navigation():
        page.get_by_role("button", name="Frage senden").click()
    handover = page.locator("#weitergabe")
    assert handover.is_visible()  # after an abstention the server shows the hand-over at once
    assert_accessible(page, "assistent-ohne-skript-enthaltung")
    handover.get_by_label("Ich bin einverstanden", exact=False).check()
    with page.expect_navigation():
        handover.get_by_role("button", name="Gespräch weitergeben").click()
    assert "Aktenzeichen" in page.locator("#weitergabe").get_by_role("status").inner_text()
    assert_accessible(page, "assistent-ohne-skript-weitergabe")
    with sqlite_db.session() as session:
        assert len(session.scalars(select(Case).where(Case.channel == "assistent")).all()) == 1
    assert page.console_errors == []  # type: ignore[attr-defined]
