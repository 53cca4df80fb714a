"""Several model servers: settings, per-function routes, failover, the circuit breaker, limits.

Every server here is a real OpenAI-compatible HTTP server on 127.0.0.1 (:mod:`tests.ai.model_server`)
that is stopped, restarted on the same port or made to fail; assertions are on what each server
really received. The breaker's state machine is also tested alone with a hand-driven clock.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rathaus.ai.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, breaker_for, server_key
from rathaus.ai.calls import ListRecorder, RecordingLanguageModel
from rathaus.ai.llm import ChatMessage, ModelUnavailableError, OpenAICompatibleModel
from rathaus.ai.registry import get_language_model, route_of, served_by_server
from rathaus.ai.routing import RoutedModel
from rathaus.core.config import Settings, load_settings
from rathaus.core.errors import ConfigError
from rathaus.governance.gateway import is_guarded, model_context
from rathaus.governance.policy import ModelPolicyError
from tests.ai.model_server import ModelServer

DOCS = Path(__file__).resolve().parents[2] / "docs"


def ask(text: str = "Bitte kurz zusammenfassen: Der Bauhof räumt ab 6 Uhr.") -> list[ChatMessage]:
    return [ChatMessage("system", "Du hilfst der Verwaltung."), ChatMessage("user", text)]


@pytest.fixture
def servers() -> Iterator[dict[str, ModelServer]]:
    started = {name: ModelServer(name).start() for name in ("a", "b")}
    yield started
    for server in started.values():
        server.stop()


def settings_for(
    servers: dict[str, ModelServer],
    routes: dict[str, list[str]],
    *,
    locations: dict[str, str] | None = None,
    server_extra: dict[str, object] | None = None,
    **llm: object,
) -> Settings:
    entries = [
        {
            "name": name,
            "base_url": server.url,
            "model": f"modell-{name}",
            "location": (locations or {}).get(name, "eigener_server"),
            "retries": 0,
            **(server_extra or {}),
        }
        for name, server in servers.items()
    ]
    return load_settings(
        mode="demo",
        secret_key="r" * 40,
        llm={"backend": "none", "servers": entries, "routes": routes, **llm},
    )


def breaker_of(settings: Settings, name: str) -> CircuitBreaker:
    server = next(s for s in settings.llm.servers if s.name == name)
    return breaker_for(
        server_key("llm", name, server.base_url),
        failures=settings.llm.breaker_failures,
        cooldown_s=settings.llm.breaker_cooldown_s,
    )


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll until ``condition`` holds (a cool-down passing); not a timing assertion."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"wartet vergeblich auf: {what}"
        time.sleep(0.02)


# -- settings -------------------------------------------------------------------------------------


def test_the_documented_toml_example_loads(tmp_path: Path) -> None:
    text = (DOCS / "models.md").read_text(encoding="utf-8")
    section = text.split("## Mehrere Modellserver", 1)[1]
    example = re.search(r"```toml\n(.*?)```", section, re.S)
    assert example is not None
    path = tmp_path / "rathaus.toml"
    path.write_text('mode = "demo"\n' + example.group(1), encoding="utf-8")
    settings = load_settings(config_file=path)
    assert settings.llm.backend == "openai"  # the standard server: vLLM
    assert [s.name for s in settings.llm.servers] == ["ollama", "llamacpp"]
    assert route_of(settings, "buergerassistent") == ["standard", "ollama", "llamacpp"]
    assert route_of(settings, "niederschrift") == route_of(settings, None) == ["standard", "ollama"]
    assert served_by_server(settings, "buergerassistent")
    model = get_language_model(settings, "buergerassistent")
    assert isinstance(model, RoutedModel) and model.servers == ["standard", "ollama", "llamacpp"]


def test_servers_and_routes_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "RATHAUS_LLM__SERVERS",
        '[{"name": "vllm", "base_url": "http://gpu1.intern:8000/v1/", "model": "qwen",'
        ' "location": "eigener_server", "max_concurrency": 4}]',
    )
    monkeypatch.setenv("RATHAUS_LLM__ROUTES", '{"zusammenfassung": ["vllm", "standard"]}')
    settings = load_settings(mode="demo")
    server = settings.llm.servers[0]
    assert server.base_url == "http://gpu1.intern:8000/v1" and server.max_concurrency == 4
    assert route_of(settings, "zusammenfassung") == ["vllm", "standard"]
    assert route_of(settings, "uebersetzung") == ["standard"]  # the single-server settings


@pytest.mark.parametrize(
    ("llm", "setting", "words"),
    [
        (
            {"servers": [{"name": "a", "base_url": "http://a:1/v1", "model": "m"}],
             "routes": {"zusammenfassung": ["a", "vlm"]}},
            "RATHAUS_LLM__ROUTES",
            "„vlm“, den es nicht gibt",
        ),
        (
            {"servers": [{"name": "a", "base_url": "http://a:1/v1", "model": "m"},
                         {"name": "a", "base_url": "http://b:1/v1", "model": "m"}]},
            "RATHAUS_LLM__SERVERS",
            "„a“ kommt mehrfach vor",
        ),
        (
            {"servers": [{"name": "a", "base_url": "ftp://a/v1", "model": "m"}]},
            "RATHAUS_LLM__SERVERS__0__BASE_URL",
            "keine gültige Adresse",
        ),
        (
            {"servers": [{"name": "a", "base_url": "http://nutzer:geheim@a/v1", "model": "m"}]},
            "RATHAUS_LLM__SERVERS__0__BASE_URL",
            "Zugangsdaten",
        ),
        (
            {"routes": {"zusammenfasung": ["standard"]}},
            "RATHAUS_LLM__ROUTES",
            "unbekannte Funktion „zusammenfasung“",
        ),
        (
            {"backend": "none", "routes": {"zusammenfassung": ["standard"]}},
            "RATHAUS_LLM__ROUTES",
            "„standard“, den es nicht gibt",
        ),
        (
            {"servers": [{"name": "standard", "base_url": "http://a:1/v1", "model": "m"}]},
            "RATHAUS_LLM__SERVERS__0__NAME",
            "reserviert",
        ),
        (
            {"servers": [{"name": "GPU 1", "base_url": "http://a:1/v1", "model": "m"}]},
            "RATHAUS_LLM__SERVERS__0__NAME",
            "Servername „GPU 1“ ist ungültig",
        ),
        (
            {"servers": [{"name": "a", "base_url": "http://a:1/v1", "model": "m",
                          "adresse": "x"}]},
            "RATHAUS_LLM__SERVERS__0__ADRESSE",
            "diese Einstellung gibt es nicht",
        ),
        (
            {"routes": {"zusammenfassung": []}},
            "RATHAUS_LLM__ROUTES",
            "nennt keinen Server",
        ),
    ],
)  # fmt: skip
def test_bad_server_settings_stop_the_start_in_german(
    llm: dict[str, object], setting: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(mode="demo", llm=llm)
    assert f"Einstellung {setting} " in caught.value.message
    assert words in caught.value.message


def test_without_servers_the_single_server_settings_work_as_before(closed_url: str) -> None:
    settings = load_settings(
        mode="demo", llm={"backend": "openai", "base_url": closed_url, "max_retries": 0}
    )
    for function in (None, "zusammenfassung", "buergerassistent"):
        model = get_language_model(settings, function)
        assert is_guarded(model) and isinstance(model, OpenAICompatibleModel)
    assert get_language_model(load_settings(mode="demo", llm={"backend": "none"})) is None


# -- the breaker's state machine (a hand-driven clock) ----------------------------------------


def test_breaker_opens_after_n_failures_lets_one_trial_through_and_closes_on_success() -> None:
    now = [0.0]
    breaker = CircuitBreaker("t", failures=3, cooldown_s=10, clock=lambda: now[0])
    for _ in range(2):
        assert breaker.acquire()
        breaker.failure("Verbindung abgelehnt")
    assert breaker.snapshot().state == CLOSED
    assert breaker.acquire()
    breaker.failure("Verbindung abgelehnt")
    assert breaker.snapshot().state == OPEN and not breaker.ready() and not breaker.acquire()
    assert "nächster Versuch in 10 s" in breaker.refusal()
    now[0] = 10.5
    assert breaker.snapshot().state == HALF_OPEN and breaker.ready()
    assert breaker.acquire()  # the trial
    assert not breaker.ready() and not breaker.acquire()  # one trial at a time
    breaker.success()
    assert breaker.snapshot().state == CLOSED and breaker.snapshot().failures == 0
    assert breaker.acquire()


def test_a_failed_trial_opens_again_and_an_abandoned_one_is_given_back() -> None:
    now = [0.0]
    breaker = CircuitBreaker("t", failures=1, cooldown_s=5, clock=lambda: now[0])
    breaker.failure("HTTP 503")
    now[0] = 6
    assert breaker.acquire()
    breaker.failure("HTTP 503")  # the trial failed: a fresh cool-down
    assert breaker.snapshot().state == OPEN and not breaker.acquire()
    now[0] = 12
    assert breaker.acquire()
    breaker.release()  # the caller closed the stream before any answer
    assert breaker.acquire()
    now[0] = 18  # a trial that never reports lets the next one try after a cool-down
    assert breaker.acquire()


# -- routing over real servers -------------------------------------------------------------------


def test_each_function_goes_to_the_server_of_its_route(servers: dict[str, ModelServer]) -> None:
    settings = settings_for(
        servers, {"antwortentwurf": ["a"], "buergerassistent": ["b"]}, locations={"b": "extern"}
    )
    draft = get_language_model(settings, "antwortentwurf")
    answer = get_language_model(settings, "buergerassistent")
    assert is_guarded(draft) and is_guarded(answer)
    assert draft.complete(ask("Entwurf für Anna Beispiel, Lindenstraße 12")).text == (
        "Antwort von a."
    )
    with model_context(level="oeffentlich"):
        assert answer.complete(ask("Wann hat das Bürgeramt geöffnet?")).text == "Antwort von b."
    assert len(servers["a"].texts()) == 1 and len(servers["b"].texts()) == 1
    sent_to_a = servers["a"].texts()[0]
    assert sent_to_a.startswith("Entwurf für [PERSON_1]")  # the gateway guards each server
    assert "Anna Beispiel" not in sent_to_a and "Lindenstraße" not in sent_to_a
    assert servers["b"].texts() == ["Wann hat das Bürgeramt geöffnet?"]
    assert servers["a"].chats()[0]["payload"]["model"] == "modell-a"
    assert servers["b"].chats()[0]["payload"]["model"] == "modell-b"
    # backend=none and no route of its own: the function has no model.
    assert get_language_model(settings, "zusammenfassung") is None


def test_a_route_fails_over_and_the_call_record_names_the_server_that_answered(
    servers: dict[str, ModelServer],
) -> None:
    settings = settings_for(servers, {"standard": ["a", "b"]})
    model = get_language_model(settings, "zusammenfassung")
    assert isinstance(model, RoutedModel) and model.servers == ["a", "b"]
    recorder = ListRecorder()
    recording = RecordingLanguageModel(model, recorder, function="zusammenfassung")
    assert recording.complete(ask()).text == "Antwort von a."
    servers["a"].stop()
    assert recording.complete(ask()).text == "Antwort von b."
    assert [r.model for r in recorder.records] == ["modell-a", "modell-b"]
    assert [r.version for r in recorder.records] == ["a", "b"]  # as each server reported
    assert model.server == "b"
    assert len(servers["a"].chats()) == 1 and len(servers["b"].chats()) == 1
    assert breaker_of(settings, "a").snapshot().failures == 1


class Clock:
    """A hand-driven clock for a breaker: a cool-down passes when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hand_clock(settings: Settings, name: str) -> Clock:
    clock = Clock()
    breaker_of(settings, name).clock = clock
    return clock


