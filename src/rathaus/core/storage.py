"""Original files, kept unchanged on disk and addressed by SHA-256, one folder per tenant.

Paths are derived from the hash only, never from a user-supplied file name, so a name like
``../../etc/passwd`` cannot leave the store. Writing is atomic (temporary file, then rename); the
same bytes stored twice are one file. A write is durable (``fsync`` of the file and its folders)
when :meth:`OriginalStore.put` returns, or, with ``durable=False``, once
:meth:`OriginalStore.make_durable` has run for it: the inbox does that for a whole batch right
before the transaction that records the originals commits (one ``fsync`` per file costs several
milliseconds; run side by side, the file system serves them with one journal commit).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rathaus.core.errors import RathausError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# fsync calls that may run at the same time (they wait for the disk, not for the CPU).
SYNC_THREADS = 8


class StorageError(RathausError):
    """An original cannot be written or read back intact."""


@dataclass(frozen=True)
class StoredOriginal:
    sha256: str
    size: int
    relative_path: str
    already_present: bool


class OriginalStore:
    """The file store below ``root`` (usually ``settings.originals_dir``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, tenant_id: int, sha256: str) -> Path:
        if not _HEX64.match(sha256) or tenant_id < 0:
            raise StorageError(f"Ungültiger Dateischlüssel „{sha256[:80]}“.")
        return self.root / str(int(tenant_id)) / sha256[:2] / sha256

    def put(self, tenant_id: int, data: bytes, *, durable: bool = True) -> StoredOriginal:
        """Store ``data`` for the tenant; returns its hash and where it lies (relative to root).

        With ``durable=False`` the file is in place but perhaps still only in the page cache:
        the caller must pass its path to :meth:`make_durable` before it records the original
        anywhere (e.g. before its database transaction commits)."""
        sha256 = hashlib.sha256(data).hexdigest()
        path = self._path(tenant_id, sha256)
        relative = str(path.relative_to(self.root))
        try:
            present = _holds(path, data)
            if not present:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    if durable:
                        handle.flush()
                        os.fsync(handle.fileno())
                os.chmod(tmp, 0o440)
                os.replace(tmp, path)
            if durable:
                # Also when it was there already: an earlier non-durable write (of a transaction
                # that was rolled back) may not have reached the disk yet.
                self.make_durable([relative])
        except OSError as exc:
            raise _write_error(exc) from exc
        return StoredOriginal(sha256, len(data), relative, already_present=present)

    def make_durable(self, relative_paths: Iterable[str]) -> None:
        """``fsync`` the files (as returned by :meth:`put`) and the folders that name them, side
        by side; raises :class:`StorageError` if one cannot be synced (or is missing)."""
        files = {self.root / p for p in relative_paths}
        if not files:
            return
        # The hash folder and the tenant folder may have been created for these files.
        folders = {f.parent for f in files} | {f.parent.parent for f in files}
        targets = sorted(files) + sorted(folders)
        try:
            if len(targets) == 1:
                _fsync(targets[0])
            else:
                with ThreadPoolExecutor(min(SYNC_THREADS, len(targets))) as pool:
                    list(pool.map(_fsync, targets))
        except OSError as exc:
            raise _write_error(exc) from exc

    def get(self, tenant_id: int, sha256: str) -> bytes:
        """The original bytes; raises :class:`StorageError` if missing or altered."""
        path = self._path(tenant_id, sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise StorageError(f"Das Original {sha256[:12]}… fehlt im Dateispeicher.") from exc
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StorageError(
                f"Das Original {sha256[:12]}… wurde verändert (Prüfsumme stimmt nicht)."
            )
        return data

    def exists(self, tenant_id: int, sha256: str) -> bool:
        return self._path(tenant_id, sha256).exists()

    def delete(self, tenant_id: int, sha256: str) -> bool:
        """Remove an original (retention, erasure); True if a file was there."""
        path = self._path(tenant_id, sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` already holds exactly ``data`` (compared byte for byte, not by size: a
    file written without ``fsync`` right before a crash may have the size but not the bytes)."""
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except FileNotFoundError:
        return False


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_error(exc: OSError) -> StorageError:
    return StorageError(
        f"Das Original konnte nicht gespeichert werden ({exc.strerror or exc}). "
        "Bitte Speicherplatz und Rechte von RATHAUS_DATA_DIR prüfen."
    )
