"""JSON API of the citizen assistant under /api/v1/assistant: ask (also streamed), feedback,
hand-over. Public: no login, no cookies; limited per client address."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.assistant import service
from rathaus.assistant.answer import AssistantKit, QuestionRejected
from rathaus.core.config import Settings
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import Tenant
from rathaus.core.storage import OriginalStore
from rathaus.web.deps import DatabaseDep, SessionDep, SettingsDep
from rathaus.web.inbox_views import queue_triage
from rathaus.web.limits import client_address, rate_limiter, rule_for, too_many_message

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/assistant", tags=["Bürgerassistent"])

MAX_BODY_BYTES = 256 * 1024
NDJSON = "application/x-ndjson"
_lock = threading.Lock()


# -- shared with the page (assistant_views) ------------------------------------------------------


def get_kit(app: FastAPI) -> AssistantKit:
    """The app's answering kit, built on first use (the embedder loads lazily, and only once)."""
    kit = getattr(app.state, "assistant_kit", None)
    if kit is None:
        with _lock:
            kit = getattr(app.state, "assistant_kit", None)
            if kit is None:
                kit = AssistantKit.from_settings(app.state.settings)
                app.state.assistant_kit = kit
    return kit


def retry_after(request: Request, scope: str) -> int:
    """0 if the client may go on, else seconds to wait (``scope`` keeps asking and
    feedback/hand-over apart, so asking a lot never blocks the hand-over). Counted for the
    whole installation (:mod:`rathaus.web.limits`)."""
    return rate_limiter(request.app).hit(rule_for(request, scope), client_address(request))


def public_tenant(session: Session, settings: Settings, slug: str | None) -> Tenant:
    """The municipality named by ``kommune`` (default: ``default_tenant``)."""
    slug = (slug or settings.default_tenant).strip()
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug, Tenant.is_active))
    if tenant is None:
        raise NotFoundError(
            f"Die Kommune „{slug[:60]}“ gibt es hier nicht. Bitte prüfen Sie die Angabe "
            "„kommune“ (zum Beispiel im Widget das Attribut data-kommune)."
        )
    return tenant


