"""The KI-Register: catalogue against the code, configuration, tenant data and stored runs."""

from __future__ import annotations

import datetime as dt
import importlib
import json

import pytest

from rathaus.ai.model_files import EMBEDDING_MODEL, LLM_MODEL
from rathaus.cli import eval_cmd
from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.models import RoutingModelVersion
from rathaus.governance.eval_store import save_run
from rathaus.governance.register import (
    EVALS,
    FORMAT,
    RISK_LABELS,
    build_register,
    load_catalogue,
    quality_of,
)
from tests.factories import build_tenant


def _settings(**overrides):  # type: ignore[no-untyped-def]
    return load_settings(mode="demo", **overrides)


def _eval_commands() -> set[str]:
    import rathaus.cli  # noqa: F401 - registers the lage/text measurements on eval_cmd.app

    return {c.name for c in eval_cmd.app.registered_commands}


def test_catalogue_matches_the_code():
    catalogue = load_catalogue()
    assert len(catalogue) >= 15
    for item in catalogue:
        for module in item["code"]:
            importlib.import_module(module)  # a renamed module breaks the register here
    commands = _eval_commands()
    assert set(EVALS) == commands, "every `rathaus eval` command needs an EvalSpec and back"
    used = {name for item in catalogue for name in item["evals"]}
    assert used == set(EVALS), "every measurement belongs to at least one function"


def test_every_function_the_issue_names_is_in_the_register():
    names = " ".join(
        f"{e.name} {e.purpose} {e.method}" for e in build_register(_settings()).entries
    )
    for word in (
        "Zuordnung", "Anliegenart", "Dringlichkeit", "Aktenzeichen", "personenbezogener Daten",
        "Dubletten", "Antwortentwürfe", "Prompt", "Bürgerassistent", "Zusammenfassungen",
        "Whisper", "Beschlüsse", "Pressemitteilungen", "Briefe", "Übersetzung", "Leichte Sprache",
        "Prognose", "Process Mining", "Buchungsprüfung", "Winterdienst",
    ):  # fmt: skip
        assert word in names, word


def test_risk_classes_and_reasoning():
    register = build_register(_settings())
    by_key = {e.key: e for e in register.entries}
    assistant = by_key["assistent.antworten"]
    assert assistant.risk.risk_class == "begrenzt" and "Art. 50" in assistant.risk.reasoning
    routing = by_key["posteingang.zuordnung"]
    assert routing.risk.risk_class == "minimal"
    assert "Anhang III" in routing.risk.reasoning and "Mensch" in routing.risk.reasoning
    assert by_key["lagebild.winterdienst"].risk.risk_class == "kein_ki_system"
    assert "Optimierung" in by_key["lagebild.winterdienst"].risk.reasoning
    assert by_key["lagebild.prognose"].risk.risk_class == "kein_ki_system"
    assert by_key["texte.zusammenfassung"].risk.risk_class == "minimal"
    assert not [e for e in register.entries if e.risk.risk_class == "hoch"]
    for entry in register.entries:
        assert entry.risk.label == RISK_LABELS[entry.risk.risk_class]
        assert entry.owner and entry.oversight and entry.data and entry.purpose
        assert entry.legal_basis and "{" not in entry.legal_basis
        assert entry.quality or entry.quality_note
        assert entry.public_summary and entry.public_decision


def test_models_follow_the_configuration():
    local = build_register(_settings()).entry("assistent.antworten")
    models = {m.kind: m for m in local.models}
    assert models["embeddings"].sha256 == EMBEDDING_MODEL.sha256
    assert models["embeddings"].location == "lokal"
    assert models["llm"].sha256 == LLM_MODEL.sha256 and not models["llm"].active
    assert "extraktive Antworten" in models["llm"].note
    translation = build_register(_settings()).entry("texte.uebersetzung")
    assert not translation.active and "llm.backend = openai" in translation.status

    server = _settings(
        llm={
            "backend": "openai",
            "base_url": "http://nutzer:geheim@llm.kommune.internal:8000/v1",
            "model": "qwen2.5-32b",
            "location": "eigener_server",
        },
        embeddings={"backend": "openai", "base_url": "http://emb:9000/v1", "model": "bge-m3",
                    "location": "extern"},
    )  # fmt: skip
    register = build_register(server)
    models = {m.kind: m for m in register.entry("assistent.antworten").models}
    assert models["llm"].active and models["llm"].name == "qwen2.5-32b"
    assert models["llm"].location == "eigener_server"
    assert "geheim" not in models["llm"].source and "llm.kommune.internal" in models["llm"].source
    assert models["embeddings"].name == "bge-m3" and models["embeddings"].location == "extern"
    assert register.entry("texte.uebersetzung").active
    replies = {m.kind: m for m in register.entry("posteingang.antwortentwurf").models}
    assert not replies["llm"].active and "inbox.llm_reply_drafts" in replies["llm"].note
    assert "geheim" not in json.dumps(register.as_dict())

    none = build_register(_settings(llm={"backend": "none"}))
    press = {m.kind: m for m in none.entry("texte.pressemitteilung").models}
    assert not press["llm"].active


