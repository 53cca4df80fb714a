"""SSRF guard (ASVS V5.2.6, V12.6.1): addresses that staff enter reach public hosts only, model
servers no metadata service; every resolved address is checked and connected to, redirects too.

The servers here are real HTTP servers on loopback addresses (127.0.0.1 and 127.0.0.2): the
tests prove that a refused address never sees a request and that an allowed one still works.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rathaus.ai.llm import HTTPBackend, ModelUnavailableError
from rathaus.core import netguard
from rathaus.core.config import load_settings
from rathaus.core.errors import ConfigError
from rathaus.inbox.channels import imap
from rathaus.inbox.channels.poll import ChannelError, SourceSettingsError
from rathaus.writing.oparl import OParlClient, OParlError

T = "https://schema.oparl.org/1.1/"


class Recorder:
    """A real HTTP server on ``host`` that records every request; ``redirect`` sends a 302."""

    def __init__(self, host: str, redirect: str | None = None) -> None:
        self.requests: list[tuple[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                recorder.requests.append((self.path, self.headers.get("Host", "")))
                if redirect is not None:
                    self.send_response(302)
                    self.send_header("Location", redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"id": "x", "type": T + "Body", "name": "Gemeinderat"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Recorder]:
    recorder = Recorder("127.0.0.1")
    yield recorder
    recorder.close()


@contextlib.contextmanager
def resolving(monkeypatch: pytest.MonkeyPatch, name: str, address: str) -> Iterator[None]:
    """Let ``name`` resolve to ``address`` (a stand-in for an attacker's DNS entry)."""
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == name:
            return real(address, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    yield


# -- the policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", netguard.LINK_LOCAL),  # cloud metadata
        ("fe80::1", netguard.LINK_LOCAL),
        ("fd00:ec2::254", netguard.METADATA),
        ("100.100.100.200", netguard.METADATA),
        ("127.0.0.1", netguard.LOOPBACK),
        ("127.1.2.3", netguard.LOOPBACK),
        ("::1", netguard.LOOPBACK),
        ("::ffff:127.0.0.1", netguard.LOOPBACK),  # IPv4-mapped
        ("::ffff:169.254.169.254", netguard.LINK_LOCAL),
        ("2002:7f00:1::", netguard.LOOPBACK),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", netguard.LINK_LOCAL),  # NAT64 around the metadata service
        ("10.1.2.3", netguard.INTERNAL),
        ("172.16.0.1", netguard.INTERNAL),
        ("192.168.178.1", netguard.INTERNAL),
        ("100.64.0.1", netguard.INTERNAL),  # shared address space (carrier NAT)
        ("fd12:3456::1", netguard.INTERNAL),
        ("0.0.0.0", netguard.UNSPECIFIED),
        ("0.1.2.3", netguard.UNSPECIFIED),
        ("::", netguard.UNSPECIFIED),
        ("224.0.0.1", netguard.MULTICAST),
        ("255.255.255.255", netguard.MULTICAST),
        ("240.0.0.1", netguard.RESERVED),
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
        ("64:ff9b::808:808", None),  # NAT64 around a public address
    ],
)
def test_addresses_are_classified(address: str, reason: str | None) -> None:
    assert netguard.classify(ipaddress.ip_address(address)) == reason


def test_entered_hosts_reach_public_addresses_only_unless_a_network_is_allowed() -> None:
    policy = netguard.for_entered_hosts("Der OParl-Server")
    assert policy.refusal(ipaddress.ip_address("93.184.216.34")) is None
    for address in ("127.0.0.1", "10.20.0.5", "169.254.169.254", "::ffff:10.20.0.5"):
        with pytest.raises(netguard.NetGuardError) as caught:
            policy.check_address(address, "ratsinfo.example")
        message = caught.value.message
        assert "Der OParl-Server „ratsinfo.example“" in message
        assert address.removeprefix("::ffff:") in message
        assert "nicht erlaubt" in message and netguard.SETTING in message
    opened = netguard.for_entered_hosts("Der IMAP-Server", ["10.20.0.0/16"])
    assert opened.refusal(ipaddress.ip_address("10.20.0.5")) is None
    assert opened.refusal(ipaddress.ip_address("::ffff:10.20.0.5")) is None
    assert opened.refusal(ipaddress.ip_address("10.21.0.5")) == netguard.INTERNAL
    assert opened.refusal(ipaddress.ip_address("169.254.169.254")) == netguard.LINK_LOCAL


