"""The Bürgerassistent in a real Chromium: a citizen asks by keyboard only, reads a sourced
answer, gets an honest abstention, hands the conversation over with consent; and the widget
script on another site opens the assistant. The app answers with the real answer function
and the bundled embedder, built from its settings as in production."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from rathaus.core.models import Case
from tests.a11y import assert_accessible, axe_violations, describe, wait_for_js
from tests.assistant.test_service import AUSWEIS_URL, EMBEDDER, add_knowledge
from tests.factories import build_tenant
from tests.web.test_browser import ARTIFACTS, _serve, page  # noqa: F401 - the page fixture

QUESTION = "Was brauche ich für einen Personalausweis?"


@pytest.fixture
def assistant_server(sqlite_db, tmp_path):  # type: ignore[no-untyped-def]
    with sqlite_db.session() as session:
        world = build_tenant(session, "alpha", "Stadt Alpha")
        add_knowledge(session, world.tenant.id, EMBEDDER)
    yield from _serve(sqlite_db, tmp_path)


@pytest.fixture
def host_site(assistant_server) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A municipality's own website on another origin that embeds the widget with one tag."""
    html = (
        "<!doctype html><html lang='de'><head><meta charset='utf-8'><title>Gemeinde Alpha</title>"
        "</head><body><h1>Willkommen in Alpha</h1><p>Unsere Seite.</p>"
        f"<script src='{assistant_server}/assistent/widget.js' data-kommune='alpha' defer>"
        "</script></body></html>"
    ).encode()

    class Host(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Host)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    thread.join(timeout=5)


def _ask_by_keyboard(page, question: str) -> None:  # noqa: F811 - page is the fixture
    page.keyboard.type(question)
    page.keyboard.press("Enter")


@pytest.mark.browser
def test_citizen_asks_reads_sources_and_hands_over(assistant_server, page, sqlite_db):  # noqa: F811
    page.goto(assistant_server + "/assistent")
    assert (
        page.locator(".ai-label").inner_text().startswith("Sie schreiben mit einem KI-Assistenten")
    )
    assert_accessible(page, "assistent-start")

    # keyboard only: Tab reaches the question field within a few steps, Enter sends
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "frage":
            break
    assert page.evaluate("document.activeElement.id") == "frage"
    _ask_by_keyboard(page, QUESTION)
    answer = page.locator(".answer").first
    answer.locator(".feedback").wait_for(timeout=60_000)  # the answer is complete
    assert answer.get_attribute("aria-busy") == "false"
    assert page.evaluate("document.activeElement.id") == "frage"  # ready for the next question
    source = answer.locator(".sources a", has_text="Personalausweis beantragen").first
    assert source.get_attribute("href") == AUSWEIS_URL
    cite = answer.locator("a.cite").first
    assert cite.inner_text().startswith("[")
    cite.click()  # the citation number jumps to its source
    assert page.evaluate("location.hash").startswith("#quelle-")
    assert_accessible(page, "assistent-antwort")

    answer.get_by_role("button", name="Ja, hilfreich").click()
    expect(answer.locator(".feedback-status")).to_have_text(
        "Vielen Dank für Ihre Rückmeldung.", timeout=30_000
    )
    expect(answer.get_by_role("button", name="Ja, hilfreich")).to_have_attribute(
        "aria-pressed", "true"
    )

    page.get_by_label("Ihre Frage").fill("Wie viele Monde hat der Planet Jupiter?")
    page.keyboard.press("Enter")
    abstention = page.locator(".answer").nth(1)
    abstention.locator(".feedback").wait_for(timeout=60_000)
    expect(abstention.locator(".abstain")).to_contain_text("Mitarbeiter")
    assert_accessible(page, "assistent-enthaltung")
    abstention.get_by_role("link", name="Anliegen an die Verwaltung weitergeben").click()
    handover = page.locator("#weitergabe")
    assert handover.is_visible()
    assert page.evaluate("document.activeElement.id") == "weitergabe-h"
    assert_accessible(page, "assistent-weitergabe-formular")
    # without consent the browser does not send the form
    handover.get_by_role("button", name="Gespräch weitergeben").click()
    with sqlite_db.session() as session:
        assert session.scalars(select(Case).where(Case.channel == "assistent")).all() == []
    handover.get_by_label("Ich bin einverstanden", exact=False).check()
    handover.get_by_label("E-Mail").fill("erika@example.org")
    handover.get_by_role("button", name="Gespräch weitergeben").click()
    status = handover.locator("[data-handover-status]")
    expect(status).to_contain_text("Aktenzeichen", timeout=30_000)
    expect(status).to_be_focused()
    assert_accessible(page, "assistent-weitergabe")
    with sqlite_db.session() as session:
        cases = session.scalars(select(Case).where(Case.channel == "assistent")).all()
        assert len(cases) == 1
        assert cases[0].reference in status.inner_text()
        assert "Jupiter" in cases[0].messages[0].body
        assert cases[0].sender_contact == "erika@example.org"

    page.set_viewport_size({"width": 375, "height": 740})  # a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert_accessible(page, "assistent-telefon")
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.mark.browser
def test_widget_on_another_site_opens_the_assistant(host_site, page):  # noqa: F811
    page.goto(host_site)
    button = page.get_by_role("button", name="Fragen? Bürgerassistent")
    assert button.get_attribute("aria-expanded") == "false"
    button.focus()
    page.keyboard.press("Enter")
    assert button.get_attribute("aria-expanded") == "true"
    dialog = page.get_by_role("dialog", name="Bürgerassistent (KI-Assistent)")
    assert dialog.is_visible()
    frame = page.frame_locator("iframe[title^='Bürgerassistent']")
    field = frame.get_by_label("Ihre Frage")
    field.wait_for()
    assert "Sie schreiben mit einem KI-Assistenten" in frame.locator(".ai-label").inner_text()
    wait_for_js(page, "document.activeElement && document.activeElement.tagName === 'IFRAME'")
    for _ in range(50):  # the widget asks the frame to focus its field once it has loaded
        if field.evaluate("el => el === document.activeElement"):
            break
        page.wait_for_timeout(100)
    _ask_by_keyboard(page, QUESTION)  # the widget put the cursor into the question field
    frame.locator(".answer .feedback").wait_for(timeout=60_000)
    assert frame.locator(".answer .sources a").first.get_attribute("href") == AUSWEIS_URL
    assert_accessible(page, "assistent-widget")
    inner = next(f for f in page.frames if "/assistent/einbetten" in f.url)
    violations = axe_violations(inner)
    assert not violations, "axe-core im Widget-Rahmen:\n" + describe(violations)
    page.keyboard.press("Escape")  # closes the widget, the focus returns to its button
    wait_for_js(
        page,
        "document.querySelector('[data-rathaus-assistent]').getAttribute('aria-expanded')"
        " === 'false'",
    )
    assert not dialog.is_visible()
    assert page.evaluate("document.activeElement.textContent") == "Fragen? Bürgerassistent"
    assert page.console_errors == []  # type: ignore[attr-defined]
