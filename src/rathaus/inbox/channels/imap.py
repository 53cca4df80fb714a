"""IMAP mailbox polling: every new mail becomes one case, exactly once, with its original bytes.

Settings of an ``InboxSource(kind="imap")`` (checked by :func:`check_settings`):

- ``host``: server name or IP address only (no ``imap://``, no path); ``port`` 1–65535.
- ``tls``: ``ssl`` (implicit TLS, port 993), ``starttls`` (port 143) or ``none``. Plain text
  only to the local machine (``localhost``, ``127.0.0.1``, ``::1``) or with
  ``allow_plaintext: true``: otherwise the password would cross the network readable.
- ``username``, ``mailbox`` (default ``INBOX``), optional ``move_to`` (folder for taken mails),
  optional ``ca_file`` (a CA certificate to trust in addition to the system's).
- ``idle``: ``true`` when ``rathaus inbox lauschen`` should wait for new mails with IMAP IDLE
  (:mod:`rathaus.inbox.channels.idle`) instead of only the periodic poll.
- ``password_env``: the *name* of the environment variable with the password; the password is
  never stored. The name must start with ``RATHAUS_IMAP_<KÜRZEL>_`` (the municipality's slug), so
  a source can read neither other secrets of the process nor another municipality's password.

Against server-side request forgery the host is resolved once per poll and every address is
checked with the policy for hosts that staff enter (:mod:`rathaus.core.netguard`: public
addresses only, plus the networks in ``network.allowed_networks``; never link-local such as
cloud metadata 169.254.169.254, multicast, unspecified or reserved addresses); the connection
goes to the checked address, so a changing DNS answer cannot redirect it. TLS certificates are
verified against the host name.

A mail is identified by ``UIDVALIDITY:UID``; see :mod:`rathaus.inbox.channels.poll` for the
ledger that makes taking it exactly once. Mails are read with ``BODY.PEEK[]`` (flags untouched)
and moved to ``move_to`` only after the case was committed; a failed move is retried on the
next poll and never creates a second case.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.header
import email.utils
import imaplib
import ipaddress
import logging
import os
import re
import select
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.parser import HeaderParser
from email.policy import compat32
from typing import Any

from sqlalchemy.orm import Session

from rathaus.core import netguard
from rathaus.core.models import InboxSource, Tenant
from rathaus.core.storage import OriginalStore
from rathaus.inbox.channels.poll import (
    ChannelError,
    PollResult,
    SourceSettingsError,
    take_item,
    taken_keys,
)
from rathaus.inbox.service import IncomingItem

log = logging.getLogger(__name__)

TLS_MODES = ("ssl", "starttls", "none")
DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
TIMEOUT_S = 30.0
MAX_MAILS_PER_POLL = 200
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_FOLDER_CHARS = re.compile(r'^[^\x00-\x1f"\\]{1,200}$')


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    tls: str
    username: str
    mailbox: str
    password_env: str
    move_to: str | None = None
    allow_plaintext: bool = False
    ca_file: str | None = None
    idle: bool = False  # also listened to with IMAP IDLE (rathaus.inbox.channels.idle)
    allowed_networks: tuple[str, ...] = ()  # network.allowed_networks (not stored per source)


def env_prefix(tenant_slug: str) -> str:
    """The prefix every password variable of this municipality must have."""
    return "RATHAUS_IMAP_" + re.sub(r"[^A-Z0-9]", "_", tenant_slug.upper()) + "_"


def default_password_env(tenant_slug: str, source_name: str) -> str:
    """The suggested password variable of a source: the prefix and the name in capitals, with
    umlauts spelled out (``Bürgerpost`` → ``…_BUERGERPOST``) and anything else as ``_``."""
    name = source_name.upper()
    for umlaut, spelled in (("Ä", "AE"), ("Ö", "OE"), ("Ü", "UE"), ("ẞ", "SS")):
        name = name.replace(umlaut, spelled)
    return env_prefix(tenant_slug) + re.sub(r"[^A-Z0-9]", "_", name)


def _policy(allowed_networks: Sequence[str]) -> netguard.NetPolicy:
    return netguard.for_entered_hosts("Der IMAP-Server", allowed_networks)


def check_host(host: str, allowed_networks: Sequence[str] = ()) -> str:
    """The host name or IP address, or a German :class:`ChannelError` (URLs, paths, junk, an
    IP address the SSRF policy refuses; names are checked when they are resolved)."""
    host = (host or "").strip()
    if not host or "://" in host or any(c in host for c in "/@?#\\ "):
        raise SourceSettingsError(
            f"„{host[:100]}“ ist kein Servername. Bitte nur den Namen oder die IP-Adresse "
            "angeben, z. B. imap.kommune.de – ohne imap://, Benutzer oder Pfad (den Port mit "
            "--port)."
        )
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        if ":" in candidate or not _HOSTNAME.match(candidate):
            raise SourceSettingsError(
                f"„{host[:100]}“ ist kein gültiger Servername. Bitte nur den Namen des "
                "IMAP-Servers angeben, z. B. imap.kommune.de (den Port mit --port)."
            ) from None
        return candidate.lower().rstrip(".")
    try:
        _policy(allowed_networks).check_address(address, host)
    except netguard.NetGuardError as exc:
        raise SourceSettingsError(exc.message) from None
    return str(address)


def _is_local(host: str) -> bool:
    return host in LOCAL_HOSTS


def check_settings(
    settings: dict[str, Any], *, tenant_slug: str, allowed_networks: Sequence[str] = ()
) -> dict[str, Any]:
    """Validated, normalised settings of an IMAP source; raises a German :class:`ChannelError`.

    ``allowed_networks`` (``network.allowed_networks``) are the internal networks a host may
    be in; without them only public addresses are allowed (:mod:`rathaus.core.netguard`)."""
    known = {
        "host",
        "port",
        "tls",
        "username",
        "mailbox",
        "password_env",
        "move_to",
        "allow_plaintext",
        "ca_file",
        "idle",
    }
    if "password" in settings:
        raise SourceSettingsError(
            "Das Passwort wird nicht in der Datenbank gespeichert. Bitte es in eine "
            "Umgebungsvariable des Workers schreiben und deren Namen als Passwort-Variable angeben."
        )
    unknown = sorted(set(settings) - known)
    if unknown:
        raise SourceSettingsError(
            f"Unbekannte Einstellung(en) {', '.join(unknown)}; erlaubt sind {', '.join(sorted(known))}."
        )
    host = check_host(str(settings.get("host") or ""), allowed_networks)
    tls = str(settings.get("tls") or "ssl").lower()
    if tls not in TLS_MODES:
        raise SourceSettingsError(
            f"TLS-Art „{tls}“ gibt es nicht; erlaubt sind ssl (Port 993), starttls (Port 143) "
            "oder none (nur auf dem eigenen Rechner)."
        )
    try:
        port = int(settings.get("port") or DEFAULT_PORTS[tls])
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise SourceSettingsError(
            f"Port „{settings.get('port')}“ ist ungültig: erwartet wird eine Zahl von 1 bis 65535 "
            "(üblich: 993 für ssl, 143 für starttls)."
        )
    allow_plaintext = bool(settings.get("allow_plaintext", False))
    if tls == "none" and not (_is_local(host) or allow_plaintext):
        raise SourceSettingsError(
            f"Unverschlüsseltes IMAP zu {host} würde das Passwort lesbar übertragen. Bitte tls "
            "ssl oder starttls wählen; nur wenn die Strecke anders geschützt ist, ausdrücklich "
            "erlauben (--klartext-erlauben)."
        )
    username = str(settings.get("username") or "").strip()
    if not username or len(username) > 200 or any(ord(c) < 32 for c in username):
        raise SourceSettingsError(
            "Bitte den Benutzernamen des Postfachs angeben (höchstens 200 Zeichen)."
        )
    mailbox = str(settings.get("mailbox") or "INBOX").strip()
    move_to = str(settings.get("move_to") or "").strip() or None
    for label, folder in (("Postfach-Ordner", mailbox), ("Zielordner", move_to)):
        if folder is not None and not _FOLDER_CHARS.match(folder):
            raise SourceSettingsError(
                f"{label} „{folder[:60]}“ ist ungültig (Steuerzeichen, Anführungszeichen oder zu "
                "lang). Bitte den Ordnernamen so angeben, wie ihn das Mailprogramm zeigt."
            )
    if move_to is not None and move_to == mailbox:
        raise SourceSettingsError("Der Zielordner muss ein anderer Ordner sein als der abgerufene.")
    prefix = env_prefix(tenant_slug)
    password_env = str(settings.get("password_env") or "").strip()
    if not _ENV_NAME.match(password_env) or not password_env.startswith(prefix):
        raise SourceSettingsError(
            f"Die Passwort-Variable „{password_env[:80]}“ ist nicht erlaubt: ihr Name muss mit "
            f"{prefix} beginnen und darf nur Großbuchstaben, Ziffern und _ enthalten, z. B. "
            f"{prefix}POSTSTELLE. So kann eine Quelle keine anderen Geheimnisse des Servers lesen."
        )
    ca_file = str(settings.get("ca_file") or "").strip() or None
    if ca_file is not None and not os.path.isabs(ca_file):
        raise SourceSettingsError(f"ca_file muss ein absoluter Pfad sein, nicht „{ca_file[:100]}“.")
    checked: dict[str, Any] = {
        "host": host,
        "port": port,
        "tls": tls,
        "username": username,
        "mailbox": mailbox,
        "password_env": password_env,
    }
    if move_to:
        checked["move_to"] = move_to
    if allow_plaintext:
        checked["allow_plaintext"] = True
    if ca_file:
        checked["ca_file"] = ca_file
    if settings.get("idle"):
        checked["idle"] = True
    return checked


def config_of(
    source: InboxSource, tenant: Tenant, allowed_networks: Sequence[str] = ()
) -> ImapConfig:
    checked = check_settings(
        dict(source.settings or {}), tenant_slug=tenant.slug, allowed_networks=allowed_networks
    )
    return ImapConfig(**checked, allowed_networks=tuple(allowed_networks))


# --- connecting -------------------------------------------------------------------------------


class _Reader:
    """The server's bytes through our own buffer, which can tell whether a line is waiting.

    imaplib reads through ``socket.makefile``, and a file object that ever times out is broken
    for good, so a connection in IDLE could not look at a stop signal between two lines. Here
    :meth:`waiting` asks ``select`` (and the TLS layer's own buffer) with a short timeout instead;
    reading itself blocks up to the socket's timeout as before.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _more(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def readline(self, limit: int) -> bytes:
        while True:
            end = self.buffer.find(b"\n", 0, limit)
            if end >= 0 or len(self.buffer) >= limit:
                size = end + 1 if end >= 0 else limit
                break
            if not self._more():
                size = len(self.buffer)
                break
        line = bytes(self.buffer[:size])
        del self.buffer[:size]
        return line

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size and self._more():
            pass
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def waiting(self, timeout: float) -> bool:
        """Whether bytes can be read now or arrive within ``timeout`` seconds."""
        if self.buffer:
            return True
        pending = getattr(self.sock, "pending", None)
        if pending is not None and pending() > 0:
            return True
        readable, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        return bool(readable)


class _Reading:
    """Reads through :class:`_Reader` (mixed into both connection classes; see there)."""

    sock: socket.socket
    _rathaus_reader: _Reader | None = None

    def _reader(self) -> _Reader:
        if self._rathaus_reader is None or self._rathaus_reader.sock is not self.sock:
            self._rathaus_reader = _Reader(self.sock)  # new after STARTTLS wrapped the socket
        return self._rathaus_reader

    def read(self, size: int) -> bytes:
        return self._reader().read(size)

    def readline(self) -> bytes:
        line = self._reader().readline(imaplib._MAXLINE + 1)
        if len(line) > imaplib._MAXLINE:
            raise imaplib.IMAP4.error(f"got more than {imaplib._MAXLINE} bytes")
        return line

    def waiting(self, timeout: float) -> bool:
        return self._reader().waiting(timeout)


class _PinnedIMAP4(_Reading, imaplib.IMAP4):
    """IMAP4 that connects to an address checked beforehand (the host name stays for TLS)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self._address = address
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection((self._address, self.port), timeout)


class _PinnedIMAP4SSL(_Reading, imaplib.IMAP4_SSL):
    def __init__(
        self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        self._address = address
        super().__init__(host, port, ssl_context=context, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = socket.create_connection((self._address, self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def _addresses(cfg: ImapConfig) -> list[str]:
    try:
        addresses = _policy(cfg.allowed_networks).resolve(cfg.host, cfg.port)
    except socket.gaierror as exc:
        raise ChannelError(
            f"Der IMAP-Server „{cfg.host}“ ist unbekannt (Namensauflösung: {exc.strerror}). "
            "Bitte den Servernamen prüfen."
        ) from exc
    except netguard.NetGuardError as exc:
        raise ChannelError(exc.message) from None
    for address in addresses:
        if (
            cfg.tls == "none"
            and not cfg.allow_plaintext
            and not ipaddress.ip_address(address).is_loopback
        ):
            raise ChannelError(
                f"„{cfg.host}“ ist nicht der eigene Rechner ({address}); unverschlüsseltes IMAP "
                "ist nur dorthin erlaubt. Bitte tls ssl oder starttls wählen."
            )
    return addresses


def _context(cfg: ImapConfig) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=cfg.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ChannelError(
            f"Die Zertifikatsdatei {cfg.ca_file} ist nicht lesbar ({exc}). Bitte den Pfad in "
            "ca_file prüfen."
        ) from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _open(cfg: ImapConfig, address: str, timeout: float) -> imaplib.IMAP4:
    if cfg.tls == "ssl":
        return _PinnedIMAP4SSL(cfg.host, cfg.port, address, timeout, _context(cfg))
    conn = _PinnedIMAP4(cfg.host, cfg.port, address, timeout)
    if cfg.tls == "starttls":
        if "STARTTLS" not in conn.capabilities:
            conn.shutdown()
            raise ChannelError(
                f"Der IMAP-Server {cfg.host}:{cfg.port} bietet kein STARTTLS an. Bitte tls ssl "
                "mit Port 993 wählen oder STARTTLS auf dem Server einschalten."
            )
        conn.starttls(ssl_context=_context(cfg))
    return conn


def _connection_error(cfg: ImapConfig, exc: BaseException) -> ChannelError:
    where = f"{cfg.host}:{cfg.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ChannelError(
            f"Das TLS-Zertifikat des IMAP-Servers {where} wird nicht anerkannt "
            f"({exc.verify_message or exc.reason}). Bitte ein gültiges Zertifikat auf dem Server "
            "einrichten oder die eigene Zertifizierungsstelle als ca_file angeben."
        )
    if isinstance(exc, ssl.SSLError):
        return ChannelError(
            f"Die TLS-Verbindung zu {where} ist fehlgeschlagen ({exc.reason or exc}). Bitte "
            "prüfen, ob Port und TLS-Art zusammenpassen (993 mit ssl, 143 mit starttls)."
        )
    if isinstance(exc, ConnectionRefusedError):
        return ChannelError(
            f"Der IMAP-Server {where} ist nicht erreichbar (Verbindung abgelehnt). Bitte "
            "Servername und Port prüfen und ob der Server läuft."
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        return ChannelError(
            f"Der IMAP-Server {where} antwortet nicht (Zeitüberschreitung nach "
            f"{TIMEOUT_S:g} s). Bitte Netzwerk, Firewall und Port prüfen."
        )
    if isinstance(exc, imaplib.IMAP4.abort | EOFError):
        return ChannelError(
            f"Die Verbindung zum IMAP-Server {where} wurde unterbrochen ({exc}). Bereits "
            "erfasste E-Mails bleiben erhalten; der nächste Abruf holt die übrigen."
        )
    return ChannelError(
        f"Der IMAP-Server {where} ist nicht erreichbar ({type(exc).__name__}: {exc}). Bitte "
        "Servername, Port und Netzwerk prüfen."
    )


@contextmanager
def connect(cfg: ImapConfig, password: str, *, timeout: float = TIMEOUT_S) -> Iterator[Any]:
    """A logged-in IMAP connection; every failure becomes a German :class:`ChannelError`."""
    last: BaseException | None = None
    conn: imaplib.IMAP4 | None = None
    for address in _addresses(cfg):
        try:
            conn = _open(cfg, address, timeout)
            break
        except ChannelError:
            raise
        except (OSError, imaplib.IMAP4.error, EOFError) as exc:
            last = exc
            if isinstance(exc, ssl.SSLError):
                break  # the server answered: another address will not fix TLS
    if conn is None:
        assert last is not None
        raise _connection_error(cfg, last) from last
    try:
        try:
            conn.login(cfg.username, password)
        except imaplib.IMAP4.abort as exc:
            raise _connection_error(cfg, exc) from exc
        except imaplib.IMAP4.error as exc:
            raise ChannelError(
                f"Die Anmeldung am Postfach {cfg.username} auf {cfg.host} ist fehlgeschlagen "
                f"({_server_text(exc)}). Bitte Benutzername und Passwort in der "
                f"Umgebungsvariablen {cfg.password_env} prüfen."
            ) from exc
        yield conn
    except (OSError, imaplib.IMAP4.abort, EOFError) as exc:
        raise _connection_error(cfg, exc) from exc
    finally:
        with contextlib.suppress(Exception):  # the connection may be gone already
            conn.logout()


def _server_text(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    return text[:200] or "keine Begründung"


def _ok(typ: str, data: Any, what: str) -> Any:
    if typ != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise imaplib.IMAP4.error(f"{what}: {detail[:200]}")
    return data


# --- reading mails ----------------------------------------------------------------------------


def _decode(value: Any) -> str:
    if value is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:  # noqa: BLE001 - broken RFC 2047 words: keep the header as it is
        return str(value)


def _header_text(raw: bytes) -> str:
    """The header block as text: raw 8-bit bytes are UTF-8 if they are, else Windows-1252."""
    block = re.split(rb"\r?\n\r?\n", raw[: 256 * 1024], maxsplit=1)[0]
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        return block.decode("cp1252", "replace")


@dataclass(frozen=True)
class MailHeaders:
    subject: str
    sender_name: str
    sender_address: str


def read_headers(raw: bytes) -> MailHeaders:
    """Subject and sender (RFC 2047 decoded); never raises, also on broken mails."""
    try:
        headers = HeaderParser(policy=compat32).parsestr(_header_text(raw))
        subject = " ".join(_decode(headers.get("Subject")).split())
        name, address = email.utils.parseaddr(_decode(headers.get("From")))
    except Exception:  # noqa: BLE001 - a mail we cannot parse is still a mail
        return MailHeaders("", "", "")
    return MailHeaders(subject[:300], " ".join(name.split())[:200], address[:300])


def _fetch_part(data: list[Any]) -> tuple[bytes, bytes] | None:
    for entry in data:
        if isinstance(entry, tuple) and len(entry) == 2:
            return entry[0], entry[1]
    return None


def _meta(conn: Any, uid: int) -> tuple[int, dt.datetime | None] | None:
    typ, data = conn.uid("FETCH", str(uid), "(RFC822.SIZE INTERNALDATE)")
    _ok(typ, data, "FETCH")
    line = next((d for d in data if isinstance(d, bytes) and b"RFC822.SIZE" in d), None)
    if line is None:
        return None  # removed meanwhile by someone else
    size = int(_SIZE.search(line).group(1))  # type: ignore[union-attr]
    internal = imaplib.Internaldate2tuple(line)
    at = dt.datetime.fromtimestamp(time.mktime(internal), dt.UTC) if internal else None
    return size, at


def _fetch(conn: Any, uid: int, section: str) -> bytes | None:
    typ, data = conn.uid("FETCH", str(uid), f"(BODY.PEEK[{section}])")
    _ok(typ, data, "FETCH")
    part = _fetch_part(data)
    return part[1] if part else None


def _quote(folder: str) -> str:
    """A folder name as an IMAP quoted string in modified UTF-7 (RFC 3501 5.1.3)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode()
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in folder:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return '"' + "".join(out) + '"'


def _capabilities(conn: Any) -> set[str]:
    """What the server offers after login (imaplib only keeps the list from before it)."""
    cached = getattr(conn, "_rathaus_capabilities", None)
    if cached is None:
        typ, data = conn.capability()
        words = b" ".join(d for d in data if isinstance(d, bytes)).decode("ascii", "replace")
        cached = set(words.upper().split()) if typ == "OK" else set(conn.capabilities)
        conn._rathaus_capabilities = cached
    return cached


def _put_away(conn: Any, cfg: ImapConfig, uid: int, result: PollResult) -> None:
    """Move a taken mail to ``move_to`` (MOVE, else COPY + delete). Failures are reported."""
    if not cfg.move_to:
        return
    target = _quote(cfg.move_to)
    try:
        capabilities = _capabilities(conn)
        if "MOVE" in capabilities:
            _ok(*conn.uid("MOVE", str(uid), target), "MOVE")
        else:
            # Without MOVE (RFC 6851): copy, flag as deleted, and expunge only this mail where
            # the server can (UIDPLUS); a plain EXPUNGE would also remove others' deleted mails.
            _ok(*conn.uid("COPY", str(uid), target), "COPY")
            _ok(*conn.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
            if "UIDPLUS" in capabilities:
                _ok(*conn.uid("EXPUNGE", str(uid)), "EXPUNGE")
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        result.errors.append(
            f"E-Mail UID {uid} ist erfasst, konnte aber nicht in den Ordner „{cfg.move_to}“ "
            f"verschoben werden ({_server_text(exc)}). Bitte den Ordner anlegen bzw. die Rechte "
            "prüfen; sie wird kein zweites Mal erfasst."
        )


def poll(
    session: Session,
    source: InboxSource,
    tenant: Tenant,
    *,
    store: OriginalStore,
    max_bytes: int,
    result: PollResult,
    password: str | None = None,
    allowed_networks: Sequence[str] = (),
) -> None:
    """Take every mail of the mailbox that is not in the ledger yet (at most 200 per poll)."""
    cfg = config_of(source, tenant, allowed_networks)
    if password is None:
        password = os.environ.get(cfg.password_env)
    if not password:
        raise ChannelError(
            f"Das Passwort für das Postfach {cfg.username} fehlt: die Umgebungsvariable "
            f"{cfg.password_env} ist im Worker nicht gesetzt. Bitte dort setzen (z. B. in der "
            "systemd-Unit oder der .env-Datei) und den Worker neu starten."
        )
    with connect(cfg, password) as conn:
        try:
            typ, data = conn.select(_quote(cfg.mailbox), readonly=not cfg.move_to)
            _ok(typ, data, "SELECT")
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise ChannelError(
                f"Den Ordner „{cfg.mailbox}“ gibt es im Postfach {cfg.username} nicht "
                f"({_server_text(exc)}). Bitte den Ordnernamen prüfen (meist INBOX)."
            ) from exc
        uidvalidity = (conn.response("UIDVALIDITY")[1] or [b"0"])[0].decode()
        if cfg.move_to:
            conn.create(_quote(cfg.move_to))  # NO when it exists already: fine
        typ, data = conn.uid("SEARCH", None, "ALL")
        _ok(typ, data, "SEARCH")
        uids = sorted(int(u) for u in b" ".join(d for d in data if d).split())
        done = {
            int(key.split(":", 1)[1])
            for key in taken_keys(session, source, prefix=f"{uidvalidity}:")
        }
        taken_now = 0
        for uid in uids:
            if uid in done:
                # Taken before, but still here: the move after the commit did not happen.
                if cfg.move_to:
                    result.already_taken += 1
                    _put_away(conn, cfg, uid, result)
                continue
            if taken_now >= MAX_MAILS_PER_POLL:
                break
            taken_now += 1
            _take_mail(
                session, conn, cfg, source, tenant, uid, uidvalidity, store, max_bytes, result
            )


def _take_mail(
    session: Session,
    conn: Any,
    cfg: ImapConfig,
    source: InboxSource,
    tenant: Tenant,
    uid: int,
    uidvalidity: str,
    store: OriginalStore,
    max_bytes: int,
    result: PollResult,
) -> None:
    meta = _meta(conn, uid)
    if meta is None:
        return
    size, internal_date = meta
    key = f"{uidvalidity}:{uid}"
    review_reason = None
    if size > max_bytes:
        header = _fetch(conn, uid, "HEADER") or b""
        headers = read_headers(header)
        review_reason = (
            f"Die E-Mail ist {size / 1024 / 1024:.1f} MB groß und damit größer als erlaubt "
            f"({max_bytes / 1024 / 1024:.0f} MB, RATHAUS_INBOX__MAX_UPLOAD_MB); sie wurde nicht "
            f"gelesen. Sie liegt unverändert im Postfach {cfg.username} auf {cfg.host}, Ordner "
            f"„{cfg.move_to or cfg.mailbox}“ (Betreff „{headers.subject}“, Absender "
            f"{headers.sender_address or 'unbekannt'}). Bitte dort öffnen und von Hand bearbeiten."
        )
        original = (
            f"Zu große E-Mail im Postfach {cfg.username} auf {cfg.host}\n"
            f"Ordner: {cfg.mailbox}\nUIDVALIDITY: {uidvalidity}\nUID: {uid}\n"
            f"Größe: {size} Bytes\nBetreff: {headers.subject}\n"
            f"Absender: {headers.sender_name} <{headers.sender_address}>\n"
        ).encode()
        item = IncomingItem(
            channel="email",
            original=original,
            filename=f"mail-{uid}-zu-gross.txt",
            media_type="text/plain",
            subject=headers.subject or "Zu große E-Mail",
            body=review_reason,
            sender_name=headers.sender_name,
            sender_contact=headers.sender_address,
            fields={"imap": {"uid": uid, "uidvalidity": uidvalidity, "size": size}},
            received_at=internal_date,
        )
    else:
        raw = _fetch(conn, uid, "")
        if raw is None:
            return
        headers = read_headers(raw)
        item = IncomingItem(
            channel="email",
            original=raw,
            filename=f"mail-{uid}.eml",
            media_type="message/rfc822",
            subject=headers.subject,
            sender_name=headers.sender_name,
            sender_contact=headers.sender_address,
            received_at=internal_date,
        )
    taken = take_item(
        session,
        source=source,
        tenant=tenant,
        key=key,
        item=item,
        store=store,
        review_reason=review_reason,
    )
    result.count(taken, review_reason, f"E-Mail UID {uid} → ")
    _put_away(conn, cfg, uid, result)
