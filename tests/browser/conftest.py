"""The real Chromium, the live server and the Posteingang world of tests/web/test_browser.py,
shared with the journeys and page tours of this folder, and signing in with the mouse."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.factories import PASSWORD
from tests.web.test_browser import inbox_server, live_server, page  # noqa: F401 - fixtures


@pytest.fixture
def sign_in(page) -> Callable[[str, str], None]:  # type: ignore[no-untyped-def]  # noqa: F811
    """``sign_in(base, username)``: the login form filled and sent with the mouse."""

    def go(base: str, username: str) -> None:
        page.goto(base + "/login")
        page.get_by_label("Benutzername").fill(username)
        page.get_by_label("Passwort").fill(PASSWORD)
        page.get_by_role("button", name="Anmelden").click()
        page.wait_for_url(base + "/")

    return go
