"""The access matrix, generated from the app: every route × every role, and the confidentiality
matrix for a case marked ``vertraulich``.

What a route demands is read from its dependencies (``deps.require`` attaches the permissions it
checks). Routes without such a dependency must be listed below with the reason, so a new route
nobody has classified makes this test fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import update

from rathaus.core.models import Case, Confidentiality
from rathaus.core.roles import Permission, permissions_of
from rathaus.web import deps
from rathaus.web.app import all_routes
from rathaus.web.writing_auth import writing_caller
from tests.web.conftest import csrf_of, login

# The test users of tests/factories.py and their one role each.
ROLE_OF = {
    "admin": "admin",
    "sb": "sachbearbeitung",
    "leitung": "fachbereichsleitung",
    "dsb": "datenschutz",
    "redaktion": "redaktion",
}
ROLES = tuple(ROLE_OF)
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

# Reachable without a staff login: (method, path) → reason.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/docs"): "API-Dokumentation (Swagger), keine Daten",
    ("GET", "/openapi.json"): "API-Beschreibung, keine Daten",
    ("GET", "/healthz"): "Betriebsprüfung für den Load Balancer",
    ("GET", "/readyz"): "Bereitschaft für Load Balancer und Kubernetes (ja/nein, keine Daten)",
    ("GET", "/login"): "Anmeldeseite",
    ("POST", "/login"): "Anmeldung (eigener CSRF-Schutz der Anmeldeseite)",
    ("GET", "/login/oidc"): "Single Sign-on (404, solange oidc.enabled aus ist)",
    ("GET", "/login/zweiter-faktor"): "zweiter Anmeldeschritt: nur mit dem Cookie einer "
    "angefangenen Anmeldung (richtiges Passwort), sonst zurück zur Anmeldung",
    ("POST", "/login/zweiter-faktor"): "Code prüfen: angefangene Anmeldung, eigenes CSRF-Token",
    ("GET", "/login/zweiter-faktor/einrichten"): "Pflicht-Einrichtung nach dem Passwort: nur mit "
    "angefangener Anmeldung",
    ("POST", "/login/zweiter-faktor/einrichten"): "Pflicht-Einrichtung bestätigen: angefangene "
    "Anmeldung, eigenes CSRF-Token",
    ("POST", "/login/zweiter-faktor/weiter"): "nach der Einrichtung: Sitzung beginnen "
    "(angefangene Anmeldung, eigenes CSRF-Token)",
    ("GET", "/auth/oidc/callback"): "Single Sign-on, Rückkehr vom Identitätsanbieter",
    ("GET", "/transparenz"): "öffentliche Transparenzseite für Bürgerinnen und Bürger",
    ("GET", "/assistent"): "Bürgerassistent (anonym)",
    ("POST", "/assistent"): "Bürgerassistent: Frage stellen (anonym)",
    ("GET", "/assistent/einbetten"): "Bürgerassistent als Widget",
    ("POST", "/assistent/einbetten"): "Bürgerassistent als Widget: Frage stellen",
    ("GET", "/assistent/widget.js"): "Skript des Widgets",
    ("POST", "/assistent/rueckmeldung"): "Bürgerassistent: Rückmeldung zu einer Antwort",
    ("POST", "/assistent/weitergeben"): "Bürgerassistent: Übergabe mit Einwilligung",
    ("POST", "/api/v1/assistant/ask"): "Bürgerassistent-API (anonym, mit Ratenbegrenzung)",
    ("POST", "/api/v1/assistant/feedback"): "Bürgerassistent-API: Rückmeldung",
    ("POST", "/api/v1/assistant/handover"): "Bürgerassistent-API: Übergabe mit Einwilligung",
    ("GET", "/open311/v2/services.{fmt}"): "Open311: öffentlicher Leistungskatalog",
    ("GET", "/open311/v2/services/{code}.{fmt}"): "Open311: eine Leistung",
    ("POST", "/open311/v2/requests.{fmt}"): "Open311: Meldung einreichen (öffentlich, Standard)",
    ("GET", "/open311/v2/requests.{fmt}"): "Open311: öffentlicher Status (ohne vertrauliche)",
    ("GET", "/open311/v2/requests/{request_id}.{fmt}"): "Open311: Status einer Meldung",
}
# Authenticated by an API key (channel) or a session; the session path goes through
# core/access.py or the Schreibassistenz rule (writing_auth: USE_WRITING).
KEY_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/metrics"): "Prometheus-Metriken: Token (metrics.token) oder erlaubte Adresse",
    ("POST", "/api/v1/inbox/items"): "Posteingang-API: API-Schlüssel eines Kanals",
    ("GET", "/api/v1/inbox/items/{case_id}"): "Posteingang-API: Schlüssel oder Anmeldung "
    "(dann core.access.visible_cases)",
}
# Any logged-in staff member; what they see inside is filtered by core/access.py.
LOGIN_ONLY: dict[tuple[str, str], str] = {
    ("GET", "/"): "Startseite: Zahlen nur aus visible_cases",
    ("POST", "/logout"): "Abmelden",
    ("GET", "/api/v1/me"): "eigene Rollen und Einheiten",
    ("GET", "/api/v1/cases/{case_id}"): "ein Vorgang über visible_cases (sonst 404)",
    ("POST", "/api/v1/cases/{case_id}/status"): "visible_cases, dann EDIT_CASES im Service",
    ("POST", "/vorgaenge/{case_id}/status"): "visible_cases, dann EDIT_CASES im Service",
    ("GET", "/vorgaenge/{case_id}"): "Vorgangsseite über visible_cases (sonst 404)",
    ("GET", "/vorgaenge/{case_id}/dokumente/{document_id}"): "Original über visible_cases",
    ("GET", "/governance"): "Governance-Übersicht: verlinkt nur, was die Rolle darf",
    ("GET", "/governance/ki-register"): "KI-Register: für alle Beschäftigten (Transparenz)",
    ("GET", "/governance/ki-register.json"): "KI-Register als JSON",
    ("GET", "/governance/ki-register.pdf"): "KI-Register als PDF",
    ("GET", "/konto/sitzungen"): "nur die eigenen Sitzungen (user_id der Sitzung)",
    ("POST", "/konto/sitzungen/abmelden"): "beendet nur eine eigene Sitzung",
    ("POST", "/konto/sitzungen/andere-abmelden"): "beendet nur eigene andere Sitzungen",
    ("GET", "/konto/passwort-hinweis"): "Hinweis nur mit der HMAC-Marke der eigenen Sitzung",
    ("GET", "/konto/zweiter-faktor"): "nur der eigene zweite Faktor",
    ("POST", "/konto/zweiter-faktor"): "bestätigt nur den eigenen neuen Schlüssel",
    ("POST", "/konto/zweiter-faktor/neu"): "eigener Faktor: Passwort erneut und gültiger Code",
    ("POST", "/konto/zweiter-faktor/abschalten"): "eigener Faktor: Passwort erneut und Code",
}
# Allowed roles are not called here (the route itself is tested elsewhere): too slow or it
# would end the session the other calls need. Denied roles and anonymous are still checked.
NOT_CALLED_WHEN_ALLOWED: dict[tuple[str, str], str] = {
    ("POST", "/logout"): "beendet die Sitzung (tests/web/test_auth.py)",
    ("POST", "/konto/sitzungen/andere-abmelden"): "beendet Sitzungen (tests/security)",
    ("POST", "/system/modelle/pruefen"): "lädt die Modelle (tests/web/test_system.py)",
    ("POST", "/posteingang/modelle/trainieren"): "trainiert ein Modell (tests/inbox)",
}
# Routes whose handler narrows the route's permission further by role; the roles allowed.
NARROWED_IN_HANDLER: dict[tuple[str, str], tuple[str, set[str]]] = {
    ("GET", "/texte/bausteine/neu"): (
        "Textbausteine anlegen: Fachbereichsleitung und Administration "
        "(rathaus.writing.templates.may_create_any)",
        {"admin", "leitung"},
    ),
}
PATH_VALUES = {"fmt": "json", "ext": "txt"}


def _dependency_calls(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _dependency_calls(sub)


def requirement(route: APIRoute) -> tuple[str, frozenset[Permission]]:
    """("permission", set) from ``deps.require``; ("writing", {USE_WRITING}) for the
    Schreibassistenz API; ("login", ∅) and ("public"|"key", ∅) from the lists above;
    ("unclassified", ∅) otherwise."""
    calls = list(_dependency_calls(route.dependant))
    wanted: set[Permission] = set()
    for call in calls:
        wanted |= set(getattr(call, "required_permissions", ()))
    if wanted:
        return "permission", frozenset(wanted)
    if writing_caller in calls:
        return "writing", frozenset({Permission.USE_WRITING})
    keys = [(m, route.path) for m in route.methods]
    if all(k in LOGIN_ONLY for k in keys) and deps.get_web_session in calls:
        return "login", frozenset()
    if all(k in PUBLIC for k in keys):
        return "public", frozenset()
    if all(k in KEY_ROUTES for k in keys):
        return "key", frozenset()
    return "unclassified", frozenset()


def _url(path: str) -> str:
    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        return PATH_VALUES.get(name, "999999" if name.endswith("id") or ":int" in m.group(0)
                               or name in {"version", "tabelle"} else "x")  # fmt: skip

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def _call(client: TestClient, method: str, path: str, token: str | None) -> Any:
    url = _url(path)
    headers = {"X-CSRF-Token": token} if token else {}
    if method not in UNSAFE:
        return client.request(method, url, headers=headers)
    if url.startswith("/api/"):
        return client.request(method, url, headers=headers, json={})
    return client.request(method, url, headers=headers, data={"csrf_token": token or ""})


def _api_routes(app: Any) -> list[tuple[str, str, APIRoute]]:
    found = []
    for route in all_routes(app):
        if isinstance(route, APIRoute):
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                found.append((method, route.path, route))
    return found


def test_every_route_is_classified(app):
    unclassified = [
        f"{method} {path}"
        for method, path, route in _api_routes(app)
        if requirement(route)[0] == "unclassified"
    ]
    assert unclassified == [], (
        "Diese Routen prüfen keine Berechtigung über deps.require(...) und stehen in keiner "
        f"Liste von tests/web/test_access_matrix.py: {unclassified}"
    )
    listed = set(PUBLIC) | set(KEY_ROUTES) | set(LOGIN_ONLY)
    existing = {(m, p) for m, p, _ in _api_routes(app)} | {("GET", "/openapi.json")}
    assert listed <= existing, f"Veraltete Einträge: {sorted(listed - existing)}"


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # permissions do not depend on the DB
def test_every_route_and_role_matrix(app, worlds):
    clients: dict[str, TestClient] = {}
    tokens: dict[str, str] = {}
    try:
        for role in ROLES:
            client = TestClient(app, follow_redirects=False)
            client.__enter__()
            clients[role] = client
            assert login(client, role).status_code == 303
            tokens[role] = csrf_of(client)
        anonymous = TestClient(app, follow_redirects=False)
        anonymous.__enter__()
        clients["anonym"] = anonymous

        problems: list[str] = []
        checked = 0
        for method, path, route in _api_routes(app):
            kind, wanted = requirement(route)
            if kind in ("public", "key"):
                if kind == "key" or method in UNSAFE:
                    response = _call(anonymous, method, path, None)
                    if kind == "key" and response.status_code != 401:
                        problems.append(f"anonym {method} {path}: {response.status_code}≠401")
                    continue
                response = _call(anonymous, method, path, None)
                if response.status_code in (401, 403) or "/login?next" in response.headers.get(
                    "location", ""
                ):
                    problems.append(f"anonym {method} {path}: öffentlich, aber gesperrt")
                continue
            response = _call(anonymous, method, path, None)
            denied_anon = response.status_code == 401 or (
                response.status_code == 303
                and response.headers.get("location", "").startswith("/login")
            )
            if not denied_anon:
                problems.append(f"anonym {method} {path}: {response.status_code}")
            for role in ROLES:
                granted = permissions_of({ROLE_OF[role]})
                allowed = wanted <= granted
                if (method, path) in NARROWED_IN_HANDLER:
                    allowed = allowed and role in NARROWED_IN_HANDLER[(method, path)][1]
                if allowed and (method, path) in NOT_CALLED_WHEN_ALLOWED:
                    continue
                response = _call(clients[role], method, path, tokens[role])
                checked += 1
                if not allowed and response.status_code != 403:
                    problems.append(f"{role} {method} {path}: {response.status_code}, erwartet 403")
                if allowed and response.status_code == 403:
                    problems.append(f"{role} {method} {path}: 403, obwohl erlaubt")
        assert problems == [], "\n".join(problems)
        assert checked > 500
    finally:
        for client in clients.values():
            client.__exit__(None, None, None)


# -- confidentiality ------------------------------------------------------------------------------

MARK_BA = "Vertraulich-Hausakte-BA-7731"
MARK_OA = "Vertraulich-Gewerbeakte-OA-4410"


@pytest.fixture
def confidential(db, worlds):  # type: ignore[no-untyped-def]
    """The BA case and the OA-GW case of tenant alpha, marked ``vertraulich``."""
    world = worlds["a"]
    with db.session() as session:
        for code, mark in (("BA", MARK_BA), ("OA-GW", MARK_OA)):
            session.execute(
                update(Case)
                .where(Case.id == world.cases[code].id)
                .values(confidentiality=Confidentiality.VERTRAULICH, subject=mark)
            )
        session.commit()
    return {"BA": world.cases["BA"].id, "OA-GW": world.cases["OA-GW"].id}


def _case_get_routes(app: Any) -> list[str]:
    return [
        path
        for method, path, _ in _api_routes(app)
        if method == "GET" and "{case_id}" in path and path.count("{") == 1
    ]


# Who sees which confidential case: sb is in BA, leitung in OA (OA-GW lies below OA).
EXPECTED = {
    "sb": {"BA": True, "OA-GW": False},
    "leitung": {"BA": False, "OA-GW": True},
    "admin": {"BA": False, "OA-GW": False},
    "dsb": {"BA": False, "OA-GW": False},
    "redaktion": {"BA": False, "OA-GW": False},
}


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_confidential_cases_matrix(app, client, worlds, confidential, role):
    assert login(client, role).status_code == 303
    marks = {"BA": MARK_BA, "OA-GW": MARK_OA}
    listing = client.get("/api/v1/cases?limit=500")
    pages = client.get("/vorgaenge").text + client.get("/").text + client.get("/posteingang").text
    for code, visible in EXPECTED[role].items():
        case_id = confidential[code]
        page = client.get(f"/vorgaenge/{case_id}")
        api = client.get(f"/api/v1/cases/{case_id}")
        if visible:
            assert page.status_code == 200 and marks[code] in page.text, (role, code)
            assert api.status_code == 200 and api.json()["subject"] == marks[code]
            assert marks[code] in {c["subject"] for c in listing.json()}
            assert marks[code] in pages
            continue
        assert page.status_code == 404, (role, code, page.status_code)
        assert api.status_code == 404, (role, code, api.status_code)
        assert marks[code] not in listing.text
        assert marks[code] not in pages
        for path in _case_get_routes(app):
            response = client.get(path.replace("{case_id}", str(case_id)))
            assert response.status_code in (403, 404), (role, path, response.status_code)
            assert marks[code] not in response.text, (role, path)


def test_administration_still_sees_ordinary_cases(client, worlds, confidential):
    login(client, "admin")
    refs = {c["reference"] for c in client.get("/api/v1/cases?limit=500").json()}
    # Every case of alpha except the two confidential ones.
    assert refs == {worlds["a"].cases["unrouted"].reference}
    ordinary = worlds["a"].cases["unrouted"].id
    assert client.get(f"/vorgaenge/{ordinary}").status_code == 200


def test_confidential_case_is_not_in_public_open311(client, db, worlds, confidential):
    with db.session() as session:
        session.execute(update(Case).where(Case.id.in_(confidential.values())).values(
            channel="open311"))  # fmt: skip
        session.commit()
    found = client.get("/open311/v2/requests.json?start_date=2000-01-01T00:00:00Z")
    assert found.status_code == 200
    for code in ("BA", "OA-GW"):
        assert worlds["a"].cases[code].reference not in found.text
    one = client.get(f"/open311/v2/requests/{worlds['a'].cases['BA'].reference}.json")
    assert one.status_code == 404
