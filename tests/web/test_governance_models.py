"""/governance/modelle: configured models, the policy matrix and refused calls of the own tenant."""

from __future__ import annotations

from fastapi.testclient import TestClient

from rathaus.core import audit
from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.governance.gateway import REFUSED_EVENT
from rathaus.web.app import create_app
from tests.web.conftest import login


def refusal(session, tenant_id: int, subject: str, message: str) -> None:  # type: ignore[no-untyped-def]
    audit.record(
        session,
        audit.Event(
            kind=REFUSED_EVENT,
            actor="posteingang",
            tenant_id=tenant_id,
            subject=subject,
            data={
                "grund": "richtlinie",
                "stufe": "vertraulich",
                "ort": "extern",
                "meldung": message,
            },
        ),
    )


def test_page_shows_models_policy_and_own_refusals_only(client, worlds, db: Database) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        refusal(session, worlds["a"].tenant.id, "case:11", "<b>Modellaufruf abgelehnt</b> alpha")
        refusal(session, worlds["b"].tenant.id, "case:99", "Modellaufruf abgelehnt beta")
    login(client, "dsb")
    page = client.get("/governance/modelle")
    assert page.status_code == 200
    text = page.text
    assert "Konfigurierte Modelle" in text and "lokal (im Rathaus-Prozess)" in text
    assert "vertraulich" in text and "gesperrt" not in text  # local models: allowed everywhere
    assert "case:11" in text and "&lt;b&gt;Modellaufruf abgelehnt&lt;/b&gt; alpha" in text
    assert "case:99" not in text and "beta" not in text.split("Abgelehnte Modellaufrufe")[1]


def test_page_needs_the_audit_permission(client, worlds) -> None:  # type: ignore[no-untyped-def]
    login(client, "sb")
    assert client.get("/governance/modelle").status_code == 403


def test_a_model_server_is_shown_with_its_location_and_blocked_levels(
    db: Database, worlds, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        database_url=db.url,
        default_tenant="alpha",
        queue={"backend": "memory"},
        llm={"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "location": "extern"},
        governance={"policies": {"intern": ["eigener_server"]}},
    )
    with TestClient(create_app(settings, database=db), follow_redirects=False) as client:
        login(client, "admin")
        text = client.get("/governance/modelle").text
    assert "extern" in text and "<strong>gesperrt</strong>" in text
    # intern allows only own servers, but both models are elsewhere: a clear warning.
    assert "„intern“ jedes konfigurierte Modell" in text


def test_the_page_shows_the_tenants_own_policy(client, worlds, db: Database) -> None:  # type: ignore[no-untyped-def]
    from rathaus.core import tenants

    with db.session() as session:
        tenants.set_policy(
            session, slug="alpha", level="oeffentlich", locations=[], installation={}
        )
    login(client, "dsb")
    text = client.get("/governance/modelle").text
    # Alpha refuses every model call at level öffentlich: the matrix and a warning say so.
    assert "<strong>gesperrt</strong>" in text
    assert "Die Richtlinie der Kommune „alpha“ verbietet" in text
    assert "rathaus mandanten richtlinie alpha" in text
