"""Nothing a signed-in person sees is kept in a cache (ASVS 8.1.1): every response to a login
session or an API key says ``Cache-Control: no-store`` – every GET route of the app, with ids of
the own municipality, downloads and errors included – while static files stay cacheable."""

from __future__ import annotations

from tests.web.conftest import csrf_of, login
from tests.web.test_tenant_isolation import (  # noqa: F401 - fixtures used by this test
    _get_routes,
    _query,
    _urls,
    seeded,
)


def test_every_staff_get_route_says_no_store(client, app, seeded):  # type: ignore[no-untyped-def]  # noqa: F811
    login(client, "admin", tenant="alpha")
    missing, statuses = [], set()
    routes = _get_routes(app)
    for route in routes:
        for url in _urls(route.path, seeded["a"].values):
            response = client.get(url + _query(route))
            statuses.add(response.status_code)
            if "no-store" not in response.headers.get("cache-control", ""):
                missing.append(
                    f"{url}: {response.status_code} {response.headers.get('cache-control')}"
                )
    assert missing == []
    assert len(routes) >= 60 and 200 in statuses  # the pages really rendered, not only errors


def test_downloads_errors_and_api_answers_say_no_store(client, worlds):  # type: ignore[no-untyped-def]
    login(client, "admin", tenant="alpha")
    for response in (
        client.get("/api/v1/me"),  # JSON
        client.get("/vorgaenge/999999"),  # a German 404 page
        client.post("/logout", data={"csrf_token": "falsch"}),  # refused CSRF
        client.get("/gibt-es-nicht"),
    ):
        assert response.headers["cache-control"] == "no-store", response.request.url
    # An API key is personal too, even when it is wrong.
    anonymous = client.__class__(client.app)
    answer = anonymous.get("/api/v1/cases", headers={"Authorization": "Bearer falsch"})
    assert answer.headers["cache-control"] == "no-store"


def test_static_files_and_anonymous_pages_stay_cacheable(client, worlds):  # type: ignore[no-untyped-def]
    login(client, "sb")
    assert csrf_of(client)
    style = client.get("/static/rathaus.css")
    assert style.status_code == 200 and "no-store" not in style.headers.get("cache-control", "")
    client.cookies.clear()
    page = client.get("/login")
    assert "no-store" not in page.headers.get("cache-control", "")
