"""Configuration (ASVS V14.4 headers, V7.4 errors, V6.4/V14.1 secrets) and the dependency audit
(V14.2.1): headers on every kind of response, no internals in error pages, no secret in output,
and the audit's list of accepted vulnerabilities read only from docs/security.md."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rathaus.core.config import DEFAULT_SECRET_KEY, load_settings, masked_dump
from rathaus.core.errors import ConfigError
from rathaus.web.app import create_app
from tests.web.conftest import login

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "url", ["/login", "/", "/api/v1/cases", "/gibt-es-nicht", "/static/rathaus.css", "/healthz"]
)
def test_security_headers_on_every_kind_of_response(client, worlds, url):  # type: ignore[no-untyped-def]
    login(client, "sb")
    headers = client.get(url).headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "Strict-Transport-Security" not in headers  # demo mode: plain http allowed


def test_only_the_assistant_embed_page_may_be_framed(client, worlds):  # type: ignore[no-untyped-def]
    embed = client.get("/assistent/einbetten?kommune=alpha").headers
    assert "frame-ancestors *" in embed["Content-Security-Policy"]
    assert "X-Frame-Options" not in embed
    assert client.get("/assistent?kommune=alpha").headers["X-Frame-Options"] == "DENY"


def test_unexpected_error_shows_no_internals(app, worlds):  # type: ignore[no-untyped-def]
    def broken() -> None:
        raise RuntimeError("geheimer-interner-zustand /srv/rathaus/var/secret.key")

    app.add_api_route("/kaputt", broken)
    app.add_api_route("/api/v1/kaputt", broken)
    with TestClient(app, raise_server_exceptions=False) as c:
        for url in ("/kaputt", "/api/v1/kaputt"):
            response = c.get(url)
            assert response.status_code == 500
            assert "geheimer-interner-zustand" not in response.text
            assert "Traceback" not in response.text and "secret.key" not in response.text
            assert "unerwarteter Fehler" in response.text
            assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_wrong_method_is_a_german_405(client, worlds):  # type: ignore[no-untyped-def]
    login(client, "sb")
    for method, url in (("DELETE", "/vorgaenge"), ("PUT", "/login"), ("GET", "/logout")):
        response = client.request(method, url)
        assert response.status_code == 405, (method, url)
        assert "Diese Aktion ist hier nicht möglich." in response.text


def test_default_or_short_secret_is_refused_outside_demo(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    for key in (DEFAULT_SECRET_KEY, "k" * 31, ""):
        with pytest.raises(ConfigError, match="RATHAUS_SECRET_KEY"):
            load_settings(mode="production", secret_key=key)
    monkeypatch.setenv("RATHAUS_SECRET_KEY", DEFAULT_SECRET_KEY)
    with pytest.raises(ConfigError, match="mindestens 32 Zeichen"):
        load_settings(mode="production")
    assert load_settings(mode="production", secret_key="k" * 32).secure_cookies is True


def test_settings_output_masks_every_secret(tmp_path):  # type: ignore[no-untyped-def]
    settings = load_settings(
        mode="production",
        secret_key="s" * 40 + "-geheim",
        data_dir=tmp_path,
        database_url="postgresql://rathaus:db-geheim@db/rathaus",
        llm={"backend": "openai", "base_url": "http://llm:8000/v1", "api_key": "llm-geheim"},
        queue={"backend": "redis", "redis_url": "redis://:redis-geheim@redis:6379/0"},
        metrics={"token": "metrik-token-geheim-1234"},
        governance={"pseudonym_keys": ["x" * 43 + "="]},
    )
    text = repr(masked_dump(settings))
    for secret in ("-geheim", "db-geheim", "llm-geheim", "redis-geheim", "metrik-token", "x" * 43):
        assert secret not in text, secret
    assert "********" in text
    assert "llm-geheim" not in repr(settings) and "-geheim" not in str(settings.secret_key)


def test_production_app_sends_hsts(db, tmp_path, worlds):  # type: ignore[no-untyped-def]
    settings = load_settings(
        mode="production",
        secret_key="p" * 48,
        data_dir=tmp_path,
        database_url=db.url,
        queue={"backend": "memory"},
    )
    with TestClient(create_app(settings, database=db), base_url="https://testserver") as c:
        assert c.get("/login").headers["Strict-Transport-Security"] == "max-age=31536000"


# -- the dependency audit ------------------------------------------------------------------------


def _audit_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("rathaus_audit", ROOT / "scripts" / "audit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_audit_ignores_only_documented_and_reasoned_vulnerabilities(tmp_path):  # type: ignore[no-untyped-def]
    audit = _audit_module()
    assert isinstance(audit.ignored_vulnerabilities(), list)  # docs/security.md parses
    doc = tmp_path / "security.md"
    doc.write_text(
        f"{audit.START}\n| Kennung | Paket | Begründung | Bewertet |\n|---|---|---|---|\n"
        "| `PYSEC-2024-1` | beispiel | Funktion wird nicht benutzt | 2026-11-21 |\n"
        f"{audit.END}\n| GHSA-aaaa-bbbb-cccc | außerhalb | zählt nicht | - |\n",
        encoding="utf-8",
    )
    assert audit.ignored_vulnerabilities(doc) == ["PYSEC-2024-1"]
    doc.write_text(f"{audit.START}\n| GHSA-aaaa-bbbb-cccc | paket |  | |\n{audit.END}\n")
    with pytest.raises(SystemExit, match="Begründung"):
        audit.ignored_vulnerabilities(doc)


def test_audit_says_plainly_when_its_data_cannot_be_reached(monkeypatch, capsys):  # type: ignore[no-untyped-def]
    audit = _audit_module()
    monkeypatch.setattr(
        audit, "probe", lambda: "https://pypi.org/pypi/pip/1/json antwortet mit HTTP 404"
    )
    assert audit.main([]) == 2
    message = capsys.readouterr().err
    assert "NICHT durchgeführt" in message and "HTTP 404" in message and "make audit" in message
    assert audit.main(["--unreachable", "warn"]) == 0
