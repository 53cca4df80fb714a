"""Reading event logs for process mining: CSV with chosen columns, XES and OCEL 2.0 (JSON; XML
and SQLite in :mod:`rathaus.insights.ocel`).

Every reader returns a :class:`ParsedLog`: plain :class:`Event` records (case, activity, UTC
timestamp, resource, further attributes) in file order plus German notes. Nothing here touches
the database; :mod:`rathaus.insights.eventlog_store` writes a parsed log in one transaction.

Rules shared by all formats:

* a timestamp that cannot be read is a :class:`~rathaus.insights.tabular.TableError` naming the
  row (CSV) or the event (XES, OCEL) – the whole import stops, nothing is written;
* events whose timestamps are not in order within a case are *not* an error: the analysis sorts
  each case by time (equal times keep the file order) and the log carries a note saying so;
* a timestamp with an offset or ``Z`` keeps it; one without (``2024-03-04 08:15:00``, the usual
  export of a German specialist procedure) is wall-clock time in one time zone, chosen per import
  and :data:`DEFAULT_ZONE` (``Europe/Berlin``) by default – never the server's own zone, so the
  same file gives the same UTC instants on every machine (:class:`LocalTime`);
* XML is parsed as a stream (``iterparse``) and refused when it declares a DOCTYPE or entities
  (no entity expansion, no external files: "billion laughs" and XXE stay out).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rathaus.core.parsing import ParseProblem, parse_json, xml_problem
from rathaus.insights.tabular import (
    FieldSpec,
    Table,
    TableError,
    cell,
    map_columns,
    parse_datetime,
    read_table,
)

FORMATS = ("csv", "xes", "ocel")
MAX_EVENTS = 2_000_000
MAX_KEY = 200  # ProcessEvent.case_key / activity / resource columns
DEFAULT_ZONE = "Europe/Berlin"  # wall clock of timestamps without offset (German municipality)

CSV_FIELDS: dict[str, FieldSpec] = {
    "case": FieldSpec(
        "Fall-ID",
        (
            "case:concept:name",
            "case_id",
            "caseid",
            "case",
            "fall",
            "fallnummer",
            "vorgang",
            "aktenzeichen",
            "case id",
        ),
    ),
    "activity": FieldSpec(
        "Aktivität",
        ("concept:name", "activity", "Tätigkeit", "Vorgangsschritt", "schritt", "event"),
    ),
    "timestamp": FieldSpec(
        "Zeitpunkt",
        (
            "time:timestamp",
            "timestamp",
            "zeitstempel",
            "zeit",
            "datum",
            "time",
            "complete timestamp",
        ),
    ),
    "resource": FieldSpec(
        "Ressource",
        ("org:resource", "resource", "bearbeiter", "bearbeitung", "mitarbeiter", "user"),
        required=False,
    ),
    "group": FieldSpec(
        "Gruppe",
        ("org:group", "group", "gruppe", "organisationseinheit", "abteilung"),
        required=False,
    ),
}


@dataclass(slots=True)
class Event:
    """One event as read: ``position`` is its place in the file (0-based)."""

    position: int
    case_key: str
    activity: str
    timestamp: dt.datetime  # always UTC
    resource: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParsedLog:
    format: str
    events: list[Event]
    notes: list[str] = field(default_factory=list)
    mapping: dict[str, Any] = field(default_factory=dict)

    @property
    def cases(self) -> int:
        return len({e.case_key for e in self.events})

    @property
    def activities(self) -> int:
        return len({e.activity for e in self.events})


# -- shared helpers ----------------------------------------------------------------------------


def zone_of(name: str | None) -> ZoneInfo:
    """The time zone for timestamps without offset: ``name`` from the IANA database (e.g.
    ``Europe/Vienna``, ``UTC``) or, when empty, :data:`DEFAULT_ZONE`. An unknown name is a
    German :class:`TableError`."""
    text = (name or "").strip() or DEFAULT_ZONE
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # ValueError: a path such as "../x"
        raise TableError(
            f"Die Zeitzone „{text[:60]}“ ist unbekannt. Erwartet wird ein Name aus der "
            f"IANA-Zeitzonendatenbank, z. B. {DEFAULT_ZONE}, Europe/Vienna oder UTC."
        ) from None


def _example(stamp: dt.datetime) -> str:
    return stamp.strftime("%d.%m.%Y %H:%M")


@dataclass
class LocalTime:
    """Turns the timestamps of one import into UTC and counts what it had to decide.

    A timestamp with an offset or ``Z`` keeps its instant. One without is wall-clock time in
    ``zone``, daylight saving time included, with the two edges of the clock change decided the
    same way every time (PEP 495, ``fold=0``):

    * the hour that occurs twice in autumn (Berlin: 02:00–02:59 on the last Sunday of October)
      is read as its *first* occurrence, still summer time (``02:30`` → ``00:30Z``);
    * the hour that does not exist in spring (Berlin: 02:00–02:59 on the last Sunday of March)
      is shifted *forward* by the length of the change (``02:30`` → ``03:30`` summer time,
      ``01:30Z``).

    :meth:`notes` says in German how many timestamps were read which way."""

    zone: ZoneInfo = field(default_factory=lambda: zone_of(None))
    total: int = 0
    naive: int = 0
    ambiguous: int = 0  # wall times that occur twice (autumn)
    skipped: int = 0  # wall times that do not exist (spring)
    examples: dict[str, dt.datetime] = field(default_factory=dict)  # first of each, for notes

    def parse(self, text: str, *, row: int | None = None, label: str = "Zeitpunkt") -> dt.datetime:
        """``text`` as a UTC instant; a :class:`TableError` naming ``row`` when unreadable."""
        return self.utc(parse_datetime(text, row=row, label=label, tz=self.zone))

    def utc(self, stamp: dt.datetime) -> dt.datetime:
        """``stamp`` from :func:`~rathaus.insights.tabular.parse_datetime` (called with
        ``tz=self.zone``) in UTC. That function attaches exactly this ``ZoneInfo`` object to a
        timestamp without offset; a written offset comes back as a ``datetime.timezone``."""
        self.total += 1
        if stamp.tzinfo is not self.zone:
            return stamp.astimezone(dt.UTC)
        self.naive += 1
        wall = stamp.replace(fold=0)
        # PEP 495: only at a clock change do fold=0 and fold=1 give different offsets. In the
        # autumn overlap fold=0 is the first occurrence (the larger, summer offset); in the
        # spring gap fold=0 takes the offset from before the gap (the smaller one), which puts
        # the instant one gap length later on the new wall clock.
        first, second = wall.utcoffset(), wall.replace(fold=1).utcoffset()
        if first is not None and second is not None and first > second:
            self.ambiguous += 1
            self.examples.setdefault("ambiguous", wall)
        elif first is not None and second is not None and first < second:
            self.skipped += 1
            self.examples.setdefault("skipped", wall)
        return wall.astimezone(dt.UTC)

    def notes(self) -> list[str]:
        """German notes for the import summary (empty when every timestamp had an offset)."""
        if not self.naive:
            return []
        share = "Alle" if self.naive == self.total else f"{self.naive} von {self.total}"
        notes = [
            f"{share} Zeitpunkte ohne Zeitzone wurden als Uhrzeit in {self.zone.key} gelesen "
            "(nicht in der Zeitzone des Servers)."
        ]
        if self.ambiguous:
            notes.append(
                f"{self.ambiguous} Zeitpunkt(e) lagen in der doppelten Stunde der Umstellung "
                f"auf Winterzeit (z. B. {_example(self.examples['ambiguous'])}); gelesen wurde "
                "jeweils das erste Auftreten (noch Sommerzeit)."
            )
        if self.skipped:
            first = self.examples["skipped"]
            shifted = first.astimezone(dt.UTC).astimezone(self.zone)
            notes.append(
                f"{self.skipped} Zeitpunkt(e) lagen in der Stunde, die bei der Umstellung "
                f"auf Sommerzeit übersprungen wird (z. B. {_example(first)}); sie wurden um die "
                f"Umstellung nach vorn verschoben ({first:%H:%M} → {shifted:%H:%M} Uhr)."
            )
        return notes

    def finish(self, log: ParsedLog) -> ParsedLog:
        """Record the zone in the log's mapping and add :meth:`notes`."""
        log.mapping["timezone"] = self.zone.key
        log.notes.extend(self.notes())
        return log


