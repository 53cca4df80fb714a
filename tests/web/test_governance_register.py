"""The KI-Register page and downloads, the public transparency page, the Art. 50 notice."""

from __future__ import annotations

import io
import json
import re

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.models import Tenant, User
from rathaus.governance.eval_store import save_run
from rathaus.web.app import create_app
from tests.web.conftest import login


@pytest.mark.parametrize("username", ["admin", "sb", "leitung", "dsb", "redaktion"])
def test_every_staff_role_sees_the_register(client, worlds, username):
    login(client, username)
    page = client.get("/governance/ki-register")
    assert page.status_code == 200
    assert 'id="register-tabelle"' in page.text
    assert 'id="assistent.antworten"' in page.text
    assert "Begrenztes Risiko – Transparenzpflicht nach Art. 50" in page.text
    assert "Landesdatenschutzgesetz Baden-Württemberg" in page.text
    assert 'href="/governance/ki-register"' in page.text  # in the governance sub-navigation


def test_register_needs_a_login(client, worlds):
    for path in (
        "/governance/ki-register",
        "/governance/ki-register.json",
        "/governance/ki-register.pdf",
    ):
        response = client.get(path)
        assert response.status_code in (302, 303, 401), path
        assert "KI-Register" not in response.text


def test_register_shows_stored_runs_and_the_command_when_missing(client, worlds, db: Database):
    save_run(
        db,
        name="assistant",
        metrics={
            "cites_right_service": 0.875,
            "follow_ups": {"questions": 9, "cites_right_service": 1.0},
            "unsupported_sentences": 1,
            "answer_sentences": 50,
        },
        data="fragen_muenchen.jsonl",
        command="rathaus eval assistant",
    )
    login(client, "sb")
    text = client.get("/governance/ki-register").text
    section = text[text.index('id="assistent.antworten"') :]
    section = section[: section.index("</section>")]
    assert "richtige Quelle genannt: 87,5 %" in section
    assert "Sätze ohne Beleg: 2,0 %" in section
    assert "Folgefragen: richtige Quelle: 100,0 %" in section
    assert "noch nicht gemessen. Messen mit <code>rathaus eval retrieval</code>" in section


def test_json_and_pdf_downloads(client, worlds):
    login(client, "redaktion")
    response = client.get("/governance/ki-register.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert re.search(r'attachment; filename="KI-Register_alpha_\d{4}-\d\d-\d\d\.json"',
                     response.headers["content-disposition"])  # fmt: skip
    data = json.loads(response.text)
    assert data["tenant"]["slug"] == "alpha" and len(data["functions"]) >= 15
    response = client.get("/governance/ki-register.pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    text = " ".join(PdfReader(io.BytesIO(response.content)).pages[0].extract_text().split())
    assert "KI-Register – Stadt Alpha" in text


def test_each_tenant_gets_its_own_register(client, worlds, db: Database):
    with db.session() as session:
        beta = session.get(Tenant, worlds["b"].tenant.id)
        beta.land = "NW"
    login(client, "admin", tenant="beta")
    data = json.loads(client.get("/governance/ki-register.json").text)
    assert data["tenant"] == {"slug": "beta", "name": "Stadt Beta", "land": "Nordrhein-Westfalen"}
    assert "Datenschutzgesetz Nordrhein-Westfalen" in data["functions"][0]["legal_basis"]


def test_transparency_page_is_public_and_plain(client, worlds, db: Database):
    with db.session() as session:
        dsb = session.get(User, worlds["a"].users["dsb"].id)
        dsb.email = "datenschutz@alpha.example"
        session.get(Tenant, worlds["a"].tenant.id).email = "info@alpha.example"
    response = client.get("/transparenz?kommune=alpha")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    text = response.text
    assert "Wie Stadt Alpha Künstliche Intelligenz einsetzt" in text
    assert "entscheidet immer ein Mensch" in text
    assert "Sie schreiben mit einem KI-System, nicht mit einem Menschen." in text
    assert "Antworten können falsch oder unvollständig sein" in text
    assert 'href="mailto:datenschutz@alpha.example"' in text
    assert "info@alpha.example" in text
    assert "Landesbeauftragten für den Datenschutz in Baden-Württemberg" in text
    assert 'id="posteingang.zuordnung"' in text
    # only what runs here: translation needs a model server, the test app has none
    assert 'id="texte.uebersetzung"' not in text
    assert "Keines dieser Programme ist dort als Hochrisiko-System eingestuft" in text
    # the staff-only details stay internal
    assert "SHA-256" not in text and "sha256" not in text


def test_transparency_page_default_and_unknown_tenant(client, worlds):
    assert "Stadt Alpha" in client.get("/transparenz").text  # default_tenant
    response = client.get("/transparenz?kommune=nirgendwo")
    assert response.status_code == 404
    assert "Die Kommune „nirgendwo“ gibt es hier nicht" in response.text


def test_transparency_page_escapes_the_tenant_name(client, worlds, db: Database):
    with db.session() as session:
        session.get(Tenant, worlds["a"].tenant.id).name = "<script>alert(1)</script>"
    text = client.get("/transparenz?kommune=alpha").text
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


@pytest.mark.parametrize("path", ["/assistent?kommune=alpha", "/assistent/einbetten?kommune=alpha"])
def test_assistant_shows_the_art_50_notice(client, worlds, path):
    text = client.get(path).text
    notice = re.search(r'<p class="ai-label" role="note">(.*?)</p>', text, re.S).group(1)
    assert "Sie schreiben mit einem KI-Assistenten, nicht mit einem Menschen." in notice
    assert "aus den Informationen von Stadt Alpha" in notice  # the municipality's pages
    assert "falsch oder unvollständig" in notice  # answers can be wrong
    assert "an einen Menschen weitergeben" in notice  # a person can take over
    assert 'href="/transparenz?kommune=alpha"' in notice
    if "einbetten" in path:
        assert 'target="_blank"' in notice  # leaves the frame
    else:
        footer = text[text.index('<footer class="pub-footer">') :]
        assert 'href="/transparenz?kommune=alpha"' in footer


# -- several model servers (llm.servers, llm.routes) -------------------------------------------

ROUTED_LLM = {
    "backend": "none",
    "servers": [
        {"name": "srv", "base_url": "http://gpu1.kommune.internal:8000/v1",
         "model": "qwen2.5-14b-instruct", "location": "eigener_server"},
        {"name": "cloud", "base_url": "https://llm.anbieter.example/v1", "model": "mistral-large",
         "location": "extern"},
    ],
    "routes": {"zusammenfassung": ["srv", "cloud"], "uebersetzung": ["srv"]},
}  # fmt: skip


@pytest.fixture
def routed(db: Database, worlds, tmp_path):  # type: ignore[no-untyped-def]
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        database_url=db.url,
        default_tenant="alpha",
        queue={"backend": "memory"},
        llm=ROUTED_LLM,
    )
    with TestClient(create_app(settings, database=db), follow_redirects=False) as c:
        yield c


