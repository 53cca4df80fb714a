"""A tolerant OParl 1.1 client: bodies, paginated meeting lists and meetings with their agenda
items, from a council information system over HTTP or from a local JSON/JSONL file.

Tolerant means: missing and unknown fields are fine, a field may be an embedded object or the
URL of one, dates come with or without time zone, ``deleted`` objects are skipped, and when
some agenda items cannot be fetched the rest is imported and the failures are listed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from rathaus.core import netguard
from rathaus.core.errors import RathausError
from rathaus.core.parsing import ParseProblem, parse_json
from rathaus.writing.minutes import AgendaItem

MAX_RESPONSE_BYTES = 20 * 1024 * 1024
MAX_AGENDA_FETCHES = 300
MAX_PARTICIPANT_FETCHES = 120
USER_AGENT = "Rathaus-OParl/1.0"


class OParlError(RathausError):
    """The OParl server or file cannot be read (German message naming server and cause)."""


@dataclass
class MeetingSummary:
    """One row of a meeting list."""

    id: str
    name: str
    start: dt.datetime | None
    end: dt.datetime | None
    location: str = ""
    cancelled: bool = False


@dataclass
class MeetingList:
    meetings: list[MeetingSummary]
    pages: int
    truncated: bool  # more pages existed than ``max_pages`` allowed


@dataclass
class ImportedMeeting:
    """A meeting with its agenda, ready to become a Niederschrift."""

    id: str
    name: str
    body_name: str
    start: dt.datetime | None
    end: dt.datetime | None
    location: str
    agenda: list[AgendaItem]
    participants: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (what, why)


# -- tolerant field readers ---------------------------------------------------------------------


def parse_datetime(value: Any) -> dt.datetime | None:
    """``2025-01-15T17:00:00+01:00``, ``…Z``, without zone, or a bare date; else ``None``."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace(" ", "T", 1)
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return dt.datetime.combine(dt.date.fromisoformat(text[:10]), dt.time())
    except ValueError:
        return None


def local_time(value: dt.datetime | None) -> dt.datetime | None:
    """The wall-clock time as given by the server, without zone (how the meeting is announced)."""
    return value.replace(tzinfo=None) if value is not None else None


