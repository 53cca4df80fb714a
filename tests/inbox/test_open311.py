"""Open311 GeoReport v2 server: services, POST with api_key, GET with filters, JSON and XML."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rathaus.core import apikeys
from rathaus.core.config import load_settings
from rathaus.core.models import Case, Document, Service
from rathaus.core.storage import OriginalStore
from rathaus.web.app import create_app
from tests.factories import build_tenant

REPORT = {
    "service_code": "strassenschaden",
    "lat": "47.6634",
    "long": "9.1745",
    "description": "Tiefes Schlagloch vor Hausnummer 12, Radfahrer weichen auf den Gehweg aus.",
    "email": "melderin@example.org",
    "first_name": "Mia",
    "last_name": "Muster",
    "media_url": "https://fotos.example.org/loch.jpg",
}


@pytest.fixture
def setup(db, tmp_path):
    with db.session() as session:
        worlds = {"a": build_tenant(session, "alpha"), "b": build_tenant(session, "beta")}
        for world in worlds.values():
            session.add(
                Service(
                    tenant_id=world.tenant.id,
                    code="strassenschaden",
                    name="Straßenschaden melden",
                    description="Schlaglöcher, Risse und lose Platten.",
                    org_unit_id=world.units["OA"].id,
                    sla_working_days=5,
                    open311_enabled=True,
                )
            )
            session.add(Service(tenant_id=world.tenant.id, code="intern", name="Nur intern"))
        key_a, _ = apikeys.create(session, tenant=worlds["a"].tenant, channel="open311", name="App")
        key_b, _ = apikeys.create(session, tenant=worlds["b"].tenant, channel="open311", name="App")
        api_key, _ = apikeys.create(
            session, tenant=worlds["a"].tenant, channel="api", name="Andere"
        )
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        database_url=db.url,  # the triage job opens the same database
        default_tenant="alpha",
        queue={"backend": "memory"},
    )
    with TestClient(create_app(settings, database=db)) as client:
        yield {
            "client": client,
            "key_a": key_a,
            "key_b": key_b,
            "api_key": api_key,
            "settings": settings,
            "worlds": worlds,
        }


def test_services_json_and_xml(setup):
    client = setup["client"]
    services = client.get("/open311/v2/services.json").json()
    assert [s["service_code"] for s in services] == ["strassenschaden"]  # only enabled services
    assert services[0]["type"] == "realtime" and services[0]["metadata"] is False
    xml = ET.fromstring(client.get("/open311/v2/services.xml").content)
    assert xml.tag == "services" and xml.find("service/service_code").text == "strassenschaden"
    definition = client.get("/open311/v2/services/strassenschaden.json").json()
    assert definition == {"service_code": "strassenschaden", "attributes": []}
    missing = client.get("/open311/v2/services/intern.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404


def test_post_creates_a_case_once_and_keeps_the_original(setup, db):
    client = setup["client"]
    response = client.post("/open311/v2/requests.json", data={**REPORT, "api_key": setup["key_a"]})
    assert response.status_code == 201, response.text
    reference = response.json()[0]["service_request_id"]
    again = client.post("/open311/v2/requests.json", data={**REPORT, "api_key": setup["key_a"]})
    assert again.json()[0]["service_request_id"] == reference
    assert "bereits vor" in again.json()[0]["service_notice"]
    with db.session() as session:
        case = session.scalar(select(Case).where(Case.reference == reference))
        assert (
            session.scalar(select(func.count()).select_from(Case).where(Case.channel == "open311"))
            == 1
        )
        # Triaged right away (memory queue): the report waits in the triage queue.
        assert case.channel == "open311" and case.status == "triage"
        assert case.triaged_at is not None and case.request_type == "Meldung"
        assert case.latitude == pytest.approx(47.6634) and case.sender_name == "Mia Muster"
        assert case.due_at is not None and case.events[0].activity == "Eingang erfasst"
        document = session.scalar(select(Document).where(Document.case_id == case.id))
        original = OriginalStore(setup["settings"].originals_dir).get(
            case.tenant_id, document.sha256
        )
    assert b"Schlagloch" in original and setup["key_a"].encode() not in original


def test_get_requests_filters_and_hides_contact_data(setup):
    client = setup["client"]
    reference = client.post(
        "/open311/v2/requests.json", data={**REPORT, "api_key": setup["key_a"]}
    ).json()[0]["service_request_id"]
    listed = client.get("/open311/v2/requests.json?status=open&service_code=strassenschaden").json()
    assert [r["service_request_id"] for r in listed] == [reference]
    assert listed[0]["status"] == "open" and listed[0]["agency_responsible"] is None
    assert "melderin@example.org" not in str(listed) and "Muster" not in str(listed)
    assert client.get("/open311/v2/requests.json?status=closed").json() == []
    assert client.get("/open311/v2/requests.json?start_date=2099-01-01T00:00:00Z").json() == []
    # A client in another time zone: ten minutes ago, written with +05:00, is the same moment.
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    local = earlier.astimezone(dt.timezone(dt.timedelta(hours=5))).isoformat(timespec="seconds")
    since = client.get("/open311/v2/requests.json", params={"start_date": local}).json()
    assert [r["service_request_id"] for r in since] == [reference]
    one = client.get(f"/open311/v2/requests/{reference}.xml")
    assert ET.fromstring(one.content).find("request/service_request_id").text == reference
    assert client.get("/open311/v2/requests/XX-1.json").status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "text"),
    [
        ({"api_key": None}, 403, "api_key"),
        ({"api_key": "rh_falsch"}, 403, "api_key"),
        ({"service_code": None}, 400, "service_code"),
        ({"service_code": "gibtsnicht"}, 404, "gibtsnicht"),
        ({"lat": None, "long": None}, 400, "Ort fehlt"),
        ({"long": None}, 400, "zusammen"),
        ({"lat": "Nord"}, 400, "Zahl"),
        ({"lat": "123"}, 400, "zwischen"),
        ({"media_url": "file:///etc/passwd"}, 400, "media_url"),
        ({"email": "keine-mail"}, 400, "email"),
        ({"description": "x" * 5000}, 400, "zu lang"),
    ],
)
def test_bad_posts_get_spec_errors(setup, change, status, text):
    data = {**REPORT, "api_key": setup["key_a"]}
    for key, value in change.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    response = setup["client"].post("/open311/v2/requests.json", data=data)
    assert response.status_code == status
    body = response.json()
    assert body[0]["code"] == status and text in body[0]["description"]
    xml = setup["client"].post("/open311/v2/requests.xml", data=data)
    assert ET.fromstring(xml.content).find("error/code").text == str(status)


def test_keys_are_per_tenant_and_per_channel(setup):
    client = setup["client"]
    other_tenant = client.post(
        "/open311/v2/requests.json", data={**REPORT, "api_key": setup["key_b"]}
    )
    assert other_tenant.status_code == 403
    wrong_channel = client.post(
        "/open311/v2/requests.json", data={**REPORT, "api_key": setup["api_key"]}
    )
    assert wrong_channel.status_code == 403
    beta = client.post(
        "/open311/v2/requests.json",
        data={**REPORT, "api_key": setup["key_b"], "jurisdiction_id": "beta"},
    )
    assert beta.status_code == 201
    assert client.get("/open311/v2/requests.json").json() == []  # alpha sees nothing of beta
    assert len(client.get("/open311/v2/requests.json?jurisdiction_id=beta").json()) == 1
    unknown = client.get("/open311/v2/services.json?jurisdiction_id=gamma")
    assert unknown.status_code == 404 and "jurisdiction_id" in unknown.json()[0]["description"]


def test_unknown_format_is_an_error(setup):
    response = setup["client"].get("/open311/v2/services.csv")
    assert response.status_code == 404 and response.json()[0]["code"] == 404
