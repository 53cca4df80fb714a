"""Language models behind one small contract: any OpenAI-compatible server, or llama.cpp locally."""

from __future__ import annotations

import ctypes
import errno
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

from rathaus.ai.breaker import CircuitBreaker
from rathaus.core import netguard
from rathaus.core.errors import ConfigError, RathausError

Role = Literal["system", "user", "assistant"]


class ModelUnavailableError(RathausError):
    """A model backend cannot be reached, loaded or understood.

    ``reason`` is the short cause ("Verbindung abgelehnt", "HTTP 503") where one is known: a
    router lists it per server instead of each server's whole message.
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


@runtime_checkable
class LanguageModel(Protocol):
    """A chat model.

    ``name`` is the backend, ``model`` the model's name and ``version`` what identifies its
    weights (for the audit trail). ``complete`` returns the whole answer; ``stream`` yields it in
    pieces. With ``json_mode`` the answer is a JSON object. Failures raise
    :class:`ModelUnavailableError` with a German message.
    """

    name: str
    model: str
    version: str

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_mode: bool = False,
    ) -> Completion: ...

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]: ...


# Outbound HTTP, shared with the embedding backends -------------------------------------------


def validate_base_url(url: str | None, *, setting: str) -> str:
    """``url`` without trailing slash if it is an http(s) URL with a host, else a ConfigError."""
    if not url:
        raise ConfigError(
            f"{setting} ist nicht gesetzt: bitte die Adresse des OpenAI-kompatiblen Servers "
            "angeben, z. B. http://127.0.0.1:8000/v1."
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{setting} „{url}“ ist ungültig: erlaubt sind nur http:// oder https:// mit "
            "Rechnername, z. B. http://127.0.0.1:8000/v1."
        )
    if parts.username or parts.password:
        raise ConfigError(
            f"{setting} enthält Zugangsdaten: bitte den Schlüssel als API-Key setzen, nicht in "
            "der Adresse."
        )
    return url.rstrip("/")


def _reason(exc: Exception, timeout_s: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"keine Antwort innerhalb von {timeout_s:g} s"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == (
            errno.ECONNREFUSED
        ):
            return "Verbindung abgelehnt"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "refused" in text.lower():
        return "Verbindung abgelehnt"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "Rechnername unbekannt"
    return f"Netzwerkfehler: {text or type(exc).__name__}"


class HTTPBackend:
    """An httpx client for one OpenAI-compatible base URL, with retries and German errors.

    ``what`` names the model in messages ("Das Sprachmodell"); ``setting_prefix`` is the
    settings group (``RATHAUS_LLM``) whose ``__BASE_URL`` and ``__BACKEND`` the messages name;
    for a named server of ``llm.servers`` (``server``) the messages name that entry instead.

    Each request asks the server's ``breaker`` first (refused at once while it is open) and
    reports its outcome to it: network errors, time-outs, 5xx and 429 count as failures, any
    other answer shows the server is up. ``limit`` bounds parallel requests of this process.

    Connections obey the model-server policy of :mod:`rathaus.core.netguard` (own networks yes,
    link-local such as cloud metadata no) plus ``allowed_networks`` (``network.allowed_networks``).
    """

    def __init__(
        self,
        base_url: str | None,
        *,
        what: str,
        setting_prefix: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 1,
        server: str | None = None,
        breaker: CircuitBreaker | None = None,
        limit: threading.BoundedSemaphore | None = None,
        allowed_networks: Sequence[str] = (),
    ) -> None:
        self.prefix = setting_prefix
        self.server = server
        self.base_url = validate_base_url(base_url, setting=self._setting("BASE_URL"))
        self.what = what
        self.setting = f"{setting_prefix}__BACKEND"
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.breaker = breaker
        self.limit = limit
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = netguard.http_client(
            netguard.for_model_servers(allowed_networks), timeout=timeout_s, headers=headers
        )

    def _setting(self, field: str) -> str:
        if self.server is None:
            return f"{self.prefix}__{field}"
        return f"{field.lower()} des Servers „{self.server}“ in llm.servers"

    @property
    def _switch(self) -> str:
        """What else the operator may change: the backend, or the route of a named server."""
        if self.server is None:
            return f"stellen Sie {self.setting} um"
        return "passen Sie llm.routes an"

    def _unreachable(self, reason: str) -> ModelUnavailableError:
        return ModelUnavailableError(
            f"{self.what} unter {self.base_url} ist nicht erreichbar ({reason}). Bitte prüfen "
            f"Sie, ob der Modellserver läuft, oder {self._switch}.",
            reason=reason,
        )

    def _refused(self, response: httpx.Response) -> ModelUnavailableError:
        detail = response.text[:200].replace("\n", " ")
        if response.status_code in (401, 403):
            hint = f"Bitte prüfen Sie den API-Schlüssel ({self._setting('API_KEY')})."
        elif response.status_code == 404:
            hint = (
                f"Bitte prüfen Sie die Adresse ({self._setting('BASE_URL')}, meist mit /v1) und "
                f"den Modellnamen ({self._setting('MODEL')})."
            )
        else:
            hint = f"Bitte prüfen Sie den Modellserver oder {self._switch}."
        return ModelUnavailableError(
            f"{self.what} unter {self.base_url} hat die Anfrage abgelehnt "
            f"(HTTP {response.status_code}: {detail}). {hint}",
            reason=f"HTTP {response.status_code}",
        )

    def _blocked(self, exc: netguard.NetGuardError) -> ModelUnavailableError:
        self._outcome("Adresse gesperrt")
        return ModelUnavailableError(
            f"{self.what} unter {self.base_url}: {exc.message}", reason="Adresse gesperrt"
        )

    def _retryable(self, response: httpx.Response) -> bool:
        return response.status_code == 429 or response.status_code >= 500

    # breaker and limit ---------------------------------------------------------------------------
    def _admit(self) -> None:
        """Before each request: refused at once while the server's breaker is open."""
        if self.breaker is not None and not self.breaker.acquire():
            raise self._unreachable(self.breaker.refusal())

    def _outcome(self, failure: str | None) -> None:
        if self.breaker is None:
            return
        if failure is None:
            self.breaker.success()
        else:
            self.breaker.failure(failure)

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """One of the server's ``max_concurrency`` places; waits at most the time-out."""
        if self.limit is None:
            yield
            return
        if not self.limit.acquire(timeout=self.timeout_s):
            raise ModelUnavailableError(
                f"{self.what} unter {self.base_url} ist ausgelastet: alle erlaubten parallelen "
                f"Anfragen ({self._setting('MAX_CONCURRENCY')}) laufen seit {self.timeout_s:g} s. "
                "Bitte später erneut versuchen.",
                reason="ausgelastet",
            )
        try:
            yield
        finally:
            self.limit.release()

    @staticmethod
    def _pause(attempt: int) -> None:
        time.sleep(0.5 * 2**attempt)

    # requests ------------------------------------------------------------------------------------
    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST JSON and return the decoded answer, retrying network errors and 5xx/429."""
        url = f"{self.base_url}{path}"
        with self._slot():
            for attempt in range(self.max_retries + 1):
                last = attempt == self.max_retries
                self._admit()
                try:
                    response = self._client.post(url, json=payload)
                except netguard.NetGuardError as exc:
                    raise self._blocked(exc) from None
                except httpx.HTTPError as exc:
                    reason = _reason(exc, self.timeout_s)
                    self._outcome(reason)
                    if last:
                        raise self._unreachable(reason) from exc
                    self._pause(attempt)
                    continue
                if response.is_success:
                    try:
                        data = response.json()
                    except ValueError as exc:
                        self._outcome("Antwort nicht im OpenAI-Format")
                        raise self._malformed() from exc
                    self._outcome(None)
                    return data
                retryable = self._retryable(response)
                self._outcome(f"HTTP {response.status_code}" if retryable else None)
                if last or not retryable:
                    raise self._refused(response)
                self._pause(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def stream_lines(self, path: str, payload: dict[str, Any]) -> Iterator[str]:
        """POST JSON and yield the ``data:`` lines of a server-sent event stream.

        Retries only until the first line arrived: a half-delivered answer is never repeated.
        """
        url = f"{self.base_url}{path}"
        with self._slot():
            for attempt in range(self.max_retries + 1):
                last = attempt == self.max_retries
                self._admit()
                started = reported = False
                try:
                    with self._client.stream("POST", url, json=payload) as response:
                        if not response.is_success:
                            response.read()
                            retryable = self._retryable(response)
                            self._outcome(f"HTTP {response.status_code}" if retryable else None)
                            reported = True
                            if last or not retryable:
                                raise self._refused(response)
                            self._pause(attempt)
                            continue
                        self._outcome(None)
                        reported = True
                        for line in response.iter_lines():
                            if line.startswith("data:"):
                                started = True
                                yield line.removeprefix("data:").strip()
                        return
                except netguard.NetGuardError as exc:
                    reported = True
                    raise self._blocked(exc) from None
                except httpx.HTTPError as exc:
                    reason = _reason(exc, self.timeout_s)
                    self._outcome(reason)
                    reported = True
                    if last or started:
                        raise self._unreachable(reason) from exc
                    self._pause(attempt)
                finally:
                    if not reported and self.breaker is not None:
                        self.breaker.release()  # closed by the caller before any answer

    def _malformed(self) -> ModelUnavailableError:
        return ModelUnavailableError(
            f"{self.what} unter {self.base_url} antwortet nicht im OpenAI-Format. Bitte prüfen "
            f"Sie die Adresse (meist mit /v1) oder {self._switch}.",
            reason="Antwort nicht im OpenAI-Format",
        )

    def close(self) -> None:
        self._client.close()


def _payload_messages(messages: list[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def _usage(data: dict[str, Any]) -> tuple[int | None, int | None]:
    usage = data.get("usage") or {}
    return usage.get("prompt_tokens"), usage.get("completion_tokens")


# Backends --------------------------------------------------------------------------------------


class OpenAICompatibleModel:
    """Any server speaking ``POST /chat/completions`` (vLLM, Ollama, llama.cpp, LiteLLM, NIM).

    ``version`` is the model id the server reports (it names the weights it serves).
    ``server`` is the server's name in ``llm.servers`` (``None``: the single-server settings);
    ``breaker`` and ``limit`` are the process's for that server (:mod:`rathaus.ai.breaker`).
    """

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str | None,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 1,
        server: str | None = None,
        breaker: CircuitBreaker | None = None,
        limit: threading.BoundedSemaphore | None = None,
        allowed_networks: Sequence[str] = (),
    ) -> None:
        self.http = HTTPBackend(
            base_url,
            what="Das Sprachmodell" if server is None else f"Das Sprachmodell „{server}“",
            setting_prefix="RATHAUS_LLM",
            api_key=api_key,
            timeout_s=timeout_s,
            max_retries=max_retries,
            server=server,
            breaker=breaker,
            limit=limit,
            allowed_networks=allowed_networks,
        )
        self.server = server
        self.breaker = breaker
        self.base_url = self.http.base_url
        self.model = model
        self.version = model

    def _payload(
        self, messages: list[ChatMessage], max_tokens: int, temperature: float
    ) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": _payload_messages(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
        }

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_mode: bool = False,
    ) -> Completion:
        payload = self._payload(messages, max_tokens, temperature)
        if json_mode:
            payload["response_format"] = {"type": "json_object"}
        data = self.http.post("/chat/completions", payload)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise self.http._malformed() from exc
        self.version = str(data.get("model") or self.model)
        prompt_tokens, completion_tokens = _usage(data)
        return Completion(
            text=text,
            model=self.version,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=choice.get("finish_reason"),
        )

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        payload = self._payload(messages, max_tokens, temperature) | {"stream": True}
        for line in self.http.stream_lines("/chat/completions", payload):
            if line == "[DONE]":
                return
            try:
                chunk = json.loads(line)
                delta = chunk["choices"][0].get("delta") or {}
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise self.http._malformed() from exc
            if delta.get("content"):
                yield delta["content"]


class _LoadedLlama:
    """One llama.cpp model in memory with a lock: a ``Llama`` object serves one call at a time.

    A call may run under a time limit (:meth:`limit`). llama.cpp asks its abort callback after
    every step of a computation, so reading a long prompt stops too, not only the generation
    between two tokens; ``llama-cpp-python`` removes the half-read part from its cache before
    the next evaluation. The callback must not be Python: it runs on llama.cpp's compute thread
    after every one of some thousand graph nodes per token and would take the GIL each time
    (behind a busy web thread, up to 5 ms a node). It is the C library's ``strlen`` on a
    two-byte flag instead: 0 while the call may go on, 1 once a timer thread has set the first
    byte at the deadline (``bool`` and ``size_t`` come back in the same register).
    """

    def __init__(self, llama: Any) -> None:
        self.llama = llama
        self.lock = threading.Lock()
        self.stopped = False  # the current call's time ran out
        self._flag = ctypes.create_string_buffer(2)
        self._turn = 0
        self._turn_lock = threading.Lock()
        self._abort: Any = None
        ctx = getattr(llama, "ctx", None)
        if ctx is None:  # tests of the plumbing pass stand-ins
            return
        import llama_cpp

        try:
            strlen = ctypes.CDLL(None).strlen
        except (OSError, AttributeError):  # no C library symbols: only the wait is limited
            return
        # Kept on the object: ctypes would call freed memory if it were collected.
        self._abort = ctypes.cast(strlen, llama_cpp.ggml_abort_callback)
        llama_cpp.llama_set_abort_callback(
            ctx, self._abort, ctypes.cast(self._flag, ctypes.c_void_p)
        )

    @contextmanager
    def limit(self, seconds: float) -> Iterator[None]:
        """Run the body with llama.cpp stopped after ``seconds``; ``stopped`` says if it was."""
        with self._turn_lock:
            self._turn += 1
            turn = self._turn
            self._flag[0] = b"\0"
            self.stopped = False
        timer = threading.Timer(max(seconds, 0.0), self._stop, args=(turn,))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            with self._turn_lock:
                self._turn += 1  # a timer firing now finds another turn and does nothing
                self._flag[0] = b"\0"

    def _stop(self, turn: int) -> None:
        with self._turn_lock:
            if turn == self._turn:
                self._flag[0] = b"\1"
                self.stopped = True


_LOADED: dict[tuple[str, int, int], _LoadedLlama] = {}
_LOADING = threading.Lock()


class LocalLlamaModel:
    """A GGUF model run in this process by llama.cpp (``llama-cpp-python``).

    The library is imported and the model loaded on the first call, once per process and file;
    constructing this class is cheap. ``check`` runs once before loading (the registry passes the
    checksum test of the bundled file).
    """

    name = "local"

    def __init__(
        self,
        model_path: Path,
        *,
        context_size: int = 4096,
        threads: int = 2,
        timeout_s: float | None = None,
        version: str | None = None,
        check: Callable[[Path], None] | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self._check = check
        self.model = self.model_path.stem
        self.context_size = context_size
        self.threads = threads
        self.timeout_s = timeout_s
        self.version = version or f"datei:{self.model_path.name}"

    def _loaded(self) -> _LoadedLlama:
        key = (str(self.model_path.resolve()), self.context_size, self.threads)
        with _LOADING:
            if key not in _LOADED:
                _LOADED[key] = _LoadedLlama(self._load())
            return _LOADED[key]

    def _load(self) -> Any:
        if not self.model_path.is_file():
            raise ModelUnavailableError(
                f"Die Modelldatei {self.model_path} fehlt. Bitte `make setup` ausführen "
                "(oder RATHAUS_LLM__MODEL_PATH korrigieren)."
            )
        if self._check is not None:
            try:
                self._check(self.model_path)
            except RathausError as exc:
                raise ModelUnavailableError(exc.message) from exc
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelUnavailableError(
                "Das lokale Sprachmodell ist nicht installiert (Paket llama-cpp-python fehlt). "
                "Bitte `make setup` ausführen oder RATHAUS_LLM__BACKEND=openai setzen."
            ) from exc
        try:
            # Prompt processing gets the same threads as generation (llama-cpp-python would
            # take every core of the machine for it). A call whose prompt starts like the
            # previous one's (the same rules first) reuses the evaluated start from the KV
            # cache and reads only the rest (llama-cpp-python's prefix match).
            return Llama(
                model_path=str(self.model_path),
                n_ctx=self.context_size,
                n_threads=self.threads,
                n_threads_batch=self.threads,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailableError(
                f"Das lokale Sprachmodell {self.model_path} lässt sich nicht laden ({exc}). "
                "Bitte die Datei mit `rathaus models files` prüfen."
            ) from exc

    def _failed(self, exc: Exception, loaded: _LoadedLlama) -> ModelUnavailableError:
        if loaded.stopped:
            return self._too_slow()
        return ModelUnavailableError(
            f"Das lokale Sprachmodell {self.model} konnte die Anfrage nicht verarbeiten ({exc}). "
            "Bitte den Text kürzen oder RATHAUS_LLM__CONTEXT_SIZE erhöhen."
        )

    def _too_slow(self) -> ModelUnavailableError:
        reason = f"keine Antwort innerhalb von {self.timeout_s:g} s"
        return ModelUnavailableError(
            f"Das lokale Sprachmodell {self.model} hat in {self.timeout_s:g} s nicht geantwortet "
            "und wurde abgebrochen (Zeitlimit RATHAUS_LLM__LOCAL_TIMEOUT_S). Bitte den Text "
            "kürzen, es später erneut versuchen oder einen Modellserver einrichten.",
            reason=reason,
        )

    @contextmanager
    def _turn(self) -> Iterator[_LoadedLlama]:
        """The loaded model for one call: waits for the previous call and runs under the time
        limit, both together at most ``timeout_s`` seconds."""
        loaded = self._loaded()
        if self.timeout_s is None:
            with loaded.lock:
                yield loaded
            return
        deadline = time.monotonic() + self.timeout_s
        if not loaded.lock.acquire(timeout=self.timeout_s):
            raise ModelUnavailableError(
                f"Das lokale Sprachmodell {self.model} ist seit {self.timeout_s:g} s mit einer "
                "anderen Anfrage beschäftigt. Bitte es später erneut versuchen.",
                reason="belegt",
            )
        try:
            with loaded.limit(deadline - time.monotonic()):
                yield loaded
        finally:
            loaded.lock.release()

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_mode: bool = False,
    ) -> Completion:
        kwargs: dict[str, Any] = {}
        if json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        with self._turn() as loaded:
            try:
                data = loaded.llama.create_chat_completion(
                    messages=_payload_messages(messages),
                    max_tokens=max_tokens,
                    temperature=temperature,
                    **kwargs,
                )
            except (ValueError, RuntimeError) as exc:
                raise self._failed(exc, loaded) from exc
        choice = data["choices"][0]
        prompt_tokens, completion_tokens = _usage(data)
        return Completion(
            text=choice["message"].get("content") or "",
            model=self.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=choice.get("finish_reason"),
        )

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        with self._turn() as loaded:
            try:
                chunks = loaded.llama.create_chat_completion(
                    messages=_payload_messages(messages),
                    max_tokens=max_tokens,
                    temperature=temperature,
                    stream=True,
                )
                for chunk in chunks:
                    content = chunk["choices"][0].get("delta", {}).get("content")
                    if content:
                        yield content
            except (ValueError, RuntimeError) as exc:
                raise self._failed(exc, loaded) from exc
