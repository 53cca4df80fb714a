"""OCEL 2.0 (object-centric event logs) in its three official serialisations: JSON, XML, SQLite.

The JSON document is read by :func:`rathaus.insights.eventlog.parse_ocel`; this module adds the
XML and the relational (SQLite) form and holds what all three share: :func:`flatten` turns the
events of any serialisation into a :class:`~rathaus.insights.eventlog.ParsedLog` with one
object type as the case notion, so the three formats give the same analysis.

Every file is untrusted input:

* XML goes through the XES reader's guard (:func:`~rathaus.insights.eventlog.check_xml_safe`):
  a DOCTYPE or ENTITY declaration is refused before the parser sees the file, and the file is
  read as a stream.
* A SQLite file must start with the SQLite header. It is written to a temporary copy and opened
  read-only and immutable (nothing of it is ever written back), with untrusted schema code
  switched off, tight limits, no attached databases and a time budget for every query. Only the
  tables of the OCEL 2.0 relational schema are read, and only when they are real tables (not
  views or virtual tables); their sizes are counted before a row is loaded.
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rathaus.insights.eventlog import (
    MAX_EVENTS,
    RESOURCE_ATTRIBUTES,
    Event,
    LocalTime,
    ParsedLog,
    _clip,
    _finish,
    _iterparse,
    _local,
    _ocel_time,
    zone_of,
)
from rathaus.insights.tabular import TableError

SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".sqliteocel", ".db")
XML_SUFFIXES = (".xml", ".xmlocel")
MAX_OBJECTS = 2_000_000
MAX_RELATIONS = 5_000_000  # event-to-object relationships
MAX_TYPES = 10_000  # event types (each has a table of its own in SQLite)
SQLITE_SECONDS = 120.0  # time budget for all queries on one uploaded database
SQLITE_MAX_VALUE = 10_000_000  # bytes of one text or blob value


@dataclass(slots=True)
class RawEvent:
    """One OCEL event as read, before flattening. ``where`` names it in error messages."""

    where: str
    type: str
    time: Any
    attributes: dict[str, Any]
    relationships: list[tuple[str, str]]  # (object id, qualifier)
    id: str


def flatten(
    events: Iterable[RawEvent],
    type_of: dict[str, str],
    object_type: str | None,
    serialisation: str,
    clock: LocalTime | None = None,
) -> ParsedLog:
    """Process mining needs one *case notion*: the events are flattened onto the objects of
    ``object_type`` (an event related to two orders becomes an event of each). Without
    ``object_type`` the type with the most event relations is chosen (with a note). Every
    event keeps all its object relations (``data["ocel"]``) for the OCEL export. ``clock``
    turns the times into UTC (times without offset in its zone; default ``Europe/Berlin``)."""
    clock = clock or LocalTime()
    events = list(events)
    relations: Counter[str] = Counter(
        type_of[oid] for raw in events for oid, _ in raw.relationships if oid in type_of
    )
    if not relations:
        raise TableError("Die OCEL-Datei enthält keine Ereignisse mit Bezug zu Objekten.")
    notes: list[str] = []
    if object_type:
        if object_type not in relations:
            raise TableError(
                f"Den Objekttyp „{object_type}“ gibt es in der Datei nicht (oder ohne "
                f"Ereignisse). Vorhanden: {', '.join(sorted(relations))}."
            )
        chosen = object_type
    else:
        chosen = relations.most_common(1)[0][0]
        if len(relations) > 1:
            others = ", ".join(sorted(t for t in relations if t != chosen))
            notes.append(
                f"Als Fall dient der Objekttyp „{chosen}“ (die meisten Ereignisbezüge); "
                f"ebenfalls möglich: {others}."
            )
    flat: list[Event] = []
    for raw in events:
        activity = _clip(raw.type, "Aktivität", raw.where)
        if not activity:
            raise TableError(f"{raw.where}: Der Ereignistyp (Aktivität) fehlt.")
        stamp = _ocel_time(raw.time, raw.where, clock)
        attrs = dict(raw.attributes)
        resource = next((str(attrs.pop(k)) for k in RESOURCE_ATTRIBUTES if k in attrs), "")
        rels = [
            {"id": oid, "type": type_of.get(oid, ""), "qualifier": qualifier}
            for oid, qualifier in raw.relationships
        ]
        for rel in rels:
            if rel["type"] != chosen:
                continue
            flat.append(
                Event(
                    position=len(flat),
                    case_key=_clip(rel["id"], "Fall-ID", raw.where),
                    activity=activity,
                    timestamp=stamp,
                    resource=_clip(resource, "Ressource", raw.where),
                    data={"ocel": {"id": raw.id, "objects": rels}, **attrs},
                )
            )
    log = ParsedLog(
        "ocel",
        flat,
        notes=notes,
        mapping={
            "format": "ocel",
            "ocel_format": serialisation,
            "object_type": chosen,
            "object_types": sorted(set(type_of.values())),
        },
    )
    return _finish(clock.finish(log))


def _too_many(what: str, limit: int) -> TableError:
    return TableError(
        f"Die OCEL-Datei hat mehr als {limit:,} {what}. Bitte in kleineren Teilen "
        "importieren.".replace(",", ".")
    )


# -- XML ---------------------------------------------------------------------------------------

_RELATION_TAGS = ("relationship", "object")  # spec examples use <relationship>, the XSD <object>


def _typed(kind: str, text: str) -> Any:
    """An attribute value of the declared OCEL type; text that does not fit stays text."""
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            return text
    if kind == "float":
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in ("1", "true"):
            return True
        if lowered in ("0", "false"):
            return False
    return text


def parse_ocel_xml(
    data: bytes, *, object_type: str | None = None, zone: ZoneInfo | None = None
) -> ParsedLog:
    """OCEL 2.0 as XML (``<log>`` with ``<object-types>``, ``<event-types>``, ``<objects>``,
    ``<events>`` in any order), read as a stream. Attribute values get the type declared for
    their event type (integer, float, boolean; time and string stay text). Times without offset
    are read in ``zone`` (default ``Europe/Berlin``)."""
    declared: dict[str, dict[str, str]] = defaultdict(dict)  # event type -> attribute -> type
    type_of: dict[str, str] = {}
    raw: list[RawEvent] = []
    path: list[str] = []
    parents: list[ET.Element] = []
    attrs: dict[str, str] = {}
    rels: list[tuple[str, str]] = []
    relation_count = 0
    sections: set[str] = set()
    looks_like_xes = False
    for kind, element in _iterparse(data):
        tag = _local(element.tag)
        if kind == "start":
            if not path and tag != "log":
                raise TableError(
                    f"Die Datei ist kein OCEL 2.0 als XML: Das Wurzelelement heißt <{tag[:40]}> "
                    "statt <log>."
                )
            path.append(tag)
            parents.append(element)
            if len(path) == 2:
                sections.add(tag)
                looks_like_xes = looks_like_xes or tag in ("trace", "extension", "global")
            elif path[1:] == ["events", "event"]:
                attrs, rels = {}, []
            continue
        where = tuple(path)
        path.pop()
        parents.pop()
        if where == ("log", "event-types", "event-type", "attributes", "attribute"):
            owner = parents[2].get("name", "")
            declared[owner][element.get("name", "")] = element.get("type", "string")
        elif where == ("log", "objects", "object"):
            oid, otype = element.get("id"), element.get("type")
            if not oid or not otype:
                raise TableError(
                    f"<object> Nr. {len(type_of) + 1}: Das Attribut „id“ oder „type“ fehlt."
                )
            type_of[oid] = otype
            if len(type_of) > MAX_OBJECTS:
                raise _too_many("Objekte", MAX_OBJECTS)
            _drop(parents[-1], element)
        elif where[1:] == ("events", "event", "attributes", "attribute"):
            name = element.get("name", "")
            if name:
                attrs[name] = element.text or ""
        elif where[1:4] == ("events", "event", "objects") and where[4:] in (
            ("relationship",),
            ("object",),
        ):
            oid = element.get("object-id", "")
            qualifier = element.get("qualifier", element.get("relationship", ""))
            rels.append((oid, qualifier or ""))
            relation_count += 1
            if relation_count > MAX_RELATIONS:
                raise _too_many("Ereignis-Objekt-Beziehungen", MAX_RELATIONS)
        elif where == ("log", "events", "event"):
            number = len(raw) + 1
            eid = element.get("id") or str(number)
            raw.append(
                RawEvent(
                    where=f"Ereignis {number} („{eid[:40]}“, <event>)",
                    type=element.get("type", ""),
                    time=element.get("time", ""),
                    attributes=dict(attrs),
                    relationships=rels,
                    id=eid,
                )
            )
            if number > MAX_EVENTS:
                raise _too_many("Ereignisse", MAX_EVENTS)
            _drop(parents[-1], element)
    if looks_like_xes and "events" not in sections:
        raise TableError(
            "Die Datei ist eine XES-Datei, kein OCEL 2.0. Bitte als Format „XES“ importieren."
        )
    if "events" not in sections:
        raise TableError("Die Datei ist kein OCEL 2.0 als XML: Das Element <events> fehlt.")
    for event in raw:
        kinds = declared.get(event.type, {})
        event.attributes = {
            name: _typed(kinds.get(name, "string"), text) for name, text in event.attributes.items()
        }
    return flatten(raw, type_of, object_type, "xml", LocalTime(zone or zone_of(None)))


def _drop(parent: ET.Element, element: ET.Element) -> None:
    """Forget a finished element, so a large file does not stay in memory as a tree."""
    element.clear()
    if len(parent) and parent[-1] is element:
        del parent[-1]


# -- SQLite ------------------------------------------------------------------------------------

# table -> columns it must have (OCEL 2.0 relational format)
_REQUIRED = {
    "event": ("ocel_id", "ocel_type"),
    "object": ("ocel_id", "ocel_type"),
    "event_object": ("ocel_event_id", "ocel_object_id"),
    "event_map_type": ("ocel_type", "ocel_type_map"),
}
_LIMITS = {
    "SQLITE_LIMIT_LENGTH": SQLITE_MAX_VALUE,
    "SQLITE_LIMIT_ATTACHED": 0,
    "SQLITE_LIMIT_EXPR_DEPTH": 100,
    "SQLITE_LIMIT_TRIGGER_DEPTH": 10,
    "SQLITE_LIMIT_VARIABLE_NUMBER": 100,
}


def is_sqlite(data: bytes) -> bool:
    return data.startswith(SQLITE_MAGIC)


def parse_ocel_sqlite(
    data: bytes, *, object_type: str | None = None, zone: ZoneInfo | None = None
) -> ParsedLog:
    """OCEL 2.0 as SQLite database: tables ``event``, ``object``, ``event_object``,
    ``event_map_type`` and one table ``event_<Typ>`` per event type (time and attributes);
    ``object_object`` and the object tables are not needed for the analysis. ``ocel_time``
    is usually text without offset (``2024-01-09 15:00:00``): it is read in ``zone``
    (default ``Europe/Berlin``)."""
    if not is_sqlite(data):
        raise TableError(
            "Die Datei ist keine SQLite-Datenbank (die Kennung „SQLite format 3“ am Anfang "
            "fehlt). Bitte OCEL 2.0 als SQLite, XML oder JSON exportieren."
        )
    with tempfile.TemporaryDirectory(prefix="rathaus-ocel-") as folder:
        copy = Path(folder) / "ocel.sqlite"
        copy.write_bytes(data)
        try:
            connection = sqlite3.connect(f"{copy.as_uri()}?mode=ro&immutable=1", uri=True)
        except sqlite3.Error as exc:
            raise _damaged(exc) from None
        try:
            _harden(connection)
            return _read_sqlite(connection, object_type, LocalTime(zone or zone_of(None)))
        except sqlite3.Error as exc:
            raise _damaged(exc) from None
        finally:
            connection.close()


def _damaged(exc: sqlite3.Error) -> TableError:
    if "interrupted" in str(exc):
        return TableError(
            f"Das Lesen der SQLite-Datei dauerte länger als {SQLITE_SECONDS:.0f} Sekunden und "
            "wurde abgebrochen. Bitte in kleineren Teilen importieren."
        )
    if "too big" in str(exc):
        return TableError(
            "Die SQLite-Datei enthält einen Wert, der größer als "
            f"{SQLITE_MAX_VALUE // 1_000_000} MB ist, und wird nicht gelesen."
        )
    return TableError(
        "Die SQLite-Datei ist beschädigt oder lässt sich nicht lesen "
        f"({type(exc).__name__}). Bitte den OCEL-Export wiederholen."
    )


def _harden(connection: sqlite3.Connection) -> None:
    """Defences for a database file from outside (see SQLite's "Defense Against the Dark
    Arts"): no code from the schema, only reading, small limits, a time budget."""
    for name, value in _LIMITS.items():
        connection.setlimit(getattr(sqlite3, name), value)
    connection.execute("PRAGMA trusted_schema = OFF")
    connection.execute("PRAGMA query_only = ON")
    connection.execute("PRAGMA cell_size_check = ON")
    connection.execute("PRAGMA mmap_size = 0")
    deadline = time.monotonic() + SQLITE_SECONDS
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(connection: sqlite3.Connection) -> dict[str, str]:
    """Real tables only (name -> lower-case name); views and virtual tables do not count."""
    rows = connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return {
        str(name): str(name).lower()
        for name, sql in rows
        if not str(sql or "").lstrip().upper().startswith("CREATE VIRTUAL")
    }


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in connection.execute(f"PRAGMA table_info({_quote(table)})")]


