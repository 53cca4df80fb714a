"""Eigene Sitzungen under /konto/sitzungen (ASVS 3.3.4): a signed-in person sees the browsers
in which they are signed in (since when, last seen, which browser) and ends one or all others.

Sessions are named by a short keyed hash (:func:`rathaus.core.security.session_label`), never
by their token or the token's hash; a person can only ever end their own sessions.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import delete

from rathaus.core import audit
from rathaus.core.models import WebSession
from rathaus.core.security import SESSION_COOKIE, session_label, sessions_of
from rathaus.web.cookies import delete_cookie
from rathaus.web.deps import AuthDep, CsrfDep, SessionDep, SettingsDep
from rathaus.web.templating import render

router = APIRouter(include_in_schema=False)

BASE = "/konto/sitzungen"
NOTICES = {
    "beendet": "Die Sitzung wurde beendet; dort ist eine neue Anmeldung nötig.",
    "andere": "Alle anderen Sitzungen wurden beendet.",
    "unbekannt": "Diese Sitzung gibt es nicht mehr (schon beendet oder abgelaufen).",
}

_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def short_agent(user_agent: str) -> str:
    """``Firefox 128 unter Windows`` from a browser's user agent; unknown ones shortened."""
    agent = user_agent.strip()
    if not agent:
        return "unbekannter Browser"
    browser = next((name for key, name in _BROWSERS if key in agent), "")
    system = next((name for key, name in _SYSTEMS if key in agent), "")
    if browser:
        key = next(k for k, n in _BROWSERS if n == browser)
        version = re.search(re.escape(key) + r"(\d+)", agent)
        if browser == "Safari":
            version = re.search(r"Version/(\d+)", agent)
        label = f"{browser} {version.group(1)}" if version else browser
        return f"{label} unter {system}" if system else label
    return agent[:60] + ("…" if len(agent) > 60 else "")


def _page(
    request: Request, session: SessionDep, settings: SettingsDep, auth: AuthDep, notice: str = ""
) -> Response:
    current, user = auth
    rows = [
        {
            "label": session_label(row),
            "created_at": row.created_at,
            "last_seen_at": row.last_seen_at or row.created_at,
            "expires_at": row.expires_at,
            "agent": short_agent(row.user_agent or ""),
            "current": row.id == current.id,
        }
        for row in sessions_of(session, user.id, idle_s=settings.session_idle_s)
    ]
    rows.sort(key=lambda r: not r["current"])  # the current one first
    return render(
        request,
        "konto_sitzungen.html",
        {
            "sessions": rows,
            "others": sum(not r["current"] for r in rows),
            "notice": notice,
            "idle_minutes": settings.session_idle_s // 60,
        },
    )


@router.get(BASE)
def own_sessions(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    auth: AuthDep,
    meldung: str = "",
) -> Response:
    return _page(request, session, settings, auth, NOTICES.get(meldung, ""))


@router.post(f"{BASE}/abmelden", dependencies=[CsrfDep])
def end_one(
    session: SessionDep,
    settings: SettingsDep,
    auth: AuthDep,
    sitzung: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    current, user = auth
    rows = sessions_of(session, user.id, idle_s=settings.session_idle_s)
    row = next((r for r in rows if session_label(r) == sitzung), None)
    if row is None:
        return RedirectResponse(f"{BASE}?meldung=unbekannt", status_code=303)
    session.execute(
        delete(WebSession).where(WebSession.id == row.id, WebSession.user_id == user.id)
    )
    audit.record(
        session,
        audit.Event(
            kind="session_ended",
            actor=user.username,
            tenant_id=user.tenant_id,
            subject=f"sitzung:{sitzung}",
        ),
    )
    if row.id == current.id:  # the own browser's: that is a logout
        response = RedirectResponse("/login", status_code=303)
        delete_cookie(response, settings, SESSION_COOKIE)
        return response
    return RedirectResponse(f"{BASE}?meldung=beendet", status_code=303)


@router.post(f"{BASE}/andere-abmelden", dependencies=[CsrfDep])
def end_others(session: SessionDep, auth: AuthDep) -> Response:
    current, user = auth
    ended = session.execute(
        delete(WebSession).where(WebSession.user_id == user.id, WebSession.id != current.id)
    ).rowcount  # type: ignore[attr-defined]
    audit.record(
        session,
        audit.Event(
            kind="sessions_ended_others",
            actor=user.username,
            tenant_id=user.tenant_id,
            data={"beendet": ended},
        ),
    )
    return RedirectResponse(f"{BASE}?meldung=andere", status_code=303)
