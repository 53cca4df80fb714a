"""Original files, kept unchanged on disk and addressed by SHA-256, one folder per tenant.

Paths are derived from the hash only, never from a user-supplied file name, so a name like
``../../etc/passwd`` cannot leave the store. Writing is atomic (temporary file, then rename); the
same bytes stored twice are one file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rathaus.core.errors import RathausError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


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

    def put(self, tenant_id: int, data: bytes) -> StoredOriginal:
        """Store ``data`` for the tenant; returns its hash and where it lies (relative to root)."""
        sha256 = hashlib.sha256(data).hexdigest()
        path = self._path(tenant_id, sha256)
        relative = str(path.relative_to(self.root))
        if path.exists() and path.stat().st_size == len(data):
            return StoredOriginal(sha256, len(data), relative, already_present=True)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o440)
            os.replace(tmp, path)
        except OSError as exc:
            raise StorageError(
                f"Das Original konnte nicht gespeichert werden ({exc.strerror}). "
                "Bitte Speicherplatz und Rechte von RATHAUS_DATA_DIR prüfen."
            ) from exc
        return StoredOriginal(sha256, len(data), relative, already_present=False)

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