def _plain(value: Any) -> Any:
    """JSON for values json does not know (numpy scalars from the retrieval scores)."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=_plain)


def json_response(
    data: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        to_json(data), status_code=status_code, media_type="application/json", headers=headers
    )


ANSWER_FAILED = (
    "Beim Beantworten ist ein Fehler aufgetreten. Bitte versuchen Sie es erneut oder wenden "
    "Sie sich telefonisch an die Verwaltung."
)


def event_dicts(session: Session, events: Iterator[Any]) -> Iterator[dict[str, Any]]:
    """The service's answer events as JSON-ready dicts; owns ``session``: commits the stored
    turn before the last event is sent (so feedback can follow at once) and closes it."""
    try:
        for kind, value in events:
            if kind == "conversation":
                yield {"event": "conversation", "conversation_id": value.public_id}
            elif kind == "sources":
                yield {"event": "sources", "sources": [asdict(s) for s in value]}
            elif kind == "sentence":
                yield {"event": "sentence", "sentence": asdict(value)}
            elif kind == "facts":
                yield {"event": "facts", "facts": [asdict(f) for f in value]}
            elif kind == "answered":
                # Nothing written yet: end the read transaction, so the write that follows
                # starts on a fresh snapshot (SQLite cannot upgrade a stale one).
                session.commit()
            elif kind == "done":
                session.commit()
                yield {
                    "event": "done",
                    "conversation_id": value.conversation.public_id,
                    "turn_id": value.turn.id,
                    "answer": value.answer.to_dict(),
                }
    except RathausError as exc:
        session.rollback()
        yield {"event": "error", "detail": exc.message}
    except Exception:
        session.rollback()
        log.exception("Antwort des Bürgerassistenten fehlgeschlagen")
        yield {"event": "error", "detail": ANSWER_FAILED}
    finally:
        session.close()


# -- schemas -------------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    detail: str = Field(description="Was nicht ging und was zu tun ist (deutscher Satz)")


class AskIn(BaseModel):
    """Eine Frage an den Bürgerassistenten."""

    question: str = Field(
        max_length=100_000,
        description=(
            "Die Frage als Klartext (HTML wird nie ausgewertet). Höchstlänge: "
            "`assistant.max_question_chars` (Standard 1000 Zeichen); längere oder leere "
            "Fragen werden mit 422 und einer Erklärung abgelehnt. Bitte keine persönlichen "
            "Daten: gespeichert wird die Frage ohne sie (pseudonymisiert)."
        ),
        examples=["Was brauche ich für einen neuen Personalausweis?"],
    )
    conversation_id: str | None = Field(
        default=None,
        max_length=64,
        description=(
            "Kennung des Gesprächs aus einer früheren Antwort: Folgefragen („Und was kostet "
            "das?“) werden im Zusammenhang verstanden. Leer oder unbekannt: neues Gespräch."
        ),
    )
    easy_language: bool = Field(default=False, description="Antwort in Leichter Sprache")
    stream: bool = Field(
        default=False,
        description=(
            "true: die Antwort kommt Stück für Stück als `application/x-ndjson` (ein "
            "JSON-Objekt je Zeile, siehe Beschreibung); false: als ein JSON-Objekt."
        ),
    )
    kommune: str | None = Field(
        default=None,
        max_length=64,
        description="Kennung der Kommune (z. B. `musterstadt`); leer: die voreingestellte",
    )
    channel: Literal["web", "widget", "api"] = Field(
        default="api", description="Woher die Frage kommt (für die Statistik)"
    )


class SourceOut(BaseModel):
    n: int = Field(description="Nummer der Quelle, auf die sich die Sätze beziehen ([1], [2] …)")
    entry_id: int = Field(description="Eintrag der Wissensdatenbank")
    chunk_key: str = Field(description="Stabile Kennung des Abschnitts")
    title: str = Field(description="Titel der Quelle")
    url: str = Field(description="Adresse der Quelle (Leistungsseite)")
    passage: str = Field(description="Der zitierte Abschnitt")
    score: float = Field(description="Trefferwert der Suche")


class SentenceOut(BaseModel):
    text: str = Field(description="Ein Satz der Antwort (Klartext)")
    sources: list[int] = Field(description="Nummern (`n`) der Quellen, die den Satz belegen")
    language: str = Field(default="de", description="Sprache des Satzes (ISO 639-1)")
    original: str = Field(
        default="",
        description="Der geprüfte deutsche Satz, wenn `text` eine Übersetzung ist (maßgeblich)",
    )


class LinkOut(BaseModel):
    title: str
    url: str


class FactOut(BaseModel):
    key: str = Field(description="fees, required_documents, office, opening_hours …")
    label: str = Field(description="Bezeichnung zum Anzeigen, z. B. „Gebühren“")
    label_local: str = Field(
        default="", description="Die Bezeichnung in der Sprache der Frage, z. B. „Fees“"
    )
    language: str = Field(default="", description="Sprache von `label_local` (ISO 639-1)")
    value: str | list[str] = Field(description="Wert oder Liste von Werten")
    links: list[LinkOut] = Field(default_factory=list, description="Zugehörige Verweise")
    entry_id: int | None = Field(default=None, description="Eintrag, aus dem der Fakt stammt")


class HandoverInfo(BaseModel):
    office: str = Field(description="Zuständige Stelle")
    phone: str = Field(description="Telefon")
    email: str = Field(description="E-Mail")
    case_offer: bool = Field(description="Eine Weitergabe an die Verwaltung wird angeboten")


class AnswerOut(BaseModel):
    question: str
    language: str = Field(description="Sprache der Frage (ISO 639-1)")
    mode: str = Field(description="extraktiv, generiert oder enthaltung")
    text: str = Field(description="Alle Sätze als ein Text")
    sentences: list[SentenceOut]
    sources: list[SourceOut]
    facts: list[FactOut] = Field(description="Strukturierte Angaben: Gebühren, Unterlagen …")
    confidence: float = Field(description="Sicherheit 0…1")
    abstained: bool = Field(
        description="true: keine gesicherte Antwort; `handover` nennt, wer weiterhilft"
    )
    easy_language: bool
    notes: list[str] = Field(description="Hinweise, z. B. „auf Deutsch beantwortet“")
    model: str = Field(description="Verwendetes Sprachmodell (leer: extraktiv)")
    handover: HandoverInfo | None
    searched_as: str = Field(
        default="",
        description="Die Frage auf Deutsch, wie sie gesucht wurde (nur bei übersetzten Fragen)",
    )


class AskOut(BaseModel):
    conversation_id: str = Field(description="Für Folgefragen, Rückmeldung und Weitergabe")
    turn_id: int = Field(description="Kennung dieser Antwort (für die Rückmeldung)")
    answer: AnswerOut


class FeedbackIn(BaseModel):
    """Daumen hoch oder runter zu einer Antwort, auf Wunsch mit Kommentar."""

    conversation_id: str = Field(max_length=64)
    turn_id: int
    value: Literal[1, -1] = Field(description="+1 hilfreich, -1 nicht hilfreich")
    comment: str = Field(
        default="",
        max_length=service.MAX_COMMENT_CHARS,
        description="Optionaler Kommentar (ohne persönliche Daten; wird pseudonymisiert)",
    )
    kommune: str | None = Field(default=None, max_length=64)


class FeedbackOut(BaseModel):
    message: str


class HandoverIn(BaseModel):
    """Weitergabe des Gesprächs an die Verwaltung (nur mit Einwilligung)."""

    conversation_id: str = Field(max_length=64)
    consent: bool = Field(
        description=(
            "Muss true sein: die Bürgerin oder der Bürger willigt ausdrücklich ein, dass das "
            "Gespräch als Anliegen an die Verwaltung geht."
        )
    )
    name: str = Field(default="", max_length=service.MAX_NAME_CHARS, description="Optional")
    email: str = Field(default="", max_length=service.MAX_CONTACT_CHARS, description="Optional")
    phone: str = Field(default="", max_length=40, description="Optional")
    message: str = Field(
        default="",
        max_length=service.MAX_MESSAGE_CHARS,
        description="Optional: was die Verwaltung noch wissen soll",
    )
    kommune: str | None = Field(default=None, max_length=64)


class HandoverOut(BaseModel):
    reference: str = Field(description="Aktenzeichen des neuen Vorgangs")
    message: str


ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "Kommune oder Gespräch unbekannt"},
    413: {"model": ErrorOut, "description": "Anfrage zu groß"},
    422: {"model": ErrorOut, "description": "Frage leer, zu lang oder Anfrage fehlerhaft"},
    429: {
        "model": ErrorOut,
        "description": "Zu viele Anfragen; der Kopf `Retry-After` nennt die Sekunden",
    },
}

STREAM_DESCRIPTION = """
Beantwortet eine Frage aus der Wissensdatenbank der Kommune. Jeder Satz nennt die Nummern der
Quellen, die ihn belegen; strukturierte Angaben (Gebühren, Unterlagen, Öffnungszeiten …) kommen
als Liste. Ist die Grundlage zu schwach, enthält sich der Assistent (`abstained: true`) und nennt
in `handover`, wer weiterhilft.

