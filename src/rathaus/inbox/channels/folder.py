"""Watched folder (e.g. a scanner's target): every finished file becomes one case, exactly once.

Settings of an ``InboxSource(kind="folder")`` (checked by :func:`check_settings`):

- ``path``: absolute path of the folder (resolved once, when the source is created).
- ``done_dir``: where taken files go (default ``<path>/erledigt``); ``oversize_dir``: where files
  too large to read go (default ``<path>/zu-gross``). Relative values are below ``path``.

Which files are taken: regular files directly in the folder that are not hidden (``.name``,
``~$name``), have no ``.part``/``.tmp``/``.crdownload`` suffix and were not modified in the last
two seconds (a scanner may still be writing). Subfolders are not read. Symbolic links are refused
(and reported), whether they point into the folder or out of it; files are opened with
``O_NOFOLLOW`` and checked to be the file that was listed, so a file swapped for a link in between
is refused too.

The ledger key is ``name:size:sha256``; after the commit the file is moved away. If the move
fails or the process dies before it, the next poll finds the key in the ledger and only moves
the file: it never becomes a second case. A file larger than ``inbox.max_upload_mb`` is not read
into memory: it is hashed in chunks, moved to ``oversize_dir`` unchanged, and a case in the triage
queue names the file and says why (German), so nothing is lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from rathaus.core.models import InboxSource, Tenant
from rathaus.core.storage import OriginalStore
from rathaus.inbox.channels.poll import (
    ChannelError,
    PollResult,
    SourceSettingsError,
    is_taken,
    take_item,
)
from rathaus.inbox.service import IncomingItem

PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".download")
SETTLE_S = 2.0
MAX_FILES_PER_POLL = 200
CHUNK = 1024 * 1024
MAX_NAME_IN_KEY = 200


@dataclass(frozen=True)
class FolderConfig:
    path: Path
    done_dir: Path
    oversize_dir: Path


def _below(base: Path, value: Any, default: str) -> Path:
    raw = str(value or "").strip() or default
    candidate = Path(raw)
    return candidate if candidate.is_absolute() else base / candidate


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Validated settings of a folder source with resolved paths; German error otherwise."""
    unknown = sorted(set(settings) - {"path", "done_dir", "oversize_dir"})
    if unknown:
        raise SourceSettingsError(
            f"Unbekannte Einstellung(en) {', '.join(unknown)}; erlaubt sind path, done_dir "
            "und oversize_dir."
        )
    raw = str(settings.get("path") or "").strip()
    if not raw or not Path(raw).is_absolute():
        raise SourceSettingsError(
            f"Der Ordner „{raw[:200]}“ muss als absoluter Pfad angegeben werden, z. B. "
            "/srv/rathaus/scanner."
        )
    path = Path(os.path.realpath(raw))
    if not path.is_dir():
        raise SourceSettingsError(
            f"Den Ordner {path} gibt es nicht. Bitte anlegen und dem Dienstkonto von Rathaus "
            "Lese- und Schreibrechte geben."
        )
    done = Path(os.path.realpath(_below(path, settings.get("done_dir"), "erledigt")))
    oversize = Path(os.path.realpath(_below(path, settings.get("oversize_dir"), "zu-gross")))
    for label, target in (("Ablageordner", done), ("Ordner für zu große Dateien", oversize)):
        if target == path or path.is_relative_to(target):
            raise SourceSettingsError(
                f"Der {label} {target} darf nicht der beobachtete Ordner selbst oder ihm "
                "übergeordnet sein. Bitte einen Unterordner wie „erledigt“ wählen."
            )
    return {"path": str(path), "done_dir": str(done), "oversize_dir": str(oversize)}


def config_of(source: InboxSource) -> FolderConfig:
    stored = dict(source.settings or {})
    checked = check_settings(stored)
    if checked["path"] != stored.get("path"):
        raise ChannelError(
            f"Der Ordner {stored.get('path')} ist inzwischen eine Verknüpfung nach "
            f"{checked['path']} und wird deshalb nicht gelesen. Bitte die Quelle mit dem "
            "wirklichen Ordner neu anlegen."
        )
    return FolderConfig(
        Path(checked["path"]), Path(checked["done_dir"]), Path(checked["oversize_dir"])
    )


def _ready(entry: os.DirEntry[str], now: float, result: PollResult) -> os.stat_result | None:
    """The file's lstat if it should be taken now; refusals are reported in ``result``."""
    name = entry.name
    if name.startswith((".", "~$")) or name.lower().endswith(PARTIAL_SUFFIXES):
        return None
    if entry.is_symlink():
        folder = Path(entry.path).parent
        outside = not Path(os.path.realpath(entry.path)).is_relative_to(folder)
        result.errors.append(
            f"„{name}“ ist eine Verknüpfung (Symlink){' aus dem Ordner hinaus' if outside else ''} "
            "und wird aus Sicherheitsgründen nicht gelesen. Bitte die Datei selbst in den Ordner "
            "legen und die Verknüpfung löschen."
        )
        return None
    try:
        info = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None  # removed meanwhile
    if stat.S_ISDIR(info.st_mode):
        return None
    if not stat.S_ISREG(info.st_mode):
        result.errors.append(
            f"„{name}“ ist keine normale Datei (Gerät, Pipe oder Socket) und wird nicht gelesen. "
            "Bitte aus dem Ordner entfernen."
        )
        return None
    if now - info.st_mtime < SETTLE_S:
        result.skipped += 1
        return None
    return info