def test_quality_formats_and_missing_runs(db: Database):
    assert quality_of("forecast", None).status == "noch nicht gemessen"
    assert quality_of("forecast", None).command == "rathaus eval forecast"
    save_run(
        db,
        name="minutes",
        metrics={"outcome_correct": 45, "scored": 50, "decision_found": 0, "decision_expected": 0},
        data="meetings.jsonl",
        command="rathaus eval minutes --sitzungen 20",
    )
    save_run(
        db,
        name="forecast",
        metrics={"mase": 0.8123, "coverage_80": 0.8, "coverage_95": 0.951},
        data="boston.csv.gz",
        command="rathaus eval forecast",
    )
    with db.session() as session:
        register = build_register(_settings(), session=session)
    forecast = register.entry("lagebild.prognose").quality[0]
    assert forecast.status == "gemessen" and forecast.data == "boston.csv.gz"
    shown = {m.key: m.display for m in forecast.metrics}
    assert shown == {"mase": "0,812", "coverage_80": "80,0 %", "coverage_95": "95,1 %"}
    assert dt.datetime.fromisoformat(forecast.measured_at).tzinfo is not None
    minutes = register.entry("texte.niederschrift").quality[0]
    # a share over zero items is left out instead of shown as 0 %
    assert [(m.key, m.display) for m in minutes.metrics] == [("outcome_correct/scored", "90,0 %")]
    assert minutes.command == "rathaus eval minutes --sitzungen 20"
    assistant = register.entry("assistent.antworten").quality
    assert [q.status for q in assistant] == [
        "noch nicht gemessen"
    ] * 3  # assistant, retrieval, uebersetzung


def test_tenant_routing_model_land_and_auto_routing(db: Database):
    with db.session() as session:
        world = build_tenant(session, "alpha")
        world.tenant.land = "BY"
        world.units["BA"].auto_route_enabled = True
        world.units["BA"].auto_route_threshold = 0.9
        session.add(
            RoutingModelVersion(
                tenant_id=world.tenant.id,
                version=3,
                status="live",
                file_path="routing/alpha/v3",
                file_sha256="ab" * 32,
                metrics={"accuracy": 0.9123, "held_out": 40},
                n_train=200,
                activated_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
            )
        )
        session.flush()
        register = build_register(_settings(), session=session, tenant=world.tenant)
    assert register.tenant == {"slug": "alpha", "name": "Stadt Alpha", "land": "Bayern"}
    routing = register.entry("posteingang.zuordnung")
    assert "Bayerischen Datenschutzgesetz" in routing.legal_basis
    model = next(m for m in routing.models if m.kind == "routing")
    assert model.version == "Version 3" and model.sha256 == "ab" * 32
    assert "200 Vorgängen" in model.note and "91,2 %" in model.note
    assert any("BA (ab 90,0 %)" in o for o in routing.oversight)


def test_tenant_without_routing_model(db: Database):
    with db.session() as session:
        world = build_tenant(session, "alpha")
        register = build_register(_settings(), session=session, tenant=world.tenant)
    routing = register.entry("posteingang.zuordnung")
    model = next(m for m in routing.models if m.kind == "routing")
    assert not model.active and "Regeln und Ähnlichkeit" in model.note
    assert any("für kein Amt eingeschaltet" in o for o in routing.oversight)
    assert "Landesdatenschutzgesetz Baden-Württemberg" in routing.legal_basis


def test_json_form_has_the_documented_keys():
    data = build_register(_settings()).as_dict()
    json.dumps(data, ensure_ascii=False)
    assert data["format"] == FORMAT and data["format_version"] == 1 and data["tenant"] is None
    assert set(data) == {
        "format", "format_version", "generated_at", "rathaus_version", "tenant",
        "risk_classes", "functions",
    }  # fmt: skip
    entry = data["functions"][0]
    # model_function, server and fallback came with the model routes (issue 8): new keys, the
    # meaning of the others unchanged, so format_version stays 1 (docs/ai-register.md)
    assert set(entry) == {
        "key", "name", "area", "purpose", "method", "active", "status", "models", "risk",
        "legal_basis", "legal_basis_note", "owner", "oversight", "data", "quality",
        "quality_note", "public_summary", "public_decision", "code", "model_function",
    }  # fmt: skip
    assert set(entry["risk"]) == {"class", "label", "reasoning"}
    assert set(entry["models"][0]) == {
        "kind", "name", "version", "file", "sha256", "license", "location", "location_label",
        "source", "active", "note", "server", "fallback",
    }  # fmt: skip
    quality = next(q for f in data["functions"] for q in f["quality"])
    assert set(quality) == {
        "measurement", "title", "command", "status", "measured_at", "data", "rathaus_version",
        "metrics",
    }  # fmt: skip


@pytest.mark.parametrize("key", sorted(EVALS))
def test_every_measurement_has_headline_metrics(key):
    spec = EVALS[key]
    assert spec.metrics and spec.title and spec.command == f"rathaus eval {key}"
