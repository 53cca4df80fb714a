"""Rathaus's own cookies: their names and attributes in one place (ASVS 3.4.1 to 3.4.4).

With secure cookies (``settings.secure_cookies``: HTTPS, everywhere outside the demo) every
cookie that carries a login or guards one is named with the ``__Host-`` prefix and set with
``Secure``, ``Path=/`` and no ``Domain``. A browser keeps such a cookie only for the exact host
that set it, so a neighbouring subdomain (``intranet.stadt.de`` next to ``rathaus.stadt.de``)
can neither plant nor overwrite it (session fixation, login CSRF by "cookie tossing").

Over plain HTTP (demo) browsers refuse ``__Host-`` cookies, so the names stay without prefix.
Either way only the name of the current mode counts: in secure mode a cookie under the plain
name is never read as a login.
"""

from __future__ import annotations

from typing import Literal

from fastapi import Request, Response

from rathaus.core.config import Settings
from rathaus.core.security import SESSION_COOKIE

HOST_PREFIX = "__Host-"


def cookie_name(base: str, settings: Settings) -> str:
    """The name of the cookie ``base`` in the current mode (``__Host-`` with secure cookies)."""
    return HOST_PREFIX + base if settings.secure_cookies else base


def read_cookie(request: Request, base: str) -> str | None:
    return request.cookies.get(cookie_name(base, request.app.state.settings))


def session_token(request: Request) -> str | None:
    """The login session's token the browser sent, under the name of the current mode only."""
    return read_cookie(request, SESSION_COOKIE)


def carries_session_cookie(request: Request) -> bool:
    """Whether the request carries a session cookie under either name (for ``no-store``: a
    response to a browser with a stale cookie is not cached either)."""
    return SESSION_COOKIE in request.cookies or HOST_PREFIX + SESSION_COOKIE in request.cookies


def set_cookie(
    response: Response,
    settings: Settings,
    base: str,
    value: str,
    *,
    max_age: int,
    samesite: Literal["lax", "strict"],
    path: str = "/",
) -> None:
    """Set an ``HttpOnly`` cookie. ``path`` counts only over plain HTTP: a ``__Host-`` cookie
    must have ``Path=/``."""
    secure = settings.secure_cookies
    response.set_cookie(
        cookie_name(base, settings),
        value,
        max_age=max_age,
        path="/" if secure else path,
        httponly=True,
        samesite=samesite,
        secure=secure,
    )


def delete_cookie(response: Response, settings: Settings, base: str, *, path: str = "/") -> None:
    """Tell the browser to forget the cookie ``base`` of the current mode. The deletion carries
    the attributes the cookie was set with: a browser ignores a ``__Host-`` cookie, a deleting
    one included, without ``Secure`` and ``Path=/``."""
    secure = settings.secure_cookies
    response.delete_cookie(
        cookie_name(base, settings),
        path="/" if secure else path,
        secure=secure,
        httponly=True,
    )


def forget_legacy_cookie(
    request: Request, response: Response, settings: Settings, base: str
) -> None:
    """In secure mode: delete a cookie still held under the plain name (from before the
    ``__Host-`` names), so it is not sent on and on; it is never read as a login."""
    if settings.secure_cookies and base in request.cookies:
        response.delete_cookie(base, path="/", secure=True, httponly=True)
