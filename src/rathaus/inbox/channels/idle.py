"""IMAP IDLE (RFC 2177): a listener per mailbox that takes a new mail within seconds of its arrival.

For every active IMAP source with ``idle: true`` (``rathaus inbox quelle-idle``), ``rathaus inbox
lauschen`` keeps one connection in IDLE. When the server reports a new mail (``* n EXISTS``)
the listener ends IDLE with ``DONE`` and polls the source through the ordinary path
(:func:`rathaus.inbox.channels.poll.poll_source`): its own connection, the ledger that takes
every mail exactly once, moving to ``move_to``, triage queued after the commit. The listening
connection only reads the mailbox (EXAMINE); it never takes a mail itself.

- **Renewal.** IDLE is ended and issued again after ``renew_s`` seconds (default 25 minutes; at
  most 29, the limit RFC 2177 gives servers), and the mailbox is polled then, so a notification
  that got lost costs at most one renewal interval. TCP keepalive on the connection notices a
  silently dropped connection (NAT, firewall) within about two minutes.
- **Errors.** A refused login, a missing folder, a host the SSRF guard refuses, a broken
  connection: the German reason goes to the log and to ``last_error`` of the source (shown by
  ``rathaus inbox quellen-liste``), and the listener connects again after 1, 2, 4 … seconds, at
  most ``backoff_max_s``. Mails that arrive meanwhile are taken by the poll right after the next
  connect (and by the periodic poll job, which keeps running as a safety net).
- **Servers without IDLE.** The listener polls the source every ``inbox.poll_interval_s``
  seconds instead (claimed like the periodic job, so the two do not poll at the same time) and
  asks the server again after an hour.
- **Stopping.** On SIGTERM or Strg+C (``stop`` set) a waiting listener sends ``DONE`` and
  ``LOGOUT`` within a second; a poll that is running finishes first (it commits per mail).
- **SSRF.** Connections go through :func:`rathaus.inbox.channels.imap.connect`: the host is
  resolved and every address checked against ``network.allowed_networks`` on every connect.

Python 3.11's imaplib has no IDLE; :func:`idle` speaks the few lines itself (tagged command,
continuation ``+``, untagged responses, ``DONE``) on top of imaplib's connection, which reads
through a buffer that can wait for data in short slices (``imap._Reader``).
"""

from __future__ import annotations

import enum
import imaplib
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from rathaus.core.models import InboxSource, Tenant, utcnow
from rathaus.core.storage import OriginalStore
from rathaus.inbox.channels import imap
from rathaus.inbox.channels.poll import (
    MAX_ERROR_CHARS,
    ChannelError,
    Enqueue,
    claim,
    poll_source,
)

log = logging.getLogger(__name__)

RFC_LIMIT_S = 29 * 60  # servers may end an IDLE after 30 minutes (RFC 2177)
DEFAULT_RENEW_S = 25 * 60
DEFAULT_BACKOFF_MAX_S = 300
RESCAN_S = 60.0  # how often the list of sources is read again
RECHECK_IDLE_S = 3600.0  # how long to poll a server without IDLE before asking again
_EXISTS = re.compile(rb"^\* (\d+) EXISTS\b", re.IGNORECASE)
_LITERAL = re.compile(rb"\{(\d+)\+?\}$")


class Wake(enum.StrEnum):
    """Why :func:`idle` returned."""

    NEW_MAIL = "neue E-Mail"
    RENEW = "erneuern"
    STOP = "beenden"


class IdleUnsupportedError(ChannelError):
    """The server does not offer IDLE (no ``IDLE`` in its capabilities)."""


class _SourceGone(Exception):
    """The source was removed, switched off or no longer wants IDLE: the listener ends."""


def _line(conn: Any) -> bytes:
    """One response line without CRLF; a literal (``{n}``) inside it is read and left out."""
    line = conn._get_line()
    while match := _LITERAL.search(line):
        conn.read(int(match.group(1)))
        line = line[: match.start()] + conn._get_line()
    return line


def _untagged(line: bytes) -> bool:
    """True for ``* n EXISTS``; raises abort on ``* BYE`` (the server closes the connection)."""
    if line[:5].upper() == b"* BYE":
        raise imaplib.IMAP4.abort(line[5:].decode("utf-8", "replace").strip() or "BYE")
    return bool(_EXISTS.match(line))