def test_model_servers_may_be_internal_but_not_the_metadata_service() -> None:
    policy = netguard.for_model_servers()
    for address in ("127.0.0.1", "::1", "10.0.0.7", "192.168.1.2", "8.8.8.8"):
        assert policy.refusal(ipaddress.ip_address(address)) is None, address
    for address in ("169.254.169.254", "fd00:ec2::254", "0.0.0.0", "224.0.0.1"):
        assert policy.refusal(ipaddress.ip_address(address)) is not None, address
    allowed = netguard.for_model_servers(["169.254.10.0/24"])
    assert allowed.refusal(ipaddress.ip_address("169.254.10.1")) is None


def test_a_name_is_refused_if_any_of_its_addresses_is(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def two_answers(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "gemischt.example":
            return real("93.184.216.34", port, *args, **kwargs) + real(
                "127.0.0.1", port, *args, **kwargs
            )
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", two_answers)
    with pytest.raises(netguard.NetGuardError, match="127.0.0.1"):
        netguard.for_entered_hosts("Der OParl-Server").resolve("gemischt.example", 443)


def test_allowed_networks_setting_is_checked_at_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(mode="demo", data_dir=tmp_path, network={"allowed_networks": []})
    assert settings.network.allowed_networks == []
    ok = load_settings(
        mode="demo", data_dir=tmp_path, network={"allowed_networks": [" 10.0.0.0/8"]}
    )
    assert ok.network.allowed_networks == ["10.0.0.0/8"]
    with pytest.raises(ConfigError) as caught:
        load_settings(mode="demo", data_dir=tmp_path, network={"allowed_networks": ["intranet"]})
    assert "RATHAUS_NETWORK__ALLOWED_NETWORKS" in caught.value.message
    assert "keine IP-Adresse" in caught.value.message


# -- OParl: staff enter the address -------------------------------------------------------------


def test_oparl_on_an_internal_address_is_refused_without_a_request(server: Recorder) -> None:
    with OParlClient(timeout_s=5) as client, pytest.raises(OParlError) as caught:
        client.get(f"{server.url}/body/1")
    assert "Der OParl-Server „127.0.0.1“" in caught.value.message
    assert "Loopback" in caught.value.message and "nicht erlaubt" in caught.value.message
    assert server.requests == []


def test_oparl_works_where_the_administration_allowed_the_network(server: Recorder) -> None:
    with OParlClient(timeout_s=5, allowed_networks=["127.0.0.1/32"]) as client:
        assert client.get(f"{server.url}/body/1")["name"] == "Gemeinderat"
    assert [path for path, _host in server.requests] == ["/body/1"]


def test_oparl_redirect_to_a_refused_address_is_not_followed(server: Recorder) -> None:
    inner = Recorder("127.0.0.2")
    outer = Recorder("127.0.0.1", redirect=f"{inner.url}/geheim")
    try:
        client = OParlClient(timeout_s=5, allowed_networks=["127.0.0.1/32"])
        with client, pytest.raises(OParlError) as caught:
            client.get(f"{outer.url}/system")
        assert "127.0.0.2" in caught.value.message and "nicht erlaubt" in caught.value.message
        assert len(outer.requests) == 1 and inner.requests == []
    finally:
        inner.close()
        outer.close()


def test_oparl_name_that_resolves_inside_is_refused_and_pinned_when_allowed(
    server: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A public-looking name with an internal DNS answer is refused; when the network is
    allowed, the connection goes to the checked address with the name kept as Host."""
    port = server.url.rsplit(":", 1)[1]
    with resolving(monkeypatch, "ratsinfo.angreifer.example", "127.0.0.1"):
        with OParlClient(timeout_s=5) as client, pytest.raises(OParlError) as caught:
            client.get(f"http://ratsinfo.angreifer.example:{port}/body/1")
        assert "„ratsinfo.angreifer.example“ (127.0.0.1)" in caught.value.message
        assert server.requests == []
        with OParlClient(timeout_s=5, allowed_networks=["127.0.0.1/32"]) as client:
            assert client.get(f"http://ratsinfo.angreifer.example:{port}/x")["name"]
    assert server.requests == [("/x", f"ratsinfo.angreifer.example:{port}")]


def test_oparl_url_entered_in_the_ui_is_refused_with_a_german_page(
    client, worlds, server: Recorder
) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import csrf_of, login

    login(client, "admin")
    response = client.post(
        "/texte/niederschriften/neu",
        data={
            "csrf_token": csrf_of(client),
            "titel": "Sitzung",
            "oparl_url": f"{server.url}/meeting/1",
        },
    )
    assert response.status_code == 400
    assert "Der OParl-Server „127.0.0.1“" in response.text
    assert "nicht erlaubt" in response.text
    assert server.requests == []


# -- IMAP: staff enter the host -----------------------------------------------------------------

BASE = {"username": "post", "password_env": "RATHAUS_IMAP_ALPHA_POST", "tls": "ssl"}


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "10.0.0.5", "192.168.1.10", "[::1]", "169.254.169.254", "::ffff:7f00:1"]
)
def test_imap_host_on_an_internal_address_is_refused_when_saved(host: str) -> None:
    with pytest.raises(SourceSettingsError) as caught:
        imap.check_settings({**BASE, "host": host}, tenant_slug="alpha")
    assert "Der IMAP-Server" in caught.value.message and "nicht erlaubt" in caught.value.message
    assert caught.value.exit_code == 2


def test_imap_host_in_an_allowed_network_is_accepted() -> None:
    checked = imap.check_settings(
        {**BASE, "host": "10.0.0.5"}, tenant_slug="alpha", allowed_networks=["10.0.0.0/24"]
    )
    assert checked["host"] == "10.0.0.5" and "allowed_networks" not in checked


def test_imap_name_resolving_inside_is_refused_at_polling_without_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    cfg = imap.ImapConfig(
        host="imap.angreifer.example",
        port=port,
        tls="ssl",
        username="u",
        mailbox="INBOX",
        password_env="RATHAUS_IMAP_ALPHA_U",
    )
    try:
        with resolving(monkeypatch, "imap.angreifer.example", "127.0.0.1"):
            with pytest.raises(ChannelError) as caught, imap.connect(cfg, "geheim", timeout=2):
                pass
            assert "„imap.angreifer.example“ (127.0.0.1)" in caught.value.message
            with pytest.raises(TimeoutError):  # nobody knocked
                listener.accept()
            allowed = imap.ImapConfig(**{**cfg.__dict__, "allowed_networks": ("127.0.0.1/32",)})
            assert imap._addresses(allowed) == ["127.0.0.1"]
    finally:
        listener.close()


def test_poll_reports_the_refusal_in_german_and_keeps_the_source(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rathaus.core.models import InboxSource
    from rathaus.core.storage import OriginalStore
    from rathaus.inbox.channels import poll
    from tests.factories import build_tenant

    with db.session() as session:
        world = build_tenant(session, "alpha")
        source = InboxSource(
            tenant_id=world.tenant.id,
            kind="imap",
            name="Alt",
            settings={**BASE, "host": "127.0.0.1", "port": 993},  # saved before the guard
        )
        session.add(source)
        session.commit()
        result = poll.poll_source(
            session,
            source,
            store=OriginalStore(tmp_path),
            max_bytes=1000,
            enqueue=lambda ids: None,
        )
        assert "nicht erlaubt" in result.errors[0] and "Loopback" in result.errors[0]
        assert session.get(InboxSource, source.id).last_error == result.errors[0]


def test_imap_source_form_refuses_an_internal_host(client, worlds) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import csrf_of, login

    login(client, "admin")
    response = client.post(
        "/posteingang/quellen/imap",
        data={
            "csrf_token": csrf_of(client),
            "name": "Intern",
            "host": "169.254.169.254",
            "benutzer": "post",
        },
    )
    assert response.status_code == 422
    assert "Link-Local" in response.text and "nicht erlaubt" in response.text


# -- model servers: set by the administration ---------------------------------------------------


def test_model_server_on_the_metadata_address_is_refused_without_connecting() -> None:
    backend = HTTPBackend(
        "http://169.254.169.254/v1",
        what="Das Sprachmodell",
        setting_prefix="RATHAUS_LLM",
        timeout_s=2,
        max_retries=0,
    )
    with pytest.raises(ModelUnavailableError) as caught:
        backend.post("/chat/completions", {"messages": []})
    assert "Das Sprachmodell unter http://169.254.169.254/v1" in caught.value.message
    assert "Metadatendienst" in caught.value.message and caught.value.reason == "Adresse gesperrt"


def test_model_server_on_loopback_still_works(server: Recorder) -> None:
    backend = HTTPBackend(
        server.url, what="Das Sprachmodell", setting_prefix="RATHAUS_LLM", max_retries=0
    )
    with backend._client as http:  # the guarded client of the backend, as the model calls use it
        assert http.get(f"{server.url}/models").status_code == 200
    assert server.requests[0][0] == "/models"
