"""``__Host-`` cookies in a real Chromium over HTTPS (ASVS 3.4.4): the browser accepts and sends
the prefixed session cookie, a form POST with the CSRF token works, and logout makes the browser
forget the cookie (a deletion without ``Secure; Path=/`` would be ignored by Chromium)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.factories import PASSWORD, build_tenant
from tests.tls import self_signed
from tests.web.conftest import production_app
from tests.web.test_browser import BROWSER_ARGS, CHROMIUM, serve_in_thread


@pytest.fixture
def https_server(sqlite_db, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with sqlite_db.session() as session:
        build_tenant(session, "alpha", "Stadt Alpha")
    app = production_app(sqlite_db, tmp_path)
    assert app.state.settings.secure_cookies
    cert_file, key_file = self_signed(tmp_path)
    yield from serve_in_thread(
        app,
        ssl_certfile=str(cert_file),
        ssl_keyfile=str(key_file),
    )


@pytest.mark.browser
def test_chromium_keeps_sends_and_forgets_the_host_cookie(https_server):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    base = https_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        context = browser.new_context(locale="de-DE", ignore_https_errors=True)
        page = context.new_page()
        page.goto(base + "/login")
        page.get_by_label("Benutzername").fill("sb")
        page.get_by_label("Passwort").fill(PASSWORD)
        page.get_by_role("button", name="Anmelden").click()
        page.wait_for_url(base + "/")

        cookies = {c["name"]: c for c in context.cookies()}
        assert set(cookies) == {"__Host-rathaus_session"}  # the form's cookie is gone too
        session = cookies["__Host-rathaus_session"]
        assert session["secure"] and session["httpOnly"] and session["path"] == "/"
        assert session["domain"] == "127.0.0.1"  # host-only: no Domain attribute
        assert session["sameSite"] == "Lax"
        assert page.evaluate("document.cookie") == ""

        # A CSRF-protected form (Meine Sitzungen: end all others) with the browser's cookie.
        with httpx.Client(base_url=base, verify=False) as other:  # noqa: S501 - own test cert
            form = other.get("/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
            data = {"username": "sb", "password": PASSWORD, "kommune": "alpha"}
            assert other.post("/login", data=data | {"csrf_token": token}).status_code == 303
            assert other.get("/api/v1/me").status_code == 200
            page.goto(base + "/konto/sitzungen")
            page.get_by_role("button", name="Alle anderen Sitzungen abmelden").click()
            page.wait_for_url(base + "/konto/sitzungen?meldung=andere")
            assert other.get("/api/v1/me").status_code == 401

        page.locator("form.logout").get_by_role("button", name="Abmelden").click()
        page.wait_for_url(base + "/login")
        assert "__Host-rathaus_session" not in {c["name"] for c in context.cookies()}
        page.goto(base + "/vorgaenge")
        assert page.url.startswith(base + "/login?next=")
        context.close()
        browser.close()
