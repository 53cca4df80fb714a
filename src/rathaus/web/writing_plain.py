"""Leichte Sprache: Prüfung, Lesbarkeit und Umschreiben: Seiten und JSON-API.

Page ``/texte/leichte-sprache`` and ``/api/v1/texte/leichte-sprache/{pruefung,umschreibung}``.
The page needs ``Permission.USE_WRITING`` and a staff session (POST with the CSRF token); the
API takes the callers of :mod:`rathaus.web.writing_auth` (staff session with that permission and
``X-CSRF-Token`` header, or an API key of channel ``api``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from rathaus.core.config import Settings
from rathaus.core.errors import RathausError
from rathaus.core.roles import Permission
from rathaus.web.deps import (
    CsrfDep,
    CurrentTenant,
    CurrentUser,
    SessionDep,
    SettingsDep,
    require,
)
from rathaus.web.templating import render
from rathaus.web.writing_auth import AUTH_RESPONSES, WritingCallerDep, writing_caller
from rathaus.writing.plain_language import RuleConfig, check, readability, rule_catalogue

router = APIRouter()

USE = Depends(require(Permission.USE_WRITING))
CALLER = Depends(writing_caller)  # the API: staff session or API key (see writing_auth)
EMPTY_TEXT = "Bitte geben Sie einen Text ein. Das Feld „Text“ ist leer."
MAX_FORM_CHARS = 200_000


def _too_long(settings: Settings, text: str) -> str | None:
    limit = min(settings.writing.max_document_chars, MAX_FORM_CHARS)
    if len(text) > limit:
        return f"Der Text ist zu lang ({len(text)} Zeichen, höchstens {limit}). Bitte kürzen."
    return None


# -- schemas -----------------------------------------------------------------------------------


class CheckRequest(BaseModel):
    text: str = Field(max_length=MAX_FORM_CHARS, description="Zu prüfender Text")
    max_words: int = Field(default=15, ge=5, le=60, description="Höchstens so viele Wörter je Satz")


class FindingPublic(BaseModel):
    code: str
    label: str
    explanation: str
    start: int = Field(description="Anfang im Satz (Zeichen)")
    end: int
    span: str
    suggestion: str | None


class SentencePublic(BaseModel):
    index: int
    text: str
    start: int = Field(description="Anfang im Text (Zeichen)")
    end: int
    words: int
    severity: float
    findings: list[FindingPublic]


class ReadabilityPublic(BaseModel):
    flesch_amstad: float = Field(description="Flesch-Amstad, 0–100, höher ist leichter")
    wiener_sachtextformel: float = Field(description="Schulstufe 4–15, niedriger ist leichter")
    words: int
    sentences: int


class CheckResponse(BaseModel):
    severity: float = Field(description="Schweregrad (0 ist am besten)")
    violations_per_sentence: float
    sentences_count: int
    words: int
    counts: dict[str, int]
    sentences: list[SentencePublic]
    readability: ReadabilityPublic


class RewriteRequest(BaseModel):
    text: str = Field(max_length=MAX_FORM_CHARS, description="Umzuschreibender Text")


class AddedFact(BaseModel):
    kind: str
    label: str
    text: str


class RewriteRound(BaseModel):
    round: int
    severity: float
    violations: int
    added_facts: list[str]


class RewriteResponse(BaseModel):
    label: str = Field(description="Immer: Entwurf – Prüfung durch Prüflesende erforderlich")
    model: str
    backend: str
    demo_quality: bool
    notes: list[str]
    text: str
    facts_ok: bool = Field(description="Falsch, wenn der Entwurf neue Fakten enthält")
    added_facts: list[AddedFact]
    best_round: int
    severity_before: float
    severity_after: float
    rounds: list[RewriteRound]
    check: dict[str, Any]


# -- service calls -----------------------------------------------------------------------------


def _check(text: str, max_words: int = 15) -> dict[str, Any]:
    report = check(text, config=RuleConfig(max_words=max_words))
    return report.to_dict() | {"readability": readability(text).to_dict()}


def _rewrite(settings: Settings, text: str, *, tenant_id: int, may_reidentify: bool) -> Any:
    from rathaus.ai.registry import get_language_model
    from rathaus.governance.gateway import scoped
    from rathaus.writing.plain_rewrite import rewrite

    return rewrite(
        text,
        # Staff text of unknown content: level intern; real values back only for allowed roles.
        model=scoped(
            get_language_model(settings, "leichte_sprache"),
            level="intern",
            tenant_id=tenant_id,
            may_reidentify=may_reidentify,
        ),
        max_rounds=settings.writing.plain_language_max_rounds,
    )


def _record(session: Any, tenant_id: int, text: str, result: Any) -> None:
    """The rewrite is an AI suggestion (decision record): input hash, draft and its checks."""
    from rathaus.governance import decisions

    data = result.to_dict()
    decisions.suggest(
        session,
        tenant_id=tenant_id,
        function="leichte_sprache",
        backend=data["backend"],
        model_version=data["model"],
        input_sha256=decisions.sha256_text(text),
        output={
            "text": data["text"][: decisions.MAX_OUTPUT_CHARS],
            "facts_ok": data["facts_ok"],
            "added_facts": data["added_facts"],
            "severity_before": data["severity_before"],
            "severity_after": data["severity_after"],
            "demo_quality": data["demo_quality"],
        },
    )
    session.commit()


class _Invalid(RathausError):
    exit_code = 1


def _validated(settings: Settings, text: str) -> str:
    if not text.strip():
        raise _Invalid(EMPTY_TEXT)
    message = _too_long(settings, text)
    if message:
        raise _Invalid(message)
    return text


# -- page --------------------------------------------------------------------------------------


def _page(request: Request, tenant: Any, **context: Any) -> Response:
    status = context.pop("status_code", 200)
    base = {"tenant": tenant, "text": "", "rules": rule_catalogue(), "error": None}
    return render(request, "writing_plain.html", base | context, status_code=status)


@router.get("/texte/leichte-sprache", dependencies=[USE], include_in_schema=False)
def page(request: Request, tenant: CurrentTenant) -> Response:
    return _page(request, tenant)


@router.post("/texte/leichte-sprache", dependencies=[USE, CsrfDep], include_in_schema=False)
async def submit(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    settings: SettingsDep,
    session: SessionDep,
) -> Response:
    from rathaus.governance.gateway import user_may_reidentify

    form = await request.form()
    text = str(form.get("text") or "")
    action = str(form.get("aktion") or "pruefen")
    try:
        _validated(settings, text)
    except _Invalid as exc:
        return _page(request, tenant, text=text, error=exc.message, status_code=422)
    report = await run_in_threadpool(check, text)
    scores = await run_in_threadpool(readability, text)
    context: dict[str, Any] = {"text": text, "report": report, "scores": scores}
    if action == "umschreiben":
        try:
            context["result"] = await run_in_threadpool(
                lambda: _rewrite(
                    settings,
                    text,
                    tenant_id=tenant.id,
                    may_reidentify=user_may_reidentify(user),
                )
            )
        except RathausError as exc:
            context["rewrite_error"] = exc.message
        else:
            _record(session, tenant.id, text, context["result"])
    return _page(request, tenant, **context)


# -- JSON API ----------------------------------------------------------------------------------


def _error(message: str, status: int = 422) -> Response:
    import json

    return Response(
        json.dumps({"detail": message}, ensure_ascii=False),
        status_code=status,
        media_type="application/json",
    )


@router.post(
    "/api/v1/texte/leichte-sprache/pruefung",
    dependencies=[CALLER],
    tags=["Schreibassistenz"],
    summary="Text nach den Regeln der Leichten Sprache prüfen, mit Lesbarkeit",
    response_model=CheckResponse,
    responses={**AUTH_RESPONSES, 422: {"description": "Leerer oder zu langer Text"}},
)
async def api_check(body: CheckRequest, settings: SettingsDep) -> Any:
    try:
        _validated(settings, body.text)
    except _Invalid as exc:
        return _error(exc.message)
    return CheckResponse(**await run_in_threadpool(_check, body.text, body.max_words))


@router.post(
    "/api/v1/texte/leichte-sprache/umschreibung",
    dependencies=[CALLER],
    tags=["Schreibassistenz"],
    summary="Mit dem Sprachmodell in Leichte Sprache umschreiben (Entwurf, mit Faktenprüfung)",
    response_model=RewriteResponse,
    responses={
        **AUTH_RESPONSES,
        422: {"description": "Leerer oder zu langer Text"},
        503: {"description": "Kein Sprachmodell eingerichtet oder erreichbar"},
    },
)
async def api_rewrite(
    body: RewriteRequest, settings: SettingsDep, caller: WritingCallerDep, session: SessionDep
) -> Any:
    from rathaus.ai.llm import ModelUnavailableError
    from rathaus.governance.gateway import user_may_reidentify
    from rathaus.writing.plain_rewrite import NoModelError

    try:
        _validated(settings, body.text)
        result = await run_in_threadpool(
            lambda: _rewrite(
                settings,
                body.text,
                tenant_id=caller.tenant.id,
                may_reidentify=user_may_reidentify(caller.user),
            )
        )
    except _Invalid as exc:
        return _error(exc.message)
    except (NoModelError, ModelUnavailableError) as exc:
        return _error(exc.message, 503)
    except RathausError as exc:
        return _error(exc.message)
    _record(session, caller.tenant.id, body.text, result)
    return RewriteResponse(**result.to_dict())
