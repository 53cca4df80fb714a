"""A user of tenant A never sees tenant B's rows, through any route."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from rathaus.web.app import all_routes
from tests.web.conftest import csrf_of, login


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
