"""An account without a password confirms a critical action at the identity provider in a real
Chromium (ASVS 3.7.1): the provider's sign-in page lies on another site (``localhost`` next to
Rathaus on ``127.0.0.1``) and the person sends its sign-in form there, so the way back is a
navigation that another site started. The page the person comes
back to must already count as confirmed, although the mark is a SameSite=Strict cookie that
Chromium leaves off a redirect chain begun at another site."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from rathaus.core.models import AuditEvent
from tests.a11y import assert_accessible
from tests.factories import build_tenant, drop_password
from tests.web import test_oidc as provider
from tests.web.test_browser import _serve
from tests.web.test_oidc import CLIENT_ID, CLIENT_SECRET

PAGE = "/governance/datenschutz"
idp_server = provider.idp_server  # the test provider's fixtures
idp = provider.idp


@pytest.fixture
def sso_server(sqlite_db, tmp_path, idp):  # type: ignore[no-untyped-def]
    with sqlite_db.session() as session:
        build_tenant(session, "alpha", "Stadt Alpha")
    port = urlsplit(idp.url).port
    # The browser meets the provider on another site; Rathaus fetches it on 127.0.0.1.
    idp.announce = {"authorization_endpoint": f"http://localhost:{port}/authorize"}
    idp.person = {"sub": "kc-dsb", "preferred_username": "dsb"}
    yield from _serve(
        sqlite_db,
        tmp_path,
        oidc={
            "enabled": True,
            "discovery_url": f"{idp.url}/.well-known/openid-configuration",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "allowed_networks": ["127.0.0.1/32"],
        },
    )


@pytest.mark.browser
def test_confirmed_at_the_provider_and_back_on_the_page(sso_server, page, sqlite_db, idp):  # type: ignore[no-untyped-def]
    base = sso_server
    page.goto(base + "/login")
    page.get_by_role("link", name=re.compile("Verwaltungskonto")).click()
    page.wait_for_url(base + "/")
    drop_password(sqlite_db, "dsb")  # an account that signs in through the provider only

    page.goto(base + PAGE)
    link = page.get_by_role("link", name="Beim Anmeldedienst erneut anmelden").first
    assert_accessible(page, "governance-datenschutz-sso-bestaetigung")
    # First a provider that skips the sign-in (its session is ten minutes old): refused.
    idp.ignore_prompt, idp.signed_in_at = True, int(time.time()) - 600
    link.click()
    assert "keine frische Anmeldung" in page.get_by_role("alert").inner_text()
    assert_accessible(page, "oidc-bestaetigung-abgelehnt")

    idp.ignore_prompt = False
    idp.interactive = True  # the sign-in form is sent from the provider's site
    page.get_by_role("link", name="Beim Anmeldedienst erneut anmelden").click()
    page.get_by_role("button", name="Beim Anbieter anmelden").click()
    page.wait_for_url(base + PAGE)
    assert idp.authorizations[-1]["prompt"] == "login"
    # Back on the page and already confirmed: the mark came along with the refresh.
    assert page.get_by_role("link", name="Beim Anmeldedienst erneut anmelden").count() == 0
    with sqlite_db.session() as session:
        kinds = session.scalars(
            select(AuditEvent.kind).where(AuditEvent.kind.like("reauth%"))
        ).all()
    assert kinds == ["reauth_failed", "reauth_confirmed"]
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.mark.browser
def test_a_form_sent_before_the_confirmation_is_kept_and_sent_by_a_click(  # type: ignore[no-untyped-def]
    sso_server, page, sqlite_db, idp
):
    """The rule typed on the page survives the way to the provider (another site) and back; the
    click on the kept form's button carries the SameSite=Strict mark and saves it."""
    from rathaus.core.models import RetentionRule

    base = sso_server
    page.goto(base + "/login")
    page.get_by_role("link", name=re.compile("Verwaltungskonto")).click()
    page.wait_for_url(base + "/")
    drop_password(sqlite_db, "dsb")

    page.goto(base + PAGE)
    page.fill("#tage", "4321")
    page.select_option("#aktion", "anonymisieren")
    idp.interactive = True
    page.get_by_role("button", name="Regel speichern").click()
    page.get_by_role("button", name="Beim Anbieter anmelden").click()
    page.get_by_role("heading", name="Ihre Eingaben wurden aufbewahrt").wait_for()
    assert "4321" in page.locator("#aufbewahrte-eingaben").inner_text()
    assert_accessible(page, "oidc-bestaetigung-eingaben-aufbewahrt")
    with sqlite_db.session() as session:
        assert session.scalars(select(RetentionRule).where(RetentionRule.days == 4321)).all() == []

    page.get_by_role("button", name="Jetzt ausführen: Aufbewahrungsregel speichern").click()
    page.wait_for_url(base + PAGE + "?meldung=regel")
    with sqlite_db.session() as session:
        rule = session.scalars(select(RetentionRule).where(RetentionRule.days == 4321)).one()
        assert (rule.action, rule.target) == ("anonymisieren", "vorgang")
    assert page.console_errors == []  # type: ignore[attr-defined]