def test_the_breaker_opens_fails_fast_and_a_trial_closes_it_when_the_server_is_back(
    servers: dict[str, ModelServer],
) -> None:
    settings = settings_for(
        servers, {"zusammenfassung": ["a"]}, breaker_failures=2, breaker_cooldown_s=60
    )
    model = get_language_model(settings, "zusammenfassung")
    clock = hand_clock(settings, "a")
    servers["a"].fail_with = 503
    for _ in range(2):
        with pytest.raises(ModelUnavailableError, match="HTTP 503"):
            model.complete(ask())
    assert len(servers["a"].chats()) == 2
    breaker = breaker_of(settings, "a")
    assert breaker.snapshot().state == OPEN
    with pytest.raises(ModelUnavailableError) as caught:
        model.complete(ask())
    assert "nicht erreichbar (vorübergehend gesperrt nach 2 Fehlversuchen" in caught.value.message
    assert len(servers["a"].chats()) == 2  # nothing was sent while open
    servers["a"].fail_with = None
    clock.now += 59
    assert breaker.snapshot().state == OPEN
    clock.now += 2
    assert breaker.snapshot().state == HALF_OPEN
    assert model.complete(ask()).text == "Antwort von a."  # the trial
    assert breaker.snapshot().state == CLOSED and len(servers["a"].chats()) == 3
    # A failed trial opens it again at once, after one failure.
    servers["a"].fail_with = 500
    for _ in range(2):
        with pytest.raises(ModelUnavailableError):
            model.complete(ask())
    clock.now += 61
    with pytest.raises(ModelUnavailableError, match="HTTP 500"):
        model.complete(ask())
    assert breaker.snapshot().state == OPEN and len(servers["a"].chats()) == 6
    with pytest.raises(ModelUnavailableError, match="vorübergehend gesperrt"):
        model.complete(ask())
    assert len(servers["a"].chats()) == 6


