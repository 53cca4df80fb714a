"""Guard against server-side request forgery: outgoing connections only to allowed addresses.

Rathaus connects to hosts that people enter: staff type the address of a council information
system (OParl) or of a mailbox (IMAP) into the UI, the administration sets model servers in the
settings. Without a guard such an address could point the server at itself, at the hosting
provider's internal network (databases, Redis, other municipalities' services) or at the cloud
metadata service, and the error messages would reveal which internal ports are open.

The policy (:class:`NetPolicy`):

- **Hosts that staff enter** (OParl servers, IMAP mailboxes, :func:`for_entered_hosts`) may reach
  public addresses only. Loopback, private networks (10/8, 172.16/12, 192.168/16, fc00::/7),
  shared address space (100.64/10), link-local addresses (169.254/16 with the metadata service
  169.254.169.254, fe80::/10), multicast, unspecified and reserved addresses are refused.
- **Model servers** (:func:`for_model_servers`) are set by the administration and usually run in
  the municipality's own network: loopback and private networks are allowed, link-local
  (metadata), multicast, unspecified and reserved addresses are not.
- The administration can open further networks for both in ``network.allowed_networks``
  (``RATHAUS_NETWORK__ALLOWED_NETWORKS``), e.g. the internal mail server's ``10.20.0.0/16``.

Every address a name resolves to is checked (IPv4 inside IPv6 as well: mapped, 6to4, NAT64), and
the connection goes to exactly the address that was checked, so a DNS answer that changes between
check and connect (DNS rebinding) cannot redirect it. For HTTP the check runs when each connection
is opened, so redirects to another host are checked too (:func:`http_client`); HTTP proxies from
the environment are not used for these connections, because the proxy would resolve the name.

Nothing heavy is imported here: httpx and httpcore are imported only by :func:`http_client`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rathaus.core.errors import RathausError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "RATHAUS_NETWORK__ALLOWED_NETWORKS"

# Metadata services outside the link-local range (AWS over IPv6, Alibaba Cloud).
_METADATA = tuple(ipaddress.ip_network(n) for n in ("fd00:ec2::254/128", "100.100.100.200/32"))
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Why an address is refused; the keys say whether a model server may use it anyway.
LINK_LOCAL = "Link-Local-Adresse, z. B. der Metadatendienst einer Cloud"
METADATA = "Metadatendienst einer Cloud"
UNSPECIFIED = "unbestimmte Adresse"
MULTICAST = "Multicast- oder Broadcast-Adresse"
RESERVED = "reservierte Adresse"
LOOPBACK = "der eigene Rechner (Loopback)"
INTERNAL = "internes Netz"
_INTERNAL_KINDS = frozenset({LOOPBACK, INTERNAL})


class NetGuardError(RathausError):
    """A connection to an address that the policy does not allow (German message)."""

    http_status = 400


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "::1"]`` as networks; ``ValueError`` (German) for a wrong entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"„{value}“ ist keine IP-Adresse und kein Netz (z. B. 10.20.0.0/16 oder ::1)"
            ) from None
    return tuple(networks)


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address that an IPv6 address carries (mapped, 6to4, NAT64, Teredo), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(address: Address) -> str | None:
    """Why ``address`` is not a public address (one of the reasons above), or ``None``."""
    inner = _embedded_ipv4(address)
    if inner is not None:  # the packets end up at the IPv4 address: judge that one
        return classify(inner)
    if any(address in net for net in _METADATA if net.version == address.version):
        return METADATA
    if address.is_link_local:
        return LINK_LOCAL
    if address.is_unspecified or (address.version == 4 and address in _THIS_NETWORK):
        return UNSPECIFIED
    if address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
        return MULTICAST
    if address.is_loopback:  # before "reserved": ::1 lies in the reserved ::/8
        return LOOPBACK
    if address.is_reserved:
        return RESERVED
    if not address.is_global:  # private networks, shared address space, documentation ranges
        return INTERNAL
    return None


@dataclass(frozen=True)
class NetPolicy:
    """Which addresses one kind of outgoing connection may reach.

    ``purpose`` names the server in messages ("Der OParl-Server"); ``internal_allowed`` lets
    loopback and private networks through (model servers); ``allowed`` are the networks the
    administration opened in :data:`SETTING`, which pass whatever their kind.
    """

    purpose: str
    internal_allowed: bool = False
    allowed: tuple[Network, ...] = field(default=())

    def refusal(self, address: Address) -> str | None:
        """Why the policy refuses ``address``, or ``None`` if a connection is allowed."""
        inner = _embedded_ipv4(address)
        for candidate in (address, inner):
            if candidate is not None and any(
                candidate in net for net in self.allowed if net.version == candidate.version
            ):
                return None
        reason = classify(address)
        if reason is None or (self.internal_allowed and reason in _INTERNAL_KINDS):
            return None
        return reason

    def check_address(self, address: Address | str, host: str) -> None:
        """Raise :class:`NetGuardError` if ``address`` (which ``host`` named) is refused."""
        address = ipaddress.ip_address(address) if isinstance(address, str) else address
        reason = self.refusal(address)
        if reason is None:
            return
        inner = _embedded_ipv4(address)
        shown = str(address) if inner is None else f"{address} = {inner}"
        where = f"„{host}“" if host.strip("[]") == str(address) else f"„{host}“ ({shown})"
        raise NetGuardError(
            f"{self.purpose} {where} liegt in einem gesperrten Bereich ({reason}): "
            "Verbindungen dorthin sind nicht erlaubt, damit über eingegebene Adressen keine "
            "internen Dienste erreicht werden. Bitte die Adresse prüfen. Soll dieses Netz "
            f"erreichbar sein, kann die Administration es in {SETTING} freigeben."
        )

    def check_literal(self, host: str) -> None:
        """Check ``host`` if it is an IP address (names are checked when they are resolved)."""
        candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            return
        self.check_address(address, host)

    def resolve(self, host: str, port: int) -> list[str]:
        """Every address of ``host``, each checked; refused if any one is refused.

        Refusing the whole name (not only the bad addresses) keeps a name that points partly
        inside from being used at all. ``socket.gaierror`` passes through for the caller's
        own "unknown host" message.
        """
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses: list[str] = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            self.check_address(address, host)
            if str(address) not in addresses:
                addresses.append(str(address))
        return addresses


def for_entered_hosts(purpose: str, allowed_networks: Sequence[str] = ()) -> NetPolicy:
    """The policy for addresses that staff enter (OParl, IMAP): public addresses only."""
    return NetPolicy(purpose, internal_allowed=False, allowed=parse_networks(allowed_networks))


def for_model_servers(allowed_networks: Sequence[str] = ()) -> NetPolicy:
    """The policy for model servers from the settings: internal networks too, no metadata."""
    return NetPolicy(
        "Der Modellserver", internal_allowed=True, allowed=parse_networks(allowed_networks)
    )


def http_client(policy: NetPolicy, **options: Any) -> Any:
    """An ``httpx.Client`` whose every connection (redirects included) obeys ``policy``.

    ``options`` go to ``httpx.Client`` (timeout, headers, follow_redirects …). A refused
    address raises :class:`NetGuardError` from the request; proxies from the environment are
    not used (see the module docstring).
    """
    import httpx

    options.setdefault("transport", GuardedTransport(policy))
    return httpx.Client(trust_env=False, **options)


def _guarded_backend(policy: NetPolicy) -> Any:
    import httpcore

    class GuardedBackend(httpcore.SyncBackend):
        """Resolves the name itself, checks every address and connects only to those."""

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> Any:
            try:
                addresses = policy.resolve(host, port)
            except OSError as exc:  # unknown name: the caller's "not reachable" message
                raise httpcore.ConnectError(str(exc)) from exc
            last: Exception | None = None
            for address in addresses:
                try:
                    return super().connect_tcp(
                        address, port, timeout, local_address, socket_options
                    )
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    last = exc
            assert last is not None  # getaddrinfo never answers with an empty list
            raise last

    return GuardedBackend()


def GuardedTransport(policy: NetPolicy) -> Any:  # noqa: N802 - used like a class
    """An ``httpx.HTTPTransport`` with the guarded backend; certificates are verified as usual
    (``SSL_CERT_FILE``/``SSL_CERT_DIR`` are honoured for an own certificate authority).

    httpx offers no public way to choose httpcore's network backend, so the transport's
    connection pool is replaced by one built with the public httpcore API plus the backend;
    the tests in ``tests/security/test_netguard.py`` prove that a refused address is never
    connected to, also after a redirect.
    """
    import httpcore
    import httpx

    ssl_context = httpx.create_ssl_context(trust_env=True)
    transport = httpx.HTTPTransport(verify=ssl_context)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=ssl_context,
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=_guarded_backend(policy),
    )
    return transport
