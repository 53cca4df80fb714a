"""Meine Sitzungen in a real Chromium (ASVS 3.3.4): reached from the header with the keyboard,
the current session marked, another browser's session ended with the keyboard alone; the page
and the login page after an idle timeout pass axe-core."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.a11y import assert_accessible
from tests.browser.keyboard import login, press_on
from tests.factories import PASSWORD

OTHER_BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _sign_in_elsewhere(base: str) -> httpx.Client:
    """A second browser (another user agent) signed in as sb."""
    other = httpx.Client(base_url=base, headers={"User-Agent": OTHER_BROWSER})
    form = other.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    answer = other.post(
        "/login",
        data={"username": "sb", "password": PASSWORD, "kommune": "alpha", "csrf_token": token},
    )
    assert answer.status_code == 303
    assert other.get("/api/v1/me").status_code == 200
    return other


@pytest.mark.browser
def test_own_sessions_are_listed_and_ended_with_the_keyboard(live_server, page):  # type: ignore[no-untyped-def]
    base = live_server
    other = _sign_in_elsewhere(base)
    try:
        login(page, base, "sb", PASSWORD)
        press_on(page, "Meine Sitzungen")
        page.wait_for_url(base + "/konto/sitzungen")
        assert page.get_by_role("heading", level=1).inner_text() == "Meine Sitzungen"
        rows = page.locator("tbody tr")
        assert rows.count() == 2
        assert "(diese Sitzung)" in rows.nth(0).inner_text()
        assert "Firefox 128 unter Windows" in rows.nth(1).inner_text()
        assert other.cookies["rathaus_session"] not in page.content()  # never a token
        assert_accessible(page, "konto-sitzungen")

        press_on(page, "Alle anderen Sitzungen abmelden")
        page.wait_for_url(base + "/konto/sitzungen?meldung=andere")
        assert "Alle anderen Sitzungen wurden beendet." in page.get_by_role("status").inner_text()
        assert page.locator("tbody tr").count() == 1
        assert other.get("/api/v1/me").status_code == 401  # ended on the server
        assert_accessible(page, "konto-sitzungen-beendet")
    finally:
        other.close()
    page.context.clear_cookies()  # as after an idle timeout: the browser holds no session
    page.goto(base + "/login?grund=inaktiv")
    assert "wegen Inaktivität abgelaufen" in page.get_by_role("status").inner_text()
    assert_accessible(page, "anmeldung-nach-inaktivitaet")
    assert page.console_errors == []  # type: ignore[attr-defined]