def _clip(value: str, label: str, where: str) -> str:
    value = value.strip()
    if len(value) > MAX_KEY:
        raise TableError(f"{where}, Feld „{label}“: Der Wert ist länger als {MAX_KEY} Zeichen.")
    return value


def order_note(events: Iterable[Event]) -> str | None:
    """A German note when some case has events out of time order (they are sorted, not refused)."""
    last: dict[str, dt.datetime] = {}
    unordered: set[str] = set()
    for event in events:
        before = last.get(event.case_key)
        if before is not None and event.timestamp < before:
            unordered.add(event.case_key)
        else:
            last[event.case_key] = event.timestamp
    if not unordered:
        return None
    examples = ", ".join(sorted(unordered)[:3])
    return (
        f"In {len(unordered)} Fall/Fällen standen Ereignisse nicht in zeitlicher Reihenfolge "
        f"(z. B. {examples}). Sie werden je Fall nach Zeitpunkt sortiert; bei gleichem Zeitpunkt "
        "gilt die Reihenfolge in der Datei."
    )


def _finish(log: ParsedLog) -> ParsedLog:
    if not log.events:
        raise TableError("Das Ereignisprotokoll enthält keine Ereignisse.")
    if len(log.events) > MAX_EVENTS:
        raise TableError(
            f"Das Ereignisprotokoll hat mehr als {MAX_EVENTS:,} Ereignisse.".replace(",", ".")
        )
    note = order_note(log.events)
    if note:
        log.notes.append(note)
    return log