def idle(
    conn: Any,
    *,
    stop: threading.Event,
    renew_s: float,
    slice_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> Wake:
    """Wait in IDLE on the selected mailbox of ``conn`` until the server reports a new mail,
    ``renew_s`` seconds pass or ``stop`` is set; then end IDLE with DONE and say which.

    ``stop`` is looked at every ``slice_s`` seconds. Raises ``imaplib.IMAP4.abort`` when the
    connection breaks or the server says BYE, ``imaplib.IMAP4.error`` when it refuses IDLE.
    """
    tag = conn._new_tag()
    conn.send(tag + b" IDLE\r\n")
    new_mail = False
    try:
        while True:
            line = _line(conn)
            if line.startswith(b"+"):
                break
            if line.startswith(tag + b" "):
                raise imaplib.IMAP4.error(
                    "IDLE abgelehnt: " + line[len(tag) + 1 :].decode("utf-8", "replace")[:200]
                )
            new_mail |= _untagged(line)
        deadline = clock() + renew_s
        stopped = False
        while not new_mail:
            if stop.is_set():
                stopped = True
                break
            remaining = deadline - clock()
            if remaining <= 0:
                break
            if conn.waiting(min(slice_s, remaining)):
                new_mail |= _untagged(_line(conn))
        conn.send(b"DONE\r\n")
        while True:
            line = _line(conn)
            if line.startswith(tag + b" "):
                status = line[len(tag) + 1 :]
                if not status.upper().startswith(b"OK"):
                    raise imaplib.IMAP4.error(
                        "IDLE beendet mit " + status.decode("utf-8", "replace")[:200]
                    )
                break
            new_mail |= _untagged(line)
    finally:
        conn.tagged_commands.pop(tag, None)
    if stopped:
        return Wake.STOP
    return Wake.NEW_MAIL if new_mail else Wake.RENEW


def _keepalive(sock: socket.socket) -> None:
    """Probe an idle connection after 60 s, every 20 s: a dead one fails within ~2 minutes,
    and routers keep the connection open."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 20), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


@dataclass
class ListenOptions:
    """How a listener behaves (``rathaus inbox lauschen`` sets them from its options)."""

    store: OriginalStore
    max_bytes: int
    allowed_networks: Sequence[str] = ()
    renew_s: float = DEFAULT_RENEW_S
    backoff_s: float = 1.0  # first pause after an error; doubled up to backoff_max_s
    backoff_max_s: float = DEFAULT_BACKOFF_MAX_S
    poll_interval_s: float = 60.0  # inbox.poll_interval_s, for servers without IDLE
    recheck_idle_s: float = RECHECK_IDLE_S
    slice_s: float = 1.0
    enqueue: Enqueue | None = None  # default: queue triage (poll_source's default)

    def __post_init__(self) -> None:
        if not 1 <= self.renew_s <= RFC_LIMIT_S:
            raise ValueError(
                f"IDLE muss spätestens nach {RFC_LIMIT_S} s (29 Minuten) erneuert werden, "
                f"nicht nach {self.renew_s:g} s."
            )


@dataclass
class ListenerStats:
    """What a listener did so far (for the log and for tests)."""

    connects: int = 0
    idles: int = 0
    wakes: int = 0
    polls: int = 0
    new_cases: int = 0
    mode: str = ""  # "idle" or "abruf" (the server lacks IDLE)
    errors: list[str] = field(default_factory=list)


class MailboxListener:
    """Keeps one IMAP source in IDLE and polls it whenever the server reports a new mail.

    :meth:`run` returns when ``stop`` is set or the source no longer wants IDLE (removed,
    switched off, ``idle`` taken out of its settings). It never raises for a source that
    cannot be reached: it reports the reason and connects again after a growing pause.
    """

    def __init__(
        self, db: Any, source_id: int, options: ListenOptions, stop: threading.Event
    ) -> None:
        self.db = db
        self.source_id = source_id
        self.options = options
        self.stop = stop
        self.stats = ListenerStats()
        self.connection: Any = None  # the listening connection while connected (for tests)

    def run(self) -> None:
        pause = self.options.backoff_s
        while not self.stop.is_set():
            established = self.stats.idles
            try:
                self._listen()
                continue
            except _SourceGone:
                return
            except IdleUnsupportedError:
                self._poll_instead()
                continue
            except ChannelError as exc:
                message = exc.message
            except Exception as exc:  # noqa: BLE001 - one broken mailbox must not end listening
                log.exception("IMAP IDLE für Quelle %s fehlgeschlagen", self.source_id)
                message = f"Unerwarteter Fehler ({type(exc).__name__}: {str(exc)[:200]})."
            finally:
                self.connection = None
            if self.stats.idles > established:
                pause = self.options.backoff_s  # it worked for a while: try again soon
            self._report(f"{message} Neuer Verbindungsversuch in {pause:g} s.")
            if self.stop.wait(pause):
                return
            pause = min(pause * 2, self.options.backoff_max_s)

    # --- one connection -----------------------------------------------------------------------

    def _config(self) -> tuple[imap.ImapConfig, str]:
        with self.db.session() as session:
            source = session.get(InboxSource, self.source_id)
            tenant = session.get(Tenant, source.tenant_id) if source is not None else None
            if (
                source is None
                or tenant is None
                or not source.is_active
                or not tenant.is_active
                or not (source.settings or {}).get("idle")
            ):
                raise _SourceGone
            cfg = imap.config_of(source, tenant, self.options.allowed_networks)
        password = os.environ.get(cfg.password_env)
        if not password:
            raise ChannelError(
                f"Das Passwort für das Postfach {cfg.username} fehlt: die Umgebungsvariable "
                f"{cfg.password_env} ist für `rathaus inbox lauschen` nicht gesetzt."
            )
        return cfg, password

    def _listen(self) -> None:
        cfg, password = self._config()
        with imap.connect(cfg, password) as conn:
            self.stats.connects += 1
            if "IDLE" not in imap._capabilities(conn):
                raise IdleUnsupportedError(f"{cfg.host} bietet kein IMAP IDLE an.")
            _keepalive(conn.sock)
            try:
                imap._ok(*conn.select(imap._quote(cfg.mailbox), readonly=True), "EXAMINE")
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                raise ChannelError(
                    f"Den Ordner „{cfg.mailbox}“ gibt es im Postfach {cfg.username} nicht "
                    f"({imap._server_text(exc)}). Bitte den Ordnernamen prüfen (meist INBOX)."
                ) from exc
            self.connection = conn
            self.stats.mode = "idle"
            # Whatever arrived while nobody listened (first start, after an interruption).
            self._poll()
            while not self.stop.is_set():
                try:
                    wake = idle(
                        conn,
                        stop=self.stop,
                        renew_s=self.options.renew_s,
                        slice_s=self.options.slice_s,
                    )
                except imaplib.IMAP4.abort:
                    raise
                except imaplib.IMAP4.error as exc:
                    raise ChannelError(
                        f"Der IMAP-Server {cfg.host} hat IDLE abgelehnt ({imap._server_text(exc)})."
                    ) from exc
                self.stats.idles += 1
                if wake is Wake.STOP:
                    break
                if wake is Wake.NEW_MAIL:
                    self.stats.wakes += 1
                # On renewal too: a notification that got lost is made up for here.
                self._poll()

    def _poll(self) -> None:
        with self.db.session() as session:
            source = session.get(InboxSource, self.source_id)
            if source is None:
                raise _SourceGone
            result = poll_source(
                session,
                source,
                store=self.options.store,
                max_bytes=self.options.max_bytes,
                enqueue=self.options.enqueue,
                allowed_networks=self.options.allowed_networks,
            )
        self.stats.polls += 1
        self.stats.new_cases += len(result.new_case_ids)
        if result.new_case_ids:
            log.info("Quelle %s (IDLE): %s", result.source, result.summary())

    def _poll_instead(self) -> None:
        """Poll every ``poll_interval_s`` (claimed like the periodic job), then ask again."""
        self.stats.mode = "abruf"
        log.warning(
            "Quelle %s: der Server bietet kein IMAP IDLE an; sie wird alle %g s abgerufen.",
            self.source_id,
            self.options.poll_interval_s,
        )
        until = time.monotonic() + self.options.recheck_idle_s
        while not self.stop.is_set() and time.monotonic() < until:
            with self.db.session() as session:
                due = claim(
                    session,
                    self.source_id,
                    interval_s=self.options.poll_interval_s,
                    now=utcnow(),
                )
            if due:
                with self.db.session() as session:
                    source = session.get(InboxSource, self.source_id)
                    if source is None or not source.is_active:
                        return
                    # claim() already moved last_polled_at: poll without asking again.
                    poll_source(
                        session,
                        source,
                        store=self.options.store,
                        max_bytes=self.options.max_bytes,
                        enqueue=self.options.enqueue,
                        allowed_networks=self.options.allowed_networks,
                    )
                self.stats.polls += 1
            self.stop.wait(min(self.options.poll_interval_s, max(0.0, until - time.monotonic())))

    def _report(self, message: str) -> None:
        text = f"IMAP IDLE: {message}"
        self.stats.errors.append(text)
        log.warning("Quelle %s: %s", self.source_id, text)
        with self.db.session() as session:
            source = session.get(InboxSource, self.source_id)
            if source is not None:
                source.last_error = text[:MAX_ERROR_CHARS]
                session.commit()


# --- all sources ------------------------------------------------------------------------------


def idle_sources(session: Any, *, tenant_id: int | None = None) -> dict[int, str]:
    """Active IMAP sources with ``idle: true`` of active municipalities, each with a fingerprint
    of its settings (a listener is restarted when they change)."""
    query = (
        select(InboxSource)
        .join(Tenant, Tenant.id == InboxSource.tenant_id)
        .where(
            InboxSource.kind == "imap",
            InboxSource.is_active.is_(True),
            Tenant.is_active.is_(True),
        )
        .order_by(InboxSource.id)
    )
    if tenant_id is not None:
        query = query.where(InboxSource.tenant_id == tenant_id)
    return {
        source.id: json.dumps(source.settings or {}, sort_keys=True)
        for source in session.scalars(query)
        if (source.settings or {}).get("idle")
    }


@dataclass
class _Running:
    fingerprint: str
    listener: MailboxListener
    stop: threading.Event
    thread: threading.Thread


def listen(
    db: Any,
    options: ListenOptions,
    *,
    stop: threading.Event,
    tenant_id: int | None = None,
    rescan_s: float = RESCAN_S,
    join_timeout_s: float = 30.0,
    on_change: Callable[[dict[int, MailboxListener]], None] | None = None,
) -> None:
    """Run a :class:`MailboxListener` thread per IDLE source until ``stop`` is set.

    The sources are read again every ``rescan_s`` seconds: new ones get a listener, removed or
    changed ones lose theirs (a changed one gets a new one). ``on_change`` sees the listeners
    after each change. On stop every listener ends IDLE and logs out; a poll that is running
    gets ``join_timeout_s`` seconds to finish.
    """
    running: dict[int, _Running] = {}
    try:
        while not stop.is_set():
            with db.session() as session:
                wanted = idle_sources(session, tenant_id=tenant_id)
            changed = False
            for source_id in list(running):
                entry = running[source_id]
                if wanted.get(source_id) != entry.fingerprint or not entry.thread.is_alive():
                    entry.stop.set()
                    entry.thread.join(join_timeout_s)
                    del running[source_id]
                    changed = True
            for source_id, fingerprint in wanted.items():
                if source_id in running:
                    continue
                own_stop = threading.Event()
                listener = MailboxListener(db, source_id, options, own_stop)
                thread = threading.Thread(
                    target=listener.run, name=f"imap-idle-{source_id}", daemon=True
                )
                thread.start()
                running[source_id] = _Running(fingerprint, listener, own_stop, thread)
                changed = True
            if changed and on_change is not None:
                on_change({i: entry.listener for i, entry in running.items()})
            stop.wait(rescan_s)
    finally:
        for entry in running.values():
            entry.stop.set()
        deadline = time.monotonic() + join_timeout_s
        for entry in running.values():
            entry.thread.join(max(0.0, deadline - time.monotonic()))
