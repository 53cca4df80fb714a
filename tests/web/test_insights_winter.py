"""Winterdienst page, JSON API, background job (SQLite and PostgreSQL) and CLI."""

from __future__ import annotations

import json
from pathlib import Path

from rathaus.core.models import RoutePlan
from rathaus.insights.winter import service
from tests.web.conftest import csrf_of, login

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "winter"
GUALANDI = (DATA / "gualandi_gualandi.json").read_bytes()


def _upload(client, data: bytes = GUALANDI, name: str = "gualandi.json"):  # type: ignore[no-untyped-def]
    return client.post(
        "/lagebild/winterdienst",
        data={"csrf_token": csrf_of(client), "name": "Testnetz"},
        files={"datei": (name, data, "application/json")},
    )


def test_import_plan_in_background_and_show_result(client, worlds, db) -> None:  # type: ignore[no-untyped-def]
    login(client, "leitung")
    assert client.get("/lagebild/winterdienst").status_code == 200
    response = _upload(client)
    assert response.status_code == 303, response.text
    url = response.headers["location"]
    page = client.get(url)
    assert "Testnetz" in page.text and "3</span> zu streuende Strecken" in page.text
    plan_id = int(url.rsplit("/", 1)[1])
    # the job runs at once on the memory queue; time limit 1 s
    started = client.post(f"{url}/planen", data={"csrf_token": csrf_of(client), "zeitlimit": "1"})
    assert started.status_code == 303
    with db.session() as session:
        plan = session.get(RoutePlan, plan_id)
        assert plan.status == "fertig" and plan.feasible is True
        assert plan.total_time == 0.0 and plan.solution["evaluation"]["total_length"] == 70.0
        assert plan.original_sha256
    page = client.get(url)
    assert "Zulässig" in page.text and "<svg" in page.text and "Abbiegeliste" in page.text
    # each vehicle's colour is named beside its swatch; no inline style (the CSP blocks them)
    assert 'class="chart-s0"' in page.text and "</svg> blau" in page.text
    assert "style=" not in page.text
    assert "streuen" in page.text and "Nachladen in Depot 7" in page.text
    status = client.get(f"{url}/stand", headers={"HX-Request": "true"})
    assert status.headers.get("HX-Refresh") == "true"
    csv = client.get(f"{url}/export.csv")
    assert csv.status_code == 200 and "Anweisung" in csv.content.decode("utf-8-sig")
    assert client.get(f"{url}/export.xlsx").content[:2] == b"PK"
    geo = client.get(f"{url}/export.geojson").json()
    assert geo["type"] == "FeatureCollection"
    gpx = client.get(f"{url}/export.gpx")
    assert gpx.status_code == 422 and "geografische Koordinaten" in gpx.text
    # API
    plans = client.get("/api/v1/lagebild/winterdienst").json()
    assert plans[0]["id"] == plan_id and plans[0]["feasible"] is True
    detail = client.get(f"/api/v1/lagebild/winterdienst/{plan_id}").json()
    assert detail["evaluation"]["feasible"] and detail["routes"][0]["vehicle"] == "1"
    turns = client.get(f"/api/v1/lagebild/winterdienst/{plan_id}/abbiegeliste").json()
    assert turns[-1]["Anweisung"].startswith("Tourende")


def test_bad_network_is_refused_with_names_and_nothing_stored(client, worlds, db) -> None:  # type: ignore[no-untyped-def]
    login(client, "leitung")
    data = json.loads(GUALANDI)
    data["E_R"].append({"edge": ["1", "99"], "len": 1, "time": 0, "dem": 1})
    response = _upload(client, json.dumps(data).encode())
    assert response.status_code == 422
    assert "unbekannten Knoten „99“" in response.text
    api = client.post(
        "/api/v1/lagebild/winterdienst",
        headers={"X-CSRF-Token": csrf_of(client)},
        files={"file": ("x.json", b"[1, 2]", "application/json")},
    )
    assert api.status_code == 422 and "JSON-Objekt" in api.json()["detail"]
    with db.session() as session:
        assert session.query(RoutePlan).count() == 0


def test_permissions(client, worlds) -> None:  # type: ignore[no-untyped-def]
    login(client, "dsb")  # may view the Lagebild, may not import or plan
    assert client.get("/lagebild/winterdienst").status_code == 200
    assert _upload(client).status_code == 403
    client.cookies.clear()
    login(client, "sb")
    assert client.get("/lagebild/winterdienst").status_code == 403


def test_api_import_and_start(client, worlds, db) -> None:  # type: ignore[no-untyped-def]
    login(client, "admin")
    token = csrf_of(client)
    created = client.post(
        "/api/v1/lagebild/winterdienst",
        headers={"X-CSRF-Token": token},
        files={"file": ("belben.json", (DATA / "belben_belben.json").read_bytes())},
    )
    assert created.status_code == 201, created.text
    plan_id = created.json()["id"]
    assert created.json()["network"]["required_links"] == 9
    started = client.post(
        f"/api/v1/lagebild/winterdienst/{plan_id}/planen?zeitlimit=1",
        headers={"X-CSRF-Token": token},
    )
    assert started.status_code == 202
    detail = client.get(started.json()["status_url"]).json()
    assert detail["status"] == "fertig" and detail["feasible"] is True


def test_job_path_directly(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rathaus.core.config import load_settings
    from tests.factories import build_tenant

    settings = load_settings(
        mode="demo", data_dir=tmp_path, database_url=db.url, queue={"backend": "memory"}
    )
    with db.session() as session:
        world = build_tenant(session, "alpha")
        plan = service.import_plan(
            session,
            settings=settings,
            tenant_id=world.tenant.id,
            user_name="t",
            filename="g.json",
            data=GUALANDI,
        )
        plan.status = service.WARTET
        plan.options = {"time_limit_s": 1}
        plan_id = plan.id
    assert service.run_planning(db, plan_id=plan_id) == "fertig"
    assert service.run_planning(db, plan_id=plan_id) == "fertig"  # a second delivery: no-op
    with db.session() as session:
        plan = session.get(RoutePlan, plan_id)
        assert plan.feasible and plan.solved_at is not None
        assert service.routes_of(plan)[0].steps[0].tail == "0"


def test_cli_import_plan_export_and_check(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import build_tenant
    from tests.test_cli import in_process

    with db.session() as session:
        build_tenant(session, "alpha")
    cli = in_process(tmp_path, db)
    result = cli("lage", "winterdienst-import", str(DATA / "gualandi_gualandi.json"))
    assert result.exit_code == 0, result.output
    assert "3 zu streuende Strecken" in result.output
    plan_id = result.output.split()[1]
    result = cli("lage", "winterdienst-planen", plan_id, "--zeitlimit", "1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["evaluation"]["total_length"] == 70.0
    result = cli("lage", "winterdienst-export", plan_id, "--format", "csv")
    assert result.exit_code == 0 and "streuen" in result.output
    result = cli("lage", "winterdienst-export", plan_id, "--format", "gpx")
    assert result.exit_code != 0 and "GPX braucht" in str(result.exception)
    result = cli(
        "lage",
        "winterdienst-pruefen",
        str(DATA / "kerteminde_kerteminde.json"),
        str(DATA / "kerteminde_solution_mandrup.txt"),
    )
    assert result.exit_code == 0 and "Gesamtfahrzeit 312,4 min" in result.output
    assert "Wendemanöver an Knoten 25" in result.output