def _open_listed(path: str, listed: os.stat_result) -> int | None:
    """A read descriptor of exactly the file that was listed (no link, not swapped)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    info = os.fstat(fd)
    if (
        not stat.S_ISREG(info.st_mode)
        or info.st_ino != listed.st_ino
        or info.st_dev != listed.st_dev
    ):
        os.close(fd)
        return None
    return fd


def _read(fd: int, limit: int) -> bytes:
    chunks = []
    total = 0
    while total <= limit:
        chunk = os.read(fd, min(CHUNK, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _hash(fd: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := os.read(fd, CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _free_name(directory: Path, name: str) -> Path:
    target = directory / name
    stem, suffix = os.path.splitext(name)
    n = 2
    while target.exists() or target.is_symlink():
        target = directory / f"{stem} ({n}){suffix}"
        n += 1
    return target


def _target(directory: Path, name: str) -> Path:
    with contextlib.suppress(OSError):  # reported by _move
        directory.mkdir(parents=True, exist_ok=True)
    return _free_name(directory, name)


def _move(source_file: Path, target: Path, reference: str, result: PollResult) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source_file), str(target))
    except OSError as exc:
        result.errors.append(
            f"„{source_file.name}“ ist erfasst{f' ({reference})' if reference else ''}, konnte "
            f"aber nicht nach {target.parent} verschoben werden ({exc.strerror}). Bitte die "
            "Schreibrechte prüfen; die Datei wird kein zweites Mal erfasst."
        )


def poll(
    session: Session,
    source: InboxSource,
    tenant: Tenant,
    *,
    store: OriginalStore,
    max_bytes: int,
    result: PollResult,
) -> None:
    """Take every finished file in the folder (at most 200 per poll), then move it away."""
    cfg = config_of(source)
    try:
        entries = sorted(os.scandir(cfg.path), key=lambda e: e.name)
    except OSError as exc:
        raise ChannelError(
            f"Der Ordner {cfg.path} ist nicht lesbar ({exc.strerror}). Bitte prüfen, ob er "
            "existiert und das Dienstkonto von Rathaus ihn lesen darf."
        ) from exc
    now = time.time()
    taken = 0
    for entry in entries:
        if taken >= MAX_FILES_PER_POLL:
            break
        listed = _ready(entry, now, result)
        if listed is None:
            continue
        fd = _open_listed(entry.path, listed)
        if fd is None:
            result.errors.append(
                f"„{entry.name}“ konnte nicht sicher geöffnet werden (Verknüpfung, ausgetauscht "
                "oder keine Leserechte) und wird nicht gelesen. Bitte prüfen."
            )
            continue
        taken += 1
        try:
            _take_file(
                session, source, tenant, cfg, entry.name, fd, listed, store, max_bytes, result
            )
        except OSError as exc:
            result.errors.append(
                f"„{entry.name}“ konnte nicht gelesen werden ({exc.strerror}). Die Datei bleibt "
                "liegen; bitte Datenträger und Rechte prüfen."
            )
        finally:
            os.close(fd)


def _take_file(
    session: Session,
    source: InboxSource,
    tenant: Tenant,
    cfg: FolderConfig,
    name: str,
    fd: int,
    listed: os.stat_result,
    store: OriginalStore,
    max_bytes: int,
    result: PollResult,
) -> None:
    from rathaus.inbox.documents import detect_media_type

    path = cfg.path / name
    oversized = listed.st_size > max_bytes
    if oversized:
        sha256, size = _hash(fd)
        data = b""
    else:
        data = _read(fd, max_bytes)
        sha256, size = hashlib.sha256(data).hexdigest(), len(data)
    if size != listed.st_size:
        result.skipped += 1  # still being written after all: next poll
        return
    key = f"{name[:MAX_NAME_IN_KEY]}:{size}:{sha256}"
    target = _target(cfg.oversize_dir if oversized else cfg.done_dir, name)
    if is_taken(session, source, key):
        result.already_taken += 1
        _move(path, target, "", result)
        return
    review_reason = None
    if oversized:
        review_reason = (
            f"Die Datei „{name}“ ist {size / 1024 / 1024:.1f} MB groß und damit größer als "
            f"erlaubt ({max_bytes / 1024 / 1024:.0f} MB, RATHAUS_INBOX__MAX_UPLOAD_MB); sie "
            f"wurde nicht gelesen. Das Original liegt unverändert unter {target} (SHA-256 "
            f"{sha256}). Bitte von Hand bearbeiten oder verkleinert erneut einlegen."
        )
        note = (
            f"Zu große Datei aus dem Ordner {cfg.path}\nName: {name}\nGröße: {size} Bytes\n"
            f"SHA-256: {sha256}\nAbgelegt unter: {target}\n"
        )
        item = IncomingItem(
            channel="ordner",
            original=note.encode(),
            filename=f"{name[:280]}.zu-gross.txt",
            media_type="text/plain",
            subject=f"Zu große Datei: {name}",
            body=review_reason,
            fields={"datei": {"name": name, "size": size, "sha256": sha256}},
        )
    else:
        item = IncomingItem(
            channel="ordner",
            original=data,
            filename=name,
            media_type=detect_media_type(data),
            subject=name,
        )
    outcome = take_item(
        session,
        source=source,
        tenant=tenant,
        key=key,
        item=item,
        store=store,
        review_reason=review_reason,
    )
    result.count(outcome, review_reason, "")
    _move(path, target, outcome.reference, result)
