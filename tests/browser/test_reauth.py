"""The data-protection officer erases a person's data in a real Chromium: the confirmation form
asks for the password inline, a wrong one is refused with the error tied to the field, the
right one erases (ASVS 3.7.1). Removing a retention rule from its row asks on a card first.
The refused and the confirmed pages pass axe-core."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from rathaus.core.models import AuditEvent, Case, RetentionRule, Tenant
from rathaus.governance import retention
from tests.a11y import assert_accessible
from tests.browser.test_governance import governance_server  # noqa: F401 - fixture
from tests.factories import PASSWORD


@pytest.mark.browser
def test_erasure_confirmed_with_the_password(governance_server, page, sign_in, sqlite_db):  # type: ignore[no-untyped-def]  # noqa: F811
    base = governance_server
    sign_in(base, "dsb")
    page.goto(base + "/governance/datenschutz")
    loeschung = page.locator(
        "section", has=page.get_by_role("heading", name=re.compile("Löschung"))
    )
    loeschung.get_by_label("E-Mail").fill("erika.beispiel@example.org")
    loeschung.get_by_role("button", name="Prüfen (Probelauf)").click()
    result = page.locator("#loeschung-ergebnis")
    assert "Probelauf" in result.inner_text()

    result.get_by_label("Ich bestätige die endgültige Löschung.").check()
    result.get_by_label("Ihr Passwort zur Bestätigung").fill("nicht-mein-passwort")
    result.get_by_role("button", name="Endgültig löschen").click()
    field = page.locator("#loeschung-ergebnis").get_by_label("Ihr Passwort zur Bestätigung")
    assert "falsch" in page.get_by_role("alert").inner_text()
    assert "loeschung-passwort-fehler" in (field.get_attribute("aria-describedby") or "")
    assert_accessible(page, "governance-datenschutz-loeschung-passwort-falsch")
    with sqlite_db.session() as session:
        assert session.scalar(select(Case).where(Case.reference == "ALP-W-1")) is not None

    result = page.locator("#loeschung-ergebnis")
    result.get_by_label("Ich bestätige die endgültige Löschung.").check()
    field.fill(PASSWORD)
    result.get_by_role("button", name="Endgültig löschen").click()
    assert "Löschantrag Nr." in page.locator("#loeschung-ergebnis").inner_text()
    assert_accessible(page, "governance-datenschutz-loeschung-bestaetigt")
    with sqlite_db.session() as session:
        assert session.scalar(select(Case).where(Case.reference == "ALP-W-1")) is None
        kinds = session.scalars(
            select(AuditEvent.kind).where(AuditEvent.kind.like("reauth%"))
        ).all()
        assert kinds == ["reauth_failed", "reauth_confirmed"]
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.mark.browser
def test_rule_removal_asks_on_a_card(governance_server, page, sign_in, sqlite_db):  # type: ignore[no-untyped-def]  # noqa: F811
    with sqlite_db.session() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "alpha"))
        retention.set_rule(
            session,
            tenant_id=tenant.id,
            target="vorgang",
            request_type="Beschwerde",
            days=90,
            action="anonymisieren",
            actor="dsb",
        )
        session.commit()
    base = governance_server
    sign_in(base, "dsb")
    page.goto(base + "/governance/datenschutz")
    page.get_by_role("button", name=re.compile("^Entfernen")).click()
    # The row's button sent no password: a card for this one rule asks for it, scrolled to.
    page.wait_for_url("**/regeln/entfernen#regel-entfernen")
    card = page.locator("#regel-entfernen")
    assert "Vorgänge (Beschwerde): 90 Tage, anonymisieren" in card.inner_text()
    assert card.get_by_role("alert").count() == 0
    assert_accessible(page, "governance-datenschutz-regel-entfernen")

    card.get_by_label("Ihr Passwort zur Bestätigung").fill("nicht-mein-passwort")
    card.get_by_role("button", name="Regel endgültig entfernen").click()
    card = page.locator("#regel-entfernen")
    assert "falsch" in card.get_by_role("alert").inner_text()
    field = card.get_by_label("Ihr Passwort zur Bestätigung")
    assert "regel-entfernen-passwort-fehler" in (field.get_attribute("aria-describedby") or "")
    assert_accessible(page, "governance-datenschutz-regel-entfernen-falsch")
    with sqlite_db.session() as session:
        assert session.scalar(select(RetentionRule)) is not None

    field.fill(PASSWORD)
    card.get_by_role("button", name="Regel endgültig entfernen").click()
    page.wait_for_url("**/governance/datenschutz?meldung=regel_entfernt*")
    assert "Die Aufbewahrungsregel wurde entfernt." in page.get_by_role("status").inner_text()
    with sqlite_db.session() as session:
        assert session.scalar(select(RetentionRule)) is None
        kinds = session.scalars(
            select(AuditEvent.kind).where(AuditEvent.kind.like("reauth%"))
        ).all()
        assert kinds == ["reauth_failed", "reauth_confirmed"]
    assert page.console_errors == []  # type: ignore[attr-defined]
