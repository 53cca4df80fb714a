"""The pseudonymisation gateway against a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from rathaus.ai.embeddings import OpenAICompatibleEmbedder
from rathaus.ai.llm import ChatMessage, OpenAICompatibleModel
from rathaus.ai.registry import get_embedder, get_language_model
from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.models import AuditEvent, PseudonymMap
from rathaus.governance import keys, policy
from rathaus.governance.gateway import (
    PLACEHOLDER_NOTE,
    REFUSED_EVENT,
    is_guarded,
    model_context,
    pseudonymize_text,
    reidentified_stream,
    scoped,
)
from tests.factories import build_tenant
from tests.governance.recording_server import RecordingServer

LETTER = (
    "Sehr geehrte Damen und Herren, ich bin Anna Beispiel, Lindenstraße 12, 78462 Konstanz. "
    "Bitte überweisen Sie auf IBAN DE89 3704 0044 0532 0130 00. Tel. 07531 123456."
)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    recording = RecordingServer().start()
    yield recording
    recording.stop()


def settings_for(server: RecordingServer, location: str = "eigener_server", **extra):  # type: ignore[no-untyped-def]
    return load_settings(
        mode="demo",
        secret_key="g" * 40,
        llm={"backend": "openai", "base_url": server.url, "location": location, "max_retries": 0},
        embeddings={"backend": "openai", "base_url": server.url, "location": location},
        **extra,
    )


def test_registry_models_are_guarded_and_still_what_they_wrap(server: RecordingServer) -> None:
    settings = settings_for(server)
    model, embedder = get_language_model(settings), get_embedder(settings)
    assert is_guarded(model) and is_guarded(embedder)
    assert isinstance(model, OpenAICompatibleModel) and model.name == "openai"
    assert isinstance(embedder, OpenAICompatibleEmbedder)


def test_without_context_pii_is_replaced_and_the_answer_keeps_placeholders(
    server: RecordingServer,
) -> None:
    model = get_language_model(settings_for(server))
    answer = model.complete([ChatMessage("system", "Du hilfst."), ChatMessage("user", LETTER)])
    sent = server.all_text()
    for value in ("Anna Beispiel", "Lindenstraße", "78462", "DE89", "0532 0130", "07531"):
        assert value not in sent
    assert "[PERSON_1]" in sent and "[IBAN_1]" in sent and "[PHONE_1]" in sent
    assert PLACEHOLDER_NOTE in server.received[0]["payload"]["messages"][0]["content"]
    # Level "intern" by default, no permission to re-identify: the placeholders stay.
    assert (
        answer.text
        == "Guten Tag [PERSON_1] [ADDRESS_1] [IBAN_1] [PHONE_1], vielen Dank für Ihre Nachricht."
    )


def test_case_scope_is_consistent_stored_encrypted_and_reidentified(
    server: RecordingServer, db: Database
) -> None:
    settings = settings_for(server)
    model = get_language_model(settings)
    with db.session() as session:
        world = build_tenant(session, "alpha")
        case = world.cases["BA"]
        scope = dict(
            tenant_id=world.tenant.id, case_id=case.id, may_reidentify=True, session=session
        )
        with model_context(**scope):
            first = model.complete([ChatMessage("user", LETTER)])
        with model_context(**scope):
            # A later call of the same case: the same person keeps [PERSON_1], even where the
            # detector alone would not see a name ("Beispiel" without first name or title).
            second = model.complete(
                [
                    ChatMessage(
                        "user",
                        "Rückfrage an Beispiel wegen DE89370400440532013000, "
                        "neue IBAN DE02 1203 0000 0000 2020 51.",
                    )
                ]
            )
        case_id, tenant_id = case.id, world.tenant.id
    assert "Anna Beispiel" in first.text and "DE89 3704 0044 0532 0130 00" in first.text
    last = server.received[-1]["text"]
    assert "[PERSON_1]" in last and "[IBAN_1]" in last and "[IBAN_2]" in last
    assert "Beispiel" not in last and "DE02" not in last
    assert "DE02 1203 0000 0000 2020 51" in second.text
    with db.session() as session:
        row = session.scalars(select(PseudonymMap)).one()
        assert row.scope == f"case:{case_id}" and row.case_id == case_id
        assert b"Beispiel" not in bytes(row.ciphertext)
        mapping = keys.load_mapping(
            session,
            tenant_id=tenant_id,
            scope=row.scope,
            keyring=keys.Keyring.from_settings(settings),
        )
    assert mapping["[PERSON_1]"] == "Anna Beispiel" and mapping["[IBAN_2]"].startswith("DE02")


def test_streaming_is_reidentified_across_split_placeholders(server: RecordingServer) -> None:
    model = get_language_model(settings_for(server))
    with model_context(may_reidentify=True):
        pieces = list(model.stream([ChatMessage("user", LETTER)]))
    assert "".join(pieces) == (
        "Guten Tag Anna Beispiel Lindenstraße 12, 78462 Konstanz DE89 3704 0044 0532 0130 00 "
        "07531 123456, vielen Dank für Ihre Nachricht."
    )
    assert server.received[0]["payload"]["stream"] is True
    assert "Anna" not in server.all_text()


def test_reidentified_stream_holds_back_only_what_may_be_a_placeholder() -> None:
    mapping = {"[PERSON_1]": "Anna Beispiel", "[IBAN_12]": "DE89"}
    pieces = ["Hallo [", "PERS", "ON_1", "] und [IB", "AN_1", "2]: [Liste] [", "x"]
    out = list(reidentified_stream(pieces, mapping))
    assert "".join(out) == "Hallo Anna Beispiel und DE89: [Liste] [x"
    assert out[0] == "Hallo " and all(piece for piece in out)


def test_embedding_inputs_are_pseudonymised(server: RecordingServer) -> None:
    embedder = get_embedder(settings_for(server))
    vectors = embedder.embed_passages([LETTER, "Anna Beispiel ruft wieder an."])
    assert vectors.shape == (2, 384)
    sent = server.received[0]["payload"]["input"]
    assert sent[1] == "[PERSON_1] ruft wieder an."  # one mapping for the whole call
    assert "Anna" not in server.all_text()


def test_policy_refusal_sends_nothing_and_is_audited(server: RecordingServer, db: Database) -> None:
    model = get_language_model(settings_for(server))
    with db.session() as session:
        world = build_tenant(session, "alpha")
        with (
            pytest.raises(policy.ModelPolicyError, match="„vertraulich“"),
            model_context(
                level="vertraulich",
                tenant_id=world.tenant.id,
                case_id=world.cases["BA"].id,
                session=session,
                actor="sb",
            ),
        ):
            model.complete([ChatMessage("user", LETTER)])
        tenant_id, case_id = world.tenant.id, world.cases["BA"].id
    assert server.received == []
    with db.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.kind == REFUSED_EVENT)).one()
    assert event.tenant_id == tenant_id and event.subject == f"case:{case_id}"
    assert event.actor == "sb" and event.data["grund"] == "richtlinie"
    assert event.data["stufe"] == "vertraulich" and event.data["ort"] == "eigener_server"
    assert "Anna" not in str(event.data) and "DE89" not in str(event.data)


def test_lost_key_refuses_the_call_and_keeps_the_mapping(
    server: RecordingServer, db: Database
) -> None:
    old = keys.generate_key()
    with db.session() as session:
        world = build_tenant(session, "alpha")
        model = get_language_model(settings_for(server, governance={"pseudonym_keys": [old]}))
        with model_context(
            tenant_id=world.tenant.id, case_id=world.cases["BA"].id, session=session
        ):
            model.complete([ChatMessage("user", LETTER)])
        tenant_id, case_id = world.tenant.id, world.cases["BA"].id
    with db.session() as session:
        stored = bytes(session.scalars(select(PseudonymMap)).one().ciphertext)
    sent_before = len(server.received)
    other = get_language_model(
        settings_for(server, governance={"pseudonym_keys": [keys.generate_key()]})
    )
    with (
        db.session() as session,
        pytest.raises(policy.ModelRefusedError, match=keys.key_id(old)),
        model_context(tenant_id=tenant_id, case_id=case_id, session=session),
    ):
        other.complete([ChatMessage("user", "Neue Nachricht von Anna Beispiel")])
    assert len(server.received) == sent_before  # nothing left the process
    with db.session() as session:
        assert bytes(session.scalars(select(PseudonymMap)).one().ciphertext) == stored
        refused = session.scalars(select(AuditEvent).where(AuditEvent.kind == REFUSED_EVENT)).one()
        assert refused.data["grund"] == "schluessel" and keys.key_id(old) in refused.data["meldung"]


def test_a_scoped_stream_keeps_its_scope_in_another_thread(server: RecordingServer) -> None:
    model = scoped(get_language_model(settings_for(server)), may_reidentify=True)
    stream = model.stream([ChatMessage("user", LETTER)])
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.extend(stream))
    worker.start()
    worker.join(10)
    assert "Anna Beispiel" in "".join(result)
    assert scoped(None, level="intern") is None


def test_local_models_are_not_pseudonymised() -> None:
    """Text for an in-process model never leaves the process: it is passed on unchanged."""

    class Echo:
        name, model, version = "local", "echo", "1"

        def complete(self, messages, **kwargs):  # type: ignore[no-untyped-def]
            from rathaus.ai.llm import Completion

            return Completion(text=messages[-1].content, model="echo")

    from rathaus.governance.gateway import guard

    echo = guard(Echo(), load_settings(mode="demo"), "llm")
    assert echo.complete([ChatMessage("user", LETTER)]).text == LETTER


def test_pseudonymize_text_reuses_known_values() -> None:
    text, mapping = pseudonymize_text("Frau Anna Beispiel, IBAN DE89 3704 0044 0532 0130 00", {})
    again, mapping2 = pseudonymize_text("anna beispiel zahlt auf DE89370400440532013000", mapping)
    assert again == "[PERSON_1] zahlt auf [IBAN_1]" and mapping2 == mapping
