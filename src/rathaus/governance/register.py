"""The KI-Register: every AI function of Rathaus with purpose, models, risk class and quality.

The entries come from the catalogue ``ki_register.toml`` (what the code does, written next to
it), the configuration (which models run where, with file names and checksums; what is
switched on), the tenant (its Land for the legal basis, its live routing model, automatic
routing per department) and the newest stored ``rathaus eval`` runs
(:mod:`rathaus.governance.eval_store`). :func:`build_register` returns plain dataclasses;
:meth:`Register.as_dict` is the documented JSON form (``docs/ai-register.md``).
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus import __version__
from rathaus.ai.model_files import EMBEDDING_MODEL, LLM_MODEL, SPEECH_MODEL
from rathaus.ai.registry import route_of, served_by_server
from rathaus.core.config import DEFAULT_ROUTE, MODEL_FUNCTIONS, Settings, mask_url
from rathaus.core.models import EvalRun, OrgUnit, RoutingModelVersion, Tenant

FORMAT = "rathaus-ki-register"
FORMAT_VERSION = 1

RISK_LABELS = {
    "hoch": "Hohes Risiko (Anhang III)",
    "begrenzt": "Begrenztes Risiko – Transparenzpflicht nach Art. 50",
    "minimal": "Minimales Risiko",
    "kein_ki_system": "Kein KI-System im Sinne von Art. 3 Nr. 1",
}

LOCATION_LABELS = {
    "lokal": "lokal im Rathaus-Prozess",
    "eigener_server": "auf einem Server der Kommune",
    "extern": "bei einem externen Anbieter",
}

LAENDER = {
    "BW": ("Baden-Württemberg", "Landesdatenschutzgesetz Baden-Württemberg (LDSG)"),
    "BY": ("Bayern", "Bayerischen Datenschutzgesetz (BayDSG)"),
    "BE": ("Berlin", "Berliner Datenschutzgesetz (BlnDSG)"),
    "BB": ("Brandenburg", "Brandenburgischen Datenschutzgesetz (BbgDSG)"),
    "HB": ("Bremen", "Bremischen Ausführungsgesetz zur EU-Datenschutz-Grundverordnung"),
    "HH": ("Hamburg", "Hamburgischen Datenschutzgesetz (HmbDSG)"),
    "HE": ("Hessen", "Hessischen Datenschutz- und Informationsfreiheitsgesetz (HDSIG)"),
    "MV": ("Mecklenburg-Vorpommern", "Landesdatenschutzgesetz Mecklenburg-Vorpommern (DSG M-V)"),
    "NI": ("Niedersachsen", "Niedersächsischen Datenschutzgesetz (NDSG)"),
    "NW": ("Nordrhein-Westfalen", "Datenschutzgesetz Nordrhein-Westfalen (DSG NRW)"),
    "RP": ("Rheinland-Pfalz", "Landesdatenschutzgesetz Rheinland-Pfalz (LDSG)"),
    "SL": ("Saarland", "Saarländischen Datenschutzgesetz (SDSG)"),
    "SN": ("Sachsen", "Sächsischen Datenschutzdurchführungsgesetz (SächsDSDG)"),
    "ST": ("Sachsen-Anhalt", "Datenschutz-Grundverordnungs-Ausfüllungsgesetz Sachsen-Anhalt"),
    "SH": ("Schleswig-Holstein", "Landesdatenschutzgesetz Schleswig-Holstein (LDSG)"),
    "TH": ("Thüringen", "Thüringer Datenschutzgesetz (ThürDSG)"),
}
GENERIC_LAW = "Datenschutzgesetz des Landes"
LEGAL_NOTE = "Vorlage: von der Kommune (Datenschutz, Rechtsamt) zu prüfen und zu bestätigen."


@dataclass(frozen=True)
class Metric:
    """A headline number of a measurement: ``key`` is a dotted path or ``a/b`` (a share)."""

    key: str
    label: str
    fmt: str = "pct"  # pct, num, int, ms, s, min, bool


@dataclass(frozen=True)
class EvalSpec:
    """What a ``rathaus eval`` measurement measures and which of its numbers the register shows."""

    name: str
    title: str
    metrics: tuple[Metric, ...]

    @property
    def command(self) -> str:
        return f"rathaus eval {self.name}"


EVALS: dict[str, EvalSpec] = {
    spec.name: spec
    for spec in (
        EvalSpec(
            "inbox",
            "Zuordnung auf dem Konstanzer Mängelmelder (Training 2020–2021, Test 2022)",
            (
                Metric("unit.accuracy", "Genauigkeit Organisationseinheit"),
                Metric("unit.macro_f1", "Makro-F1 Organisationseinheit", "num"),
                Metric("unit.auto_share_at_95", "automatisch zuordenbar bei 95 % Präzision"),
                Metric("category.accuracy", "Genauigkeit Kategorie"),
            ),
        ),
        EvalSpec(
            "demo-inbox",
            "Ganze Vorprüfung auf den 60 Demo-Eingängen mit bekannter Zuordnung",
            (
                Metric("unit_top1", "Amt richtig (Top 1)"),
                Metric("unit_top3", "Amt unter den Top 3"),
                Metric("service_top1", "Leistung richtig"),
                Metric("request_type", "Anliegenart richtig"),
                Metric("urgency", "Dringlichkeit richtig"),
            ),
        ),
        EvalSpec(
            "retrieval",
            "Suche im Münchner Dienstleistungskatalog (Schlagwörter als Anfragen)",
            (
                Metric("recall@5", "Recall@5", "num"),
                Metric("mrr", "MRR", "num"),
                Metric("p95_ms", "Antwortzeit p95", "ms"),
            ),
        ),
        EvalSpec(
            "assistant",
            "Bürgerfragen mit bekannter Antwort und Fragen außerhalb des Katalogs",
            (
                Metric("cites_right_service", "richtige Quelle genannt"),
                Metric("abstained_when_answerable", "fälschlich enthalten"),
                Metric("abstained_when_outside", "enthalten, wo es keine Antwort gibt"),
                Metric("follow_ups.cites_right_service", "Folgefragen: richtige Quelle"),
                Metric(
                    "other_languages.cites_right_service",
                    "Fragen in anderen Sprachen: richtige Quelle",
                ),
                Metric("unsupported_sentences/answer_sentences", "Sätze ohne Beleg"),
            ),
        ),
        EvalSpec(
            "uebersetzung",
            "Prüfung übersetzter Antwortsätze (von Hand übersetzte Sätze der Demo-Seiten)",
            (
                Metric("right.accepted/pairs", "richtige Übersetzungen angenommen"),
                Metric(
                    "other_sentence.accepted/pairs", "Übersetzung eines anderen Satzes angenommen"
                ),
                Metric(
                    "meaning_changed.accepted/pairs", "Übersetzung mit verändertem Sinn angenommen"
                ),
            ),
        ),
        EvalSpec(
            "summaries",
            "Extraktive Zusammenfassungen der Karlsruher Ratsvorlagen",
            (
                Metric("section_coverage", "Abschnitte mit Satz"),
                Metric("supported_share", "Sätze von ihrer Fundstelle gedeckt"),
                Metric("length_ratio", "Längenverhältnis", "num"),
                Metric("seconds_p95", "Laufzeit p95", "s"),
            ),
        ),
        EvalSpec(
            "minutes",
            "Niederschrift-Erkennung auf echten Karlsruher Sitzungen (OParl)",
            (
                Metric("outcome_correct/scored", "Abstimmungsergebnis richtig"),
                Metric("decision_found/decision_expected", "Beschluss gefunden"),
                Metric("false_decision/no_decision_expected", "fälschlich ein Beschluss"),
                Metric(
                    "assign_correct_number/assign_sentences",
                    "Zuordnung zur Tagesordnung (mit „Tagesordnungspunkt N“)",
                ),
            ),
        ),
        EvalSpec(
            "plain-language",
            "Prüfer für Leichte Sprache auf DEplain-web-Satzpaaren",
            (
                Metric("pairwise", "Vereinfachung als einfacher erkannt"),
                Metric("pairwise_detail.held_out_half.share", "davon zurückgehaltene Hälfte"),
                Metric("baseline_naive", "naive Grundlinie"),
                Metric("rewrite.sari", "SARI des Umschreibens", "num"),
            ),
        ),
        EvalSpec(
            "forecast",
            "Volumenprognose auf Boston 311 (Jan–Sep 2015 → Okt–Dez 2015)",
            (
                Metric("mase", "MASE (unter 1: besser als saisonal-naiv)", "num"),
                Metric("coverage_80", "Abdeckung des 80-%-Intervalls"),
                Metric("coverage_95", "Abdeckung des 95-%-Intervalls"),
            ),
        ),
        EvalSpec(
            "bookings",
            "Eingestreute Anomalien in echten Zahlungen",
            (
                Metric("recall", "Trefferquote"),
                Metric("flags_per_1000", "Hinweise je 1000 echte Zahlungen", "num"),
            ),
        ),
        EvalSpec(
            "winter",
            "Streutouren Kerteminde im Vergleich zur Praxistour",
            (
                Metric("total_time", "Gesamtzeit", "min"),
                Metric("ratio", "Verhältnis zur Praxistour", "num"),
                Metric("feasible", "zulässig", "bool"),
            ),
        ),
    )
}

MODEL_KINDS = frozenset(
    {"llm", "embeddings", "speech", "routing", "injection", "rules", "statistics",
     "optimisation", "fulltext"}
)  # fmt: skip
REQUIREMENTS = frozenset({"always", "llm", "llm_server", "reply_llm", "answer_generated"})


# -- the result ---------------------------------------------------------------------------------


@dataclass
class ModelInfo:
    """One model (or method) a function uses, as configured."""

    kind: str
    name: str
    version: str = ""
    file: str = ""
    sha256: str = ""
    license: str = ""
    location: str = "lokal"
    location_label: str = LOCATION_LABELS["lokal"]
    source: str = ""
    active: bool = True
    note: str = ""
    # A language model's name in its function's route (``standard`` = the llm.backend settings)
    # and whether it only answers when the servers before it do not (llm.routes).
    server: str = ""
    fallback: bool = False


@dataclass
class MetricValue:
    key: str
    label: str
    value: Any
    display: str


@dataclass
class Quality:
    """The newest stored run of one measurement, or that it was never run here."""

    measurement: str
    title: str
    command: str
    status: str  # gemessen | noch nicht gemessen
    measured_at: str | None = None
    data: str = ""
    rathaus_version: str = ""
    metrics: list[MetricValue] = field(default_factory=list)


@dataclass
class Risk:
    risk_class: str
    label: str
    reasoning: str


@dataclass
class Entry:
    key: str
    name: str
    area: str
    purpose: str
    method: str
    active: bool
    status: str
    models: list[ModelInfo]
    risk: Risk
    legal_basis: str
    legal_basis_note: str
    owner: str
    oversight: list[str]
    data: list[str]
    quality: list[Quality]
    quality_note: str
    public_summary: str
    public_decision: str
    code: list[str]
    model_function: str = ""

    def server_label(self, model: ModelInfo) -> str:
        """How a page names ``model``'s place in the route: nothing for the single-server
        settings alone (the register reads as before routes existed), else the server's name,
        its fallbacks marked."""
        if not model.server:
            return ""
        if model.fallback:
            return f"Ausweichserver „{model.server}“"
        several = any(m.fallback for m in self.models)
        if model.server == DEFAULT_ROUTE and not several:
            return ""
        return f"{'Hauptserver' if several else 'Server'} „{model.server}“"


@dataclass
class Register:
    generated_at: str
    rathaus_version: str
    tenant: dict[str, Any] | None
    entries: list[Entry]

    def as_dict(self) -> dict[str, Any]:
        """The JSON export: stable keys, documented in docs/ai-register.md."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "generated_at": self.generated_at,
            "rathaus_version": self.rathaus_version,
            "tenant": self.tenant,
            "risk_classes": RISK_LABELS,
            "functions": [_entry_dict(e) for e in self.entries],
        }

    def entry(self, key: str) -> Entry | None:
        return next((e for e in self.entries if e.key == key), None)


