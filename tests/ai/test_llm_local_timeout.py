"""The time limit of the in-process llama.cpp model (``llm.local_timeout_s``), on the real bundled
model: a call that runs too long is cut off while the prompt is still being read, a call that
waits too long for the previous one gives up, and the model answers normally afterwards."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rathaus.ai.llm import ChatMessage, LocalLlamaModel, ModelUnavailableError
from rathaus.ai.registry import get_language_model
from rathaus.core.config import load_settings

QUESTION = [
    ChatMessage("system", 'Antworte nur mit JSON der Form {"amt": "<Amt>"}.'),
    ChatMessage("user", "Wo beantrage ich einen neuen Personalausweis? Amt: buergerbuero"),
]
# About 1,500 tokens: reading them takes the bundled model several seconds on any CPU.
LONG = [
    ChatMessage(
        "user",
        " ".join(
            f"Absatz {n}: Die Stadtverwaltung prüft den Antrag auf Sondernutzung der Straße."
            for n in range(55)
        )
        + " Fasse zusammen.",
    )
]


def _limited(gguf_path: Path, seconds: float) -> LocalLlamaModel:
    # Same file, context and threads as ``local_llm``: the same loaded model, no second copy.
    return LocalLlamaModel(gguf_path, context_size=2048, threads=2, timeout_s=seconds)


@pytest.mark.model
def test_a_call_over_the_limit_is_cut_off_while_reading_the_prompt(
    local_llm: LocalLlamaModel, gguf_path: Path
) -> None:
    limited = _limited(gguf_path, 0.2)
    prompt_tokens = len(local_llm._loaded().llama.tokenize(LONG[0].content.encode(), add_bos=False))

    with pytest.raises(ModelUnavailableError, match=r"hat in 0\.2 s nicht geantwortet") as caught:
        limited.complete(LONG, max_tokens=8)

    assert caught.value.reason == "keine Antwort innerhalb von 0.2 s"
    # Stopped inside the prompt, not after reading all of it and generating.
    assert limited._loaded().llama.n_tokens < prompt_tokens
    # The model is intact: nothing of the half-read prompt stays in its cache.
    answer = local_llm.complete(QUESTION, max_tokens=16, json_mode=True).text
    assert json.loads(answer)["amt"] == "buergerbuero"


@pytest.mark.model
def test_a_stream_over_the_limit_ends_with_the_error(
    local_llm: LocalLlamaModel, gguf_path: Path
) -> None:
    with pytest.raises(ModelUnavailableError, match="nicht geantwortet"):
        list(_limited(gguf_path, 0.2).stream(LONG, max_tokens=8))
    assert list(local_llm.stream([ChatMessage("user", "Sag Hallo.")], max_tokens=4))


@pytest.mark.model
def test_a_call_waiting_too_long_for_the_previous_one_gives_up(
    local_llm: LocalLlamaModel, gguf_path: Path
) -> None:
    loaded = local_llm._loaded()
    with loaded.lock:  # another call holds the model
        started = time.monotonic()
        with pytest.raises(ModelUnavailableError, match="mit einer anderen Anfrage beschäftigt"):
            _limited(gguf_path, 0.3).complete(QUESTION, max_tokens=4)
        assert time.monotonic() - started >= 0.3
    assert local_llm.complete(QUESTION, max_tokens=8).text


def test_the_limit_comes_from_the_settings(tmp_path: Path) -> None:
    settings = load_settings(mode="demo", models_dir=tmp_path, llm={"local_timeout_s": 42})
    model = get_language_model(settings)
    assert isinstance(model, LocalLlamaModel) and model.timeout_s == 42
    own_file = load_settings(
        mode="demo", llm={"model_path": tmp_path / "eigen.gguf", "local_timeout_s": 7}
    )
    assert get_language_model(own_file).timeout_s == 7  # type: ignore[union-attr]
    assert load_settings(mode="demo").llm.local_timeout_s == 180
