"""An auditor in a real Chromium: checks the hash chain of the audit log, filters it, downloads
the signed export and verifies it offline, and sees a tampered entry named — once with the
mouse, once with the keyboard alone. Every Governance page passes axe-core (WCAG 2.1 A/AA) and
is kept as a screenshot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from rathaus.core import audit
from rathaus.core.config import load_settings
from rathaus.core.models import AuditEvent, Case, Tenant, User
from rathaus.core.storage import OriginalStore
from rathaus.governance import access_log, audit_log
from tests.a11y import assert_accessible
from tests.browser.keyboard import focused, login, press_on, tab_to
from tests.factories import PASSWORD, build_tenant
from tests.governance.test_audit_chain import attacker
from tests.governance.test_retention import make_case
from tests.web.test_browser import _serve
from tests.web.test_governance_audit import _seed


def _settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The settings ``_serve`` gives the app, as far as files and secrets go."""
    return load_settings(mode="demo", data_dir=tmp_path)


@pytest.fixture
def governance_server(sqlite_db, tmp_path):  # type: ignore[no-untyped-def]
    """Alpha and Beta with audit events, decided AI suggestions (one with an edit), a closed
    case about Erika Beispiel and one logged access to it."""
    with sqlite_db.session() as session:
        worlds = {
            "a": build_tenant(session, "alpha", "Stadt Alpha"),
            "b": build_tenant(session, "beta", "Stadt Beta"),
        }
    _seed(sqlite_db, worlds)
    store = OriginalStore(_settings(tmp_path).originals_dir)  # where the served app keeps them
    with sqlite_db.session() as session:
        case = make_case(session, worlds["a"], store, reference="ALP-W-1")
        sb = session.get(User, worlds["a"].users["sb"].id)
        access_log.record_access(session, case=session.get(Case, case.id), user=sb)
    yield from _serve(sqlite_db, tmp_path)


def _chain_length(db, tenant_slug: str = "alpha") -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == tenant_slug))
        return audit.verify(session, tenant.id).checked


def _first_entry(db) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "alpha"))
        return session.scalar(
            select(func.min(AuditEvent.id)).where(AuditEvent.tenant_id == tenant.id)
        )


def _secret(tmp_path: Path) -> str:
    """The installation secret of the served app."""
    return _settings(tmp_path).secret_key.get_secret_value()


