"""Language model backends on the real bundled model: in-process llama.cpp and its HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from rathaus.ai.llm import (
    ChatMessage,
    LanguageModel,
    LocalLlamaModel,
    ModelUnavailableError,
    OpenAICompatibleModel,
    validate_base_url,
)
from rathaus.ai.model_files import LLM_MODEL
from rathaus.ai.registry import get_language_model
from rathaus.core.config import load_settings
from rathaus.core.errors import ConfigError

DEPARTMENTS = {"buergerbuero", "ordnungsamt", "bauamt"}
ROUTING = [
    ChatMessage(
        "system",
        "Du ordnest Anliegen von Bürgern einer Abteilung zu. Abteilungen: buergerbuero (Ausweise, "
        "Meldewesen), ordnungsamt (Lärm, Parken), bauamt (Bauanträge). Antworte nur mit JSON "
        'der Form {"abteilung": "<Abteilung>"}.',
    ),
    ChatMessage("user", "Mein Personalausweis läuft ab. Wo beantrage ich einen neuen?"),
]
HELLO = [ChatMessage("user", "Sag Hallo.")]


@pytest.mark.model
def test_local_model_answers_json(local_llm: LocalLlamaModel) -> None:
    completion = local_llm.complete(ROUTING, max_tokens=24, json_mode=True)

    assert json.loads(completion.text)["abteilung"] == "buergerbuero"
    assert completion.prompt_tokens and completion.completion_tokens
    assert isinstance(local_llm, LanguageModel)


@pytest.mark.model
def test_local_model_streams(local_llm: LocalLlamaModel) -> None:
    pieces = list(local_llm.stream(HELLO, max_tokens=6))

    assert len(pieces) > 1
    assert "".join(pieces).strip()


def test_local_model_without_file_says_what_to_do(tmp_path: Path) -> None:
    model = LocalLlamaModel(tmp_path / "fehlt.gguf")

    with pytest.raises(ModelUnavailableError, match=r"fehlt\. Bitte `make setup` ausführen"):
        model.complete(HELLO)


def test_registry_builds_bundled_local_model_without_loading_it(tmp_path: Path) -> None:
    settings = load_settings(mode="demo", models_dir=tmp_path)

    model = get_language_model(settings)

    assert isinstance(model, LocalLlamaModel)
    assert model.model_path == tmp_path / LLM_MODEL.file_name
    assert model.version == f"sha256:{LLM_MODEL.sha256[:12]}"
    assert get_language_model(load_settings(mode="demo", llm={"backend": "none"})) is None


def test_registry_requires_a_url_for_openai() -> None:
    settings = load_settings(mode="demo", llm={"backend": "openai"})

    with pytest.raises(ConfigError, match="RATHAUS_LLM__BASE_URL ist nicht gesetzt"):
        get_language_model(settings)


@pytest.mark.parametrize(
    "url",
    ["ftp://modelle.example/v1", "file:///etc/passwd", "http://", "http://nutzer:geheim@llm/v1"],
)
def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ConfigError, match="RATHAUS_LLM__BASE_URL"):
        validate_base_url(url, setting="RATHAUS_LLM__BASE_URL")


@pytest.fixture(scope="module")
def served_model(llama_server: str) -> OpenAICompatibleModel:
    model_id = httpx.get(f"{llama_server}/models").json()["data"][0]["id"]
    return OpenAICompatibleModel(base_url=llama_server, model=model_id, timeout_s=120)


@pytest.mark.model
def test_openai_compatible_complete(served_model: OpenAICompatibleModel) -> None:
    completion = served_model.complete(ROUTING, max_tokens=24, json_mode=True)

    assert json.loads(completion.text)["abteilung"] in DEPARTMENTS
    assert completion.completion_tokens


@pytest.mark.model
def test_openai_compatible_stream(served_model: OpenAICompatibleModel) -> None:
    pieces = list(served_model.stream(HELLO, max_tokens=6))

    assert len(pieces) > 1
    assert "".join(pieces).strip()


@pytest.mark.model
def test_openai_compatible_wrong_path_is_explained(llama_server: str) -> None:
    model = OpenAICompatibleModel(base_url=llama_server.removesuffix("/v1") + "/falsch", model="x")

    with pytest.raises(ModelUnavailableError, match=r"abgelehnt \(HTTP 404.*RATHAUS_LLM__BASE_URL"):
        model.complete(HELLO, max_tokens=2)


def test_openai_compatible_down_server_is_explained(closed_url: str) -> None:
    url = closed_url
    model = OpenAICompatibleModel(base_url=url, model="x", max_retries=1)

    with pytest.raises(ModelUnavailableError) as caught:
        model.complete(HELLO)
    assert caught.value.message == (
        f"Das Sprachmodell unter {url} ist nicht erreichbar (Verbindung abgelehnt). Bitte prüfen "
        "Sie, ob der Modellserver läuft, oder stellen Sie RATHAUS_LLM__BACKEND um."
    )
    with pytest.raises(ModelUnavailableError, match="Verbindung abgelehnt"):
        list(model.stream(HELLO))