_OCEL_XML_SECTIONS = re.compile(rb"<(?:\w+:)?(?:object-types|event-types|objects|events)\b")


def detect_format(data: bytes, filename: str = "") -> str:
    """``csv``, ``xes`` or ``ocel`` from the file name, else from the first bytes. OCEL 2.0
    comes as JSON, XML (root ``<log>`` like XES, but with ``<object-types>`` …) or SQLite."""
    name = filename.lower()
    if name.endswith((".xes", ".xes.xml")):
        return "xes"
    if name.endswith((".jsonocel", ".xmlocel", ".sqliteocel", ".ocel", ".json", ".sqlite")):
        return "ocel"
    if "ocel" in name and name.endswith((".xml", ".db", ".sqlite3")):
        return "ocel"
    if data.startswith(b"SQLite format 3\x00"):
        return "ocel"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return "ocel"
    if head.startswith(b"<"):
        return "ocel" if _OCEL_XML_SECTIONS.search(head) or b"<ocel" in head.lower() else "xes"
    return "csv"


def parse_event_log(
    data: bytes,
    filename: str = "",
    *,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    object_type: str | None = None,
    zone: str | None = None,
) -> ParsedLog:
    """Read an event log in ``fmt`` (``csv``, ``xes``, ``ocel`` in any OCEL 2.0 serialisation;
    detected when ``None``). Timestamps without offset are read in ``zone`` (IANA name;
    :data:`DEFAULT_ZONE` when empty)."""
    tz = zone_of(zone)
    fmt = (fmt or detect_format(data, filename)).lower()
    if fmt == "csv":
        return parse_csv(data, filename, mapping=mapping, zone=tz)
    if fmt == "xes":
        return parse_xes(data, zone=tz)
    if fmt in ("ocel", "ocel2", "jsonocel"):
        return parse_ocel(data, object_type=object_type, filename=filename, zone=tz)
    raise TableError(f"Unbekanntes Format „{fmt}“. Erlaubt sind: csv, xes, ocel.")


# -- CSV ---------------------------------------------------------------------------------------


def parse_csv(
    data: bytes,
    filename: str = "",
    *,
    mapping: Mapping[str, str] | None = None,
    zone: ZoneInfo | None = None,
) -> ParsedLog:
    """CSV (or XLSX) with one event per row; columns found by ``mapping`` (field → header) or
    by known names, pm4py's ``case:concept:name``/``concept:name``/``time:timestamp``/
    ``org:resource`` included. Further columns go into ``data``. Timestamps without offset
    (also Excel date cells, which carry none) are read in ``zone`` (see :class:`LocalTime`)."""
    clock = LocalTime(zone or zone_of(None))
    table: Table = read_table(data, filename, max_rows=MAX_EVENTS)
    columns = map_columns(table, CSV_FIELDS, {k: v for k, v in (mapping or {}).items() if v})
    used = set(columns.values())
    extra = [(i, h) for i, h in enumerate(table.headers) if i not in used and h]
    events: list[Event] = []
    for index, row in enumerate(table.rows):
        number = table.row_number(index)
        where = f"Zeile {number}"
        case_key = _clip(cell(table, row, columns, "case"), "Fall-ID", where)
        activity = _clip(cell(table, row, columns, "activity"), "Aktivität", where)
        if not case_key:
            raise TableError(f"{where}, Feld „Fall-ID“: Die Fall-ID fehlt.")
        if not activity:
            raise TableError(f"{where}, Feld „Aktivität“: Die Aktivität fehlt.")
        stamp = clock.parse(cell(table, row, columns, "timestamp"), row=number)
        attributes = {h: row[i] for i, h in extra if i < len(row) and row[i] != ""}
        group = cell(table, row, columns, "group")
        if group:
            attributes["group"] = group
        events.append(
            Event(
                position=index,
                case_key=case_key,
                activity=activity,
                timestamp=stamp,
                resource=_clip(cell(table, row, columns, "resource"), "Ressource", where),
                data=attributes,
            )
        )
    log = ParsedLog(
        "csv",
        events,
        notes=list(table.notes),
        mapping={name: table.headers[i] for name, i in columns.items()}
        | {"encoding": table.encoding, "delimiter": table.delimiter},
    )
    return _finish(clock.finish(log))


