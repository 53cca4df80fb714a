"""Settings: env vars and TOML, German errors on wrong values, no default secrets in production."""

from __future__ import annotations

import pytest

from rathaus.core.config import DEFAULT_SECRET_KEY, load_settings, masked_dump
from rathaus.core.errors import ConfigError


def test_defaults_in_demo_mode(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = load_settings(mode="demo")
    assert s.is_demo and s.is_sqlite
    assert s.effective_database_url.endswith("var/data/rathaus.db")
    assert s.secure_cookies is False


def test_environment_variables_and_nesting(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RATHAUS_MODE", "demo")
    monkeypatch.setenv("RATHAUS_PORT", "8123")
    monkeypatch.setenv("RATHAUS_LLM__BACKEND", "openai")
    monkeypatch.setenv("RATHAUS_LLM__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("RATHAUS_DATABASE_URL", "postgresql://rathaus:geheim@db:5432/rathaus")
    key = "uE3o0wS1Zq8p8c7m3v6a2YbJxHk9Lr4TtNf5Gd0Wq1A="
    monkeypatch.setenv("RATHAUS_GOVERNANCE__PSEUDONYM_KEYS", f'["{key}"]')
    s = load_settings()
    assert s.port == 8123 and s.llm.backend == "openai"
    assert s.effective_database_url == "postgresql+psycopg://rathaus:geheim@db:5432/rathaus"
    dumped = masked_dump(s)
    assert "geheim" not in str(dumped) and key not in str(dumped)
    assert dumped["secret_key"] == "********"
    assert dumped["governance"]["pseudonym_keys"] == ["********"]


def test_toml_file_and_env_precedence(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rathaus.toml").write_text(
        'mode = "demo"\nport = 8001\n[llm]\nbackend = "none"\n', encoding="utf-8"
    )
    monkeypatch.setenv("RATHAUS_PORT", "8002")
    s = load_settings()
    assert s.llm.backend == "none" and s.port == 8002 and s.is_demo


def test_explicit_config_file(monkeypatch, tmp_path):
    path = tmp_path / "anders.toml"
    path.write_text('mode = "demo"\nhost = "0.0.0.0"\n', encoding="utf-8")
    monkeypatch.setenv("RATHAUS_CONFIG_FILE", str(path))
    assert load_settings().host == "0.0.0.0"
    monkeypatch.setenv("RATHAUS_CONFIG_FILE", str(tmp_path / "fehlt.toml"))
    with pytest.raises(ConfigError, match="existiert nicht"):
        load_settings()


def test_broken_toml_is_a_german_error(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rathaus.toml").write_text("mode = demo = x", encoding="utf-8")
    with pytest.raises(ConfigError, match="kein gültiges TOML"):
        load_settings()


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        (
            "RATHAUS_PORT",
            "achtzig",
            "RATHAUS_PORT (port) ist ungültig: erwartet wird eine ganze Zahl",
        ),
        (
            "RATHAUS_MODE",
            "test",
            "RATHAUS_MODE (mode) ist ungültig: erlaubt sind nur 'demo' or 'production'",
        ),
        ("RATHAUS_LLM__BACKEND", "gpt", "RATHAUS_LLM__BACKEND (llm.backend) ist ungültig"),
        ("RATHAUS_DATABASE_URL", "mysql://x", "nur sqlite:/// oder postgresql://"),
        ("RATHAUS_QUEUE__WORKERS", "0", "der Wert muss mindestens 1 sein"),
    ],
)
def test_wrong_values_fail_fast_in_german(monkeypatch, tmp_path, env, value, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RATHAUS_MODE", "demo")
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert expected in info.value.message
    assert info.value.message.endswith("Bitte korrigieren Sie die Einstellung.")


def test_default_secret_refused_outside_demo(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="RATHAUS_SECRET_KEY"):
        load_settings(mode="production")
    with pytest.raises(ConfigError, match="mindestens 32 Zeichen"):
        load_settings(mode="production", secret_key="kurz")
    ok = load_settings(mode="production", secret_key="k" * 40)
    assert ok.secure_cookies is True
    assert load_settings(mode="demo").secret_key.get_secret_value() == DEFAULT_SECRET_KEY


def test_oidc_needs_all_its_settings_in_production(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="OIDC"):
        load_settings(mode="production", secret_key="k" * 40, oidc={"enabled": True})
