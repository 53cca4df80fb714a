"""The citizen assistant with several model servers: generated answers from the first server of
its route, from the next one when the first is down, and extractive answers from the sources
when no server answers. The servers are real HTTP servers on 127.0.0.1; the knowledge base is
real (SQLite and PostgreSQL) with the bundled embedder."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from rathaus.assistant import answer as answering
from rathaus.assistant import knowledge
from rathaus.assistant.answer import AssistantKit
from rathaus.core.config import Settings, load_settings
from tests.ai.model_server import ModelServer
from tests.assistant.test_retrieval import ENTRIES
from tests.factories import build_tenant

QUESTION = "Was brauche ich für einen neuen Personalausweis?"


def quote_first_source(messages: list[dict[str, str]]) -> str:
    """A well-behaved model: the first sentence of source [1], with its citation mark."""
    user = [m["content"] for m in messages if m["role"] == "user"][-1]  # the question's turn
    passage = re.search(r"\[1\] [^\n]*\n(.+?)(?:\n\n\[2\]|\n\nFrage:)", user, re.S)
    assert passage is not None, user
    first = re.split(r"(?<=[.!?])\s+", " ".join(passage.group(1).split()))[0]
    return f"{first} [1]"


@pytest.fixture
def kb(db, embedder):  # type: ignore[no-untyped-def]
    with db.session() as session:
        tenant = build_tenant(session, "a").tenant
        knowledge.upsert_entries(session, tenant_id=tenant.id, entries=ENTRIES, embedder=embedder)
        session.commit()
        yield session, tenant


@pytest.fixture
def servers() -> Iterator[dict[str, ModelServer]]:
    started = {n: ModelServer(n, answer=quote_first_source).start() for n in ("gpu", "cpu")}
    yield started
    for server in started.values():
        server.stop()


def settings_for(servers: dict[str, ModelServer]) -> Settings:
    return load_settings(
        mode="demo",
        llm={
            "backend": "local",  # the in-process model stays the standard for other functions
            "servers": [
                {"name": n, "base_url": s.url, "model": f"modell-{n}", "retries": 0}
                for n, s in servers.items()
            ],
            "routes": {"buergerassistent": ["gpu", "cpu"]},
            "breaker_failures": 1,
            "breaker_cooldown_s": 600,
        },
    )


def test_answers_are_generated_by_the_route_and_extractive_when_no_server_answers(
    kb, embedder, servers: dict[str, ModelServer]
) -> None:  # type: ignore[no-untyped-def]
    session, tenant = kb
    # answer_mode auto: the route has model servers, so the assistant generates.
    kit = AssistantKit.from_settings(settings_for(servers), embedder=embedder)

    first = answering.answer(session, tenant=tenant, question=QUESTION, kit=kit)
    assert first.mode == "generiert"
    assert [s.text for s in first.sentences] == [
        "Den Personalausweis beantragen Sie persönlich im Bürgerbüro."
    ]
    assert len(servers["gpu"].chats()) == 1 and servers["cpu"].chats() == []
    assert QUESTION in servers["gpu"].texts()[0]

    servers["gpu"].stop()
    second = answering.answer(session, tenant=tenant, question=QUESTION, kit=kit)
    assert second.mode == "generiert" and second.sentences
    assert len(servers["cpu"].chats()) == 1  # the next server of the route answered

    servers["cpu"].stop()
    third = answering.answer(session, tenant=tenant, question=QUESTION, kit=kit)
    assert third.mode == "extraktiv" and not third.abstained
    assert third.sentences and all(s.sources for s in third.sentences)
    assert any(
        "nicht erreichbar" in note and "Antwort aus den Quellen" in note for note in third.notes
    )
    assert {s.url for s in third.sources} == {"https://stadt.example/ausweis"}
    assert "required_documents" in [f.key for f in third.facts]

    # Both breakers are open now: the next question is extractive without a single request.
    fourth = answering.answer(session, tenant=tenant, question=QUESTION, kit=kit)
    assert fourth.mode == "extraktiv"
    assert any("vorübergehend gesperrt" in note for note in fourth.notes)
