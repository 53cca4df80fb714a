"""Jinja2 templates with autoescaping and the context every page needs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from rathaus.core.cases import STATUS_LABELS
from rathaus.core.languages import name_of
from rathaus.core.numbers import german_number
from rathaus.core.roles import ROLE_LABELS, Permission, permissions_of

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.globals.update(STATUS_LABELS=STATUS_LABELS, ROLE_LABELS=ROLE_LABELS, P=Permission)


# Staff read times as the clocks on their walls show them.
LOCAL = ZoneInfo("Europe/Berlin")


def _format_datetime(value: Any) -> str:
    """A stored moment in German local time. Moments are UTC in the database (PostgreSQL
    returns them with their zone, SQLite without), so a value without zone is UTC."""
    if value is None:
        return "–"
    if not isinstance(value, dt.datetime):
        return value.strftime("%d.%m.%Y")  # type: ignore[no-any-return]
    moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return moment.astimezone(LOCAL).strftime("%d.%m.%Y, %H:%M")


def _format_wall_clock(value: Any) -> str:
    """A time kept as announced, without zone (a meeting's start): shown as it is."""
    if value is None:
        return "–"
    return value.strftime("%d.%m.%Y, %H:%M")  # type: ignore[no-any-return]


templates.env.filters["datum"] = _format_datetime
templates.env.filters["zahl"] = german_number
templates.env.filters["wanduhr"] = _format_wall_clock
templates.env.filters["sprachname"] = name_of


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render ``name`` with the user, tenant, CSRF token and demo flag available."""
    auth = getattr(request.state, "auth", None)
    web_session, user = auth if auth else (None, None)
    settings = request.app.state.settings
    base = {
        "request": request,
        "user": user,
        "permissions": permissions_of(user.roles) if user else frozenset(),
        "csrf_token": web_session.csrf_token if web_session else "",
        "is_demo": settings.is_demo,
        "app_version": request.app.version,
    }
    base.update(context or {})
    return templates.TemplateResponse(request, name, base, status_code=status_code)