def _entry_dict(entry: Entry) -> dict[str, Any]:
    data = asdict(entry)
    data["risk"] = {
        "class": entry.risk.risk_class,
        "label": entry.risk.label,
        "reasoning": entry.risk.reasoning,
    }
    return data


# -- the catalogue ------------------------------------------------------------------------------


class CatalogueError(ValueError):
    """The bundled catalogue contradicts the code (a programming error, caught by the tests)."""


@functools.cache
def load_catalogue() -> tuple[dict[str, Any], ...]:
    """The ``[[function]]`` tables of ``ki_register.toml``, checked for known values."""
    text = resources.files("rathaus.governance").joinpath("ki_register.toml").read_text("utf-8")
    functions = tomllib.loads(text)["function"]
    check_catalogue(functions)
    return tuple(functions)


def check_catalogue(functions: list[dict[str, Any]]) -> None:
    """Raise :class:`CatalogueError` where a ``[[function]]`` names something the code lacks.

    An entry with a language model must name the model function it runs under (a key of
    ``llm.routes``): with several model servers its models and status come from that route,
    and without the key the register would describe the standard route instead.
    """
    keys: set[str] = set()
    for item in functions:
        key = item["key"]
        if key in keys:
            raise CatalogueError(f"{key}: doppelt")
        keys.add(key)
        if item["risk"] not in RISK_LABELS:
            raise CatalogueError(f"{key}: unbekannte Risikoklasse {item['risk']}")
        if unknown := set(item["models"]) - MODEL_KINDS:
            raise CatalogueError(f"{key}: unbekannte Modellart {sorted(unknown)}")
        if unknown := set(item["evals"]) - set(EVALS):
            raise CatalogueError(f"{key}: unbekannte Messung {sorted(unknown)}")
        needs = [item["requires"], *item.get("model_requires", {}).values()]
        if unknown := set(needs) - REQUIREMENTS:
            raise CatalogueError(f"{key}: unbekannte Bedingung {sorted(unknown)}")
        if not item["evals"] and not item.get("quality_note"):
            raise CatalogueError(f"{key}: ohne Messung braucht es quality_note")
        function = item.get("model_function")
        if ("llm" in item["models"]) != (function is not None):
            raise CatalogueError(f"{key}: model_function genau dann, wenn models llm enthält")
        if function is not None and function not in MODEL_FUNCTIONS:
            raise CatalogueError(f"{key}: unbekannte Modellfunktion {function}")


