"""Really call every configured model backend once: for `rathaus models check` and the UI."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rathaus.ai.calls import Recorder, RecordingEmbedder, RecordingLanguageModel
from rathaus.ai.llm import ChatMessage
from rathaus.ai.registry import get_embedder, get_language_model
from rathaus.core.config import Settings
from rathaus.core.errors import RathausError


@dataclass(frozen=True)
class BackendCheck:
    """The outcome of one test call: which function, whether it worked, what it said."""

    function: str
    backend: str
    model: str
    ok: bool
    detail: str
    latency_ms: float


def _timed(function: str, backend: str, model: str, call) -> BackendCheck:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    try:
        detail = call()
        ok = True
    except RathausError as exc:
        detail, ok = exc.message, False
    return BackendCheck(function, backend, model, ok, detail, (time.perf_counter() - start) * 1000)


def check_backends(
    settings: Settings, *, recorder: Recorder, actor: str = "system", tenant_id: int | None = None
) -> list[BackendCheck]:
    """One small request to the language model and the embedder; each call is recorded."""
    results: list[BackendCheck] = []
    try:
        model = get_language_model(settings)
    except RathausError as exc:
        results.append(
            BackendCheck(
                "Sprachmodell", settings.llm.backend, settings.llm.model, False, exc.message, 0.0
            )
        )
        model = None
    else:
        if model is None:
            results.append(
                BackendCheck(
                    "Sprachmodell", "none", "–", True, "Kein Sprachmodell konfiguriert.", 0.0
                )
            )
    if model is not None:
        recording = RecordingLanguageModel(
            model, recorder, function="models.check", actor=actor, tenant_id=tenant_id
        )

        def ask() -> str:
            answer = recording.complete(
                [
                    ChatMessage("system", "Antworte nur mit dem Wort OK."),
                    ChatMessage("user", "Bist du bereit?"),
                ],
                max_tokens=8,
            )
            return f"Antwort: „{answer.text.strip()[:40]}“"

        results.append(_timed("Sprachmodell", model.name, model.model, ask))
    try:
        embedder = get_embedder(settings)
    except RathausError as exc:
        results.append(
            BackendCheck(
                "Einbettungen",
                settings.embeddings.backend,
                settings.embeddings.model,
                False,
                exc.message,
                0.0,
            )
        )
        return results
    recording_embedder = RecordingEmbedder(
        embedder, recorder, function="models.check", actor=actor, tenant_id=tenant_id
    )

    def embed() -> str:
        vectors = recording_embedder.embed_queries(["Personalausweis beantragen"])
        return f"{vectors.shape[1]} Dimensionen"

    results.append(_timed("Einbettungen", embedder.name, embedder.model, embed))
    return results