Mit `stream: true` antwortet der Server mit `application/x-ndjson`: ein JSON-Objekt je Zeile,
gesendet, sobald es vorliegt, in dieser Reihenfolge:

1. `{"event": "conversation", "conversation_id": "…"}`
2. `{"event": "sources", "sources": [Quelle, …]}`
3. `{"event": "sentence", "sentence": {"text": "…", "sources": [1]}}` (beliebig oft)
4. `{"event": "facts", "facts": [Fakt, …]}`
5. `{"event": "done", "conversation_id": "…", "turn_id": 7, "answer": {…}}` – wie ohne Stream

Tritt während des Streams ein Fehler auf, folgt statt `done` die Zeile
`{"event": "error", "detail": "…"}`. Fehler vor dem ersten Ereignis (leere oder zu lange Frage,
zu viele Anfragen) kommen wie ohne Stream als JSON mit Statuscode.
"""


# -- routes --------------------------------------------------------------------------------------


def _check_size(request: Request) -> None:
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        raise HTTPException(413, "Die Anfrage ist zu groß (höchstens 256 kB).")


def _too_many(request: Request, scope: str) -> Response | None:
    seconds = retry_after(request, scope)
    if not seconds:
        return None
    return json_response(
        {"detail": too_many_message(seconds)},
        status_code=429,
        headers={"Retry-After": str(seconds)},
    )


@router.post(
    "/ask",
    summary="Frage stellen (auch als Stream)",
    description=STREAM_DESCRIPTION,
    response_model=AskOut,
    responses={
        **ERRORS,
        200: {
            "description": "Die Antwort (JSON) oder mit `stream: true` die Ereignisse (NDJSON)",
            "content": {NDJSON: {"schema": {"type": "string", "format": "ndjson"}}},
        },
    },
)
def ask(body: AskIn, request: Request, settings: SettingsDep, database: DatabaseDep) -> Response:
    _check_size(request)
    if (refused := _too_many(request, "frage")) is not None:
        return refused
    kit = get_kit(request.app)
    session = database.sessionmaker()
    try:
        tenant = public_tenant(session, settings, body.kommune)
        events = service.ask_stream(
            session,
            tenant=tenant,
            conversation_public_id=body.conversation_id,
            question=body.question,
            easy_language=body.easy_language,
            channel=body.channel,
            kit=kit,
        )
    except QuestionRejected as exc:
        session.close()
        return json_response({"detail": exc.message}, status_code=422)
    except BaseException:
        session.close()
        raise
    lines = event_dicts(session, events)
    if body.stream:
        return StreamingResponse(
            (to_json(line) + "\n" for line in lines),
            media_type=NDJSON,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    last: dict[str, Any] = {}
    for line in lines:
        last = line
    if last.get("event") != "done":
        return json_response({"detail": last.get("detail", ANSWER_FAILED)}, status_code=500)
    return json_response(
        {k: v for k, v in last.items() if k != "event"}, headers={"Cache-Control": "no-store"}
    )


@router.post(
    "/feedback",
    summary="Rückmeldung zu einer Antwort (Daumen hoch/runter)",
    response_model=FeedbackOut,
    responses=ERRORS,
)
def post_feedback(
    body: FeedbackIn, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    _check_size(request)
    if (refused := _too_many(request, "rueckmeldung")) is not None:
        return refused
    tenant = public_tenant(session, settings, body.kommune)
    service.feedback(
        session,
        tenant=tenant,
        conversation_public_id=body.conversation_id,
        turn_id=body.turn_id,
        value=body.value,
        comment=body.comment,
    )
    return json_response({"message": "Vielen Dank für Ihre Rückmeldung."})


def handover_message(reference: str, *, contact: bool) -> str:
    text = f"Ihr Anliegen ist unter dem Aktenzeichen {reference} bei der Verwaltung eingegangen."
    if not contact:
        text += (
            " Sie haben keine Kontaktdaten angegeben: bitte nennen Sie das Aktenzeichen, wenn "
            "Sie nachfragen."
        )
    return text


@router.post(
    "/handover",
    summary="Gespräch an die Verwaltung weitergeben (mit Einwilligung)",
    description=(
        "Legt im Posteingang einen Vorgang mit dem Gespräch an (Kanal „assistent“) und stößt "
        "die Vorprüfung an. Nur mit `consent: true`. Eine zweite Weitergabe desselben "
        "Gesprächs liefert denselben Vorgang."
    ),
    response_model=HandoverOut,
    status_code=201,
    responses={**ERRORS, 400: {"model": ErrorOut, "description": "Einwilligung fehlt"}},
)
def post_handover(
    body: HandoverIn, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    _check_size(request)
    if (refused := _too_many(request, "rueckmeldung")) is not None:
        return refused
    tenant = public_tenant(session, settings, body.kommune)
    case = service.hand_over(
        session,
        tenant=tenant,
        conversation_public_id=body.conversation_id,
        consent=body.consent,
        store=OriginalStore(settings.originals_dir),
        contact_name=body.name,
        contact_email=body.email,
        contact_phone=body.phone,
        message=body.message,
    )
    case_id, reference, untriaged = case.id, case.reference, case.triaged_at is None
    session.commit()  # the worker must see the case before it triages it
    if untriaged:
        queue_triage(settings, [case_id])
    contact = bool(body.email.strip() or body.phone.strip())
    return json_response(
        {"reference": reference, "message": handover_message(reference, contact=contact)},
        status_code=201,
    )
