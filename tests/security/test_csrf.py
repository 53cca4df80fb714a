"""CSRF (ASVS V4.2.2, V13.2.3): every state-changing route of the app, enumerated from the app
itself, refuses a logged-in browser request without the session's token.

A route that a session cookie cannot authorise at all (public citizen endpoints, API-key-only
endpoints, the login form with its own token) is listed in ``NO_SESSION`` with the reason, and the
test proves the reason: the same request gives the same answer with and without the cookie.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from rathaus.web.app import all_routes
from tests.web.conftest import login
from tests.web.tenant_data import into_session, plan_routes, seed

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
VOCABULARY = {"fmt": "json", "ext": "txt", "tabelle": "eingang", "name": "aktivitaeten"}

# Routes a session cookie does not authorise, and why (checked below, not just believed).
NO_SESSION = {
    "/login": "eigenes Formular-Token im Cookie rathaus_login_csrf (tests/web/test_auth.py)",
    # The second step of a login: before any session, with its own form token bound to the
    # unfinished login (tests/web/test_second_factor.py::
    # test_the_unfinished_login_is_short_lived_and_bound_to_its_browser).
    "/login/zweiter-faktor": "eigenes Formular-Token der angefangenen Anmeldung",
    "/login/zweiter-faktor/einrichten": "eigenes Formular-Token der angefangenen Anmeldung",
    "/login/zweiter-faktor/weiter": "eigenes Formular-Token der angefangenen Anmeldung",
    "/api/v1/assistant/ask": "öffentlich, ohne Anmeldung (Bürgerassistent)",
    "/api/v1/assistant/feedback": "öffentlich, ohne Anmeldung",
    "/api/v1/assistant/handover": "öffentlich, ohne Anmeldung, nur mit Einwilligung",
    "/assistent": "öffentliches Formular ohne Anmeldung",
    "/assistent/einbetten": "öffentliches Formular ohne Anmeldung (Widget)",
    "/assistent/rueckmeldung": "öffentliches Formular ohne Anmeldung",
    "/assistent/weitergeben": "öffentliches Formular ohne Anmeldung, nur mit Einwilligung",
    "/open311/v2/requests.{fmt}": "nur mit API-Schlüssel (Open311)",
    "/api/v1/inbox/items": "nur mit API-Schlüssel (Kanal api)",
}


@pytest.fixture
def values(db, app, worlds, embedder) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Alpha's own object ids for every path parameter, so no route stops at a 404 first."""
    with db.session() as session:
        world = into_session(session, worlds["a"])
        marks = seed(
            session,
            world,
            mark="Alphamarke",
            originals=app.state.settings.originals_dir,
            embedder=embedder,
        )
    plan_routes(db, marks)
    return {**marks.values, **VOCABULARY}


def _unsafe_routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return sorted(
        (method, route.path)
        for route in all_routes(app)
        if isinstance(route, APIRoute)
        for method in route.methods & UNSAFE
    )


def _url(path: str, values: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        return values.get(match.group(1), "1")

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, path)


def test_every_state_changing_route_refuses_a_session_without_token(client, app, values):  # type: ignore[no-untyped-def]
    login(client, "admin")
    routes = _unsafe_routes(app)
    assert len(routes) >= 60, len(routes)
    accepted, refused = [], 0
    with TestClient(app, follow_redirects=False) as anonymous:
        for method, path in routes:
            url = _url(path, values)
            response = client.request(method, url)
            if path in NO_SESSION:
                without_cookie = anonymous.request(method, url)
                assert response.status_code == without_cookie.status_code, (method, path)
                continue
            if response.status_code == 403 and "CSRF" in response.text:
                refused += 1
            else:
                accepted.append(f"{method} {path}: {response.status_code}")
    assert accepted == []
    assert refused == len(routes) - len([p for _m, p in routes if p in NO_SESSION])


def test_wrong_or_other_sessions_token_is_refused_too(client, app, worlds):  # type: ignore[no-untyped-def]
    from tests.web.conftest import csrf_of

    login(client, "sb")
    own = csrf_of(client)
    with TestClient(app, follow_redirects=False) as other:
        login(other, "admin")
        foreign = csrf_of(other)
    case = worlds["a"].cases["BA"]
    for token in (foreign, own[:-1] + ("A" if own[-1] != "A" else "B"), "", "x" * 5000):
        response = client.post(
            f"/vorgaenge/{case.id}/status", data={"status": "in_bearbeitung", "csrf_token": token}
        )
        assert response.status_code == 403 and "CSRF" in response.text
        api = client.post(
            f"/api/v1/cases/{case.id}/status",
            json={"status": "in_bearbeitung"},
            headers={"X-CSRF-Token": token},
        )
        assert api.status_code == 403
    ok = client.post(
        f"/vorgaenge/{case.id}/status", data={"status": "in_bearbeitung", "csrf_token": own}
    )
    assert ok.status_code == 303


def test_no_route_lists_every_public_entry_on_purpose(app):  # type: ignore[no-untyped-def]
    """NO_SESSION names only routes that exist: a renamed public route must be looked at again."""
    paths = {path for _method, path in _unsafe_routes(app)}
    assert set(NO_SESSION) <= paths, sorted(set(NO_SESSION) - paths)