def _section(text: str, key: str) -> str:
    part = text[text.index(f'id="{key}"') :]
    return part[: part.index("</section>")]


def test_register_page_lists_every_server_of_a_route(routed):
    login(routed, "dsb")
    text = routed.get("/governance/ki-register").text
    summary = _section(text, "texte.zusammenfassung")
    first = summary.index("Hauptserver „srv“: qwen2.5-14b-instruct, vom Modellserver")
    second = summary.index("Ausweichserver „cloud“: mistral-large")
    assert first < second
    assert "auf einem Server der Kommune" in summary[first:second]
    assert "bei einem externen Anbieter" in summary[second:]
    assert "Quelle: http://gpu1.kommune.internal:8000/v1" in summary
    translation = _section(text, "texte.uebersetzung")
    assert "Server „srv“: qwen2.5-14b-instruct" in translation and "· aktiv" in translation
    # no route, no model: named as such, with the settings that would give it one
    press = _section(text, "texte.pressemitteilung")
    assert "kein Sprachmodell" in press and "(nicht aktiv)" in press
    assert "keine Route llm.routes.pressemitteilung oder llm.routes.standard" in press


def test_register_downloads_list_every_server_of_a_route(routed):
    login(routed, "admin")
    data = json.loads(routed.get("/governance/ki-register.json").text)
    summary = next(f for f in data["functions"] if f["key"] == "texte.zusammenfassung")
    llms = [m for m in summary["models"] if m["kind"] == "llm"]
    assert [(m["server"], m["name"], m["location"], m["fallback"]) for m in llms] == [
        ("srv", "qwen2.5-14b-instruct", "eigener_server", False),
        ("cloud", "mistral-large", "extern", True),
    ]
    response = routed.get("/governance/ki-register.pdf")
    assert response.status_code == 200
    reader = PdfReader(io.BytesIO(response.content))
    pdf = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    assert pdf.index("Hauptserver „srv“: qwen2.5-14b-instruct") < pdf.index(
        "Ausweichserver „cloud“: mistral-large"
    )


def test_transparency_page_follows_the_routes(routed):
    text = routed.get("/transparenz?kommune=alpha").text
    # translation runs here: its route has a model server although llm.backend = none
    assert 'id="texte.uebersetzung"' in text and 'id="texte.zusammenfassung"' in text
    # the public page names no servers, addresses or model files
    assert "gpu1.kommune.internal" not in text and "Ausweichserver" not in text