def _find(tables: dict[str, str], wanted: str) -> str | None:
    """SQLite compares table names without regard to case; so do we."""
    return next((name for name, lower in tables.items() if lower == wanted.lower()), None)


def _rows(connection: sqlite3.Connection, table: str, columns: Iterable[str]) -> Iterator[tuple]:
    """The rows of ``table`` in stored order (``rowid``; a WITHOUT ROWID table in key order)."""
    # Table and column names come from sqlite_master / table_info and are quoted; no values.
    query = f"SELECT {', '.join(_quote(c) for c in columns)} FROM {_quote(table)}"  # noqa: S608
    try:
        yield from connection.execute(query + " ORDER BY _rowid_")
    except sqlite3.OperationalError as exc:
        if "_rowid_" not in str(exc):
            raise
        yield from connection.execute(query)


def _count(connection: sqlite3.Connection, table: str) -> int:
    query = f"SELECT count(*) FROM {_quote(table)}"  # noqa: S608 - a quoted name from the schema
    return int(connection.execute(query).fetchone()[0])


def _value(value: Any) -> Any:
    """A cell as JSON-safe attribute value; ``None`` for NULL and blobs (skipped)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _read_sqlite(
    connection: sqlite3.Connection, object_type: str | None, clock: LocalTime
) -> ParsedLog:
    tables = _tables(connection)
    names: dict[str, str] = {}
    missing = []
    for wanted in _REQUIRED:
        found = _find(tables, wanted)
        if found is None:
            missing.append(wanted)
        else:
            names[wanted] = found
    if missing:
        present = ", ".join(sorted(tables)[:12]) or "keine"
        raise TableError(
            "Die SQLite-Datenbank ist kein OCEL 2.0: Es fehlen die Tabellen "
            f"{', '.join(f'„{m}“' for m in missing)} (vorhanden: {present})."
        )
    for wanted, needed in _REQUIRED.items():
        have = {c.lower() for c in _columns(connection, names[wanted])}
        lacking = [c for c in needed if c not in have]
        if lacking:
            raise TableError(
                f"Die SQLite-Datenbank ist kein OCEL 2.0: In der Tabelle „{wanted}“ fehlen die "
                f"Spalten {', '.join(f'„{c}“' for c in lacking)}."
            )
    for wanted, limit, what in (
        ("event", MAX_EVENTS, "Ereignisse"),
        ("object", MAX_OBJECTS, "Objekte"),
        ("event_object", MAX_RELATIONS, "Ereignis-Objekt-Beziehungen"),
        ("event_map_type", MAX_TYPES, "Ereignistypen"),
    ):
        if _count(connection, names[wanted]) > limit:
            raise _too_many(what, limit)

    type_of = {
        _text(oid): _text(otype)
        for oid, otype in _rows(connection, names["object"], ("ocel_id", "ocel_type"))
    }
    table_of: dict[str, str] = {}
    for number, (etype, suffix) in enumerate(
        _rows(connection, names["event_map_type"], ("ocel_type", "ocel_type_map")), start=1
    ):
        table = _find(tables, f"event_{_text(suffix)}")
        if table is None:
            raise TableError(
                f"Tabelle „event_map_type“, Zeile {number}: Für den Ereignistyp "
                f"„{_text(etype)[:80]}“ fehlt die Tabelle „event_{_text(suffix)[:80]}“."
            )
        table_of[_text(etype)] = table
    details = _event_details(connection, set(table_of.values()))

    relations: dict[str, list[tuple[str, str]]] = defaultdict(list)
    has_qualifier = "ocel_qualifier" in {
        c.lower() for c in _columns(connection, names["event_object"])
    }
    columns = ("ocel_event_id", "ocel_object_id") + (("ocel_qualifier",) if has_qualifier else ())
    for row in _rows(connection, names["event_object"], columns):
        relations[_text(row[0])].append((_text(row[1]), _text(row[2]) if has_qualifier else ""))

    raw: list[RawEvent] = []
    for number, (eid, etype) in enumerate(
        _rows(connection, names["event"], ("ocel_id", "ocel_type")), start=1
    ):
        eid, etype = _text(eid), _text(etype)
        where = f"Tabelle „event“, Zeile {number} (Ereignis „{eid[:40]}“)"
        table = table_of.get(etype)
        if table is None:
            raise TableError(
                f"{where}: Den Ereignistyp „{etype[:80]}“ gibt es in „event_map_type“ nicht."
            )
        detail = details[table].get(eid)
        if detail is None:
            raise TableError(f"{where}: In der Tabelle „{table}“ fehlt die Zeile dazu (Zeitpunkt).")
        stamp, attributes = detail
        raw.append(RawEvent(where, etype, stamp, attributes, relations.pop(eid, []), eid))
    return flatten(raw, type_of, object_type, "sqlite", clock)


def _event_details(
    connection: sqlite3.Connection, tables: set[str]
) -> dict[str, dict[str, tuple[Any, dict[str, Any]]]]:
    """Per event-type table: event id -> (time, attributes without NULLs)."""
    total = 0
    for table in tables:
        total += _count(connection, table)
        if total > MAX_EVENTS:
            raise _too_many("Ereignisse", MAX_EVENTS)
    details: dict[str, dict[str, tuple[Any, dict[str, Any]]]] = {}
    for table in sorted(tables):
        columns = _columns(connection, table)
        lower = [c.lower() for c in columns]
        lacking = [c for c in ("ocel_id", "ocel_time") if c not in lower]
        if lacking:
            raise TableError(
                f"Die SQLite-Datenbank ist kein OCEL 2.0: In der Tabelle „{table}“ fehlen die "
                f"Spalten {', '.join(f'„{c}“' for c in lacking)}."
            )
        id_at, time_at = lower.index("ocel_id"), lower.index("ocel_time")
        rows: dict[str, tuple[Any, dict[str, Any]]] = {}
        for row in _rows(connection, table, columns):
            eid = _text(row[id_at])
            if eid in rows:
                continue
            attributes = {}
            for index, name in enumerate(columns):
                if index in (id_at, time_at):
                    continue
                value = _value(row[index])
                if value is not None:
                    attributes[name] = value
            rows[eid] = (row[time_at], attributes)
        details[table] = rows
    return details