# -- configuration ------------------------------------------------------------------------------


def _met(requirement: str, settings: Settings, function: str | None = None) -> tuple[bool, str]:
    """Whether ``requirement`` holds in ``settings`` for the model function ``function`` (its
    route in ``llm.routes``; None: the standard route), and if not, why (German)."""
    if requirement == "always":
        return True, ""
    route = route_of(settings, function)
    if requirement == "llm":
        return bool(route), _no_model(settings, function)
    if requirement == "llm_server":
        return served_by_server(settings, function), _no_server(settings, function)
    if requirement == "reply_llm":
        if not route:
            return False, _no_model(settings, function)
        return settings.inbox.llm_reply_drafts, "ausgeschaltet (inbox.llm_reply_drafts = false)"
    if requirement == "answer_generated":
        mode = settings.assistant.answer_mode
        on = bool(route) and (
            mode == "generiert" or (mode == "auto" and served_by_server(settings, function))
        )
        where = _route_text(settings, function)
        return on, f"extraktive Antworten (assistant.answer_mode = {mode}, {where})"
    raise CatalogueError(f"unbekannte Bedingung {requirement}")


def _routed(settings: Settings) -> bool:
    """Whether the installation has model servers or routes beyond the single-server settings
    (docs/models.md, Mehrere Modellserver); without them the reasons read as they always did."""
    return bool(settings.llm.servers or settings.llm.routes)