def test_an_open_server_is_skipped_and_used_again_once_it_is_back(
    servers: dict[str, ModelServer],
) -> None:
    settings = settings_for(
        servers, {"buergerassistent": ["a", "b"]}, breaker_failures=1, breaker_cooldown_s=60
    )
    model = get_language_model(settings, "buergerassistent")
    clock = hand_clock(settings, "a")
    servers["a"].stop()
    assert model.complete(ask()).text == "Antwort von b."
    breaker = breaker_of(settings, "a")
    assert breaker.snapshot().state == OPEN
    assert model.complete(ask()).text == "Antwort von b."
    assert breaker.snapshot().failures == 1  # skipped, not tried again while open
    servers["a"].start()  # the same port
    clock.now += 61
    assert model.complete(ask()).text == "Antwort von a."
    assert breaker.snapshot().state == CLOSED and model.server == "a"
    assert len(servers["b"].chats()) == 2


def test_every_server_down_is_one_quick_german_error_naming_each_reason(
    servers: dict[str, ModelServer],
) -> None:
    settings = settings_for(servers, {"zusammenfassung": ["a", "b"]}, breaker_failures=1)
    model = get_language_model(settings, "zusammenfassung")
    servers["a"].stop()
    servers["b"].fail_with = 503
    with pytest.raises(ModelUnavailableError) as first:
        model.complete(ask())
    message = first.value.message
    assert message.startswith("Kein Modellserver der Route „zusammenfassung“ hat geantwortet")
    assert "a: Verbindung abgelehnt" in message and "b: HTTP 503" in message
    with pytest.raises(ModelUnavailableError) as second:
        model.complete(ask())
    assert second.value.message.count("vorübergehend gesperrt") == 2
    assert len(servers["b"].chats()) == 1  # the second call sent nothing


