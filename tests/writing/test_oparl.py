"""The OParl client against a real HTTP server on 127.0.0.1 (System → Body → paginated meeting
list → Meeting with agenda item URLs; a slow, a broken and a failing endpoint), and the import
of the real Karlsruhe meetings file."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rathaus.writing.oparl import (
    OParlClient,
    OParlError,
    meeting_from_file,
    meeting_from_json,
    meetings_in_file,
    parse_datetime,
    validate_url,
)

MEETINGS = Path(__file__).resolve().parents[3] / "shared" / "data" / "council" / "meetings.jsonl"
T = "https://schema.oparl.org/1.1/"
# The test server listens on the loopback address, which the SSRF guard refuses for addresses
# that staff enter unless the administration allows it (network.allowed_networks).
LOCAL = ["127.0.0.1/32"]


def _pages(base: str) -> dict[str, object]:
    item = lambda n, name, **extra: {  # noqa: E731
        "id": f"{base}/ai/{n}",
        "type": T + "AgendaItem",
        "number": str(n),
        "name": name,
        "public": True,
        **extra,
    }
    return {
        "/system": {"id": f"{base}/system", "type": T + "System", "body": f"{base}/bodies"},
        "/bodies": {
            "data": [
                {
                    "id": f"{base}/body/1",
                    "type": T + "Body",
                    "name": "Stadt Musterstadt",
                    "meeting": f"{base}/body/1/meetings",
                    "unknownField": {"nested": [1, 2]},
                }
            ],
            "links": {},
        },
        "/body/1/meetings": {
            "data": [
                {
                    "id": f"{base}/m/1",
                    "type": T + "Meeting",
                    "name": "Gemeinderat",
                    "start": "2025-03-04T18:00:00+01:00",
                },
                {"id": f"{base}/m/x", "type": T + "Meeting", "deleted": True},
            ],
            "links": {"next": f"{base}/body/1/meetings?page=2"},
        },
        "/body/1/meetings?page=2": {
            "data": [
                {
                    "id": f"{base}/m/2",
                    "type": T + "Meeting",
                    "name": "Bauausschuss (öffentlich)",
                    "start": "2025-02-10",  # a date without time
                    "location": "Sitzungssaal",  # a string instead of an object
                }
            ],
            "links": {"next": f"{base}/body/1/meetings?page=3"},
        },
        "/body/1/meetings?page=3": {
            "data": [{"id": f"{base}/m/3", "name": "Ältestenrat", "start": "2024-12-01T17:00:00"}],
            "links": {},
        },
        "/m/1": {
            "id": f"{base}/m/1",
            "type": T + "Meeting",
            "name": "Gemeinderat (öffentlich/nicht öffentlich)",
            "start": "2025-03-04T18:00:00+01:00",
            "end": "2025-03-04T21:30:00+01:00",
            "location": {"description": "Großer Sitzungssaal", "streetAddress": "Marktplatz 1"},
            "organization": [f"{base}/org/1"],
            "participant": [f"{base}/person/1", {"name": "Frau Öztürk"}],
            "agendaItem": [
                f"{base}/ai/1",
                item(2, "Bebauungsplan „Am Mühlbach“", order=2),
                f"{base}/ai/3",
                f"{base}/ai/4",
                f"{base}/ai/5",
                {"id": f"{base}/ai/9", "deleted": True},
            ],
        },
        "/ai/1": item(1, "Eröffnung", order=1),
        "/ai/4": item(4, "Verschiedenes", order=4, result="Kenntnisnahme"),
        "/org/1": {"id": f"{base}/org/1", "type": T + "Organization", "name": "Gemeinderat"},
        "/person/1": {"id": f"{base}/person/1", "type": T + "Person", "name": "Herr Weber"},
    }


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    routes: dict[str, object] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/slow":
                time.sleep(1.5)
            if self.path in ("/ai/3", "/broken"):
                self._send(200, b'{"id": "kaputt", "name": ')
                return
            if self.path == "/ai/5":
                self._send(500, b"Interner Fehler")
                return
            body = routes.get(self.path)
            if body is None:
                self._send(404, b"{}")
                return
            self._send(200, json.dumps(body).encode())

        def _send(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError):
                self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    routes.update(_pages(base))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield base
    httpd.shutdown()
    httpd.server_close()


def test_meeting_list_follows_pages_and_skips_deleted(server):
    with OParlClient(timeout_s=5, max_pages=10, allowed_networks=LOCAL) as client:
        found = client.meetings(f"{server}/system")
    assert [m.name for m in found.meetings] == [
        "Gemeinderat",
        "Bauausschuss (öffentlich)",
        "Ältestenrat",
    ]
    assert found.pages == 3 and not found.truncated
    assert found.meetings[1].location == "Sitzungssaal"
    assert found.meetings[1].start.year == 2025 and found.meetings[1].start.tzinfo is None
    assert found.meetings[0].start.utcoffset().total_seconds() == 3600


def test_meeting_list_stops_at_max_pages(server):
    with OParlClient(timeout_s=5, max_pages=2, allowed_networks=LOCAL) as client:
        found = client.meetings(f"{server}/body/1/meetings")
    assert found.pages == 2 and found.truncated
    assert len(found.meetings) == 2


def test_meeting_import_keeps_partial_results(server):
    with OParlClient(timeout_s=5, max_pages=5, allowed_networks=LOCAL) as client:
        meeting = client.meeting(f"{server}/m/1")
    assert [(a.number, a.name) for a in meeting.agenda] == [
        ("1", "Eröffnung"),
        ("2", "Bebauungsplan „Am Mühlbach“"),
        ("4", "Verschiedenes"),
    ]
    assert meeting.agenda[2].result == "Kenntnisnahme"
    assert meeting.body_name == "Gemeinderat"
    assert meeting.location == "Großer Sitzungssaal, Marktplatz 1"
    assert {p["name"] for p in meeting.participants} == {"Frau Öztürk", "Herr Weber"}
    failed = dict(meeting.failures)
    assert len(failed) == 2
    broken = next(why for what, why in failed.items() if "/ai/3" in what)
    assert "kein gültiges JSON" in broken
    status = next(why for what, why in failed.items() if "/ai/5" in what)
    assert "HTTP-Status 500" in status and "127.0.0.1" in status


def test_slow_server_gives_a_german_timeout_message(server):
    with (
        OParlClient(timeout_s=0.5, allowed_networks=LOCAL) as client,
        pytest.raises(OParlError) as caught,
    ):
        client.get(f"{server}/slow")
    message = caught.value.message
    assert "127.0.0.1" in message and "0.5 Sekunden" in message and "geantwortet" in message


def test_broken_json_and_http_errors_are_german(server):
    with OParlClient(timeout_s=5, allowed_networks=LOCAL) as client:
        with pytest.raises(OParlError, match="kein gültiges JSON"):
            client.get(f"{server}/broken")
        with pytest.raises(OParlError, match="HTTP-Status 404"):
            client.meeting(f"{server}/gibt-es-nicht")


def test_unreachable_server():
    with (
        OParlClient(timeout_s=2, allowed_networks=LOCAL) as client,
        pytest.raises(OParlError, match="nicht erreichbar"),
    ):
        client.get("http://127.0.0.1:9/oparl")


@pytest.mark.parametrize(
    "url", ["ftp://example.org/x", "file:///etc/passwd", "oparl", "http://u:p@host/x", ""]
)
def test_only_http_urls(url):
    with pytest.raises(OParlError):
        validate_url(url)


def test_dates_with_and_without_zone():
    assert parse_datetime("2025-01-15T17:00:00+01:00").utcoffset().total_seconds() == 3600
    assert parse_datetime("2025-01-15T17:00:00Z").utcoffset().total_seconds() == 0
    assert parse_datetime("2025-01-15T17:00:00").tzinfo is None
    assert parse_datetime("2025-01-15").hour == 0
    assert parse_datetime("morgen") is None and parse_datetime(None) is None


def test_uploaded_json_with_embedded_objects():
    data = {
        "data": [
            {
                "id": "https://x/m/7",
                "name": "Ortschaftsrat Durlach (öffentlich/nicht öffentlich)",
                "start": "2025-01-15T17:00:00+01:00",
                "agendaItem": [
                    {"number": 2, "name": "Bericht", "order": 2, "public": False},
                    {"number": "1", "name": "Glasfaser", "order": 1},
                    "https://x/ai/3",
                ],
            }
        ]
    }
    meeting = meeting_from_json(data)
    assert meeting.body_name == "Ortschaftsrat Durlach"
    assert [(a.number, a.public) for a in meeting.agenda] == [("1", True), ("2", False)]
    assert meeting.failures and "nur als Adresse" in meeting.failures[0][1]


@pytest.mark.skipif(not MEETINGS.exists(), reason="Karlsruher Sitzungsdaten fehlen (shared/data)")
def test_import_from_the_karlsruhe_file():
    listed = meetings_in_file(MEETINGS, limit=3000)
    assert len(listed) > 2000
    with_agenda = None
    with MEETINGS.open(encoding="utf-8") as handle:
        for line in handle:
            obj = json.loads(line)
            if len(obj.get("agendaItem") or []) >= 5 and obj.get("location"):
                with_agenda = obj
                break
    assert with_agenda is not None
    short_id = with_agenda["id"].rsplit("/", 1)[-1]
    meeting = meeting_from_file(MEETINGS, short_id)
    assert len(meeting.agenda) == len(
        [a for a in with_agenda["agendaItem"] if not a.get("deleted")]
    )
    assert meeting.start is not None and meeting.location and meeting.body_name
    assert meeting.failures == []
    with pytest.raises(OParlError, match="steht nicht in"):
        meeting_from_file(MEETINGS, "gibt-es-nicht")