def _route_text(settings: Settings, function: str | None) -> str:
    """The setting that decides ``function``'s route, with its value."""
    routes = settings.llm.routes
    for name in (function, DEFAULT_ROUTE):
        if name is not None and name in routes:
            return f"llm.routes.{name} = {', '.join(routes[name])}"
    return f"llm.backend = {settings.llm.backend}"


def _no_model(settings: Settings, function: str | None) -> str:
    if not _routed(settings):
        return "kein Sprachmodell konfiguriert (llm.backend = none)"
    routes = " oder ".join(f"llm.routes.{n}" for n in dict.fromkeys((function, DEFAULT_ROUTE)) if n)
    return f"kein Sprachmodell für diese Funktion (llm.backend = none und keine Route {routes})"


def _no_server(settings: Settings, function: str | None) -> str:
    if not _routed(settings):
        return "nur mit einem Sprachmodell auf einem Modellserver (llm.backend = openai)"
    return (
        "nur mit einem Sprachmodell auf einem Modellserver (llm.backend = openai oder ein Server "
        f"aus llm.servers in llm.routes.{function or DEFAULT_ROUTE}; eingestellt ist "
        f"{_route_text(settings, function)})"
    )


def _located(info: ModelInfo, location: str) -> ModelInfo:
    info.location = location
    info.location_label = LOCATION_LABELS.get(location, location)
    return info


