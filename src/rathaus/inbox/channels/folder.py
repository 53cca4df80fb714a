"""Watched folder (e.g. a scanner's target): every finished file becomes one case, exactly once.

Settings of an ``InboxSource(kind="folder")`` (checked by :func:`check_settings`):

- ``path``: absolute path of the folder (resolved once, when the source is created).
- ``done_dir``: where taken files go (default ``<path>/erledigt``); ``oversize_dir``: where files
  too large to read go (default ``<path>/zu-gross``). Relative values are below ``path``.

Which folders may be watched (ASVS 12.3, :class:`FolderRoots`): the administration of the
installation allows root folders (``inbox.folder_roots``; in demo mode without it
``<data_dir>/eingang``). A municipality may only use folders inside ``<root>/<its slug>`` (its
area), so two municipalities can never watch, or drop files into, each other's folders. All
three folders are resolved (``realpath``: symbolic links and ``..``) and must lie in an area of
the source's municipality, never in ``data_dir`` (outside ``<data_dir>/eingang``) or
``models_dir``. The check runs when a source is created and again at every poll, so a folder
swapped for a link later or a root withdrawn from the settings stops the source with a German
message.

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


DEFAULT_ROOT_NAME = "eingang"  # <data_dir>/eingang: the root in demo mode without folder_roots
ROOTS_SETTING = "inbox.folder_roots (RATHAUS_INBOX__FOLDER_ROOTS)"


@dataclass(frozen=True)
class FolderConfig:
    path: Path
    done_dir: Path
    oversize_dir: Path


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


@dataclass(frozen=True)
class FolderRoots:
    """The root folders the installation allows for folder sources (see the module text)."""

    roots: tuple[Path, ...] = ()
    data_dir: Path | None = None
    models_dir: Path | None = None
    default_root: Path | None = None  # the demo root, created on demand

    @classmethod
    def from_settings(cls, settings: Any) -> FolderRoots:
        configured = tuple(Path(root) for root in settings.inbox.folder_roots)
        default = None
        if not configured and settings.is_demo:
            default = Path(settings.data_dir).absolute() / DEFAULT_ROOT_NAME
            configured = (default,)
        return cls(
            roots=configured,
            data_dir=Path(settings.data_dir).absolute(),
            models_dir=Path(settings.models_dir).absolute(),
            default_root=default,
        )

    def areas(self, tenant_slug: str, *, create: bool = False) -> list[Path]:
        """The folders below which ``tenant_slug`` may watch (resolved), one per root.

        ``create``: make the area of the demo root if it is missing (never a configured one)."""
        if create and self.default_root is not None:
            with contextlib.suppress(OSError):
                (self.default_root / tenant_slug).mkdir(parents=True, exist_ok=True)
        return [_real(root) / tenant_slug for root in self.roots]

    def _forbidden(self, target: Path) -> str | None:
        """Why ``target`` (resolved) may never be a folder of a source, or ``None``."""
        if self.models_dir is not None and _overlap(target, _real(self.models_dir)):
            return "er überschneidet sich mit dem Modellordner (models_dir)"
        if self.data_dir is not None:
            data = _real(self.data_dir)
            if target == data or data.is_relative_to(target):
                return "er ist das Datenverzeichnis (data_dir) oder enthält es"
            if target.is_relative_to(data) and not target.is_relative_to(data / DEFAULT_ROOT_NAME):
                return (
                    "er liegt im Datenverzeichnis (data_dir) mit Datenbank und Originalen; dort "
                    f"ist nur {data / DEFAULT_ROOT_NAME} erlaubt"
                )
        return None

    def check(self, target: Path, tenant_slug: str, label: str, shown: str) -> None:
        """Refuse ``target`` (resolved) outside the areas of ``tenant_slug`` (German)."""
        if not self.roots:
            raise SourceSettingsError(
                "Ordner-Quellen sind in dieser Installation nicht freigegeben. Die Administration "
                f"der Installation kann Wurzelordner mit {ROOTS_SETTING} freigeben; jede Kommune "
                "darf dann Ordner unter <Wurzelordner>/<Kommune> beobachten."
            )
        areas = self.areas(tenant_slug)
        if not any(target == area or target.is_relative_to(area) for area in areas):
            raise SourceSettingsError(
                f"Der {label} „{shown[:200]}“ liegt nicht in einem für die Kommune {tenant_slug} "
                f"freigegebenen Ordner (auch nicht über Verknüpfungen oder „..“). Erlaubt sind "
                f"nur Ordner unter: {', '.join(str(a) for a in areas)}. Weitere Wurzelordner "
                f"gibt die Administration der Installation mit {ROOTS_SETTING} frei."
            )
        reason = self._forbidden(target)
        if reason is not None:
            raise SourceSettingsError(
                f"Der {label} {target} ist nicht erlaubt: {reason}. Bitte einen anderen Ordner "
                "wählen."
            )


def _below(base: Path, value: Any, default: str) -> Path:
    raw = str(value or "").strip() or default
    candidate = Path(raw)
    return candidate if candidate.is_absolute() else base / candidate


def check_settings(
    settings: dict[str, Any], *, roots: FolderRoots | None, tenant_slug: str
) -> dict[str, Any]:
    """Validated settings of a folder source with resolved paths; German error otherwise.

    Every folder must lie in an area of ``tenant_slug`` below ``roots``; nothing is said about
    whether a folder outside exists (that would let anyone probe the server's paths)."""
    roots = roots or FolderRoots()
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
            "/srv/rathaus/eingang/<Kommune>/scanner."
        )
    path = _real(raw)
    roots.check(path, tenant_slug, "Ordner", raw)
    if not path.is_dir():
        raise SourceSettingsError(
            f"Den Ordner {path} gibt es nicht. Bitte anlegen und dem Dienstkonto von Rathaus "
            "Lese- und Schreibrechte geben."
        )
    done_raw = _below(path, settings.get("done_dir"), "erledigt")
    oversize_raw = _below(path, settings.get("oversize_dir"), "zu-gross")
    done, oversize = _real(done_raw), _real(oversize_raw)
    for label, target, shown in (
        ("Ablageordner", done, done_raw),
        ("Ordner für zu große Dateien", oversize, oversize_raw),
    ):
        roots.check(target, tenant_slug, label, str(shown))
        if target == path or path.is_relative_to(target):
            raise SourceSettingsError(
                f"Der {label} {target} darf nicht der beobachtete Ordner selbst oder ihm "
                "übergeordnet sein. Bitte einen Unterordner wie „erledigt“ wählen."
            )
    return {"path": str(path), "done_dir": str(done), "oversize_dir": str(oversize)}


def config_of(source: InboxSource, *, roots: FolderRoots | None, tenant_slug: str) -> FolderConfig:
    """The folders of ``source``, checked again now (links swapped in, roots withdrawn)."""
    stored = dict(source.settings or {})
    for key in ("path", "done_dir", "oversize_dir"):
        value = str(stored.get(key) or "")
        if value and str(_real(value)) != value:
            raise ChannelError(
                f"Der Ordner {value} ist inzwischen eine Verknüpfung (oder liegt in einer) und "
                "wird deshalb nicht benutzt. Bitte die Verknüpfung entfernen oder die Quelle mit dem "
                "wirklichen Ordner neu anlegen."
            )
    checked = check_settings(stored, roots=roots, tenant_slug=tenant_slug)
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
    roots: FolderRoots | None = None,
) -> None:
    """Take every finished file in the folder (at most 200 per poll), then move it away.

    ``roots``: the allowed root folders (:meth:`FolderRoots.from_settings`); without them the
    source is refused, as it is when its folders left the municipality's area."""
    cfg = config_of(source, roots=roots, tenant_slug=tenant.slug)
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
