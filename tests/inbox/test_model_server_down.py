"""The model server down: every case is still triaged by the steps without a language model,
its reply draft comes from the template, and the case is marked; with the server back, drafts
come from the model again. The model server is a real HTTP server on 127.0.0.1, stopped and
restarted on the same port; the pipeline runs for real on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from rathaus.core.config import Settings, load_settings
from rathaus.core.db import Database
from rathaus.core.models import AiSuggestion, Case, Message, Tenant
from rathaus.inbox.pipeline import TriageKit, ingest
from rathaus.inbox.service import IncomingItem
from tests.ai.model_server import ModelServer
from tests.inbox.history import build_history_world

LETTER = (
    "Erika Beispiel\nLindenstraße 12\n12345 Alphastadt\n\n"
    "Widerspruch gegen den Gebührenbescheid vom 10.11.2026\n\n"
    "Sehr geehrte Damen und Herren,\ngegen den Bescheid über 1.471,60 € lege ich hiermit "
    "Widerspruch ein. Bitte erstatten Sie den Betrag auf DE89 3704 0044 0532 0130 00.\n\n"
    "Mit freundlichen Grüßen\nErika Beispiel"
)


@pytest.fixture
def server() -> Iterator[ModelServer]:
    started = ModelServer("entwurf", answer=lambda messages: "Sehr geehrte Frau [PERSON_1], …")
    started.start()
    yield started
    started.stop()


def settings_for(server: ModelServer, tmp_path: Path) -> Settings:
    return load_settings(
        mode="demo",
        data_dir=tmp_path,
        inbox={"llm_reply_drafts": True},
        llm={
            "backend": "none",
            "servers": [
                {
                    "name": "vllm",
                    "base_url": server.url,
                    "model": "entwurfsmodell",
                    "location": "eigener_server",
                    "retries": 0,
                }
            ],
            "routes": {"antwortentwurf": ["vllm"]},
            "breaker_failures": 1,
            "breaker_cooldown_s": 30,
        },
    )


def letter(n: int) -> IncomingItem:
    return IncomingItem(
        channel="brief",
        original=f"{LETTER}\n\nBrief {n}".encode(),
        filename=f"brief-{n}.txt",
        media_type="text/plain",
        received_at=dt.datetime(2026, 11, 21, 9, tzinfo=dt.UTC),
    )


def draft_of(session, case: Case) -> tuple[Message, AiSuggestion]:  # type: ignore[no-untyped-def]
    message = session.scalars(
        select(Message).where(Message.case_id == case.id, Message.direction == "out")
    ).one()
    reply = session.scalars(
        select(AiSuggestion).where(
            AiSuggestion.case_id == case.id, AiSuggestion.function == "reply"
        )
    ).one()
    return message, reply


def test_cases_are_triaged_without_the_model_server_and_marked(
    db: Database, server: ModelServer, tmp_path: Path
) -> None:
    kit = TriageKit.from_settings(settings_for(server, tmp_path), embedder=None)
    # The process's breaker for this server, on a clock the test moves (no waiting).
    breaker, now = kit.language_model.breaker, [0.0]
    breaker.clock = lambda: now[0]
    server.stop()
    with db.session() as session:
        world = build_history_world(session, per_service=0)
        # The first case meets a refused connection, the next ones the open breaker.
        cases = [ingest(session, tenant=world.tenant, item=letter(n), kit=kit).case for n in (1, 2)]
        for case in cases:
            assert case.triaged_at is not None
            # The steps without a language model ran as always.
            assert case.request_type == "Widerspruch" and case.urgency == "hoch"
            assert case.fields["extracted"]["amounts"][0]["value"] == "1471.60"
            routing = session.scalars(
                select(AiSuggestion).where(
                    AiSuggestion.case_id == case.id, AiSuggestion.function == "routing"
                )
            ).one()
            assert routing.output["candidates"]
            message, reply = draft_of(session, case)
            assert reply.backend == "vorlage"  # the template draft
            assert case.reference in message.body and "Erika Beispiel" in message.body
            reason = case.needs_review_reason or ""
            assert "Antwortentwurf ohne Sprachmodell" in reason
            assert "nicht erreichbar" in reason
        assert "Verbindung abgelehnt" in (cases[0].needs_review_reason or "")
        assert "vorübergehend gesperrt" in (cases[1].needs_review_reason or "")
        tenant_id = world.tenant.id
    assert server.chats() == []

    # The server is back: after the cool-down the next draft comes from the model again.
    server.start()
    now[0] += 31
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        case = ingest(session, tenant=tenant, item=letter(3), kit=kit).case
        message, reply = draft_of(session, case)
        assert reply.backend == "sprachmodell" and reply.model_version == "entwurf"
        assert message.body == "Sehr geehrte Frau Erika Beispiel, …"  # re-identified
        assert "Antwortentwurf ohne Sprachmodell" not in (case.needs_review_reason or "")
    assert len(server.chats()) == 1
    assert "Erika Beispiel" not in str(server.chats()[0]["payload"])  # pseudonymised