def test_a_stream_fails_over_only_before_its_first_piece(
    servers: dict[str, ModelServer],
) -> None:
    settings = settings_for(servers, {"zusammenfassung": ["a", "b"]})
    model = get_language_model(settings, "zusammenfassung")
    servers["a"].fail_with = 503
    assert "".join(model.stream(ask())) == "Antwort von b."
    assert model.server == "b"
    servers["a"].fail_with = None
    servers["a"].cut_streams = True
    pieces: list[str] = []
    with pytest.raises(ModelUnavailableError, match="nicht erreichbar"):
        for piece in model.stream(ask()):
            pieces.append(piece)
    assert pieces == ["Antwo"]  # a's first piece, never repeated by b
    assert len(servers["b"].chats()) == 1


def test_the_policy_applies_to_the_server_that_really_answers(
    servers: dict[str, ModelServer],
) -> None:
    routed = {"ext": servers["a"], "own": servers["b"]}
    settings = settings_for(
        routed, {"zusammenfassung": ["ext", "own"]}, locations={"ext": "extern"}
    )
    model = get_language_model(settings, "zusammenfassung")
    with model_context(level="intern"):  # intern: own servers only (default policy)
        assert model.complete(ask()).text == "Antwort von b."
    assert routed["ext"].chats() == []
    with model_context(level="oeffentlich"):  # public: the route's order
        assert model.complete(ask()).text == "Antwort von a."
    with model_context(level="vertraulich"), pytest.raises(ModelPolicyError) as refused:
        model.complete(ask())
    assert "„vertraulich“" in refused.value.message
    assert len(routed["ext"].chats()) == 1 and len(routed["own"].chats()) == 1
    routed["ext"].stop()
    with model_context(level="oeffentlich"):
        assert "".join(model.stream(ask())) == "Antwort von b."


