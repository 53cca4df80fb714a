"""A user of tenant A never sees tenant B's rows, through any route."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from fastapi.routing import APIRoute

from rathaus.web.app import all_routes
from tests.web.conftest import csrf_of, login
from tests.web.tenant_data import into_session, plan_routes, seed


def _routes_with_case_id(app):
    for route in all_routes(app):
        if isinstance(route, APIRoute) and "{case_id}" in route.path:
            for method in route.methods:
                yield method, route.path


def test_every_case_route_hides_other_tenants(client, app, worlds):
    login(client, "admin", tenant="alpha")  # admin of alpha sees all of alpha, nothing of beta
    token = csrf_of(client)
    routes = list(_routes_with_case_id(app))
    assert len(routes) >= 4, routes
    for case in worlds["b"].cases.values():
        for method, path in routes:
            url = path.replace("{case_id}", str(case.id))
            response = client.request(
                method,
                url,
                headers={"X-CSRF-Token": token},
                json={"status": "in_bearbeitung"} if url.startswith("/api/") else None,
                data=None
                if url.startswith("/api/")
                else {"status": "in_bearbeitung", "csrf_token": token},
            )
            assert response.status_code == 404, (method, url, response.status_code)
            assert worlds["b"].cases["BA"].subject not in response.text


def test_lists_contain_only_own_tenant(client, worlds):
    login(client, "admin", tenant="alpha")
    api_refs = {c["reference"] for c in client.get("/api/v1/cases?limit=500").json()}
    assert api_refs == {c.reference for c in worlds["a"].cases.values()}
    page = client.get("/vorgaenge").text + client.get("/").text
    for case in worlds["b"].cases.values():
        assert case.reference not in page
    assert "beta" not in client.get("/api/v1/me").text


def test_session_of_tenant_b_sees_only_b(client, worlds):
    login(client, "admin", tenant="beta")
    refs = {c["reference"] for c in client.get("/api/v1/cases").json()}
    assert refs == {c.reference for c in worlds["b"].cases.values()}
    me = client.get("/api/v1/me").json()
    assert me["tenant"] == "beta"
    assert re.match(r"^[a-z]+$", me["username"])


# -- every GET route, every kind of object -------------------------------------------------------
#
# Both tenants get one marked object of every kind (tests/web/tenant_data.py). Alpha's admin (who
# sees everything of alpha) then fetches every GET route of the app and the API, with the path
# parameters filled with *beta's* ids, and every list, search and export without them: no
# response may contain beta's mark. Alpha's own mark on the lists proves the pages do show data.

BETA = "Betamarke"
ALPHA = "Alphamarke"
SEARCH = "betamarke"  # a search term that an echo of the query cannot confuse with the mark
# Path parameters that are not object ids: the values to try.
VOCABULARY = {
    "fmt": ("json", "xml", "csv", "xlsx", "geojson", "gpx"),
    "ext": ("txt", "srt", "vtt", "json"),
    "tabelle": ("eingang", "kanaele", "leistungen", "rueckstand", "bearbeitungszeit", "personal"),
    "name": ("aktivitaeten", "uebergaenge", "varianten", "engpaesse", "uebergaben", "nacharbeit",
             "durchlaufzeit"),
}  # fmt: skip
NOT_DATA = {"/docs", "/openapi.json", "/login/oidc", "/auth/oidc/callback"}


@pytest.fixture
def seeded(db, app, worlds, embedder):  # type: ignore[no-untyped-def]
    originals = app.state.settings.originals_dir
    with db.session() as session:
        marked = {}
        for key, mark in (("a", ALPHA), ("b", BETA)):
            world = into_session(session, worlds[key])
            marked[key] = seed(session, world, mark=mark, originals=originals, embedder=embedder)
    for marks in marked.values():
        plan_routes(db, marks)
    return marked


def _text(response) -> str:  # type: ignore[no-untyped-def]
    """The body as text; the XML parts of a zip (xlsx, docx) unpacked."""
    body = response.content
    if body[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return "\n".join(
                archive.read(n).decode("utf-8", "replace")
                for n in archive.namelist()
                if n.endswith((".xml", ".json", ".csv", ".txt"))
            )
    return body.decode("utf-8", "replace")


def _get_routes(app) -> list[APIRoute]:  # type: ignore[no-untyped-def]
    return [
        r
        for r in all_routes(app)
        if isinstance(r, APIRoute) and "GET" in r.methods and r.path not in NOT_DATA
    ]


def _params(path: str) -> list[str]:
    return re.findall(r"\{(\w+)(?::\w+)?\}", path)


def _urls(path: str, values: dict[str, str]) -> list[str]:
    """``path`` with every parameter filled: ids from ``values``, the rest from VOCABULARY."""
    urls = [path]
    for name in _params(path):
        if name in VOCABULARY:
            choices = VOCABULARY[name]
        else:
            assert name in values, f"Kein Wert für den Pfadparameter {name} in {path}"
            choices = (values[name],)
        urls = [
            re.sub(r"\{" + name + r"(?::\w+)?\}", str(choice), url)
            for url in urls
            for choice in choices
        ]
    return urls


def _query(route: APIRoute) -> str:
    names = {p.name for p in route.dependant.query_params}
    return f"?q={SEARCH}" if "q" in names else ""


def test_every_get_route_with_beta_ids_shows_nothing_of_beta(client, app, seeded):  # type: ignore[no-untyped-def]
    """Every GET route with an object id: beta's id → 404 and nothing of beta; alpha's own id
    of the same kind → the route works (so the 404 is the tenant filter, not a broken route)."""
    login(client, "admin", tenant="alpha")
    leaks, shown, own_missing = [], [], []
    routes = [r for r in _get_routes(app) if any(p not in VOCABULARY for p in _params(r.path))]
    for route in routes:
        for url in _urls(route.path, seeded["b"].values):
            response = client.get(url + _query(route))
            if BETA in _text(response):
                leaks.append(f"{url}: {response.status_code}")
            if response.status_code not in (404,):
                shown.append(f"{url}: {response.status_code}")
        own = [client.get(u + _query(route)) for u in _urls(route.path, seeded["a"].values)]
        if not any(r.status_code == 200 for r in own):
            own_missing.append(f"{route.path}: {[r.status_code for r in own]}")
    print("\n".join(own_missing))
    assert leaks == []
    assert shown == []
    assert len(routes) >= 30
    assert own_missing == []


# Query parameters that name an object: (path, query with {placeholders} of Seeded.values, whether
# alpha's page with alpha's value names alpha's mark).
QUERY_IDS = [
    ("/texte/brief", "vorlage={template_id}", True),
    ("/texte/brief", "vorgang={case_id}", True),
    ("/lagebild/prognose", "quelle=datensatz:{series_dataset_id}:{series}", True),
    ("/lagebild/prognose/export", "quelle=datensatz:{series_dataset_id}:{series}", False),
    ("/api/v1/lagebild/prognose", "quelle=datensatz:{series_dataset_id}:{series}", True),
    ("/lagebild/prognose", "quelle=amt:{unit_id}", True),
    ("/lagebild/prognose", "quelle=leistung:{service_id}", True),
    ("/lagebild/buchungen", "datensatz={dataset_id}", True),
    ("/posteingang", "amt={unit_id}", False),
    ("/lagebild", "fachbereich={unit_id}", True),
    ("/api/v1/lagebild/kennzahlen", "fachbereich={unit_id}", True),
    ("/lagebild/export/eingang", "fachbereich={unit_id}", False),
    ("/governance/datenschutz/zugriffe", "aktenzeichen={request_id}", True),
    ("/governance/datenschutz/zugriffe.csv", "aktenzeichen={request_id}", True),
]
# Lists, searches and exports that show alpha's marked objects (so they would show beta's,
# were the tenant filter missing).
SHOWS_OWN = {
    "/", "/vorgaenge", "/api/v1/cases", "/system", "/open311/v2/services.json",
    "/open311/v2/services.xml", "/open311/v2/requests.json", "/open311/v2/requests.xml",
    "/posteingang", "/posteingang/regeln", "/posteingang/modelle", "/posteingang/quellen",
    "/wissen/luecken", "/wissen/luecken.csv", "/texte/niederschriften", "/texte/bausteine/neu",
    "/texte/brief", "/api/v1/texte/bausteine", "/lagebild", "/lagebild/export/leistungen",
    "/lagebild/export/personal", "/api/v1/lagebild/kennzahlen", "/lagebild/prognose",
    "/api/v1/lagebild/prognose/quellen", "/api/v1/lagebild/prognose/datensaetze",
    "/lagebild/prozesse", "/api/v1/lagebild/prozesse", "/lagebild/buchungen",
    "/api/v1/lagebild/buchungen", "/lagebild/winterdienst", "/api/v1/lagebild/winterdienst",
    "/governance/protokoll", "/governance/protokoll/export", "/governance/datenschutz/zugriffe",
    "/governance/datenschutz/zugriffe.csv",
}  # fmt: skip


def test_query_parameters_naming_beta_objects_show_nothing_of_beta(client, seeded):  # type: ignore[no-untyped-def]
    login(client, "admin", tenant="alpha")
    for path, query, names_own in QUERY_IDS:
        theirs = client.get(f"{path}?{query.format(**seeded['b'].values)}")
        assert BETA not in _text(theirs), (path, query, theirs.status_code)
        own = client.get(f"{path}?{query.format(**seeded['a'].values)}")
        assert own.status_code == 200, (path, query, own.status_code)
        assert (ALPHA in _text(own)) == names_own, (path, query)
    own_template = seeded["a"].values["template_id"]
    filled = client.get(f"/texte/bausteine/{own_template}?vorgang={seeded['b'].values['case_id']}")
    assert BETA not in _text(filled)


def test_every_list_search_and_export_shows_only_own_tenant(client, app, seeded):  # type: ignore[no-untyped-def]
    login(client, "admin", tenant="alpha")
    leaks, own, fetched = [], set(), 0
    for route in _get_routes(app):
        if any(p not in VOCABULARY for p in _params(route.path)):
            continue
        for url in _urls(route.path, {}):
            response = client.get(url + _query(route))
            fetched += 1
            text = _text(response)
            if BETA in text:
                leaks.append(f"{url}: {response.status_code}")
            if ALPHA in text:
                own.add(url)
    assert leaks == []
    assert fetched >= 70
    assert own >= SHOWS_OWN, sorted(SHOWS_OWN - own)
    # A search finds alpha's own entries, never beta's
    for url in ("/wissen?q=alphamarke", "/texte/bausteine?q=alphamarke"):
        found = _text(client.get(url))
        assert ALPHA in found and BETA not in found, url
    for url in ("/wissen?q=betamarke", "/texte/bausteine?q=betamarke"):
        assert BETA not in _text(client.get(url)), url


def test_public_assistant_answers_only_from_its_own_knowledge(client, seeded):  # type: ignore[no-untyped-def]
    beta_conversation = "betamarke-gespraech"
    for question in (
        "betamarke-wissenstext hundesteuer anmelden",
        "Wie melde ich die Hundesteuer an?",
    ):
        response = client.post(
            "/api/v1/assistant/ask",
            json={"question": question, "kommune": "alpha", "conversation_id": beta_conversation},
        )
        assert response.status_code == 200, response.text
        assert BETA not in response.text
        data = response.json()
        assert data["conversation_id"] != beta_conversation
        sources = {s["url"] for s in data["answer"]["sources"]}
        assert sources <= {"https://alphamarke.example/hundesteuer"}
    assert ALPHA in response.text  # the answer came from alpha's entry


def test_alphas_api_key_reaches_nothing_of_beta(app, seeded):  # type: ignore[no-untyped-def]
    """Every GET route with alpha's API key instead of a login: beta's ids are never found;
    alpha's own are, where a key is accepted (Posteingang-API, Schreibassistenz-API)."""
    from fastapi.testclient import TestClient

    headers = {"Authorization": f"Bearer {seeded['a'].api_key}"}
    leaks, reached = [], set()
    own_reference = seeded["a"].values["request_id"]  # the item status names no subject
    with TestClient(app, follow_redirects=False) as keyed:
        for route in _get_routes(app):
            for url in _urls(route.path, seeded["b"].values):
                response = keyed.get(url + _query(route), headers=headers)
                if BETA in _text(response):
                    leaks.append(f"{url}: {response.status_code}")
                if "{" in route.path and any(p not in VOCABULARY for p in _params(route.path)):
                    assert response.status_code in (303, 401, 403, 404), (url, response.status_code)
            for url in _urls(route.path, seeded["a"].values):
                response = keyed.get(url + _query(route), headers=headers)
                text = _text(response)
                if response.status_code == 200 and (ALPHA in text or own_reference in text):
                    reached.add(route.path)
    assert leaks == []
    assert {"/api/v1/inbox/items/{case_id}", "/api/v1/texte/niederschriften/{minutes_id:int}",
            "/api/v1/texte/auftraege/{job_id}"} <= reached, reached  # fmt: skip
