"""SQL injection (ASVS V5.3.4, V5.3.5) and path traversal (V12.3.1, V12.3.2, V12.5.1).

Every query parameter and every free path parameter of every GET route gets SQL and full-text
query syntax (PostgreSQL's tsquery included): the app answers normally (no 500), shows nothing of
the other municipality, and the tables are intact afterwards. File names from users never become
paths: originals are addressed by hash per tenant, static files stay in their folder.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from rathaus.core.models import Case, User
from rathaus.core.storage import OriginalStore, StorageError
from rathaus.web.app import all_routes
from tests.web.conftest import login
from tests.web.tenant_data import into_session, plan_routes, seed

ALPHA, BETA = "Alphamarke", "Betamarke"
PAYLOADS = (
    "' OR '1'='1' --",
    "1; DROP TABLE cases; --",
    "%' UNION SELECT subject, subject FROM cases --",
    "a & | ! ( ) : * <-> 'b' \\",  # tsquery syntax and a trailing backslash
)
VOCABULARY = {"fmt": "json", "ext": "txt", "tabelle": "eingang", "name": "aktivitaeten"}
SKIP = {"/docs", "/openapi.json", "/login/oidc", "/auth/oidc/callback"}
ID_PARAMS = re.compile(r"_id$|^source$|^entry_id$")


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


def _fill(path: str, values: dict[str, str], override: tuple[str, str] | None = None) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if override and name == override[0]:
            return quote(override[1], safe="")
        return VOCABULARY.get(name) or values[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", one, path)


def test_sql_and_tsquery_syntax_in_every_parameter_is_harmless(client, app, db, seeded):  # type: ignore[no-untyped-def]
    login(client, "admin", tenant="alpha")
    own = seeded["a"].values
    with db.session() as session:
        cases_before = session.scalar(select(func.count()).select_from(Case))
    failures, leaks, tried = [], [], 0
    for route in all_routes(app):
        if not isinstance(route, APIRoute) or "GET" not in route.methods or route.path in SKIP:
            continue
        targets = [("query", p.name) for p in route.dependant.query_params]
        targets += [
            ("path", name)
            for name in re.findall(r"\{(\w+)\}", route.path)  # typed ({x:int}) ones cannot match
            if name not in VOCABULARY and not ID_PARAMS.search(name)
        ]
        for where, name in targets:
            for payload in PAYLOADS:
                if where == "query":
                    url = f"{_fill(route.path, own)}?{name}={quote(payload, safe='')}"
                else:
                    url = _fill(route.path, own, (name, payload))
                response = client.get(url)
                tried += 1
                if response.status_code >= 500:
                    failures.append(f"{url}: {response.status_code}")
                if BETA in response.content.decode("utf-8", "replace"):
                    leaks.append(url)
    assert failures == []
    assert leaks == []
    assert tried >= 150
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == cases_before
        assert session.scalar(select(func.count()).select_from(User)) > 0


def test_search_with_sql_finds_only_what_it_says(client, seeded):  # type: ignore[no-untyped-def]
    login(client, "admin", tenant="alpha")
    for url in ("/wissen?q=", "/texte/bausteine?q="):
        response = client.get(url + quote("x' OR '1'='1", safe=""))
        assert response.status_code in (200, 422), url
        assert ALPHA not in response.text and BETA not in response.text, url


def test_login_name_with_sql_is_just_a_wrong_name(client, worlds):  # type: ignore[no-untyped-def]
    for name in ("admin' --", "' OR '1'='1", 'admin" OR ""="'):
        response = login(client, name)
        assert response.status_code == 401


def test_public_assistant_question_with_sql_and_tsquery_syntax(client, seeded):  # type: ignore[no-untyped-def]
    for question in PAYLOADS:
        response = client.post(
            "/api/v1/assistant/ask", json={"question": question, "kommune": "alpha"}
        )
        assert response.status_code == 200, (question, response.text[:300])
        assert BETA not in response.text


# -- files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["../../etc/passwd", "..%2f..%2fetc%2fpasswd", "/etc/passwd", "0" * 63 + "/", "\x00" * 64],
)
def test_original_store_keys_never_become_paths(tmp_path, key):  # type: ignore[no-untyped-def]
    store = OriginalStore(tmp_path / "originale")
    for call in (store.get, store.exists, store.delete):
        with pytest.raises(StorageError, match="Ungültiger Dateischlüssel"):
            call(1, key)


def test_originals_are_kept_apart_per_tenant(tmp_path):  # type: ignore[no-untyped-def]
    store = OriginalStore(tmp_path)
    stored = store.put(1, b"Antrag von Alpha")
    assert store.get(1, stored.sha256) == b"Antrag von Alpha"
    with pytest.raises(StorageError, match="fehlt"):
        store.get(2, stored.sha256)  # the same hash of another municipality: not found
    with pytest.raises(StorageError):
        store.get(-1, stored.sha256)
    assert (tmp_path / "1" / stored.sha256[:2] / stored.sha256).stat().st_mode & 0o777 == 0o440


@pytest.mark.parametrize(
    "url",
    [
        "/static/../pyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/..%2f..%2f..%2fpyproject.toml",
        "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/static//etc/passwd",
    ],
)
def test_static_files_stay_in_their_folder(client, url):  # type: ignore[no-untyped-def]
    response = client.get(url)
    assert response.status_code == 404
    assert "[project]" not in response.text and "root:" not in response.text


def test_document_of_another_case_is_not_served_under_this_case(client, seeded):  # type: ignore[no-untyped-def]
    """The download route checks that the document belongs to the case in the path (and the
    case to the caller's municipality), so ids cannot be combined to reach other files."""
    login(client, "admin", tenant="alpha")
    own, other = seeded["a"].values, seeded["b"].values
    assert (
        client.get(f"/vorgaenge/{own['case_id']}/dokumente/{own['document_id']}").status_code == 200
    )
    for case_id, document_id in (
        (own["case_id"], other["document_id"]),
        (other["case_id"], other["document_id"]),
        (own["case_id"], "../../../etc/passwd"),
        (own["case_id"], "%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
    ):
        response = client.get(f"/vorgaenge/{case_id}/dokumente/{document_id}")
        assert response.status_code in (404, 422), (case_id, document_id)
        assert BETA not in response.text


def test_file_names_in_exports_are_made_safe():
    from rathaus.governance.privacy import _safe_name

    for name in ("../../etc/passwd", "..\\..\\boot.ini", "a/b/../../c", "\x00evil"):
        safe = _safe_name(name)
        assert "/" not in safe and "\\" not in safe and "\x00" not in safe
        assert not safe.startswith(".")