def _served(kind: str, model: str, base_url: str | None, location: str) -> ModelInfo:
    """A model on an OpenAI-compatible server: named by the server, address without secrets."""
    return _located(
        ModelInfo(
            kind=kind,
            name=model,
            version="vom Modellserver bereitgestellt",
            source=mask_url(base_url or ""),
        ),
        location,
    )


def _llms(settings: Settings, function: str | None) -> list[ModelInfo]:
    """Every language model of ``function``'s route in the order a call tries them (the first
    answers, the others are fallbacks), or "kein Sprachmodell" when the route is empty."""
    route = route_of(settings, function)
    if not route:
        note = _no_model(settings, function) if _routed(settings) else ""
        return [ModelInfo(kind="llm", name="kein Sprachmodell", active=False, note=note)]
    servers = {server.name: server for server in settings.llm.servers}
    models = []
    for position, name in enumerate(route):
        server = servers.get(name)
        if server is None:
            info = _llm(settings)
        else:
            info = _served("llm", server.model, server.base_url, server.location)
        info.server = name
        info.fallback = position > 0
        models.append(info)
    return models


def _llm(settings: Settings) -> ModelInfo:
    """The model the single-server settings (route member ``standard``) describe."""
    llm = settings.llm
    if llm.backend == "openai":
        return _served("llm", llm.model, llm.base_url, llm.location)
    if llm.backend == "none":
        return ModelInfo(kind="llm", name="kein Sprachmodell", active=False)
    if llm.model_path is not None:
        return ModelInfo(
            kind="llm",
            name=llm.model,
            version="eigene GGUF-Datei (llama.cpp)",
            file=llm.model_path.name,
            note="Prüfsumme nicht festgelegt: eigene Datei statt der mitgelieferten.",
        )
    return ModelInfo(
        kind="llm",
        name=LLM_MODEL.name,
        version=f"GGUF Q4_K_M für llama.cpp, {len(LLM_MODEL.parts)} Pakete =={LLM_MODEL.parts[0].version}",
        file=LLM_MODEL.file_name,
        sha256=LLM_MODEL.sha256,
        license=LLM_MODEL.license,
        source=LLM_MODEL.source,
    )


def _embeddings(settings: Settings) -> ModelInfo:
    emb = settings.embeddings
    if emb.backend == "openai":
        return _served("embeddings", emb.model, emb.base_url, emb.location)
    assert EMBEDDING_MODEL.package is not None
    return ModelInfo(
        kind="embeddings",
        name=EMBEDDING_MODEL.name,
        version=EMBEDDING_MODEL.package.requirement,
        file=EMBEDDING_MODEL.file_name,
        sha256=EMBEDDING_MODEL.sha256,
        license=EMBEDDING_MODEL.license,
        source=EMBEDDING_MODEL.source,
    )


def _speech(settings: Settings) -> ModelInfo:
    if settings.writing.speech_model_path is not None:
        return ModelInfo(
            kind="speech",
            name="Whisper (faster-whisper), eigener Modellordner",
            file=settings.writing.speech_model_path.name,
            note="Prüfsumme nicht festgelegt: eigener Modellordner statt des mitgelieferten.",
        )
    main = next(f for f in SPEECH_MODEL.files if f.file_name.endswith("model.bin"))
    return ModelInfo(
        kind="speech",
        name=SPEECH_MODEL.name,
        version=f"{main.parts[0].distribution}=={main.parts[0].version}",
        file=main.file_name,
        sha256=main.sha256,
        license=SPEECH_MODEL.license,
        source=SPEECH_MODEL.source,
    )


def _package_version(name: str) -> str:
    try:
        return f"{name} {importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{name} (nicht installiert)"


