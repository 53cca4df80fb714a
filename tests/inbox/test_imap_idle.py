"""IMAP IDLE against a real Dovecot: a mail appended while the listener idles becomes a case
within seconds, exactly once, also across a cut connection; renewal, the SSRF guard, servers
without IDLE and SIGTERM on ``rathaus inbox lauschen``."""

from __future__ import annotations

import contextlib
import imaplib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rathaus.core.db import Database
from rathaus.core.models import Case, InboxSource, InboxSourceItem
from rathaus.core.storage import OriginalStore
from rathaus.inbox.channels import idle, imap, poll
from tests.factories import build_tenant, free_port
from tests.inbox.dovecot import DOVECOT, MISSING, PASSWORD, Dovecot, running_dovecot
from tests.inbox.test_imap import ENV, LOCAL, mail

pytestmark = pytest.mark.skipif(DOVECOT is None, reason=MISSING)
NO_IDLE = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS MOVE"


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


class Proxy:
    """A TCP relay in front of Dovecot whose connections the test can cut (a network drop)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.accepted = 0
        self.sockets: list[socket.socket] = []
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for s in (source, target):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.sockets.clear()

    def close(self) -> None:
        self.server.close()
        self.cut()


def _source(db: Database, port: int, user: str, host: str = "127.0.0.1") -> int:
    with db.session() as session:
        world = build_tenant(session, "alpha")
        source = poll.create_source(
            session,
            tenant=world.tenant,
            kind="imap",
            name="Poststelle",
            settings={
                "host": host,
                "port": port,
                "tls": "none",
                "username": user,
                "password_env": ENV,
                "idle": True,
            },
            allowed_networks=LOCAL,
        )
        return source.id


def _subjects(db: Database) -> list[str]:
    with db.session() as session:
        return sorted(session.scalars(select(Case.subject).where(Case.channel == "email")))


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> float:
    """Seconds until ``condition`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"nach {timeout} s nicht eingetreten")
        time.sleep(0.05)
    return time.monotonic() - start


class Running:
    def __init__(self, listener: idle.MailboxListener) -> None:
        self.listener = listener
        self.thread = threading.Thread(target=listener.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.listener.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


def _listener(db, tmp_path, source_id, queued, **options) -> Running:  # type: ignore[no-untyped-def]
    values = {"allowed_networks": LOCAL, "renew_s": 600, "backoff_s": 0.2, "slice_s": 0.1}
    values.update(options)
    settings = idle.ListenOptions(
        store=OriginalStore(tmp_path / "originals"),
        max_bytes=10**7,
        enqueue=queued.append,
        **values,  # type: ignore[arg-type]
    )
    return Running(idle.MailboxListener(db, source_id, settings, threading.Event()))


def _idling(listener: idle.MailboxListener, connects: int = 1) -> Callable[[], bool]:
    return lambda: listener.stats.connects >= connects and listener.connection is not None


def test_mail_becomes_a_case_within_seconds_exactly_once_also_across_a_reconnect(
    db, dovecot, tmp_path, monkeypatch
):
    monkeypatch.setenv(ENV, PASSWORD)
    proxy = Proxy(dovecot.port)
    user = dovecot.new_user()
    dovecot.append(user, mail("Lag schon da"))
    source_id = _source(db, proxy.port, user)
    queued: list[list[int]] = []
    running = _listener(db, tmp_path, source_id, queued)
    listener = running.listener
    try:
        _wait(_idling(listener))
        _wait(lambda: _subjects(db) == ["Lag schon da"])  # taken when listening began

        time.sleep(0.5)  # the listener is in IDLE now; renewal only after 600 s
        dovecot.append(user, mail("Während IDLE"))
        took = _wait(lambda: "Während IDLE" in _subjects(db))
        assert took < 5, took
        assert listener.stats.wakes >= 1 and listener.stats.connects == 1

        # The network drops; a mail arrives meanwhile; the listener connects again.
        proxy.cut()
        dovecot.append(user, mail("Während der Unterbrechung"))
        _wait(lambda: "Während der Unterbrechung" in _subjects(db))
        _wait(_idling(listener, connects=2))
        time.sleep(0.5)
        dovecot.append(user, mail("Nach dem Wiederverbinden"))
        took = _wait(lambda: "Nach dem Wiederverbinden" in _subjects(db))
        assert took < 5, took
        time.sleep(1)  # any late second wake-up would have taken its mail again by now
    finally:
        running.stop()
        proxy.close()

    assert _subjects(db) == sorted(
        ["Lag schon da", "Während IDLE", "Während der Unterbrechung", "Nach dem Wiederverbinden"]
    )
    with db.session() as session:
        assert session.scalar(select(func.count(InboxSourceItem.id))) == 4
        source = session.get(InboxSource, source_id)
        assert source.last_error is None  # cleared by the poll after the reconnect
    queued_ids = [i for ids in queued for i in ids]
    assert len(queued_ids) == len(set(queued_ids)) == 4  # each case queued for triage once
    (error,) = listener.stats.errors
    assert error.startswith("IMAP IDLE: Die Verbindung zum IMAP-Server") and "unterbrochen" in error
    assert "Neuer Verbindungsversuch in 0.2 s" in error
    assert listener.connection is None


def test_idle_over_tls(db, dovecot, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, PASSWORD)
    user = dovecot.new_user()
    source_id = _source(db, dovecot.tls_port, user, host="localhost")
    with db.session() as session:
        source = session.get(InboxSource, source_id)
        source.settings = {**source.settings, "tls": "ssl", "ca_file": str(dovecot.cert)}
    running = _listener(db, tmp_path, source_id, [])
    try:
        _wait(_idling(running.listener))
        time.sleep(0.5)
        dovecot.append(user, mail("Über TLS während IDLE"))
        took = _wait(lambda: _subjects(db) == ["Über TLS während IDLE"])
        assert took < 5, took
    finally:
        running.stop()
    assert running.listener.stats.errors == [] and running.listener.stats.wakes >= 1


def test_idle_is_renewed_and_the_mailbox_polled_each_time(db, dovecot, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, PASSWORD)
    user = dovecot.new_user()
    source_id = _source(db, dovecot.port, user)
    running = _listener(db, tmp_path, source_id, [], renew_s=1)
    try:
        _wait(lambda: running.listener.stats.idles >= 3)
    finally:
        running.stop()
    stats = running.listener.stats
    assert stats.connects == 1 and stats.errors == [] and stats.wakes == 0
    assert stats.polls >= 3  # the first, and one per renewal
    with pytest.raises(ValueError, match="29 Minuten"):
        idle.ListenOptions(store=OriginalStore(tmp_path), max_bytes=1, renew_s=30 * 60)


def test_ssrf_guard_applies_and_reconnects_back_off(db, dovecot, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, PASSWORD)
    proxy = Proxy(dovecot.port)
    # A host name that resolves to the loopback address, without network.allowed_networks.
    source_id = _source(db, proxy.port, dovecot.new_user(), host="localhost")
    running = _listener(
        db, tmp_path, source_id, [], allowed_networks=(), backoff_s=0.1, backoff_max_s=0.4
    )
    try:
        _wait(lambda: len(running.listener.stats.errors) >= 5)
    finally:
        running.stop()
        proxy.close()
    errors = running.listener.stats.errors
    assert proxy.accepted == 0  # never connected
    assert all("nicht erlaubt" in e or "Loopback" in e for e in errors), errors[0]
    pauses = [e.rsplit("in ", 1)[1] for e in errors[:5]]
    assert pauses == ["0.1 s.", "0.2 s.", "0.4 s.", "0.4 s.", "0.4 s."]
    with db.session() as session:
        assert session.get(InboxSource, source_id).last_error.startswith("IMAP IDLE: ")


def test_server_without_idle_is_polled_instead(db, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, PASSWORD)
    with running_dovecot(capability=NO_IDLE) as server:
        user = server.new_user()
        client = server.client(user)
        try:
            assert b"IDLE" not in b" ".join(client.capability()[1])
        finally:
            client.logout()
        source_id = _source(db, server.port, user)
        running = _listener(db, tmp_path, source_id, [], poll_interval_s=1)
        try:
            _wait(lambda: running.listener.stats.mode == "abruf")
            server.append(user, mail("Ohne IDLE"))
            took = _wait(lambda: _subjects(db) == ["Ohne IDLE"])
            assert took < 5, took
            time.sleep(1.5)
        finally:
            running.stop()
    assert _subjects(db) == ["Ohne IDLE"]
    assert running.listener.stats.errors == [] and running.listener.stats.idles == 0


def test_reader_waits_in_slices_and_reads_literals():
    # A scripted server: greeting and CAPABILITY, then whatever the test sends.
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []

    def serve() -> None:
        peer, _ = server.accept()
        accepted.append(peer)
        peer.sendall(b"* OK bereit\r\n")
        tag = peer.recv(1000).split(b" ")[0]
        peer.sendall(b"* CAPABILITY IMAP4rev1 IDLE\r\n" + tag + b" OK fertig\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    conn = imap._PinnedIMAP4("localhost", port, "127.0.0.1", 5)
    thread.join(5)
    (peer,) = accepted
    try:
        assert not conn.waiting(0.05)
        peer.sendall(b"* 3 EXI")
        assert conn.waiting(0.05)
        peer.sendall(b"STS\r\n* 1 FETCH (BODY[] {5}\r\nhallo)\r\n")
        assert idle._untagged(idle._line(conn)) is True
        assert idle._line(conn) == b"* 1 FETCH (BODY[] )"
        assert not conn.waiting(0.05)
        peer.sendall(b"* BYE Server wird beendet\r\n")
        with pytest.raises(imaplib.IMAP4.abort, match="Server wird beendet"):
            idle._untagged(idle._line(conn))
    finally:
        peer.close()
        conn.shutdown()
        server.close()


def test_listen_follows_the_sources_and_cli_stops_on_sigterm(db, dovecot, tmp_path):
    user = dovecot.new_user()
    source_id = _source(db, dovecot.port, user)
    env = {
        **os.environ,
        "RATHAUS_MODE": "demo",
        "RATHAUS_DATA_DIR": str(tmp_path / "data"),
        "RATHAUS_DATABASE_URL": db.url,
        "RATHAUS_QUEUE__BACKEND": "sqlite",
        "RATHAUS_DEFAULT_TENANT": "alpha",
        ENV: PASSWORD,
        "RATHAUS_NETWORK__ALLOWED_NETWORKS": '["127.0.0.1/32"]',
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "rathaus", "inbox", "lauschen", "--erneuern-nach", "600"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        lines = []
        while not any("Lausche per IMAP IDLE auf 1" in line for line in lines):
            lines.append(process.stdout.readline())
            assert lines[-1] and len(lines) < 50, lines  # log lines come first
        with db.session() as session:
            _wait(lambda: session.get(InboxSource, source_id).last_polled_at is not None, 30)
        dovecot.append(user, mail("Über die Kommandozeile"))
        _wait(lambda: _subjects(db) == ["Über die Kommandozeile"], 15)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=15)
        output = "".join(lines) + rest
        assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "IMAP IDLE beendet." in output

    # Switched off: the manager ends the source's listener when it reads the list again.
    seen: list[set[int]] = []
    stop = threading.Event()

    def on_change(listeners: dict[int, idle.MailboxListener]) -> None:
        seen.append(set(listeners))
        if listeners:
            with db.session() as session:
                source = session.get(InboxSource, source_id)
                source.settings = {k: v for k, v in source.settings.items() if k != "idle"}
        else:
            stop.set()

    options = idle.ListenOptions(
        store=OriginalStore(tmp_path / "o"), max_bytes=10**7, allowed_networks=LOCAL
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV, PASSWORD)
        thread = threading.Thread(
            target=idle.listen,
            args=(db, options),
            kwargs={"stop": stop, "rescan_s": 0.3, "on_change": on_change},
        )
        thread.start()
        thread.join(15)
        stop.set()
    assert not thread.is_alive()
    assert seen == [{source_id}, set()]
