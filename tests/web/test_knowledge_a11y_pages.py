"""axe-core (WCAG 2.1 A/AA) on every page of the Wissen area in a real Chromium, each page also
kept as a screenshot: the list (with filters and an empty result), an entry (saved, with an
error, with the answers that cited it), the import with its result and the gaps report."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from rathaus.core.models import (
    AssistantCitation,
    AssistantConversation,
    AssistantTurn,
    KnowledgeEntry,
)
from tests.a11y import PageAudit
from tests.browser.keyboard import login
from tests.factories import PASSWORD
from tests.web.test_browser import _serve, page  # noqa: F401 - the shared browser fixture
from tests.web.test_knowledge_browser import with_sperrmuell

MARKDOWN = b"""# Hundesteuer anmelden

Wer einen Hund hat, meldet ihn innerhalb von zwei Wochen bei der Stadt an.

## Kosten

Die Steuer betraegt 120 Euro im Jahr.
"""


@pytest.fixture
def knowledge_pages_server(sqlite_db, tmp_path, embedder):
    """An entry cited by two answers, and questions the assistant could not answer."""
    with sqlite_db.session() as session:
        tenant_id = with_sperrmuell(session, embedder)
        entry_id = session.scalar(
            select(KnowledgeEntry.id).where(KnowledgeEntry.tenant_id == tenant_id)
        )
        for question, abstained, confidence, feedback in (
            ("Wann kommt der Sperrmüll?", False, 0.9, 1),
            ("Darf ich ein Sofa zum Sperrmüll stellen?", False, 0.3, -1),
            ("Wo beantrage ich einen Anwohnerparkausweis?", True, 0.1, None),
            ("Wo beantrage ich den Anwohnerparkausweis", True, 0.1, None),
        ):
            conversation = AssistantConversation(tenant_id=tenant_id, public_id=uuid.uuid4().hex)
            session.add(conversation)
            session.flush()
            turn = AssistantTurn(
                tenant_id=tenant_id,
                conversation_id=conversation.id,
                question=question,
                answer={"text": "Sperrmüll holen wir nach Anmeldung ab.", "sentences": []},
                confidence=confidence,
                abstained=abstained,
                feedback=feedback,
                feedback_comment="Zu ungenau." if feedback == -1 else "",
            )
            session.add(turn)
            session.flush()
            if not abstained:
                session.add(
                    AssistantCitation(
                        tenant_id=tenant_id, turn_id=turn.id, entry_id=entry_id, rank=0
                    )
                )
    for server in _serve(sqlite_db, tmp_path):
        yield server, entry_id


@pytest.mark.browser
def test_every_knowledge_page_passes_axe(knowledge_pages_server, page):  # noqa: F811
    server, entry_id = knowledge_pages_server
    audit = PageAudit(page)
    login(page, server, "redaktion", PASSWORD)

    audit.visit(server + "/wissen", "wissen")
    audit.visit(server + "/wissen?q=gibtesnicht&ungeprueft=1", "wissen-kein-treffer")
    audit.visit(server + f"/wissen/{entry_id}", "wissen-eintrag")
    page.get_by_label("Titel", exact=True).fill("")
    page.get_by_label("Quelle (URL)").fill("https://stadt.example/sperrmuell")
    page.get_by_role("button", name="Speichern").evaluate("b => b.form.noValidate = true")
    page.get_by_role("button", name="Speichern").click()
    page.get_by_role("alert").wait_for()
    audit.refused()
    audit.check("wissen-eintrag-fehler")
    audit.visit(server + f"/wissen/{entry_id}", "wissen-eintrag-erneut")
    page.get_by_role("button", name="Als geprüft markieren").click()
    page.wait_for_url("**meldung=geprueft*")
    audit.check("wissen-eintrag-geprueft")

    audit.visit(server + "/wissen/import", "wissen-import")
    page.get_by_label("Dateien auswählen").set_input_files(
        [
            {"name": "hundesteuer.md", "mimeType": "text/markdown", "buffer": MARKDOWN},
            {"name": "kaputt.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-kaputt"},
        ]
    )
    page.get_by_role("button", name="Importieren").click()
    page.get_by_role("heading", name="Ergebnis").wait_for()
    audit.check("wissen-import-ergebnis")

    audit.visit(server + "/wissen/luecken", "wissen-luecken")
    audit.visit(server + "/wissen/luecken?tage=7&schwelle=0.5", "wissen-luecken-schwelle")

    audit.assert_clean()
