"""Public citizen assistant page /assistent, its embeddable variant and the widget script.

The page works without JavaScript (plain form posts, answered on the server); with
JavaScript (``static/assistant.js``) answers stream in through the JSON API. The embed page
``/assistent/einbetten`` is the only page that other sites may show in a frame: the widget
(``/assistent/widget.js``, one script tag) opens it in an iframe.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session

from rathaus.assistant import service
from rathaus.assistant.answer import QuestionRejected
from rathaus.assistant.entries import FACTS
from rathaus.core.config import Settings
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import AssistantConversation, Tenant
from rathaus.core.storage import OriginalStore
from rathaus.web.assistant_api import (
    ANSWER_FAILED,
    event_dicts,
    get_kit,
    handover_message,
    public_tenant,
    retry_after,
    too_many_message,
)
from rathaus.web.deps import DatabaseDep, SessionDep, SettingsDep
from rathaus.web.inbox_views import queue_triage
from rathaus.web.templating import STATIC_DIR, render

router = APIRouter(include_in_schema=False)

# Any site may frame the embed page (it is public and needs no login; hand-over needs an
# explicit consent click); every other page keeps the app's ``frame-ancestors 'none'``.
EMBED_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors *; form-action 'self'; base-uri 'self'"
)
LINK_FACTS = frozenset({"online_url", "appointment_url"})
ABSTAIN_MESSAGE = (
    "Dazu habe ich keine gesicherte Antwort gefunden. Eine Mitarbeiterin oder ein Mitarbeiter "
    "hilft Ihnen gern weiter."
)


def safe_url(url: str | None) -> str:
    """``url`` if it is an http(s) address or a path on this site, else empty (no
    ``javascript:`` links from a knowledge entry)."""
    url = (url or "").strip()
    if url.lower().startswith(("https://", "http://")) or (
        url.startswith("/") and not url.startswith("//")
    ):
        return url
    return ""


def _fact_view(fact: dict[str, Any]) -> dict[str, Any]:
    value = fact.get("value")
    values = value if isinstance(value, list) else [value] if value else []
    items = []
    for v in values:
        if isinstance(v, dict):
            items.append(
                {"text": v.get("title") or v.get("url", ""), "href": safe_url(v.get("url"))}
            )
            continue
        text = str(v)
        href = ""
        if fact.get("key") in LINK_FACTS:
            href = safe_url(text)
        elif fact.get("key") == "email" and "@" in text:
            href = "mailto:" + text
        elif fact.get("key") == "phone":
            href = "tel:" + "".join(c for c in text if c.isdigit() or c == "+")
        items.append({"text": text, "href": href})
    links = [
        {"text": link.get("title") or link.get("url", ""), "href": safe_url(link.get("url"))}
        for link in fact.get("links") or []
    ]
    links = [link for link in links if link["href"]]
    linked = {link["href"] for link in links}
    return {
        "label": fact.get("label") or FACTS.get(str(fact.get("key")), str(fact.get("key"))),
        "label_local": fact.get("label_local") or "",
        "language": fact.get("language") or "",
        # a bare address that is also a named link is shown once, by its name
        "items": [i for i in items if not (i["href"] and i["href"] in linked)],
        "links": links,
    }


def turn_view(
    turn_id: int, question: str, answer: dict[str, Any], feedback: int | None
) -> dict[str, Any]:
    """What the template needs of one stored turn (its answer JSON), links made safe."""
    handover = answer.get("handover") or {}
    phone = str(handover.get("phone") or "")
    abstained = bool(answer.get("abstained"))
    notes = list(answer.get("notes") or [])
    # On abstention the first note is the answer's own message (in the answer's language).
    message = notes.pop(0) if abstained and notes else ABSTAIN_MESSAGE
    return {
        "id": turn_id,
        "question": question,
        "abstained": abstained,
        "message": message,
        "sentences": answer.get("sentences") or [],
        "sources": [{**s, "url": safe_url(s.get("url"))} for s in answer.get("sources") or []],
        "facts": [_fact_view(f) for f in answer.get("facts") or []],
        "notes": notes,
        "handover": {
            "office": handover.get("office") or "",
            "phone": phone,
            "tel": "".join(c for c in phone if c.isdigit() or c == "+"),
            "email": handover.get("email") or "",
            "case_offer": bool(handover.get("case_offer", True)),
        },
        "feedback": feedback,
    }


def _page(
    request: Request,
    *,
    tenant: Tenant | None,
    settings: Settings,
    embed: bool,
    conversation: AssistantConversation | None = None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    turns = (
        [turn_view(t.id, t.question, t.answer or {}, t.feedback) for t in conversation.turns]
        if conversation is not None
        else []
    )
    response = render(
        request,
        "assistant_page.html",
        {
            "tenant": tenant,
            "embed": embed,
            "conversation_id": conversation.public_id if conversation else "",
            "handed_over": bool(conversation and conversation.handed_over_case_id),
            "turns": turns,
            "show_handover": any(t["abstained"] for t in turns),
            "max_chars": settings.assistant.max_question_chars,
            "retention_days": settings.assistant.retention_days,
            "action": "/assistent/einbetten" if embed else "/assistent",
            **context,
        },
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    if embed:
        response.headers["Content-Security-Policy"] = EMBED_CSP
    return response


def _tenant_or_page(
    request: Request, session: Session, settings: Settings, kommune: str | None, embed: bool
) -> Tenant | Response:
    try:
        return public_tenant(session, settings, kommune)
    except NotFoundError as exc:
        return _page(
            request, tenant=None, settings=settings, embed=embed, status_code=404, error=exc.message
        )


@router.get("/assistent")
def page(
    request: Request, session: SessionDep, settings: SettingsDep, kommune: str | None = None
) -> Response:
    tenant = _tenant_or_page(request, session, settings, kommune, embed=False)
    if isinstance(tenant, Response):
        return tenant
    return _page(request, tenant=tenant, settings=settings, embed=False)


@router.get("/assistent/einbetten")
def embed_page(
    request: Request, session: SessionDep, settings: SettingsDep, kommune: str | None = None
) -> Response:
    tenant = _tenant_or_page(request, session, settings, kommune, embed=True)
    if isinstance(tenant, Response):
        return tenant
    return _page(request, tenant=tenant, settings=settings, embed=True)


@router.get("/assistent/widget.js")
def widget_script() -> Response:
    return FileResponse(
        STATIC_DIR / "widget.js",
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


# -- form posts: the same without JavaScript -----------------------------------------------------

FormStr = Annotated[str, Form()]


def _form_page(
    request: Request,
    session: Session,
    settings: Settings,
    tenant: Tenant,
    embed: bool,
    conversation_id: str,
    **context: Any,
) -> Response:
    return _page(
        request,
        tenant=tenant,
        settings=settings,
        embed=embed,
        conversation=service.get_conversation(session, tenant=tenant, public_id=conversation_id),
        **context,
    )


def _refused(response: Response, seconds: int) -> Response:
    response.headers["Retry-After"] = str(seconds)
    return response


def _too_many(
    show: Callable[..., Response], conversation_id: str, seconds: int, **context: Any
) -> Response:
    """The page again with the rate-limit message and a Retry-After header."""
    return _refused(
        show(conversation_id, status_code=429, error=too_many_message(seconds), **context), seconds
    )


@router.post("/assistent")
@router.post("/assistent/einbetten")
def ask_form(
    request: Request,
    database: DatabaseDep,
    settings: SettingsDep,
    question: FormStr = "",
    conversation_id: FormStr = "",
    easy_language: FormStr = "",
    kommune: FormStr = "",
) -> Response:
    embed = request.url.path.endswith("/einbetten")
    easy = easy_language in ("1", "on", "true")
    again = {"question": question, "easy_language": easy}
    session = database.sessionmaker()
    handed_on = False
    try:
        tenant = _tenant_or_page(request, session, settings, kommune or None, embed)
        if isinstance(tenant, Response):
            return tenant
        show = partial(_form_page, request, session, settings, tenant, embed)
        if seconds := retry_after(request, "frage"):
            return _too_many(show, conversation_id, seconds, **again)
        try:
            events = service.ask_stream(
                session,
                tenant=tenant,
                conversation_public_id=conversation_id or None,
                question=question,
                easy_language=easy,
                channel="widget" if embed else "web",
                kit=get_kit(request.app),
            )
        except QuestionRejected as exc:
            return show(
                conversation_id,
                status_code=422,
                error=exc.message,
                **again,
            )
        tenant_id = tenant.id
        handed_on = True
    finally:
        if not handed_on:
            session.close()
    done: dict[str, Any] = {}
    for line in event_dicts(session, events):  # commits the turn and closes the session
        done = line
    with database.session() as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        show = partial(_form_page, request, session, settings, tenant, embed)
        if done.get("event") != "done":
            return show(
                conversation_id,
                status_code=500,
                error=done.get("detail", ANSWER_FAILED),
                **again,
            )
        return show(
            done["conversation_id"],
            easy_language=easy,
            focus_turn=done["turn_id"],
        )


@router.post("/assistent/rueckmeldung")
def feedback_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    conversation_id: FormStr = "",
    turn_id: Annotated[int, Form()] = 0,
    value: Annotated[int, Form()] = 0,
    comment: FormStr = "",
    kommune: FormStr = "",
    ansicht: FormStr = "",
) -> Response:
    embed = ansicht == "einbetten"
    tenant = _tenant_or_page(request, session, settings, kommune or None, embed)
    if isinstance(tenant, Response):
        return tenant
    show = partial(_form_page, request, session, settings, tenant, embed)
    if seconds := retry_after(request, "rueckmeldung"):
        return _too_many(show, conversation_id, seconds)
    try:
        service.feedback(
            session,
            tenant=tenant,
            conversation_public_id=conversation_id,
            turn_id=turn_id,
            value=value,
            comment=comment,
        )
    except RathausError as exc:
        session.rollback()
        return show(
            conversation_id,
            status_code=404 if isinstance(exc, NotFoundError) else 400,
            error=exc.message,
        )
    return show(
        conversation_id,
        notice="Vielen Dank für Ihre Rückmeldung.",
        focus_turn=turn_id,
    )


@router.post("/assistent/weitergeben")
def handover_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    conversation_id: FormStr = "",
    consent: FormStr = "",
    name: FormStr = "",
    email: FormStr = "",
    phone: FormStr = "",
    message: FormStr = "",
    kommune: FormStr = "",
    ansicht: FormStr = "",
) -> Response:
    embed = ansicht == "einbetten"
    tenant = _tenant_or_page(request, session, settings, kommune or None, embed)
    if isinstance(tenant, Response):
        return tenant
    show = partial(_form_page, request, session, settings, tenant, embed)
    if seconds := retry_after(request, "rueckmeldung"):
        return _too_many(show, conversation_id, seconds, show_handover=True)
    try:
        case = service.hand_over(
            session,
            tenant=tenant,
            conversation_public_id=conversation_id,
            consent=consent in ("1", "on", "true"),
            store=OriginalStore(settings.originals_dir),
            contact_name=name[: service.MAX_NAME_CHARS + 1],
            contact_email=email,
            contact_phone=phone,
            message=message,
        )
    except RathausError as exc:
        session.rollback()
        return show(
            conversation_id,
            status_code=404 if isinstance(exc, NotFoundError) else 400,
            handover_error=exc.message,
            show_handover=True,
            contact={"name": name, "email": email, "phone": phone, "message": message},
        )
    case_id, reference, untriaged = case.id, case.reference, case.triaged_at is None
    session.commit()  # the worker must see the case before it triages it
    if untriaged:
        queue_triage(settings, [case_id])
    return show(
        conversation_id,
        handover_notice=handover_message(reference, contact=bool(email.strip() or phone.strip())),
        show_handover=True,
    )