@pytest.mark.browser
def test_auditor_verifies_the_audit_trail_in_chromium(
    governance_server, page, sign_in, sqlite_db, tmp_path
):  # type: ignore[no-untyped-def]
    base = governance_server
    sign_in(base, "dsb")
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Governance"
    ).click()
    page.wait_for_url(base + "/governance")
    assert "Intakt:" in page.locator("#h-kette + p").inner_text()
    assert_accessible(page, "governance-uebersicht")

    page.get_by_role("navigation", name="Governance").get_by_role(
        "link", name="Prüfprotokoll"
    ).click()
    page.wait_for_url(base + "/governance/protokoll")
    assert "alpha-sichtbar" in page.get_by_role("table").inner_text()
    assert "beta-geheim" not in page.content()
    assert_accessible(page, "governance-protokoll")

    # the check recomputes every hash of the own tenant and is itself recorded
    length = _chain_length(sqlite_db)
    page.get_by_role("button", name="Kette prüfen").click()
    page.wait_for_url(base + "/governance/protokoll/pruefen")
    status = page.get_by_role("status").filter(has_text="Kette intakt")
    assert f"{length} Einträge neu berechnet" in status.inner_text()
    assert "pruefprotokoll_geprueft" in page.get_by_role("table").inner_text()
    assert_accessible(page, "governance-protokoll-geprueft")

    # filter by kind
    page.get_by_label("Art").select_option("ki_entscheidung")
    page.get_by_role("button", name="Filtern").click()
    page.wait_for_url("**/governance/protokoll?art=ki_entscheidung*")
    kinds = page.locator("table tbody tr td:nth-child(3)").all_inner_texts()
    assert kinds and set(kinds) == {"ki_entscheidung"}

    # the signed export, checked offline as `rathaus audit export-pruefen` does
    page.get_by_role("link", name="Prüfprotokoll").first.click()
    page.wait_for_url(base + "/governance/protokoll")
    jsonl = page.locator("li", has_text="JSON Lines")
    with page.expect_download() as file_download:
        jsonl.get_by_role("link", name="Datei").click()
    with page.expect_download() as sig_download:
        jsonl.get_by_role("link", name="Signatur").click()
    export = tmp_path / file_download.value.suggested_filename
    file_download.value.save_as(export)
    sig_download.value.save_as(audit_log.signature_path(export))
    result = audit_log.check_export(export, secret_key=_secret(tmp_path))
    assert result.complete_from_start and result.rows == _chain_length(sqlite_db)

    # someone with database rights changes the first entry: the check names it
    first = _first_entry(sqlite_db)
    with attacker(sqlite_db), sqlite_db.engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.id == first).values(actor="x"))
    page.get_by_role("button", name="Kette prüfen").click()
    page.wait_for_url(base + "/governance/protokoll/pruefen")
    alert = page.get_by_role("alert")
    assert "Kette gebrochen" in alert.inner_text() and f"Nr. {first}" in alert.inner_text()
    assert_accessible(page, "governance-protokoll-gebrochen")

    # a bad period gives a German error (422), the list stays usable
    page.goto(base + "/governance/protokoll?von=31.02.2026")
    assert "kein gültiges Datum" in page.get_by_role("alert").inner_text()
    assert_accessible(page, "governance-protokoll-fehler")
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.mark.browser
def test_auditor_verifies_the_audit_trail_by_keyboard_alone(
    governance_server, page, sqlite_db, tmp_path
):  # type: ignore[no-untyped-def]
    base = governance_server
    login(page, base, "dsb", PASSWORD)
    press_on(page, "Governance", exact=True)
    page.wait_for_url(base + "/governance")
    press_on(page, "Zum Prüfprotokoll")
    page.wait_for_url(base + "/governance/protokoll")

    press_on(page, "Kette prüfen", exact=True)
    page.wait_for_url(base + "/governance/protokoll/pruefen")
    assert "Kette intakt" in page.get_by_role("status").first.inner_text()

    # the kind by type-ahead in the focused list, then Enter in the form
    tab_to(page, "#art")
    page.keyboard.type("ki_e")
    assert page.get_by_label("Art").input_value() == "ki_entscheidung"
    press_on(page, "Filtern", exact=True)
    page.wait_for_url("**/governance/protokoll?art=ki_entscheidung*")
    kinds = page.locator("table tbody tr td:nth-child(3)").all_inner_texts()
    assert kinds and set(kinds) == {"ki_entscheidung"}

    # both downloads with Enter on the links
    with page.expect_download() as file_download:
        press_on(page, "Datei", exact=True)
    with page.expect_download() as sig_download:
        press_on(page, "Signatur", exact=True)
    export = tmp_path / file_download.value.suggested_filename
    file_download.value.save_as(export)
    sig_download.value.save_as(audit_log.signature_path(export))
    assert audit_log.check_export(export, secret_key=_secret(tmp_path)).complete_from_start

    # on to the AI decisions: a diff opens with the keyboard
    press_on(page, "KI-Entscheidungen", exact=True, back=True)
    page.wait_for_url(base + "/governance/entscheidungen")
    summary = tab_to(page, "Zeilen Diff")
    assert summary["tag"] == "summary"
    page.keyboard.press("Enter")
    assert page.locator("details[open] pre.diff").inner_text().count("genehmigt") == 1
    assert focused(page)["tag"] == "summary"
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.mark.browser
def test_every_governance_page_is_accessible(governance_server, page, sign_in):  # type: ignore[no-untyped-def]
    base = governance_server
    page.goto(base + "/login")  # two municipalities: the login asks which one
    assert page.get_by_label("Kommune").is_visible()
    assert_accessible(page, "anmeldung-zwei-kommunen")
    sign_in(base, "sb")  # no audit permission: the overview only, without the chain
    page.goto(base + "/governance")
    assert page.get_by_role("heading", name="Hash-Kette Ihrer Kommune").count() == 0
    assert_accessible(page, "governance-uebersicht-sachbearbeitung")
    page.goto(base + "/governance/ki-register")
    assert_accessible(page, "governance-ki-register")
    page.get_by_role("button", name="Abmelden").click()

    sign_in(base, "dsb")
    page.goto(base + "/governance/entscheidungen")
    assert "Antwortentwurf" in page.get_by_role("table").last.inner_text()
    assert_accessible(page, "governance-entscheidungen")
    page.get_by_label("Entscheidung").select_option("bearbeitet")
    page.get_by_role("button", name="Filtern").click()
    page.wait_for_url("**entscheidung=bearbeitet*")
    page.get_by_text("Zeilen Diff").click()  # the diff unfolds
    assert_accessible(page, "governance-entscheidungen-diff")

    page.goto(base + "/governance/modelle")
    assert_accessible(page, "governance-modelle")

    page.goto(base + "/governance/datenschutz")
    assert_accessible(page, "governance-datenschutz")
    page.get_by_label("Tage nach Abschluss").fill("365")
    page.locator("#regel-passwort").fill(PASSWORD)
    page.get_by_role("button", name="Regel speichern").click()
    page.wait_for_url("**/governance/datenschutz?meldung=*")
    assert_accessible(page, "governance-datenschutz-regel")
    page.get_by_role("button", name="Regeln anwenden").click()  # a dry run lists the case
    assert "ALP-W-1" in page.locator("#aufbewahrung-ergebnis").inner_text()
    assert_accessible(page, "governance-datenschutz-probelauf")
    auskunft = page.locator("section", has=page.get_by_role("heading", name=re.compile("Auskunft")))
    auskunft.get_by_label("E-Mail").fill("erika.beispiel@example.org")
    auskunft.get_by_role("button", name="Suchen").click()
    assert "ALP-W-1" in page.locator("#auskunft-ergebnis").inner_text()
    assert_accessible(page, "governance-datenschutz-auskunft")
    loeschung = page.locator(
        "section", has=page.get_by_role("heading", name=re.compile("Löschung"))
    )
    loeschung.get_by_label("E-Mail").fill("erika.beispiel@example.org")
    loeschung.get_by_role("button", name="Prüfen (Probelauf)").click()
    assert "Probelauf" in page.locator("#loeschung-ergebnis").inner_text()
    assert_accessible(page, "governance-datenschutz-loeschung")

    page.goto(base + "/governance/datenschutz/zugriffe")
    assert "ALP-W-1" in page.locator("#zugriffe").inner_text()
    assert_accessible(page, "governance-zugriffe")
    page.goto(base + "/governance/datenschutz/zugriffe?von=gestern")  # 422
    assert page.get_by_role("alert").is_visible()
    assert_accessible(page, "governance-zugriffe-fehler")
    assert page.console_errors == []  # type: ignore[attr-defined]