def _routing(session: Session | None, tenant: Tenant | None) -> ModelInfo:
    base = ModelInfo(
        kind="routing",
        name="Zuordnungsmodell der Kommune (scikit-learn)",
        version="je Kommune trainiert",
        source="trainiert auf den eigenen entschiedenen Vorgängen",
    )
    if session is None or tenant is None:
        base.note = "Die laufende Version steht im Register einer Kommune."
        return base
    live = session.scalar(
        select(RoutingModelVersion).where(
            RoutingModelVersion.tenant_id == tenant.id, RoutingModelVersion.status == "live"
        )
    )
    if live is None:
        base.active = False
        base.version = "noch keines"
        base.note = "Noch kein trainiertes Modell: Zuordnung nach Regeln und Ähnlichkeit."
        return base
    metrics = live.metrics or {}
    base.version = f"Version {live.version}"
    base.file = live.file_path
    base.sha256 = live.file_sha256
    activated = live.activated_at or live.created_at
    parts = [f"trainiert auf {live.n_train} Vorgängen", f"live seit {activated:%d.%m.%Y}"]
    if metrics.get("accuracy") is not None:
        parts.append(
            f"Genauigkeit auf {metrics.get('held_out', '?')} zurückgehaltenen Vorgängen "
            f"{_format(metrics['accuracy'], 'pct')}"
        )
    base.note = "; ".join(parts) + "."
    return base


def _models(kinds: list[str], item: dict[str, Any], settings: Settings, session: Session | None,
            tenant: Tenant | None) -> list[ModelInfo]:  # fmt: skip
    models: list[ModelInfo] = []
    function = item.get("model_function")
    for kind in kinds:
        if kind == "llm":
            models.extend(_conditioned(m, item, settings) for m in _llms(settings, function))
            continue
        if kind == "embeddings":
            info = _embeddings(settings)
        elif kind == "speech":
            info = _speech(settings)
        elif kind == "routing":
            info = _routing(session, tenant)
        elif kind == "injection":
            info = ModelInfo(
                kind=kind,
                name="Klassifikator für Anweisungen an die KI (Zeichen-n-Gramme, logistische Regression)",
                version=f"Rathaus {__version__}, {_package_version('scikit-learn')}",
                source="beim ersten Gebrauch aus mitgelieferten Beispielen trainiert",
            )
        elif kind == "rules":
            info = ModelInfo(
                kind=kind, name="Regeln (kein gelerntes Modell)", version=f"Rathaus {__version__}"
            )
        elif kind == "statistics":
            info = ModelInfo(
                kind=kind, name="Statistisches Verfahren (numpy)", version=f"Rathaus {__version__}"
            )
        elif kind == "optimisation":
            info = ModelInfo(
                kind=kind, name="Mathematische Optimierung", version=_package_version("ortools")
            )
        else:  # fulltext
            info = ModelInfo(
                kind=kind,
                name="Volltextsuche mit deutscher Stammformbildung",
                version="SQLite FTS5" if settings.is_sqlite else "PostgreSQL-Volltextindex",
            )
        models.append(_conditioned(info, item, settings))
    return models


def _conditioned(info: ModelInfo, item: dict[str, Any], settings: Settings) -> ModelInfo:
    """``info``, marked inactive with the reason where the entry's ``model_requires`` for its
    kind does not hold."""
    condition = item.get("model_requires", {}).get(info.kind)
    if condition and info.active:
        on, why = _met(condition, settings, item.get("model_function"))
        if not on:
            info.active = False
            info.note = why
    return info


# -- quality ------------------------------------------------------------------------------------


def _lookup(metrics: dict[str, Any], key: str) -> Any:
    if "/" in key:
        top, bottom = (_lookup(metrics, part) for part in key.split("/", 1))
        if isinstance(top, int | float) and isinstance(bottom, int | float) and bottom:
            return top / bottom
        return None
    value: Any = metrics
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _german_number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}".replace(",", "\0").replace(".", ",").replace("\0", ".")


def _format(value: Any, fmt: str) -> str:
    if value is None:
        return "–"
    if fmt == "bool" or isinstance(value, bool):
        return "ja" if value else "nein"
    if not isinstance(value, int | float):
        return str(value)
    if fmt == "pct":
        return _german_number(100 * value, 1) + " %"
    if fmt == "int":
        return _german_number(value, 0)
    if fmt == "ms":
        return _german_number(value, 0) + " ms"
    if fmt == "s":
        return _german_number(value, 2) + " s"
    if fmt == "min":
        return _german_number(value, 0) + " min"
    return _german_number(value, 3)


