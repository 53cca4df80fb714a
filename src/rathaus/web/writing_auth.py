"""Who may call the JSON API of the Schreibassistenz (``/api/v1/texte/...``): one rule for all.

Two kinds of caller are accepted, checked by :data:`WritingCallerDep`:

1. an API key of channel ``api`` (``Authorization: Bearer rh_…`` or ``X-API-Key: rh_…``, as
   for the Posteingang API): it acts for its municipality, without a person;
2. a logged-in staff session whose user holds ``Permission.USE_WRITING``: it acts as that
   person; state-changing requests (POST, PUT, PATCH, DELETE) need the session's token in the
   ``X-CSRF-Token`` header (:func:`rathaus.web.deps.check_csrf_header`).

A given key is checked first: a wrong key is refused (401) even with a valid session. Errors
are JSON with a German ``detail``: 401 without or with invalid credentials, 403 without the
permission or without the CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from rathaus.core.models import Tenant, User
from rathaus.core.roles import Permission, permissions_of
from rathaus.core.security import lookup_session
from rathaus.web.cookies import session_token
from rathaus.web.deps import Forbidden, SessionDep, check_csrf_header
from rathaus.web.inbox_api import BearerDep, HeaderDep, authenticate_key, given_key

NO_CREDENTIALS = (
    "Anmeldung fehlt: bitte „Authorization: Bearer rh_…“ oder „X-API-Key: rh_…“ (Kanal „api“) "
    "senden oder in Rathaus angemeldet sein."
)
INVALID_KEY = "Der API-Schlüssel ist ungültig oder gesperrt."
NO_PERMISSION = "Für die Schreibassistenz fehlt Ihnen die Berechtigung."

#: For ``responses=`` of a route: the documented refusals of :data:`WritingCallerDep`.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Weder gültiger API-Schlüssel (Kanal „api“) noch Anmeldung"},
    403: {"description": "Berechtigung „Schreibassistenz“ oder Kopf „X-CSRF-Token“ fehlt"},
}


@dataclass(frozen=True)
class WritingCaller:
    """The caller of the API: ``user`` is ``None`` for an API key (acting for ``tenant``)."""

    tenant: Tenant
    user: User | None
    actor: str  # for logs and records: the username, or ``api:<name of the key>``


class WritingUnauthorized(Exception):
    """No or invalid credentials: answered 401 with ``WWW-Authenticate: Bearer``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"detail": self.message}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )


def writing_caller(
    request: Request, session: SessionDep, bearer: BearerDep, header: HeaderDep
) -> WritingCaller:
    """Dependency: the checked caller, or raises (401 :class:`WritingUnauthorized`, 403
    :class:`~rathaus.web.deps.Forbidden` or :class:`~rathaus.web.deps.CsrfFailed`)."""
    key = given_key(bearer, header)
    if key:
        found = authenticate_key(session, key)
        if found is None:
            raise WritingUnauthorized(INVALID_KEY)
        row, tenant = found
        actor = f"api:{row.name}"[:120]
        # Commit the key's "last used" now: a write transaction held through a long model call
        # would lock SQLite against the call's own records, which use a session of their own.
        session.commit()
        return WritingCaller(tenant, None, actor)
    login = lookup_session(
        session,
        session_token(request),
        idle_s=request.app.state.settings.session_idle_s,
    )
    if login is None:
        raise WritingUnauthorized(NO_CREDENTIALS)
    web_session, user = login
    if Permission.USE_WRITING not in permissions_of(user.roles):
        raise Forbidden(NO_PERMISSION)
    check_csrf_header(request, web_session)
    tenant = session.get(Tenant, user.tenant_id)
    if tenant is None or not tenant.is_active:
        raise WritingUnauthorized(NO_CREDENTIALS)
    return WritingCaller(tenant, user, user.username)


WritingCallerDep = Annotated[WritingCaller, Depends(writing_caller)]