# -- XML safety --------------------------------------------------------------------------------

_DECL = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def check_xml_safe(data: bytes) -> None:
    """Refuse XML that declares a DOCTYPE or entities (entity expansion, external entities)."""
    probe = data
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        probe = data.decode("utf-16", errors="replace").encode("utf-8")
    if _DECL.search(probe):
        raise TableError(
            "Die XML-Datei enthält eine DOCTYPE- oder ENTITY-Deklaration. Aus Sicherheitsgründen "
            "werden solche Dateien nicht gelesen. Bitte ohne DTD exportieren."
        )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _iterparse(data: bytes) -> Iterable[tuple[str, ET.Element]]:
    check_xml_safe(data)
    try:
        # DOCTYPE and ENTITY were refused above; expat resolves no external entities.
        yield from ET.iterparse(io.BytesIO(data), events=("start", "end"))  # noqa: S314
    except ET.ParseError as exc:
        raise TableError(
            f"Die XML-Datei ist fehlerhaft: {xml_problem(exc)}. Bitte den Export prüfen."
        ) from exc


# -- XES ---------------------------------------------------------------------------------------

_XES_TYPES = {"string", "date", "int", "float", "boolean", "id"}


def _xes_value(kind: str, value: str) -> Any:
    if kind == "int":
        try:
            return int(value)
        except ValueError:
            return value
    if kind == "float":
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value  # NaN is no JSON: keep the text
    if kind == "boolean":
        return value.strip().lower() == "true"
    return value


def parse_xes(data: bytes, *, zone: ZoneInfo | None = None) -> ParsedLog:
    """XES (IEEE 1849), read as a stream: every ``<event>`` of every ``<trace>``; activity is
    ``concept:name``, time ``time:timestamp``, resource ``org:resource``, group ``org:group``.
    XES requires an offset; a timestamp without one is read in ``zone``."""
    clock = LocalTime(zone or zone_of(None))
    events: list[Event] = []
    depth_stack: list[str] = []
    trace_attrs: dict[str, Any] = {}
    event_attrs: dict[str, Any] = {}
    trace_no = 0
    saw_log = False
    for kind, element in _iterparse(data):
        tag = _local(element.tag)
        if kind == "start":
            depth_stack.append(tag)
            if tag == "log":
                saw_log = True
            elif tag == "trace":
                trace_no += 1
                trace_attrs = {}
            elif tag == "event":
                event_attrs = {}
            continue
        depth_stack.pop()
        parent = depth_stack[-1] if depth_stack else ""
        if tag in _XES_TYPES and parent in ("trace", "event"):
            key = element.get("key", "")
            value = _xes_value(tag, element.get("value", ""))
            (event_attrs if parent == "event" else trace_attrs)[key] = value
        elif tag == "event" and parent == "trace":
            events.append(_xes_event(len(events), trace_no, trace_attrs, event_attrs, clock))
            element.clear()
        elif tag == "trace":
            element.clear()
    if not saw_log:
        raise TableError("Die Datei ist keine XES-Datei (kein <log>-Element).")
    return _finish(clock.finish(ParsedLog("xes", events, mapping={"format": "xes"})))