def test_max_concurrency_bounds_parallel_requests_to_a_server(
    servers: dict[str, ModelServer],
) -> None:
    hold = servers["a"].hold = threading.Event()
    patient = settings_for(
        {"a": servers["a"]}, {"zusammenfassung": ["a"]}, server_extra={"max_concurrency": 1}
    )
    hasty = settings_for(
        {"a": servers["a"]},
        {"zusammenfassung": ["a"]},
        server_extra={"max_concurrency": 1, "timeout_s": 0.3},
    )
    results: list[str] = []
    first = threading.Thread(
        target=lambda: results.append(
            get_language_model(patient, "zusammenfassung").complete(ask()).text
        )
    )
    first.start()
    try:
        wait_for(lambda: len(servers["a"].chats()) == 1, "die erste Anfrage")
        with pytest.raises(ModelUnavailableError, match="ist ausgelastet"):
            get_language_model(hasty, "zusammenfassung").complete(ask())
        assert len(servers["a"].chats()) == 1  # the second request was never sent
    finally:
        hold.set()
        first.join(10)
    assert results == ["Antwort von a."]
    assert breaker_of(patient, "a").snapshot().failures == 0  # a full server is not a broken one


def test_the_single_server_settings_have_a_breaker_too(closed_url: str) -> None:
    settings = load_settings(
        mode="demo",
        llm={
            "backend": "openai",
            "base_url": closed_url,
            "location": "eigener_server",
            "max_retries": 0,
            "breaker_failures": 2,
        },
    )
    model = get_language_model(settings)
    for _ in range(2):
        with pytest.raises(ModelUnavailableError, match=r"nicht erreichbar \(Verbindung abgelehnt"):
            model.complete(ask())
    with pytest.raises(ModelUnavailableError, match="vorübergehend gesperrt"):
        model.complete(ask())


# -- /healthz --------------------------------------------------------------------------------------


