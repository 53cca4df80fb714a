"""The Kennzahlen page, its export and JSON API through the real app."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient

from tests.factories import World
from tests.web.conftest import login


def test_department_head_sees_dashboard_with_charts_and_tables(
    client: TestClient, worlds: dict[str, World]
) -> None:
    login(client, "leitung")
    page = client.get("/lagebild")
    assert page.status_code == 200
    assert 'href="/lagebild" aria-current="page"' in page.text
    assert "<svg" in page.text and "Eingang je Zeitabschnitt" in page.text
    assert "Offene Vorgänge je Fachbereich" in page.text
    # Only the Ordnungsamt subtree is offered and counted, not the Bürgeramt.
    assert ">Gewerbe</option>" in page.text and ">Bürgeramt</option>" not in page.text


def test_case_worker_without_insights_permission_is_refused(
    client: TestClient, worlds: dict[str, World]
) -> None:
    login(client, "sb")
    assert client.get("/lagebild").status_code == 403
    assert client.get("/api/v1/lagebild/kennzahlen").status_code == 403
    assert 'href="/lagebild"' not in client.get("/").text


def test_api_and_exports(client: TestClient, worlds: dict[str, World]) -> None:
    login(client, "admin")
    data = client.get("/api/v1/lagebild/kennzahlen", params={"einteilung": "monat"}).json()
    assert data["period"]["bucket"] == "monat" and data["min_group_size"] == 5
    assert data["sla"]["open"] == 3  # the factory's three open cases of tenant alpha
    csv = client.get("/lagebild/export/rueckstand", params={"format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.content.decode("utf-8-sig").startswith("Fachbereich;Offen;")
    assert "attachment" in csv.headers["content-disposition"]
    xlsx = client.get("/lagebild/export/eingang", params={"format": "xlsx", "einteilung": "tag"})
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.cell(1, 1).value == "Abschnitt" and sheet.max_row > 80
    assert client.get("/lagebild/export/gehaelter").status_code == 404


def test_bad_period_is_explained_in_german(client: TestClient, worlds: dict[str, World]) -> None:
    login(client, "admin")
    page = client.get("/lagebild", params={"von": "2026-05-01", "bis": "2026-04-01"})
    assert page.status_code == 422 and "„von“ liegt nach „bis“" in page.text
    api = client.get("/api/v1/lagebild/kennzahlen", params={"von": "morgen"})
    assert api.status_code == 400 and "kein Datum" in api.text
