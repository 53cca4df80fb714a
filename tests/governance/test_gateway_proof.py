"""THE PROOF: no personal data of a test letter reaches a real model server on 127.0.0.1.

The real inbox pipeline runs with ``llm.backend=openai`` and ``embeddings.backend=openai`` on a
recording OpenAI-compatible server (``llm.location=eigener_server``) and with
``inbox.llm_reply_drafts=true``; the whole letter goes to the embeddings endpoint and the facts
of the reply draft to the chat endpoint. Every request body is searched for every value, also
in normalised forms.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.models import AiSuggestion, AuditEvent, Case, Confidentiality, Message
from rathaus.governance.gateway import REFUSED_EVENT, model_context
from rathaus.inbox.pipeline import TriageKit, ingest, triage_case
from rathaus.inbox.service import IncomingItem
from rathaus.writing.summarize import GENERATED, summarize_text
from tests.factories import build_tenant
from tests.governance.recording_server import RecordingServer

LETTER = """Anna Beispiel · Lindenstraße 12 · 78462 Konstanz

Stadt Alpha
Bürgeramt

Betreff: Widerspruch gegen den Gebührenbescheid, Az. 63-BV-2026-0456

Sehr geehrte Damen und Herren,

hiermit lege ich Widerspruch gegen den Bescheid vom 03.02.2026 ein. Bitte erstatten Sie den
Betrag auf mein Konto IBAN DE89 3704 0044 0532 0130 00 (Kontoinhaberin Anna Beispiel).
Meine Steuer-ID lautet 86 095 742 719, geboren am 14.03.1985.
Sie erreichen mich unter Tel. 07531 123456 oder per E-Mail an anna.beispiel@example.org.
Das Fahrzeug mit dem Kennzeichen KN-AB 1234 ist auf mich zugelassen.

