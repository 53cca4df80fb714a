"""The Leichte-Sprache page and JSON API: who may use it, CSRF, escaping, German messages."""

from __future__ import annotations

from tests.web.conftest import csrf_of, login

URL = "/texte/leichte-sprache"
API = "/api/v1/texte/leichte-sprache"
XSS = "<script>alert(1)</script>"


def test_page_renders_for_sachbearbeitung(client, worlds):
    login(client, "sb")
    page = client.get(URL)
    assert page.status_code == 200
    assert "<h1>Leichte Sprache</h1>" in page.text
    assert '<label for="text">Text</label>' in page.text


def test_refused_without_permission(client, worlds):
    assert client.get(URL).status_code in (302, 303, 401)  # not logged in: to the login page
    login(client, "dsb")  # Datenschutz has no Schreibassistenz
    assert client.get(URL).status_code == 403
    token = csrf_of(client)
    response = client.post(
        f"{API}/pruefung", json={"text": "Ein Satz."}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 403


def test_csrf_required(client, worlds):
    login(client, "sb")
    assert client.post(URL, data={"text": "Ein Satz."}).status_code == 403
    assert client.post(f"{API}/pruefung", json={"text": "Ein Satz."}).status_code == 403


def test_check_shows_findings_and_escapes_html(client, worlds):
    login(client, "sb")
    text = f"Der Antrag wird vom Amt geprüft, weil {XSS} nicht reicht."
    page = client.post(URL, data={"text": text, "csrf_token": csrf_of(client), "aktion": "pruefen"})
    assert page.status_code == 200
    assert XSS not in page.text
    assert "&lt;script&gt;" in page.text
    assert "Passiv" in page.text and "Flesch-Amstad" in page.text
    assert '<mark class="plain-hit"' in page.text


def test_empty_text_gives_a_german_message(client, worlds):
    login(client, "sb")
    page = client.post(URL, data={"text": "  ", "csrf_token": csrf_of(client)})
    assert page.status_code == 422
    assert "Bitte geben Sie einen Text ein" in page.text
    api = client.post(
        f"{API}/pruefung", json={"text": ""}, headers={"X-CSRF-Token": csrf_of(client)}
    )
    assert api.status_code == 422
    assert "Bitte geben Sie einen Text ein" in api.json()["detail"]


def test_api_check_returns_the_schema(client, worlds):
    login(client, "sb")
    response = client.post(
        f"{API}/pruefung",
        json={"text": "Das kostet sieben Euro. Wir helfen Ihnen."},
        headers={"X-CSRF-Token": csrf_of(client)},
    )
    assert response.status_code == 200
    data = response.json()
    assert data["sentences_count"] == 2
    assert data["counts"] == {"zahlwort": 1}
    assert data["sentences"][0]["findings"][0]["span"] == "sieben"
    assert data["readability"]["flesch_amstad"] > 0


def test_rewrite_without_model_is_a_german_message(client, worlds, app):
    app.state.settings = app.state.settings.model_copy(
        update={"llm": app.state.settings.llm.model_copy(update={"backend": "none"})}
    )
    login(client, "sb")
    token = csrf_of(client)
    api = client.post(
        f"{API}/umschreibung", json={"text": "Ein Satz."}, headers={"X-CSRF-Token": token}
    )
    assert api.status_code == 503
    assert "kein Sprachmodell eingerichtet" in api.json()["detail"]
    page = client.post(
        URL, data={"text": "Ein Satz.", "csrf_token": token, "aktion": "umschreiben"}
    )
    assert page.status_code == 200
    assert "kein Sprachmodell eingerichtet" in page.text
    assert "Prüfung" in page.text  # the checker still works


# -- decision record ---------------------------------------------------------------------------


class _FakeModel:
    name = "fake"
    model = "fake-1"
    version = "1"

    def complete(self, messages, *, max_tokens=512, temperature=0.0, json_mode=False):
        from rathaus.ai.llm import Completion

        return Completion(text="Sie zahlen 30 Euro. Bis zum 1. Juli.", model=self.model)

    def stream(self, messages, *, max_tokens=512, temperature=0.0):  # pragma: no cover
        yield self.complete(messages).text


def _suggestions(db, function: str) -> list[dict]:
    from sqlalchemy import select

    from rathaus.core.models import AiSuggestion

    with db.session() as session:
        rows = session.scalars(select(AiSuggestion).where(AiSuggestion.function == function))
        return [
            {"tenant_id": r.tenant_id, "input_sha256": r.input_sha256, "backend": r.backend,
             "model_version": r.model_version, "output": r.output, "decision": r.decision}
            for r in rows
        ]  # fmt: skip


def test_rewrites_are_recorded_per_tenant(client, worlds, db, monkeypatch):
    from rathaus.ai import registry
    from rathaus.core import apikeys
    from rathaus.governance.decisions import sha256_text

    monkeypatch.setattr(
        registry, "get_language_model", lambda settings, function=None: _FakeModel()
    )
    source = "Die Gebühr von 30 Euro muss bis zum 1. Juli bezahlt werden."
    login(client, "sb")
    page = client.post(
        URL, data={"text": source, "csrf_token": csrf_of(client), "aktion": "umschreiben"}
    )
    assert page.status_code == 200
    with db.session() as session:
        key, _ = apikeys.create(session, tenant=worlds["b"].tenant, channel="api", name="leicht")
        session.commit()
    api = client.post(
        f"{API}/umschreibung", json={"text": source + " B"},
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip
    assert api.status_code == 200, api.text
    rows = _suggestions(db, "leichte_sprache")
    by_tenant = {r["tenant_id"]: r for r in rows}
    assert len(rows) == 2 and set(by_tenant) == {worlds["a"].tenant.id, worlds["b"].tenant.id}
    mine = by_tenant[worlds["a"].tenant.id]
    assert mine["input_sha256"] == sha256_text(source) and mine["decision"] is None
    assert mine["model_version"] == "fake-1" and "30 Euro" in mine["output"]["text"]
    assert by_tenant[worlds["b"].tenant.id]["input_sha256"] == sha256_text(source + " B")

    client.cookies.clear()
    login(client, "admin")
    listed = client.get("/governance/entscheidungen?funktion=leichte_sprache")
    assert listed.status_code == 200 and listed.text.count("Leichte/Einfache Sprache</td>") == 1
    client.cookies.clear()
    login(client, "admin", "beta")
    other = client.get("/governance/entscheidungen?funktion=leichte_sprache")
    assert other.status_code == 200 and other.text.count("Leichte/Einfache Sprache</td>") == 1
