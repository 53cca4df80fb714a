"""Records every model call: which model and version, how long, hashes of input and output, who.

Wrap a model once where it is handed to a feature::

    model = RecordingLanguageModel(get_language_model(settings), DatabaseRecorder(db),
                                   function="posteingang.klassifizieren", actor="system")

Every recorded call is also counted in the Prometheus metrics (:mod:`rathaus.core.metrics`:
calls, errors, latency, tokens per function and backend). Wrappers may be nested (a feature's
recording around a model that :func:`metered` already counts): only the outermost one counts,
so a call is never counted twice and carries the most specific function name.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from rathaus.ai.embeddings import Embedder
from rathaus.ai.llm import ChatMessage, Completion, LanguageModel
from rathaus.core.metrics import observe_model_call

if TYPE_CHECKING:
    from rathaus.core.db import Database

T = TypeVar("T")

log = logging.getLogger(__name__)

# True while a recording wrapper is calling its inner model: an inner wrapper then does not
# count the call in the metrics again.
_INSIDE_RECORDING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "rathaus_inside_model_recording", default=False
)


@contextmanager
def _inside_recording() -> Iterator[None]:
    token = _INSIDE_RECORDING.set(True)
    try:
        yield
    finally:
        _INSIDE_RECORDING.reset(token)


@dataclass(frozen=True)
class ModelCallRecord:
    """One model call. ``output_sha256`` is empty when the call failed."""

    function: str
    backend: str
    model: str
    version: str
    latency_ms: float
    input_sha256: str
    output_sha256: str
    actor: str
    ok: bool
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tenant_id: int | None = None


class Recorder(Protocol):
    """Stores call records; must not be slower than the calls it records."""

    def record(self, record: ModelCallRecord) -> None: ...


class ListRecorder:
    """Keeps records in memory (for tests and `rathaus models check`)."""

    def __init__(self) -> None:
        self.records: list[ModelCallRecord] = []

    def record(self, record: ModelCallRecord) -> None:
        self.records.append(record)


class NullRecorder:
    """Stores nothing: for a wrapper that only counts calls in the metrics (:func:`metered`)."""

    def record(self, record: ModelCallRecord) -> None:
        return None


class DatabaseRecorder:
    """Inserts each record into the ``model_calls`` table, in its own transaction."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def record(self, record: ModelCallRecord) -> None:
        from rathaus.core.models import ModelCall

        with self.database.session() as session:
            session.add(
                ModelCall(
                    tenant_id=record.tenant_id,
                    function=record.function,
                    backend=record.backend,
                    model=record.model,
                    model_version=record.version,
                    latency_ms=record.latency_ms,
                    input_sha256=record.input_sha256,
                    output_sha256=record.output_sha256,
                    actor=record.actor,
                    ok=record.ok,
                    error=record.error,
                    prompt_tokens=record.prompt_tokens,
                    completion_tokens=record.completion_tokens,
                )
            )


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_messages(messages: Sequence[ChatMessage]) -> str:
    """SHA-256 of the messages as compact JSON: ``[{"content": …, "role": …}, …]``, UTF-8."""
    data = [{"content": m.content, "role": m.role} for m in messages]
    return sha256_text(json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")))


def hash_texts(texts: Sequence[str], kind: str) -> str:
    """SHA-256 of ``{"kind": …, "texts": […]}`` as compact JSON, UTF-8."""
    data = {"kind": kind, "texts": list(texts)}
    return sha256_text(json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")))


def hash_vectors(vectors: np.ndarray) -> str:
    """SHA-256 of the vectors as little-endian float32 bytes, row by row."""
    return hashlib.sha256(np.ascontiguousarray(vectors, dtype="<f4").tobytes()).hexdigest()


class _Recording:
    def __init__(
        self,
        inner: Any,
        recorder: Recorder,
        *,
        function: str,
        actor: str = "system",
        tenant_id: int | None = None,
    ) -> None:
        self.inner = inner
        self.recorder = recorder
        self.function = function
        self.actor = actor
        self.tenant_id = tenant_id

    def __getattr__(self, name: str) -> Any:
        # Attributes the wrapper does not define are the wrapped model's (a gateway guard or a
        # route around this wrapper reads e.g. the server's name or location through it).
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def version(self) -> str:
        return self.inner.version

    def _record(
        self,
        started: float,
        input_sha256: str,
        *,
        output_sha256: str = "",
        error: Exception | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        count: bool = True,
    ) -> None:
        seconds = time.perf_counter() - started
        if count:
            self._count(seconds, error is None, prompt_tokens, completion_tokens)
        self.recorder.record(
            ModelCallRecord(
                function=self.function,
                backend=self.inner.name,
                model=self.inner.model,
                version=self.inner.version,
                latency_ms=seconds * 1000,
                input_sha256=input_sha256,
                output_sha256=output_sha256,
                actor=self.actor,
                ok=error is None,
                error=None if error is None else getattr(error, "message", None) or repr(error),
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                tenant_id=self.tenant_id,
            )
        )

    def _count(
        self, seconds: float, ok: bool, prompt_tokens: int | None, completion_tokens: int | None
    ) -> None:
        try:
            observe_model_call(
                function=self.function,
                backend=self.inner.name,
                seconds=seconds,
                ok=ok,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            )
        except Exception:  # the metrics must never break a model call
            log.warning("Modellaufruf konnte nicht in den Metriken gezählt werden.", exc_info=True)

    def _call(
        self, input_sha256: str, call: Callable[[], T], output_sha256: Callable[[T], str]
    ) -> T:
        count = not _INSIDE_RECORDING.get()
        started = time.perf_counter()
        try:
            with _inside_recording():
                result = call()
        except Exception as exc:
            self._record(started, input_sha256, error=exc, count=count)
            raise
        tokens = (
            (result.prompt_tokens, result.completion_tokens)
            if isinstance(result, Completion)
            else (None, None)
        )
        self._record(
            started,
            input_sha256,
            output_sha256=output_sha256(result),
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            count=count,
        )
        return result


class RecordingLanguageModel(_Recording):
    """A :class:`LanguageModel` that records each call with ``recorder``."""

    def __init__(
        self,
        inner: LanguageModel,
        recorder: Recorder,
        *,
        function: str,
        actor: str = "system",
        tenant_id: int | None = None,
    ) -> None:
        super().__init__(inner, recorder, function=function, actor=actor, tenant_id=tenant_id)

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_mode: bool = False,
    ) -> Completion:
        return self._call(
            hash_messages(messages),
            lambda: self.inner.complete(
                messages, max_tokens=max_tokens, temperature=temperature, json_mode=json_mode
            ),
            lambda completion: sha256_text(completion.text),
        )

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        """Yields like the inner model; records once the stream ends, fails or is closed."""
        count = not _INSIDE_RECORDING.get()
        input_sha256 = hash_messages(messages)
        started = time.perf_counter()
        pieces: list[str] = []
        error: Exception | None = None
        iterator: Iterator[str] | None = None
        try:
            # Each step of the inner stream runs "inside" this recording (set and reset
            # around the step, never across a yield, which would leak into the consumer).
            with _inside_recording():
                iterator = iter(
                    self.inner.stream(messages, max_tokens=max_tokens, temperature=temperature)
                )
            while True:
                with _inside_recording():
                    piece = next(iterator, None)
                if piece is None:
                    break
                pieces.append(piece)
                yield piece
        except Exception as exc:
            error = exc
            raise
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:  # closed early by the consumer: let the inner stream end too
                with _inside_recording():
                    close()
            self._record(
                started,
                input_sha256,
                output_sha256="" if error else sha256_text("".join(pieces)),
                error=error,
                count=count,
            )


class RecordingEmbedder(_Recording):
    """An :class:`Embedder` that records each call with ``recorder``."""

    def __init__(
        self,
        inner: Embedder,
        recorder: Recorder,
        *,
        function: str,
        actor: str = "system",
        tenant_id: int | None = None,
    ) -> None:
        super().__init__(inner, recorder, function=function, actor=actor, tenant_id=tenant_id)

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        return self._call(
            hash_texts(texts, "query"), lambda: self.inner.embed_queries(texts), hash_vectors
        )

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        return self._call(
            hash_texts(texts, "passage"), lambda: self.inner.embed_passages(texts), hash_vectors
        )


class _SeenAsInner:
    """Mixin for :func:`metered` wrappers: ``isinstance`` sees the wrapped model's class, so
    code that asks "is this the local model?" gets the same answer with or without metering."""

    inner: Any

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105
        return self.inner.__class__


class MeteredLanguageModel(_SeenAsInner, RecordingLanguageModel):
    """A language model counted in the metrics, without a database record."""


class MeteredEmbedder(_SeenAsInner, RecordingEmbedder):
    """An embedder counted in the metrics, without a database record."""


def metered(model: Any, *, function: str = "unbenannt") -> Any:
    """``model`` (a language model or an embedder) counted in the metrics, without a database
    record: for the place that hands out models, so that calls no feature records still count.
    A feature's own recording around it takes over the count (see the module docstring)."""
    if hasattr(model, "complete"):
        return MeteredLanguageModel(model, NullRecorder(), function=function)
    return MeteredEmbedder(model, NullRecorder(), function=function)
