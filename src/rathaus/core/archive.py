"""The backup archive: its format, the portable encoding of values, reading and verifying.

An archive is a gzip-compressed tar stream, readable with standard tools, and
database-independent: the same file restores into SQLite or PostgreSQL.

``tables/NNN-<table>.jsonl``
    one JSON array per row, in primary-key order; the columns and their portable kinds
    (``datetime``, ``bytes`` as base64, ``json`` as its exact text, ``decimal`` as text …) are
    listed in the manifest. NNN is the insert order (foreign keys first).
``files/<path below the data directory>``
    stored originals (content-addressed: the file name is the SHA-256 of its bytes) and the
    routing model files.
``manifest.json``
    last, so the archive is written in one pass with flat memory: versions, Alembic revision,
    source kind, per-table columns and row counts, the SHA-256 and size of every other member
    (originals: their count, bytes and a digest of their names, since each name already is its
    content's hash), sequence high-water marks and the state of every audit chain.

Writing: :mod:`rathaus.core.backup`; restoring: :mod:`rathaus.core.restore`.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import gzip
import hashlib
import json
import re
import tarfile
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy.sql import sqltypes
from sqlalchemy.types import TypeEngine

from rathaus.core.errors import RathausError

FORMAT = "rathaus-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SUFFIX = ".tar.gz"
CHUNK = 1 << 20

ORIGINAL_MEMBER = re.compile(r"^files/originals/(\d+)/([0-9a-f]{2})/([0-9a-f]{64})$")
_TABLE_MEMBER = re.compile(r"^tables/\d{3,}-[A-Za-z0-9_]+\.jsonl$")
_SAFE_FILE = re.compile(r"^files/[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*$")

Progress = Callable[[str], None]


class BackupError(RathausError):
    """A backup cannot be written, or an archive cannot be trusted or used."""


def quiet(_: str) -> None:
    return None


def number(n: int) -> str:
    """German thousands separator for messages."""
    return f"{n:,}".replace(",", ".")


# --- portable values -------------------------------------------------------------------------

# Checked in this order: Boolean, Float and DateTime are subclasses of types that come later.
_KINDS: tuple[tuple[type, str], ...] = (
    (sqltypes.NullType, "raw"),
    (sqltypes.Boolean, "bool"),
    (sqltypes.JSON, "json"),
    (sqltypes._Binary, "bytes"),
    (sqltypes.DateTime, "datetime"),
    (sqltypes.Date, "date"),
    (sqltypes.Time, "time"),
    (sqltypes.Float, "float"),
    (sqltypes.Integer, "int"),
    (sqltypes.Numeric, "decimal"),
    (sqltypes.Uuid, "uuid"),
    (sqltypes.String, "str"),
)


def column_kind(table: str, column: str, type_: TypeEngine[Any]) -> str:
    """The portable kind of a column type; a German error for a type the format cannot carry."""
    for cls, kind in _KINDS:
        if isinstance(type_, cls):
            return kind
    raise BackupError(
        f"Die Spalte {table}.{column} hat den Typ {type_!r}, den die Sicherung nicht kennt. "
        "Bitte melden Sie das den Entwicklern von Rathaus."
    )


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value


def encode(kind: str, value: Any) -> Any:
    """A database value as a JSON-ready value (naive datetimes are UTC, as Rathaus writes them)."""
    if value is None:
        return None
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "datetime":
        return _utc(value).isoformat()
    if kind in ("date", "time"):
        return value.isoformat()
    if kind in ("decimal", "uuid"):
        return str(value)
    if kind == "bool":
        return bool(value)
    if kind == "str" and not isinstance(value, str):
        return str(value)  # SQLite keeps whatever it was given; the column says text
    if kind == "raw" and isinstance(value, bytes | memoryview):
        return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def decode(kind: str, value: Any, *, aware: bool) -> Any:
    """The inverse of :func:`encode`; ``aware``: the target column stores time zones."""
    if value is None:
        return None
    if kind == "bytes":
        return base64.b64decode(value)
    if kind == "datetime":
        moment = dt.datetime.fromisoformat(value)
        if aware:
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "time":
        return dt.time.fromisoformat(value)
    if kind == "decimal":
        return decimal.Decimal(value)
    if kind == "uuid":
        return uuid.UUID(value)
    if kind == "raw" and isinstance(value, dict):
        return base64.b64decode(value["b64"])
    return value


@dataclass
class TableSpec:
    """One table as the archive carries it: columns with their kinds, key, row count."""

    name: str
    columns: list[tuple[str, str]]
    primary_key: list[str]
    rows: int = 0
    next_id: int | None = None
    member: str = ""
    sha256: str = ""
    size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "member": self.member,
            "columns": [list(c) for c in self.columns],
            "primary_key": self.primary_key,
            "rows": self.rows,
            "next_id": self.next_id,
            "sha256": self.sha256,
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableSpec:
        return cls(
            name=str(data["name"]),
            columns=[(str(n), str(k)) for n, k in data["columns"]],
            primary_key=[str(c) for c in data["primary_key"]],
            rows=int(data["rows"]),
            next_id=data.get("next_id"),
            member=str(data["member"]),
            sha256=str(data["sha256"]),
            size=int(data["size"]),
        )


@dataclass
class OriginalsTally:
    """Originals in archive order: their number, bytes and a digest of their names."""

    count: int = 0
    bytes: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    damaged: list[str] = field(default_factory=list)

    def add(self, name: str, size: int) -> None:
        self.count += 1
        self.bytes += size
        self.digest.update(name.encode() + b"\n")

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "bytes": self.bytes,
            "names_sha256": self.digest.hexdigest(),
            "damaged": self.damaged,
        }


# --- reading and verifying an archive --------------------------------------------------------


def broken(path: Path, detail: str) -> BackupError:
    return BackupError(
        f"Das Archiv {path} ist beschädigt oder unvollständig ({detail}). Es wurde nichts "
        "verändert; bitte eine andere Sicherung verwenden."
    )


# What a damaged or truncated archive raises while it is read (gzip.BadGzipFile is an OSError).
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)


class MemberStream:
    """A member's bytes; a reading error becomes the German "damaged archive" message, while
    errors of whoever consumes the bytes (a full disk, the database) stay what they are."""

    def __init__(self, stream: IO[bytes], path: Path) -> None:
        self.stream = stream
        self.path = path

    def read(self, n: int = -1) -> bytes:
        try:
            return self.stream.read(n)
        except _READ_ERRORS as exc:
            raise broken(self.path, str(exc) or type(exc).__name__) from exc

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                line = self.stream.readline()
            except _READ_ERRORS as exc:
                raise broken(self.path, str(exc) or type(exc).__name__) from exc
            if not line:
                return
            yield line


@contextmanager
def open_archive(path: Path) -> Iterator[Iterator[tuple[tarfile.TarInfo, MemberStream]]]:
    """The archive's members in order, each with a stream of its bytes, read in one pass.

    The gzip layer is read with :mod:`gzip`, not by tarfile: after the last member the rest of
    the stream is read too, so its CRC-32 and length are checked. tarfile stops at the
    end-of-archive marker and never checks them, and a damaged byte in a part that nobody
    hashes (the padding, a field of the manifest that is not compared) went unnoticed."""
    if not path.is_file():
        raise BackupError(f"Die Archivdatei {path} gibt es nicht. Bitte den Pfad prüfen.")
    raw = gzip.open(path, "rb")  # noqa: SIM115 - closed by the with below
    try:
        tar = tarfile.open(fileobj=raw, mode="r|")  # noqa: SIM115 - closed by the with below
    except _READ_ERRORS as exc:
        raw.close()
        raise broken(path, str(exc) or type(exc).__name__) from exc

    def members() -> Iterator[tuple[tarfile.TarInfo, MemberStream]]:
        iterator = iter(tar)
        while True:
            try:
                info = next(iterator)
            except StopIteration:
                break
            except _READ_ERRORS as exc:
                raise broken(path, str(exc) or type(exc).__name__) from exc
            _check_member(path, info)
            stream = tar.extractfile(info)
            assert stream is not None
            yield info, MemberStream(stream, path)
        try:
            while raw.read(1 << 20):
                pass
        except _READ_ERRORS as exc:
            raise broken(path, str(exc) or type(exc).__name__) from exc

    with raw, tar:
        yield members()


def safe_file_name(name: str) -> bool:
    """``files/…`` with plain path segments only: nothing can land outside the data directory."""
    return bool(_SAFE_FILE.match(name)) and not any(
        part.startswith(".") for part in name.split("/")
    )


def _check_member(path: Path, info: tarfile.TarInfo) -> None:
    """Only plain files with names of the format: no links, devices or escaping paths."""
    name = info.name
    ok_name = name == MANIFEST or _TABLE_MEMBER.match(name) or safe_file_name(name)
    if not info.isfile() or not ok_name:
        raise broken(path, f"unerwarteter Eintrag „{name[:120]}“")


def read_lines(stream: MemberStream, sha: Any) -> Iterator[bytes]:
    """The lines of a member while hashing them."""
    for line in stream:
        sha.update(line)
        yield line


def hash_stream(stream: MemberStream) -> tuple[str, int, int]:
    """SHA-256, size and number of lines of a member."""
    sha, size, lines = hashlib.sha256(), 0, 0
    while chunk := stream.read(CHUNK):
        sha.update(chunk)
        size += len(chunk)
        lines += chunk.count(b"\n")
    return sha.hexdigest(), size, lines


@dataclass
class Verified:
    """A checked archive: its manifest and what the check found."""

    path: Path
    manifest: dict[str, Any]
    tables: list[TableSpec]

    @property
    def revision(self) -> str:
        return str(self.manifest["alembic_revision"])

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def verify_archive(path: Path, *, progress: Progress = quiet) -> Verified:
    """Read the whole archive once and check every member against the manifest.

    Refused with a German :class:`BackupError`: a truncated or damaged stream, a missing
    manifest, a member whose SHA-256, size or row count differs, missing or extra members,
    an original whose bytes do not match its name, and an unknown format version.
    """
    seen: dict[str, tuple[str, int, int]] = {}
    originals = OriginalsTally()
    manifest_bytes: bytes | None = None
    with open_archive(path) as members:
        for info, stream in members:
            if info.name == MANIFEST:
                manifest_bytes = stream.read()
                continue
            if info.name in seen:
                raise broken(path, f"„{info.name}“ kommt zweimal vor")
            sha, size, lines = hash_stream(stream)
            if size != info.size:
                raise broken(path, f"„{info.name}“ ist abgeschnitten")
            original = ORIGINAL_MEMBER.match(info.name)
            if original:
                originals.add(info.name, size)
                if original.group(3) != sha:
                    originals.damaged.append(info.name)
            else:
                seen[info.name] = (sha, size, lines)
    if manifest_bytes is None:
        raise broken(path, "das Inhaltsverzeichnis manifest.json fehlt")
    manifest = parse_manifest(path, manifest_bytes)
    tables = [TableSpec.from_dict(t) for t in manifest["tables"]]
    expected = {t.member: (t.sha256, t.size, t.rows) for t in tables}
    expected.update({n: (f["sha256"], f["size"], None) for n, f in manifest["files"].items()})
    for name, (sha, size, rows) in expected.items():
        if name not in seen:
            raise broken(path, f"„{name}“ fehlt")
        got_sha, got_size, got_lines = seen.pop(name)
        if (got_sha, got_size) != (sha, size):
            raise broken(path, f"Prüfsumme von „{name}“ stimmt nicht")
        if rows is not None and got_lines != rows:
            raise broken(path, f"„{name}“ hat {got_lines} statt {rows} Zeilen")
    if seen:
        raise broken(path, f"unerwarteter Eintrag „{sorted(seen)[0]}“")
    if originals.to_dict() != manifest["originals"]:
        extra = sorted(set(originals.damaged) - set(manifest["originals"].get("damaged", [])))
        detail = (
            f"Prüfsumme des Originals „{extra[0]}“ stimmt nicht"
            if extra
            else "die Originale stimmen nicht mit dem Inhaltsverzeichnis überein"
        )
        raise broken(path, detail)
    progress(
        f"{path}: {len(tables)} Tabellen, {number(sum(t.rows for t in tables))} Zeilen, "
        f"{number(originals.count)} Originale – alle Prüfsummen stimmen."
    )
    return Verified(path, manifest, tables)


def parse_manifest(path: Path, data: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise broken(path, "manifest.json ist kein gültiges JSON") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} ist keine Rathaus-Sicherung (manifest.json ohne Kennung).")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BackupError(
            f"Das Archiv {path} hat das Sicherungsformat {version}; diese Rathaus-Version kennt "
            f"Format {FORMAT_VERSION}. Bitte mit einer passenden Rathaus-Version wiederherstellen."
        )
    for key in ("tables", "files", "originals", "alembic_revision"):
        if key not in manifest:
            raise broken(path, f"manifest.json ohne „{key}“")
    return manifest