def test_healthz_lists_each_server_with_its_breaker_and_the_routes(
    db, servers: dict[str, ModelServer], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from rathaus.web.app import create_app

    entries = [
        {"name": n, "base_url": s.url, "model": f"modell-{n}", "location": "eigener_server",
         "retries": 0, "api_key": "geheim-123"}
        for n, s in servers.items()
    ]  # fmt: skip
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        database_url=db.url,
        queue={"backend": "memory"},
        llm={
            "backend": "none",
            "servers": entries,
            "routes": {"zusammenfassung": ["a", "b"]},
            "breaker_failures": 1,
        },
    )
    servers["a"].fail_with = 503
    assert get_language_model(settings, "zusammenfassung").complete(ask()).text == (
        "Antwort von b."
    )
    with TestClient(create_app(settings, database=db)) as client:
        body = client.get("/healthz").json()
    part = body["models"]["servers"]
    by_name = {s["name"]: s for s in part["servers"]}
    assert by_name["a"]["breaker"]["zustand"] == "offen" and by_name["a"]["ok"] is False
    assert by_name["a"]["breaker"]["letzter_fehler"] == "HTTP 503"
    assert by_name["b"]["breaker"]["zustand"] == "geschlossen" and by_name["b"]["ok"] is True
    assert by_name["b"]["location"] == "eigener_server" and "geheim-123" not in str(body)
    assert part["routes"]["zusammenfassung"] == ["a", "b"] and part["routes"]["standard"] == []
    assert part["ok"] is False and "a" in part["detail"]
    assert body["status"] == "eingeschränkt"


# -- what a gateway refusal means for the route (plumbing, with stand-in models) --------------


class _Refusing:
    """A stand-in server model whose gateway refuses with ``error`` (nothing is sent)."""

    name, model, version = "openai", "ersatz", "ersatz"

    def __init__(self, error: Exception | None) -> None:
        self.error, self.calls = error, 0

    def complete(self, messages, **kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.error is not None:
            raise self.error
        from rathaus.ai.llm import Completion

        return Completion(text="ok", model="ersatz")


class _SkipError(ModelUnavailableError):
    pass


class _StopError(ModelUnavailableError):
    pass


def test_a_server_refusal_moves_on_and_a_tenant_refusal_ends_the_route() -> None:
    from rathaus.ai.routing import RouteMember

    def route(first: Exception) -> tuple[RoutedModel, _Refusing]:
        second = _Refusing(None)
        model = RoutedModel(
            "zusammenfassung",
            [RouteMember("a", _Refusing(first)), RouteMember("b", second)],
            skip=(_SkipError,),
            stop=(_SkipError, _StopError),
        )
        return model, second

    model, second = route(_SkipError("Richtlinie verbietet a"))
    assert model.complete(ask()).text == "ok" and second.calls == 1
    model, second = route(_StopError("Kontingent der Kommune ausgeschöpft"))
    with pytest.raises(_StopError, match="Kontingent"):
        model.complete(ask())
    assert second.calls == 0  # another server would not change the tenant's quota
    both = RoutedModel(
        "zusammenfassung",
        [
            RouteMember("a", _Refusing(_SkipError("nicht a"))),
            RouteMember("b", _Refusing(_SkipError("nicht b"))),
        ],
        skip=(_SkipError,),
    )
    with pytest.raises(_SkipError, match="nicht a"):  # every server refused: the first refusal
        both.complete(ask())


# -- a real llama.cpp server behind a route --------------------------------------------------


@pytest.mark.model
@pytest.mark.slow
def test_a_route_fails_over_to_a_real_llama_cpp_server(llama_server: str, closed_url: str) -> None:
    settings = load_settings(
        mode="demo",
        llm={
            "backend": "none",
            "servers": [
                {"name": "vllm", "base_url": closed_url, "model": "weg", "retries": 0},
                {
                    "name": "llamacpp",
                    "base_url": llama_server,
                    "model": "bundled",
                    "location": "eigener_server",
                    "timeout_s": 300,
                },
            ],
            "routes": {"zusammenfassung": ["vllm", "llamacpp"]},
        },
    )
    model = get_language_model(settings, "zusammenfassung")
    with model_context(level="oeffentlich"):
        completion = model.complete(
            [ChatMessage("user", "Antworte nur mit dem Wort: Rathaus")], max_tokens=8
        )
        streamed = "".join(model.stream([ChatMessage("user", "Sag Hallo.")], max_tokens=8))
    assert completion.text.strip() and streamed.strip()  # the small model's wording varies
    assert model.server == "llamacpp" and completion.prompt_tokens
    assert breaker_of(settings, "vllm").snapshot().failures == 2