def _xes_event(
    position: int,
    trace_no: int,
    trace: dict[str, Any],
    attrs: dict[str, Any],
    clock: LocalTime,
) -> Event:
    where = f"Fall {trace_no}, Ereignis {position + 1}"
    case_key = str(trace.get("concept:name", "") or f"Fall {trace_no}")
    activity = str(attrs.pop("concept:name", "")).strip()
    if not activity:
        raise TableError(f"{where}: Die Aktivität (concept:name) fehlt.")
    raw = attrs.pop("time:timestamp", "")
    if not raw:
        raise TableError(f"{where} ({activity}): Der Zeitpunkt (time:timestamp) fehlt.")
    try:
        stamp = clock.parse(str(raw))
    except TableError:
        raise TableError(f"{where} ({activity}): „{str(raw)[:40]}“ ist kein Zeitpunkt.") from None
    data = {k: v for k, v in attrs.items() if k not in ("org:resource", "org:group")}
    if attrs.get("org:group"):
        data["group"] = str(attrs["org:group"])
    return Event(
        position=position,
        case_key=_clip(case_key, "Fall-ID", where),
        activity=_clip(activity, "Aktivität", where),
        timestamp=stamp,
        resource=_clip(str(attrs.get("org:resource", "")), "Ressource", where),
        data=data,
    )


# -- OCEL 2.0 (JSON) ---------------------------------------------------------------------------

RESOURCE_ATTRIBUTES = ("org:resource", "resource", "ressource")


def _ocel_time(value: Any, where: str, clock: LocalTime) -> dt.datetime:
    try:
        return clock.parse(str(value or ""))
    except TableError:
        raise TableError(f"{where}: „{str(value)[:40]}“ ist kein Zeitpunkt.") from None


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list; anything else (a string, a number, an object) counts as none."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def parse_ocel(
    data: bytes,
    *,
    object_type: str | None = None,
    filename: str = "",
    zone: ZoneInfo | None = None,
) -> ParsedLog:
    """OCEL 2.0 in any of its serialisations: JSON here, XML and SQLite (recognised by their
    first bytes) in :mod:`rathaus.insights.ocel`. Process mining needs one *case notion*: the
    events are flattened onto the objects of ``object_type`` (see :func:`~rathaus.insights.
    ocel.flatten`); without it the type with the most event relations is chosen (with a note).
    A ``filename`` ending in ``.sqlite``/``.xml`` … picks that reader even when the content does
    not fit, so the error says what is wrong with the file. Times without offset (allowed by the
    SQLite form, ``2024-01-09 15:00:00``) are read in ``zone``."""
    from rathaus.insights import ocel

    clock = LocalTime(zone or zone_of(None))
    name = filename.lower()
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<") or name.endswith(ocel.XML_SUFFIXES):
        return ocel.parse_ocel_xml(data, object_type=object_type, zone=clock.zone)
    if ocel.is_sqlite(data) or name.endswith(ocel.SQLITE_SUFFIXES):
        return ocel.parse_ocel_sqlite(data, object_type=object_type, zone=clock.zone)
    try:
        doc = parse_json(data)
    except ParseProblem as exc:
        raise TableError(
            f"Die OCEL-Datei ist kein gültiges JSON: {exc.message}. Bitte den Export prüfen."
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise TableError("Die Datei ist kein OCEL 2.0: das Feld „events“ fehlt.")
    objects = doc.get("objects") or []
    if not isinstance(objects, list):
        raise TableError("Die OCEL-Datei ist fehlerhaft: „objects“ ist keine Liste.")
    type_of: dict[str, str] = {}
    for number, obj in enumerate(objects, start=1):
        if not isinstance(obj, dict) or "id" not in obj or "type" not in obj:
            raise TableError(f"Objekt {number}: „id“ oder „type“ fehlt.")
        type_of[str(obj["id"])] = str(obj["type"])
    raw: list[ocel.RawEvent] = []
    for number, event in enumerate(doc["events"], start=1):
        if not isinstance(event, dict):
            raise TableError(f"Ereignis {number}: kein JSON-Objekt.")
        eid = str(event.get("id", number))
        raw.append(
            ocel.RawEvent(
                where=f"Ereignis {number} („{eid[:40]}“)",
                type=str(event.get("type", "")),
                time=event.get("time"),
                attributes={
                    str(a.get("name")): a.get("value")
                    for a in _dicts(event.get("attributes"))
                    if a.get("name")
                },
                relationships=[
                    (str(r.get("objectId", "")), str(r.get("qualifier", "")))
                    for r in _dicts(event.get("relationships"))
                ],
                id=eid,
            )
        )
    return ocel.flatten(raw, type_of, object_type, "json", clock)
