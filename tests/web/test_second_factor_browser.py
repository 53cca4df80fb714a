"""The second factor in a real Chromium: set it up from the account menu with a code computed
from the key on the page, sign out, and sign in again with password and the next code; every
page of the way passes axe-core (WCAG 2.1 A/AA)."""

from __future__ import annotations

import base64
import re
import time

import pytest

from rathaus.core import totp
from rathaus.web.second_factor_login import qr_svg
from tests.a11y import PageAudit
from tests.factories import PASSWORD
from tests.web.test_browser import live_server, page  # noqa: F401 - the shared browser fixtures
from tests.web.test_second_factor import code_for


@pytest.mark.browser
def test_enrol_and_sign_in_with_a_code_in_chromium(live_server, page):  # type: ignore[no-untyped-def]  # noqa: F811
    base = live_server
    audit = PageAudit(page)
    page.goto(base + "/login")
    page.get_by_label("Benutzername").fill("sb")
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(base + "/")

    page.get_by_role("link", name="Zweiter Faktor").click()
    page.wait_for_url(base + "/konto/zweiter-faktor")
    assert page.get_by_role("heading", level=1).inner_text() == "Zweiter Faktor"
    audit.check("zweiter-faktor-einrichten")
    key = page.locator("#zf-schluessel").inner_text().replace(" ", "")
    secret = base64.b32decode(key)
    uri = page.get_by_label("Einrichtungslink (otpauth) zum Kopieren").input_value()
    assert uri.startswith("otpauth://totp/Rathaus%20Stadt%20Alpha:sb?secret=" + key)
    qr = page.get_by_role("img", name=re.compile("QR-Code mit dem Einrichtungslink"))
    assert qr.is_visible()
    box = qr.locator("svg").bounding_box()
    assert box is not None and box["width"] >= 120  # large enough for a phone camera
    drawn = qr.locator("path.qrline").get_attribute("d")
    expected = re.search(r'class="qrline"[^>]* d="([^"]+)"', str(qr_svg(uri))).group(1)
    assert drawn == expected  # the code carries exactly the link shown

    page.get_by_label("Aktueller Code aus der App").fill("000")  # a typo first
    page.get_by_role("button", name="Zweiten Faktor einrichten").click()
    audit.refused()  # answered with 422
    assert "passt nicht" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Aktueller Code aus der App").get_attribute("aria-invalid") == "true"
    audit.check("zweiter-faktor-einrichten-fehler")
    page.get_by_label("Aktueller Code aus der App").fill(totp.code_at(secret, time.time()))
    page.get_by_role("button", name="Zweiten Faktor einrichten").click()
    page.get_by_role("heading", name="Ihre Wiederherstellungscodes").wait_for()
    codes = page.locator("ol.recovery-codes code").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[A-Z2-9]{5}-[A-Z2-9]{5}", c) for c in codes)
    audit.check("zweiter-faktor-codes")

    page.get_by_role("button", name="Abmelden").click()
    page.wait_for_url(re.compile(re.escape(base) + r"/login.*"))
    page.get_by_label("Benutzername").fill("sb")
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(base + "/login/zweiter-faktor")
    assert page.get_by_role("heading", level=1).inner_text() == "Anmeldung: Code eingeben"
    audit.check("anmeldung-zweiter-faktor")
    page.get_by_label("Code aus der App oder Wiederherstellungscode").fill(code_for(secret, 1))
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(base + "/")
    assert page.get_by_role("link", name="Zweiter Faktor").is_visible()  # signed in
    audit.assert_clean()