def _text(value: Any, limit: int = 500) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _is_deleted(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("deleted") is True


def location_text(value: Any) -> str:
    """A Location object (description, street, room, locality) or a plain string."""
    if isinstance(value, str):
        return "" if value.startswith(("http://", "https://")) else value.strip()[:300]
    if not isinstance(value, dict):
        return ""
    parts = [
        _text(value.get(key), 200)
        for key in ("description", "room", "streetAddress", "locality")
        if _text(value.get(key), 200)
    ]
    unique: list[str] = []
    for part in parts:
        if not any(part in other for other in unique):
            unique.append(part)
    return ", ".join(unique)[:300]


def _list(value: Any) -> list[Any]:
    """A JSON list as it is; anything else where a list belongs (a number, a text) as none."""
    return value if isinstance(value, list) else []


def body_name_of(meeting: dict[str, Any]) -> str:
    """The Gremium: an embedded organization's name, else the meeting name without the
    „(öffentlich/nicht öffentlich)“ and date parts."""
    for org in _list(meeting.get("organization")):
        if isinstance(org, dict) and _text(org.get("name")):
            return _text(org.get("name"), 300)
    name = _text(meeting.get("name"), 300)
    name = re.sub(r"\s*\((?:nicht\s*)?öffentlich[^)]*\)", "", name, flags=re.IGNORECASE)
    return re.sub(r"\s+(?:am\s+)?\d{1,2}\.\d{1,2}\.\d{2,4}.*$", "", name).strip()


def agenda_item_of(obj: dict[str, Any], position: int) -> AgendaItem:
    number = obj.get("number")
    if isinstance(number, int | float):
        number = str(number)
    result = obj.get("result")
    return AgendaItem(
        number=_text(number, 30) or str(obj.get("order") or position),
        name=_text(obj.get("name")) or "(ohne Bezeichnung)",
        public=obj.get("public") is not False,
        oparl_id=_text(obj.get("id")) or None,
        result=_text(result, 300) if isinstance(result, str) else "",
    )


def summary_of(obj: dict[str, Any]) -> MeetingSummary:
    return MeetingSummary(
        id=_text(obj.get("id")),
        name=_text(obj.get("name"), 300) or "(ohne Bezeichnung)",
        start=parse_datetime(obj.get("start")),
        end=parse_datetime(obj.get("end")),
        location=location_text(obj.get("location")),
        cancelled=obj.get("cancelled") is True,
    )


def _participants(values: Any) -> list[dict[str, Any]]:
    rows = []
    for person in _list(values):
        if isinstance(person, dict) and not _is_deleted(person):
            name = _text(person.get("name"), 120) or " ".join(
                p for p in (_text(person.get("givenName")), _text(person.get("familyName"))) if p
            )
            if name:
                rows.append({"name": name, "status": "anwesend", "source": "OParl"})
    return rows


# -- HTTP ---------------------------------------------------------------------------------------


def validate_url(url: str) -> str:
    """An http(s) URL with a host and without credentials, else a German :class:`OParlError`."""
    url = (url or "").strip()
    if not url:
        raise OParlError("Bitte die Adresse des OParl-Servers angeben (http:// oder https://).")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OParlError(
            f"„{url[:200]}“ ist keine gültige OParl-Adresse: erlaubt sind nur http:// oder "
            "https:// mit Rechnername, z. B. https://ratsinfo.example.de/oparl/v1/system."
        )
    if parts.username or parts.password:
        raise OParlError("Die OParl-Adresse darf keine Zugangsdaten enthalten.")
    return url


class OParlClient:
    """Reads one OParl server; every failure is an :class:`OParlError` in German.

    The server address is entered by staff: every connection, redirects included, goes only to
    public addresses or to the networks in ``allowed_networks`` (``network.allowed_networks``,
    see :mod:`rathaus.core.netguard`).
    """

    def __init__(
        self,
        *,
        timeout_s: float = 20.0,
        max_pages: int = 50,
        allowed_networks: Sequence[str] = (),
    ) -> None:
        self.timeout_s = timeout_s
        self.max_pages = max_pages
        self._http = netguard.http_client(
            netguard.for_entered_hosts("Der OParl-Server", allowed_networks),
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=True,
            max_redirects=5,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        )

    def __enter__(self) -> OParlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, url: str) -> dict[str, Any]:
        """One OParl object (or list page) as a dict."""
        url = validate_url(url)
        server = urlsplit(url).hostname or url
        if urlsplit(url).port:
            server = f"{server}:{urlsplit(url).port}"
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise OParlError(
                        f"Der OParl-Server {server} antwortet auf {url} mit HTTP-Status "
                        f"{response.status_code}{_reason(response.status_code)}. Bitte die "
                        "Adresse prüfen oder es später erneut versuchen."
                    )
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise OParlError(
                            f"Die Antwort des OParl-Servers {server} auf {url} ist größer als "
                            f"{MAX_RESPONSE_BYTES // 1048576} MB und wurde nicht gelesen."
                        )
        except httpx.TimeoutException:
            raise OParlError(
                f"Der OParl-Server {server} hat nicht innerhalb von {self.timeout_s:g} Sekunden "
                f"geantwortet ({url}). Bitte später erneut versuchen oder die Zeitgrenze "
                "RATHAUS_WRITING__OPARL_TIMEOUT_S erhöhen."
            ) from None
        except httpx.HTTPError as exc:
            raise OParlError(
                f"Der OParl-Server {server} ist nicht erreichbar ({type(exc).__name__}). Bitte "
                "die Adresse und die Netzverbindung prüfen."
            ) from None
        except netguard.NetGuardError as exc:
            raise OParlError(exc.message) from None
        try:
            data = parse_json(bytes(body))
        except ParseProblem as exc:
            raise OParlError(
                f"Die Antwort des OParl-Servers {server} auf {url} ist kein gültiges JSON "
                f"({exc.message}). Ist das wirklich eine OParl-Schnittstelle?"
            ) from None
        if not isinstance(data, dict):
            raise OParlError(
                f"Die Antwort des OParl-Servers {server} auf {url} ist kein OParl-Objekt."
            )
        return data

    # -- lists ----------------------------------------------------------------------------

    def pages(self, url: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """The pages of an OParl list, following ``links.next`` up to ``max_pages``."""
        seen: set[str] = set()
        next_url: str | None = url
        number = 0
        while next_url and number < self.max_pages and next_url not in seen:
            seen.add(next_url)
            page = self.get(next_url)
            number += 1
            yield number, page
            links = page.get("links") if isinstance(page.get("links"), dict) else {}
            next_url = links.get("next") if isinstance(links.get("next"), str) else None
        self._more = bool(next_url) and next_url not in seen

    def list_objects(self, url: str) -> tuple[list[dict[str, Any]], int, bool]:
        objects: list[dict[str, Any]] = []
        count = 0
        self._more = False
        for number, page in self.pages(url):
            count = number
            data = page.get("data")
            if data is None and _type(page):  # a single object, not a list
                data = [page]
            for obj in _list(data):
                if isinstance(obj, dict) and not _is_deleted(obj):
                    objects.append(obj)
        return objects, count, self._more

    def bodies(self, url: str) -> list[dict[str, Any]]:
        """The bodies behind a System URL, a body list URL or a Body URL."""
        first = self.get(url)
        kind = _type(first)
        if kind == "Body":
            return [first]
        if kind == "System":
            body = first.get("body")
            if isinstance(body, list):
                return [b for b in body if isinstance(b, dict) and not _is_deleted(b)]
            if not isinstance(body, str):
                raise OParlError(f"Das OParl-System {url} nennt keine Körperschaften (body).")
            url = body
        objects, _, _ = self.list_objects(url)
        return [o for o in objects if _type(o) in ("Body", "")]

    def meetings(self, url: str) -> MeetingList:
        """The meetings behind a System, Body or meeting list URL (newest first)."""
        first = self.get(url)
        kind = _type(first)
        list_url = url
        if kind in ("System", "Body"):
            body = first if kind == "Body" else (self.bodies(url) or [None])[0]
            if not body:
                raise OParlError(f"Unter {url} wurde keine Körperschaft gefunden.")
            meeting = body.get("meeting")
            if not isinstance(meeting, str):
                raise OParlError(
                    f"Die Körperschaft „{_text(body.get('name'), 200)}“ nennt keine "
                    "Sitzungsliste (meeting)."
                )
            list_url = meeting
        objects, pages, more = self.list_objects(list_url)
        found = [summary_of(o) for o in objects if _type(o) in ("Meeting", "")]
        found.sort(key=lambda m: _sort_key(m.start), reverse=True)
        return MeetingList(found, pages, more)

    # -- one meeting ----------------------------------------------------------------------

    def meeting(self, url: str) -> ImportedMeeting:
        """A meeting with its agenda; agenda items given as URLs are fetched one by one, and
        those that fail are listed in ``failures`` while the rest is imported."""
        obj = self.get(url)
        if _is_deleted(obj):
            raise OParlError(f"Die Sitzung {url} ist im Ratsinformationssystem gelöscht.")
        return meeting_from_object(obj, fetch=self._try_get, source=url)

    def _try_get(self, url: str) -> tuple[dict[str, Any] | None, str]:
        try:
            return self.get(url), ""
        except OParlError as exc:
            return None, exc.message


def _reason(status: int) -> str:
    return {
        401: " (Anmeldung verlangt)",
        403: " (Zugriff verweigert)",
        404: " (nicht gefunden)",
        429: " (zu viele Anfragen)",
        500: " (interner Serverfehler)",
        502: " (Gateway-Fehler)",
        503: " (Dienst nicht verfügbar)",
        504: " (Gateway-Zeitüberschreitung)",
    }.get(status, "")


def _type(obj: dict[str, Any]) -> str:
    value = obj.get("type")
    if not isinstance(value, str):
        return ""
    return value.rstrip("/").rsplit("/", 1)[-1]


def _sort_key(value: dt.datetime | None) -> dt.datetime:
    if value is None:
        return dt.datetime.min
    return value.replace(tzinfo=None)


def meeting_from_object(
    obj: dict[str, Any],
    *,
    fetch: Any = None,
    source: str = "",
) -> ImportedMeeting:
    """An :class:`ImportedMeeting` from a Meeting object; ``fetch(url) -> (obj | None, why)``
    resolves agenda items, location, organization and participants given as URLs (without
    ``fetch`` they are listed as not fetched)."""
    failures: list[tuple[str, str]] = []
    ordered: list[tuple[int, int, AgendaItem]] = []
    raw_items = obj.get("agendaItem") or []
    if not isinstance(raw_items, list):
        raw_items = []
    for position, raw in enumerate(raw_items[:MAX_AGENDA_FETCHES], start=1):
        item = raw
        if isinstance(raw, str):
            if fetch is None:
                failures.append((f"Tagesordnungspunkt {raw}", "nur als Adresse angegeben"))
                continue
            item, why = fetch(raw)
            if item is None:
                failures.append((f"Tagesordnungspunkt {position} ({raw})", why))
                continue
        if isinstance(item, dict) and not _is_deleted(item):
            order = item.get("order")
            key = order if isinstance(order, int) and not isinstance(order, bool) else position
            ordered.append((key, position, agenda_item_of(item, position)))
    if len(raw_items) > MAX_AGENDA_FETCHES:
        failures.append(("Tagesordnung", f"nur die ersten {MAX_AGENDA_FETCHES} Punkte übernommen"))
    agenda = [item for _, _, item in sorted(ordered, key=lambda t: (t[0], t[1]))]

    location = location_text(obj.get("location"))
    if not location and isinstance(obj.get("location"), str) and fetch is not None:
        fetched, _ = fetch(obj["location"])
        location = location_text(fetched) if fetched else ""
    body_name = body_name_of(obj)
    orgs = obj.get("organization") or []
    if fetch is not None and isinstance(orgs, list) and orgs and isinstance(orgs[0], str):
        fetched, _ = fetch(orgs[0])
        if fetched and _text(fetched.get("name")):
            body_name = _text(fetched.get("name"), 300)
    participants = _participants(obj.get("participant"))
    urls = [p for p in _list(obj.get("participant")) if isinstance(p, str)]
    if urls and fetch is not None:
        for person_url in urls[:MAX_PARTICIPANT_FETCHES]:
            person, why = fetch(person_url)
            if person is None:
                failures.append((f"Person {person_url}", why))
            else:
                participants.extend(_participants([person]))
    return ImportedMeeting(
        id=_text(obj.get("id")) or source,
        name=_text(obj.get("name"), 300) or "(ohne Bezeichnung)",
        body_name=body_name,
        start=parse_datetime(obj.get("start")),
        end=parse_datetime(obj.get("end")),
        location=location,
        agenda=agenda,
        participants=participants,
        failures=failures,
    )


# -- local files (an OParl export such as the Karlsruhe meetings.jsonl) -------------------------


def read_meetings_file(path: Path) -> Iterator[dict[str, Any]]:
    """Meeting objects from a JSON file (one object, a list or an OParl list page with
    ``data``) or a JSONL file (one object a line); deleted ones are skipped."""
    if not path.is_file():
        raise OParlError(f"Die Datei „{path}“ gibt es nicht.")
    try:
        yield from _read_meetings(path)
    except UnicodeDecodeError as exc:
        raise OParlError(
            f"Die Datei „{path.name}“ ist nicht UTF-8-kodiert (unlesbares Byte an Stelle "
            f"{exc.start + 1}). Bitte als UTF-8 speichern."
        ) from None


def _read_meetings(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8-sig") as handle:
        head = handle.read(1)
        handle.seek(0)
        first_line = handle.readline()
        handle.seek(0)
        as_lines = head == "{" and _is_complete_json(first_line)
        if as_lines:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = parse_json(line)
                except ParseProblem:
                    raise OParlError(
                        f"Zeile {number} der Datei „{path.name}“ ist kein gültiges JSON."
                    ) from None
                if isinstance(obj, dict) and not _is_deleted(obj):
                    yield obj
            return
        try:
            data = parse_json(handle.read())
        except ParseProblem as exc:
            raise OParlError(
                f"Die Datei „{path.name}“ ist kein gültiges JSON ({exc.message}). Erwartet "
                "wird eine OParl-Sitzung, eine Liste von Sitzungen oder eine Datei mit einer "
                "Sitzung je Zeile (JSONL)."
            ) from None
    yield from objects_of(data)


def objects_of(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise OParlError("Die Datei enthält keine OParl-Sitzungen.")
    for obj in data:
        if isinstance(obj, dict) and not _is_deleted(obj):
            yield obj


def _is_complete_json(line: str) -> bool:
    try:
        parse_json(line)
    except ParseProblem:
        return False
    return True


def parse_upload(data: bytes) -> Any:
    """An uploaded OParl export (JSON, or JSONL: one object a line) as data for
    :func:`meeting_from_json`."""
    text = data.decode("utf-8-sig", errors="replace").strip()
    try:
        return parse_json(text)
    except ParseProblem:
        pass
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(parse_json(line))
        except ParseProblem:
            raise OParlError(
                f"Die hochgeladene Datei ist weder JSON noch JSONL (Zeile {number})."
            ) from None
    return rows


def _matches(obj: dict[str, Any], meeting_id: str) -> bool:
    oid = _text(obj.get("id"))
    return oid == meeting_id or oid.rstrip("/").rsplit("/", 1)[-1] == meeting_id.strip("/")


def meeting_from_file(path: Path, meeting_id: str | None = None) -> ImportedMeeting:
    """One meeting from a local file: by its id (full URL or last part, e.g. ``10022``);
    without an id, the file must hold exactly one meeting."""
    objects = read_meetings_file(path)
    if meeting_id:
        for obj in objects:
            if _matches(obj, meeting_id):
                return meeting_from_object(obj, source=str(path))
        raise OParlError(
            f"Die Sitzung „{meeting_id}“ steht nicht in „{path.name}“. Mit „rathaus text "
            "protokoll oparl-sitzungen DATEI“ lassen sich die enthaltenen Sitzungen anzeigen."
        )
    found = []
    for obj in objects:
        found.append(obj)
        if len(found) > 1:
            raise OParlError(
                f"„{path.name}“ enthält mehrere Sitzungen; bitte die Sitzung (Kennung) angeben."
            )
    if not found:
        raise OParlError(f"„{path.name}“ enthält keine Sitzung.")
    return meeting_from_object(found[0], source=str(path))


def meeting_from_json(data: Any, meeting_id: str | None = None) -> ImportedMeeting:
    """One meeting from uploaded JSON (already parsed), by id when the data holds several."""
    objects = list(objects_of(data))
    if meeting_id:
        objects = [o for o in objects if _matches(o, meeting_id)]
    if not objects:
        raise OParlError("In der Datei wurde die gewünschte Sitzung nicht gefunden.")
    if len(objects) > 1:
        raise OParlError(
            "Die Datei enthält mehrere Sitzungen; bitte die Kennung der Sitzung angeben."
        )
    return meeting_from_object(objects[0], source="Datei")


def meetings_in_file(path: Path, limit: int = 10_000) -> list[MeetingSummary]:
    found = []
    for obj in read_meetings_file(path):
        found.append(summary_of(obj))
        if len(found) >= limit:
            break
    found.sort(key=lambda m: _sort_key(m.start), reverse=True)
    return found