def quality_of(name: str, run: EvalRun | None) -> Quality:
    """The register's view of the newest run of measurement ``name`` (or of its absence)."""
    spec = EVALS[name]
    if run is None:
        return Quality(
            measurement=name, title=spec.title, command=spec.command, status="noch nicht gemessen"
        )
    metrics = run.metrics or {}
    values = []
    for metric in spec.metrics:
        value = _lookup(metrics, metric.key)
        if value is None:
            continue  # e.g. SARI only when the rewrite was measured too
        values.append(MetricValue(metric.key, metric.label, value, _format(value, metric.fmt)))
    created = run.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return Quality(
        measurement=name,
        title=spec.title,
        command=run.command or spec.command,
        status="gemessen",
        measured_at=created.isoformat(timespec="seconds"),
        data=run.data,
        rathaus_version=run.version,
        metrics=values,
    )


# -- the register -------------------------------------------------------------------------------


def land_law(tenant: Tenant | None) -> str:
    """The Land's data protection act for the legal basis (generic without a tenant)."""
    if tenant is None or tenant.land not in LAENDER:
        return f"dem {GENERIC_LAW}"
    return f"dem {LAENDER[tenant.land][1]}"


def auto_routing_units(session: Session, tenant: Tenant) -> list[OrgUnit]:
    """The departments where an administrator switched on automatic routing."""
    return list(
        session.scalars(
            select(OrgUnit)
            .where(OrgUnit.tenant_id == tenant.id, OrgUnit.auto_route_enabled.is_(True))
            .order_by(OrgUnit.code)
        )
    )


def build_register(
    settings: Settings,
    *,
    session: Session | None = None,
    tenant: Tenant | None = None,
    runs: dict[str, EvalRun] | None = None,
) -> Register:
    """The register for ``settings`` (and ``tenant``, whose data ``session`` reads).

    ``runs`` defaults to the newest stored eval runs when a session is given.
    """
    from rathaus.governance.eval_store import latest_runs

    if runs is None:
        runs = latest_runs(session, tenant_id=tenant.id if tenant else None) if session else {}
    law = land_law(tenant)
    auto_units = auto_routing_units(session, tenant) if session and tenant else []
    entries = []
    for item in load_catalogue():
        active, why = _met(item["requires"], settings, item.get("model_function"))
        oversight = list(item["oversight"])
        if item["key"] == "posteingang.zuordnung" and session is not None and tenant is not None:
            if auto_units:
                listed = ", ".join(
                    f"{u.code or u.name} (ab {_format(u.auto_route_threshold, 'pct')})"
                    if u.auto_route_threshold is not None
                    else (u.code or u.name)
                    for u in auto_units
                )
                oversight.append(f"Automatische Zuordnung derzeit eingeschaltet für: {listed}.")
            else:
                oversight.append("Automatische Zuordnung ist derzeit für kein Amt eingeschaltet.")
        entries.append(
            Entry(
                key=item["key"],
                name=item["name"],
                area=item["area"],
                purpose=item["purpose"],
                method=item["method"],
                active=active,
                status="aktiv" if active else f"nicht eingerichtet: {why}",
                models=_models(item["models"], item, settings, session, tenant),
                risk=Risk(item["risk"], RISK_LABELS[item["risk"]], item["risk_reasoning"]),
                legal_basis=item["legal_basis"].format(landesgesetz=law),
                legal_basis_note=LEGAL_NOTE,
                owner=item["owner"],
                oversight=oversight,
                data=list(item["data"]),
                quality=[quality_of(name, runs.get(name)) for name in item["evals"]],
                quality_note=item.get("quality_note", ""),
                public_summary=item["public_summary"],
                public_decision=item["public_decision"],
                code=list(item["code"]),
                model_function=item.get("model_function", ""),
            )
        )
    tenant_info = None
    if tenant is not None:
        land = LAENDER.get(tenant.land, (tenant.land, GENERIC_LAW))[0]
        tenant_info = {"slug": tenant.slug, "name": tenant.name, "land": land}
    return Register(
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        rathaus_version=__version__,
        tenant=tenant_info,
        entries=entries,
    )
