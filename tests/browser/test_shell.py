"""The frame around every module in a real Chromium: login, start page, error pages (403, 404),
the system page and the public transparency page pass axe-core (WCAG 2.1 A/AA); the skip link,
the main navigation and signing out work with the keyboard alone."""

from __future__ import annotations

import pytest

from tests.a11y import assert_accessible
from tests.browser.keyboard import focused, login, press_on, tab_to
from tests.factories import PASSWORD, build_tenant, free_port
from tests.web.test_browser import _serve


@pytest.fixture
def llm_down_server(sqlite_db, tmp_path):  # type: ignore[no-untyped-def]
    """Stadt Alpha whose language model server does not answer (the embedder is the bundled one)."""
    with sqlite_db.session() as session:
        build_tenant(session, "alpha", "Stadt Alpha")
    down = f"http://127.0.0.1:{free_port()}/v1"
    yield from _serve(
        sqlite_db, tmp_path, llm={"backend": "openai", "base_url": down, "max_retries": 0}
    )


@pytest.mark.browser
def test_login_start_and_error_pages_are_accessible(live_server, page, sign_in):  # type: ignore[no-untyped-def]
    base = live_server
    page.goto(base + "/")
    assert page.url.startswith(base + "/login")
    assert_accessible(page, "anmeldung")
    page.get_by_label("Benutzername").fill("sb")
    page.get_by_label("Passwort").fill("falsch")
    page.get_by_role("button", name="Anmelden").click()
    assert "Benutzername oder Passwort ist falsch" in page.get_by_role("alert").inner_text()
    assert_accessible(page, "anmeldung-fehler")

    sign_in(base, "sb")
    assert_accessible(page, "start-sachbearbeitung")
    page.goto(base + "/vorgaenge/999999")
    assert page.get_by_role("heading", level=1).inner_text() == "Nicht gefunden"
    assert_accessible(page, "fehler-404")
    page.goto(base + "/gibt-es-nicht")
    assert page.get_by_role("heading", level=1).inner_text() == "Nicht gefunden"
    page.goto(base + "/system")
    assert page.get_by_role("heading", level=1).inner_text() == "Kein Zugriff"
    assert_accessible(page, "fehler-403")
    page.get_by_role("button", name="Abmelden").click()

    sign_in(base, "admin")
    assert_accessible(page, "start-administration")
    page.goto(base + "/system")
    assert_accessible(page, "system")
    page.get_by_role("button", name="Abmelden").click()
    sign_in(base, "dsb")  # a role without cases
    assert_accessible(page, "start-datenschutz")
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.mark.browser
def test_transparency_page_is_accessible(live_server, page):  # type: ignore[no-untyped-def]
    page.goto(live_server + "/transparenz")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Wie Stadt Alpha")
    assert_accessible(page, "transparenz")
    page.goto(live_server + "/transparenz?kommune=gibt-es-nicht")
    assert page.get_by_role("alert").is_visible()
    assert_accessible(page, "transparenz-unbekannte-kommune")
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.mark.browser
def test_skip_link_navigation_and_sign_out_by_keyboard(live_server, page):  # type: ignore[no-untyped-def]
    base = live_server
    login(page, base, "sb", PASSWORD)
    # the first Tab shows the skip link; Enter moves the focus to the main content
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Zum Inhalt springen")
    assert focused(page)["name"] == "Zum Inhalt springen"
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0  # on screen while focused
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "inhalt"
    page.keyboard.press("Tab")  # the next stop is inside the main content, not the header
    assert page.evaluate("document.getElementById('inhalt').contains(document.activeElement)")

    press_on(page, "Vorgänge", exact=True, back=True)
    page.wait_for_url(base + "/vorgaenge")
    assert page.get_by_role("link", name="ALP-2026-000001").is_visible()
    tab_to(page, "#status")
    page.keyboard.type("Zugewiesen")
    press_on(page, "Filtern", exact=True)
    page.wait_for_url(base + "/vorgaenge?status=zugewiesen")
    press_on(page, "ALP-2026-000001", exact=True)
    page.wait_for_url(base + "/vorgaenge/*")
    assert page.get_by_role("heading", level=1).inner_text().startswith("ALP-2026-000001")
    press_on(page, "Abmelden", exact=True, back=True)
    page.wait_for_url(base + "/login")
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.mark.browser
@pytest.mark.model
def test_system_page_model_check_is_accessible(llm_down_server, page):  # type: ignore[no-untyped-def]
    base = llm_down_server
    login(page, base, "admin", PASSWORD)
    press_on(page, "System", exact=True)
    page.wait_for_url(base + "/system")
    press_on(page, "Jetzt prüfen", exact=True)  # HTMX swaps the results in
    results = page.locator("#modellpruefung .checks")
    results.wait_for(timeout=120_000)
    assert "nicht erreichbar" in results.inner_text()
    assert "in Ordnung" in results.inner_text()  # the bundled embedder answered
    assert_accessible(page, "system-modellpruefung")
    assert page.console_errors == []  # type: ignore[attr-defined]
