"""A private Dovecot IMAP server for tests: free ports on 127.0.0.1, a temporary mail folder,
any user name logs in with :data:`PASSWORD` and gets a fresh, empty mailbox."""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rathaus.inbox.channels import imap
from tests.factories import free_port
from tests.tls import self_signed

DOVECOT = shutil.which("dovecot") or next(
    (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)), None
)
MISSING = "Dovecot fehlt: `sudo apt-get install dovecot-imapd` (siehe scripts/system-deps.sh)."
PASSWORD = "imap-test-passwort"


@dataclass
class Dovecot:
    port: int  # plain IMAP with STARTTLS
    tls_port: int  # implicit TLS
    cert: Path
    log: Path

    def new_user(self) -> str:
        # Any user name logs in with PASSWORD (static passdb): a fresh, empty mailbox per test.
        return f"u{uuid.uuid4().hex[:10]}"

    def client(self, user: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(user, PASSWORD)
        return conn

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        conn = self.client(user)
        try:
            typ, data = conn.append(folder, None, None, raw)
            assert typ == "OK", data
        finally:
            conn.logout()

    def count(self, user: str, folder: str = "INBOX") -> int:
        conn = self.client(user)
        try:
            typ, data = conn.select(imap._quote(folder), readonly=True)
            return int(data[0]) if typ == "OK" else -1
        finally:
            conn.logout()


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Dovecot beendet: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("Dovecot hat seinen Port nicht geöffnet")


@contextmanager
def running_dovecot(capability: str | None = None) -> Iterator[Dovecot]:
    """A private Dovecot on free ports; root runs its processes as ``nobody``. ``capability``
    replaces what the server announces after login (e.g. a list without IDLE)."""
    root = Path(tempfile.mkdtemp(prefix="rh-dovecot-"))
    os.chmod(root, 0o755)
    user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    entry = pwd.getpwnam(user)
    group = grp.getgrgid(entry.pw_gid).gr_name
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    cert, _key = self_signed(root)
    port, tls_port = free_port(), free_port()
    log = root / "dovecot.log"
    announce = f"imap_capability = {capability}" if capability else ""
    (root / "dovecot.conf").write_text(
        textwrap.dedent(
            f"""\
            base_dir = {root}/run
            state_dir = {root}/state
            log_path = {log}
            protocols = imap
            listen = 127.0.0.1
            ssl = yes
            ssl_cert = <{cert}
            ssl_key = <{root}/key.pem
            disable_plaintext_auth = no
            auth_mechanisms = plain login
            default_internal_user = {user}
            default_internal_group = {group}
            default_login_user = {user}
            first_valid_uid = 1
            mail_location = maildir:{root}/mail/%u
            {announce}
            service imap-login {{
              chroot =
              inet_listener imap {{
                address = 127.0.0.1
                port = {port}
              }}
              inet_listener imaps {{
                address = 127.0.0.1
                port = {tls_port}
              }}
            }}
            service anvil {{
              chroot =
            }}
            passdb {{
              driver = static
              args = password={PASSWORD}
            }}
            userdb {{
              driver = static
              args = uid={entry.pw_uid} gid={entry.pw_gid} home={root}/mail/%u
            }}
            """
        )
    )
    if os.geteuid() == 0:
        shutil.chown(root / "mail", user, group)
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, process, log)
        _wait_for_port(tls_port, process, log)
        yield Dovecot(port=port, tls_port=tls_port, cert=cert, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