Mit freundlichen Grüßen
Anna Beispiel
"""

# Each value and the forms in which it could be written elsewhere.
PII = {
    "name": ["Anna Beispiel", "Beispiel"],
    "address": ["Lindenstraße 12", "Lindenstrasse", "78462 Konstanz", "78462"],
    "iban": ["DE89 3704 0044 0532 0130 00", "DE89370400440532013000", "0532 0130", "0532013000"],
    "phone": ["07531 123456", "07531123456", "+49 7531", "123456"],
    "email": ["anna.beispiel@example.org", "anna.beispiel", "ANNA.BEISPIEL"],
    "birth": ["14.03.1985", "1985-03-14", "14. März 1985"],
    "tax_id": ["86 095 742 719", "86095742719"],
    "aktenzeichen": ["63-BV-2026-0456"],
    "plate": ["KN-AB 1234", "KN-AB1234", "KN AB 1234"],
}


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    recording = RecordingServer().start()
    yield recording
    recording.stop()


def settings_for(server: RecordingServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_settings(
        mode="demo",
        data_dir=tmp_path,
        secret_key="p" * 40,
        llm={
            "backend": "openai",
            "base_url": server.url,
            "location": "eigener_server",
            "max_retries": 0,
        },
        embeddings={"backend": "openai", "base_url": server.url, "location": "eigener_server"},
        inbox={"llm_reply_drafts": True},
    )


def leaked(server: RecordingServer) -> list[str]:
    sent = server.all_text()
    compact = re.sub(r"\s+", "", sent)
    found = []
    for kind, forms in PII.items():
        for form in forms:
            if form in sent or form.lower() in sent.lower() or re.sub(r"\s+", "", form) in compact:
                found.append(f"{kind}: {form}")
    return found


def item(letter: str = LETTER) -> IncomingItem:
    return IncomingItem(
        channel="email",
        original=letter.encode("utf-8"),
        filename="widerspruch.txt",
        media_type="text/plain",
        subject="Widerspruch gegen den Gebührenbescheid",
        body=letter,
    )


def test_no_personal_data_of_the_letter_reaches_the_model_server(
    db: Database, server: RecordingServer, tmp_path: Path
) -> None:
    kit = TriageKit.from_settings(settings_for(server, tmp_path))
    with db.session() as session:
        world = build_tenant(session, "alpha")
        received = ingest(session, tenant=world.tenant, item=item(), kit=kit)
        case_id = received.case.id
    paths = server.paths()
    assert "/v1/embeddings" in paths and "/v1/chat/completions" in paths
    assert leaked(server) == []
    sent = server.all_text()
    # What the server did get: the letter with placeholders, consistent within the case.
    embedded = next(r for r in server.received if r["path"] == "/v1/embeddings")["text"]
    for placeholder in ("[PERSON_1]", "[ADDRESS_1]", "[IBAN_1]", "[TAX_ID_1]", "[PHONE_1]",
                        "[EMAIL_1]", "[DATE_OF_BIRTH_1]", "[AKTENZEICHEN_1]", "[PLATE_1]"):  # fmt: skip
        assert placeholder in embedded
    assert "Widerspruch" in sent  # the content itself still reaches the model
    chat = next(r for r in server.received if r["path"] == "/v1/chat/completions")
    assert "[PERSON_1]" in chat["text"]  # the same person, the same placeholder as in the letter
    assert "unverändert" in chat["payload"]["messages"][0]["content"]
    with db.session() as session:
        draft = session.scalars(
            select(Message).where(Message.case_id == case_id, Message.direction == "out")
        ).one()
        # The reply draft stays on the case: the model's placeholders show the real name again.
        assert "Anna Beispiel" in draft.body and "[PERSON_1]" not in draft.body
        reply = session.scalars(
            select(AiSuggestion).where(
                AiSuggestion.case_id == case_id, AiSuggestion.function == "reply"
            )
        ).one()
        assert reply.backend == "sprachmodell"
        case = session.get(Case, case_id)
        assert "Modellaufruf abgelehnt" not in (case.needs_review_reason or "")


def test_a_confidential_case_is_refused_logged_and_shown_on_the_case(
    db: Database, server: RecordingServer, tmp_path: Path
) -> None:
    kit = TriageKit.from_settings(settings_for(server, tmp_path))
    with db.session() as session:
        world = build_tenant(session, "alpha")
        received = ingest(session, tenant=world.tenant, item=item(), kit=kit, triage=False)
        received.case.confidentiality = Confidentiality.VERTRAULICH
        session.flush()
        triage_case(session, received.case, kit)
        case_id, tenant_id = received.case.id, world.tenant.id
    assert server.received == []  # not a byte left the process
    with db.session() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.triaged_at is not None  # the case is not lost
        reason = case.needs_review_reason or ""
        assert "Modellaufruf abgelehnt" in reason and "„vertraulich“" in reason
        assert "RATHAUS_GOVERNANCE__POLICIES" in reason
        draft = session.scalars(
            select(Message).where(Message.case_id == case_id, Message.direction == "out")
        ).one()
        assert draft.status == "entwurf" and "Anna Beispiel" in draft.body  # from the template
        events = session.scalars(
            select(AuditEvent).where(
                AuditEvent.kind == REFUSED_EVENT, AuditEvent.tenant_id == tenant_id
            )
        ).all()
        assert {e.subject for e in events} == {f"case:{case_id}"}
        assert {e.data["funktion"] for e in events} == {"llm", "embeddings"}
        assert all(e.data["stufe"] == "vertraulich" for e in events)
        assert "Beispiel" not in str([e.data for e in events])


def test_a_summary_through_the_same_server_is_pseudonymised_too(
    db: Database, server: RecordingServer, tmp_path: Path
) -> None:
    from rathaus.ai.registry import get_embedder, get_language_model

    settings = settings_for(server, tmp_path)
    with db.session() as session:
        world = build_tenant(session, "alpha")
        case = world.cases["BA"]
        with model_context(
            level=case.confidentiality,
            tenant_id=world.tenant.id,
            case_id=case.id,
            may_reidentify=True,
            session=session,
        ):
            summary = summarize_text(
                LETTER * 3,
                embedder=get_embedder(settings),
                sentences=3,
                mode=GENERATED,
                llm=get_language_model(settings),
            )
    assert "/v1/chat/completions" in server.paths() and "/v1/embeddings" in server.paths()
    assert leaked(server) == []
    assert summary.sentences  # a summary came back (generated or, if unsupported, extractive)
