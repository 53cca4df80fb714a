"""The KI-Register with several model servers: each function shows and is judged by its route."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from pypdf import PdfReader

from rathaus.ai.model_files import LLM_MODEL
from rathaus.core.config import MODEL_FUNCTIONS, load_settings
from rathaus.governance.register import (
    LOCATION_LABELS,
    CatalogueError,
    Entry,
    ModelInfo,
    build_register,
    check_catalogue,
    load_catalogue,
)
from rathaus.governance.register_pdf import to_pdf

SERVERS = [
    {
        "name": "srv",
        "base_url": "http://gpu1.kommune.internal:8000/v1",
        "model": "qwen2.5-14b-instruct",
        "location": "eigener_server",
    },
    {
        "name": "cloud",
        "base_url": "https://llm.anbieter.example/v1",
        "model": "mistral-large",
        "location": "extern",
    },
]


def _settings(backend: str = "none", routes: dict[str, list[str]] | None = None, **overrides):  # type: ignore[no-untyped-def]
    llm: dict[str, Any] = {"backend": backend, "servers": SERVERS, "routes": routes or {}}
    if backend == "openai":
        llm |= {"base_url": "http://vllm.kommune.internal:8000/v1", "model": "qwen2.5-32b",
                "location": "eigener_server"}  # fmt: skip
    return load_settings(mode="demo", llm=llm, **overrides)


def _llms(entry: Entry) -> list[ModelInfo]:
    return [m for m in entry.models if m.kind == "llm"]


def _route(entry: Entry) -> list[tuple[str, str, str, bool, bool]]:
    return [(m.server, m.name, m.location, m.fallback, m.active) for m in _llms(entry)]


# -- the catalogue ------------------------------------------------------------------------------


def test_each_language_model_entry_names_the_function_its_call_site_passes():
    # read from the call sites: get_language_model(settings, "…") in inbox/pipeline.py,
    # assistant/answer.py, web+cli writing_summaries/text_summaries, writing_minutes,
    # writing_letters/text_letters ("texte.pressemitteilung", "texte.uebersetzung" without the
    # prefix), writing_plain/text_plain
    expected = {
        "posteingang.antwortentwurf": "antwortentwurf",
        "assistent.antworten": "buergerassistent",
        "texte.zusammenfassung": "zusammenfassung",
        "texte.niederschrift": "niederschrift",
        "texte.pressemitteilung": "pressemitteilung",
        "texte.uebersetzung": "uebersetzung",
        "texte.leichte_sprache": "leichte_sprache",
    }
    catalogue = load_catalogue()
    named = {i["key"]: i["model_function"] for i in catalogue if "model_function" in i}
    assert named == expected
    # every function a route can name is in the register exactly once
    assert sorted(named.values()) == sorted(MODEL_FUNCTIONS)
    assert {i["key"] for i in catalogue if "llm" in i["models"]} == set(expected)


def test_the_catalogue_check_refuses_a_wrong_or_missing_model_function():
    catalogue = load_catalogue()
    summary = next(i for i in catalogue if i["key"] == "texte.zusammenfassung")
    letters = next(i for i in catalogue if i["key"] == "texte.briefe")
    check_catalogue([summary, letters])  # as bundled
    with pytest.raises(CatalogueError, match="unbekannte Modellfunktion zusammenfasung"):
        check_catalogue([{**summary, "model_function": "zusammenfasung"}])
    without = {k: v for k, v in summary.items() if k != "model_function"}
    with pytest.raises(CatalogueError, match="model_function genau dann"):
        check_catalogue([without])
    with pytest.raises(CatalogueError, match="model_function genau dann"):
        check_catalogue([{**letters, "model_function": "zusammenfassung"}])


# -- models and status per route ----------------------------------------------------------------


def test_a_route_serves_one_function_while_the_others_have_no_model():
    register = build_register(_settings("none", {"zusammenfassung": ["srv"]}))
    summary = register.entry("texte.zusammenfassung")
    assert summary.active and summary.model_function == "zusammenfassung"
    assert _route(summary) == [("srv", "qwen2.5-14b-instruct", "eigener_server", False, True)]
    [model] = _llms(summary)
    assert model.location_label == LOCATION_LABELS["eigener_server"]
    assert model.source == "http://gpu1.kommune.internal:8000/v1"
    assert model.version == "vom Modellserver bereitgestellt"
    assert summary.server_label(model) == "Server „srv“"

    translation = register.entry("texte.uebersetzung")
    assert not translation.active
    assert "llm.routes.uebersetzung" in translation.status
    assert "eingestellt ist llm.backend = none" in translation.status
    assert _route(translation) == [("", "kein Sprachmodell", "lokal", False, False)]
    for key in ("texte.pressemitteilung", "texte.niederschrift", "texte.leichte_sprache"):
        [none] = _llms(register.entry(key))
        assert none.name == "kein Sprachmodell" and not none.active, key
        function = register.entry(key).model_function
        assert f"keine Route llm.routes.{function} oder llm.routes.standard" in none.note, key


def test_every_server_of_a_route_in_the_order_a_call_tries_them():
    routes = {"uebersetzung": ["cloud", "srv"], "zusammenfassung": ["srv", "cloud"]}
    register = build_register(_settings("none", routes))
    translation = register.entry("texte.uebersetzung")
    assert translation.active and translation.status == "aktiv"
    assert _route(translation) == [
        ("cloud", "mistral-large", "extern", False, True),
        ("srv", "qwen2.5-14b-instruct", "eigener_server", True, True),
    ]
    labels = [translation.server_label(m) for m in _llms(translation)]
    assert labels == ["Hauptserver „cloud“", "Ausweichserver „srv“"]
    summary = register.entry("texte.zusammenfassung")
    assert [m.server for m in _llms(summary)] == ["srv", "cloud"]
    # the JSON keeps the order and says which is the fallback
    data = register.as_dict()
    entry = next(f for f in data["functions"] if f["key"] == "texte.uebersetzung")
    assert entry["model_function"] == "uebersetzung"
    assert [(m["server"], m["source"], m["fallback"]) for m in entry["models"]] == [
        ("cloud", "https://llm.anbieter.example/v1", False),
        ("srv", "http://gpu1.kommune.internal:8000/v1", True),
    ]


def test_the_standard_route_serves_every_function_without_its_own():
    register = build_register(_settings("none", {"standard": ["srv"], "uebersetzung": ["cloud"]}))
    for key in ("texte.pressemitteilung", "texte.niederschrift", "assistent.antworten"):
        assert [m.server for m in _llms(register.entry(key))] == ["srv"], key
    translation = register.entry("texte.uebersetzung")
    assert translation.active and [m.server for m in _llms(translation)] == ["cloud"]
    # a model server behind the route: generated answers in the auto mode
    assert all(m.active for m in _llms(register.entry("assistent.antworten")))


def test_the_local_standard_model_next_to_a_server():
    routes = {"buergerassistent": ["srv", "standard"], "leichte_sprache": ["standard"]}
    register = build_register(_settings("local", routes))
    assistant = register.entry("assistent.antworten")
    srv, standard = _llms(assistant)
    assert (srv.server, srv.location, srv.active) == ("srv", "eigener_server", True)
    # the in-process model as the fallback, with its pinned file and checksum
    assert standard.server == "standard" and standard.fallback and standard.active
    assert standard.sha256 == LLM_MODEL.sha256 and standard.location == "lokal"
    assert [assistant.server_label(m) for m in (srv, standard)] == [
        "Hauptserver „srv“",
        "Ausweichserver „standard“",
    ]
    # the standard route alone: the local model, shown as in a single-server installation
    plain = register.entry("texte.leichte_sprache")
    [local] = _llms(plain)
    assert local.sha256 == LLM_MODEL.sha256 and plain.server_label(local) == ""
    # translation needs a model server; the local model is not one
    translation = register.entry("texte.uebersetzung")
    assert not translation.active and "eingestellt ist llm.backend = local" in translation.status


def test_generated_answers_follow_the_assistants_route():
    local_only = build_register(_settings("local", {"buergerassistent": ["standard"]}))
    [model] = _llms(local_only.entry("assistent.antworten"))
    assert not model.active
    assert model.note == (
        "extraktive Antworten (assistant.answer_mode = auto, llm.routes.buergerassistent = "
        "standard)"
    )
    routed = build_register(_settings("local", {"buergerassistent": ["srv"]}))
    assert all(m.active for m in _llms(routed.entry("assistent.antworten")))
    extractive = build_register(
        _settings("none", {"buergerassistent": ["srv"]}, assistant={"answer_mode": "extraktiv"})
    )
    [model] = _llms(extractive.entry("assistent.antworten"))
    assert not model.active and "assistant.answer_mode = extraktiv" in model.note
    generated = build_register(
        _settings(
            "local", {"buergerassistent": ["standard"]}, assistant={"answer_mode": "generiert"}
        )
    )
    assert all(m.active for m in _llms(generated.entry("assistent.antworten")))


def test_reply_drafts_follow_their_route_and_their_switch():
    off = build_register(_settings("none", {"antwortentwurf": ["srv", "cloud"]}))
    models = _llms(off.entry("posteingang.antwortentwurf"))
    assert [m.server for m in models] == ["srv", "cloud"]
    assert all(not m.active and "inbox.llm_reply_drafts" in m.note for m in models)
    on = build_register(
        _settings("none", {"antwortentwurf": ["srv"]}, inbox={"llm_reply_drafts": True})
    )
    assert _route(on.entry("posteingang.antwortentwurf")) == [
        ("srv", "qwen2.5-14b-instruct", "eigener_server", False, True)
    ]
    nothing = build_register(
        _settings("none", {"zusammenfassung": ["srv"]}, inbox={"llm_reply_drafts": True})
    )
    [none] = _llms(nothing.entry("posteingang.antwortentwurf"))
    assert not none.active and "keine Route llm.routes.antwortentwurf" in none.note


def test_the_openai_standard_server_and_a_fallback():
    register = build_register(_settings("openai", {"standard": ["standard", "cloud"]}))
    press = register.entry("texte.pressemitteilung")
    assert _route(press) == [
        ("standard", "qwen2.5-32b", "eigener_server", False, True),
        ("cloud", "mistral-large", "extern", True, True),
    ]
    assert press.server_label(_llms(press)[0]) == "Hauptserver „standard“"
    assert _llms(press)[0].source == "http://vllm.kommune.internal:8000/v1"


def test_single_server_settings_show_no_server_names():
    for llm in ({"backend": "local"}, {"backend": "openai", "base_url": "http://llm:8000/v1"}):
        register = build_register(load_settings(mode="demo", llm=llm))
        for entry in register.entries:
            for model in _llms(entry):
                assert entry.server_label(model) == "" and not model.fallback
                assert model.server == "standard"
    none = build_register(load_settings(mode="demo", llm={"backend": "none"}))
    [model] = _llms(none.entry("texte.pressemitteilung"))
    assert (model.server, model.note) == ("", "")  # as before: no route, no reason


def test_pdf_lists_every_server_of_a_route():
    register = build_register(_settings("none", {"zusammenfassung": ["srv", "cloud"]}))
    reader = PdfReader(io.BytesIO(to_pdf(register)))
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    first = text.index("Hauptserver „srv“: qwen2.5-14b-instruct")
    second = text.index("Ausweichserver „cloud“: mistral-large")
    assert first < second
    assert "Quelle: http://gpu1.kommune.internal:8000/v1" in text
    assert "Quelle: https://llm.anbieter.example/v1" in text
    json.dumps(register.as_dict(), ensure_ascii=False)
