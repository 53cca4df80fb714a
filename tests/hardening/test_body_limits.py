"""Request bodies over their limit: refused with 413 and a German text before they are read
(declared length) or as soon as they pass the limit (sent without length), on every upload
path; a file over the per-file limit inside a batch is refused alone, the rest is kept."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import func, select

from rathaus.core import apikeys
from rathaus.core.config import Settings, load_settings
from rathaus.core.models import Case, Document
from rathaus.web.app import all_routes, create_app
from rathaus.web.limits import MB, BodyLimits, body_families
from tests.factories import PASSWORD

BOUNDARY = "grenze4711"
BIG = 200 * MB  # the bad input of issue 3: a 200 MB file


class Feed:
    """A request body made only as it is read: ``head``, then ``size`` bytes in 1 MB chunks,
    then ``tail``. ``sent`` says how much of it the server asked for."""

    def __init__(self, size: int, head: bytes = b"", tail: bytes = b"") -> None:
        self.size, self.head, self.tail = size, head, tail
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.sent += len(self.head)
        yield self.head
        left = self.size
        while left > 0:
            n = min(MB, left)
            left -= n
            self.sent += n
            yield b"0" * n
        self.sent += len(self.tail)
        yield self.tail


def multipart_feed(size: int, fields: dict[str, str], field: str, filename: str) -> Feed:
    head = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    head += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n%PDF-'
    ).encode()
    return Feed(size, head, f"\r\n--{BOUNDARY}--\r\n".encode())


def post(app: FastAPI, path: str, feed: Feed, headers: dict[str, str], cookies=None):  # type: ignore[no-untyped-def]
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", cookies=cookies
        ) as client:
            return await client.post(path, content=feed, headers=headers)

    return asyncio.run(go())


# Every family with one of its routes, and whether the answer is JSON.
ROUTES = [
    ("/posteingang/hochladen", False),
    ("/api/v1/inbox/items", True),
    ("/wissen/import", False),
    ("/api/v1/assistant/ask", True),
    ("/assistent", False),
    ("/open311/v2/requests.json", True),
    ("/login", False),
    ("/texte/zusammenfassung", False),
    ("/texte/transkription", False),
    ("/api/v1/texte/transkription", True),
    ("/lagebild/buchungen/import", False),
    ("/lagebild/prognose/import", False),
    ("/lagebild/prozesse", False),
    ("/lagebild/winterdienst", False),
    ("/texte/brief", False),  # no family: limits.max_request_mb
]


@pytest.mark.parametrize(("path", "json"), ROUTES)
def test_a_declared_length_over_the_limit_is_refused_unread(app, path, json):  # type: ignore[no-untyped-def]
    limit = BodyLimits.from_settings(app.state.settings).for_path(path)
    feed = Feed(limit + 1)
    response = post(app, path, feed, {"Content-Length": str(limit + 1)})
    assert response.status_code == 413
    assert feed.sent == 0  # not one byte of the body was asked for
    assert response.headers["connection"] == "close"
    assert response.headers["x-content-type-options"] == "nosniff"  # the app's headers too
    text = response.json()["detail"] if json else response.text
    assert "Die Anfrage ist zu groß" in text and "nichts gespeichert" in text
    if not json:
        assert response.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in text


def test_the_limit_itself_passes(app, worlds):  # type: ignore[no-untyped-def]
    """The login form's limit (16 kB) exactly: the route answers (the form is stale: 403)."""
    limit = BodyLimits.from_settings(app.state.settings).for_path("/login")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    body = "username=a&password=b&csrf_token=x&fuellung=" + "a" * limit
    at = post(
        app, "/login", Feed(0, body[:limit].encode()), headers | {"Content-Length": str(limit)}
    )
    assert at.status_code == 403 and "Formular ist abgelaufen" in at.text
    over = post(
        app,
        "/login",
        Feed(0, body[: limit + 1].encode()),
        headers | {"Content-Length": str(limit + 1)},
    )
    assert over.status_code == 413


@pytest.fixture
def api_key(worlds, db):  # type: ignore[no-untyped-def]
    with db.session() as session:
        key, _ = apikeys.create(
            session, tenant=worlds["a"].tenant, channel="api", name="Fachverfahren"
        )
    return key


def test_200_mb_without_length_stops_at_the_limit(app, api_key, db):  # type: ignore[no-untyped-def]
    """Sent chunked (no Content-Length), a 200 MB upload to the inbox API is read only up to
    the upload limit (inbox.max_request_mb, 200 MB) and answered with 413; nothing is stored."""
    limit = BodyLimits.from_settings(app.state.settings).for_path("/api/v1/inbox/items")
    before = _counts(db)
    feed = multipart_feed(BIG + 10 * MB, {"subject": "Scan"}, "files", "scan.pdf")
    response = post(
        app,
        "/api/v1/inbox/items",
        feed,
        {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )
    assert response.status_code == 413, response.text
    assert "höchstens 200 MB" in response.json()["detail"]
    assert limit < feed.sent <= limit + MB + len(feed.head)  # stopped within one chunk
    assert _counts(db) == before


def _counts(db) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return (
            session.scalar(select(func.count(Case.id))) or 0,
            session.scalar(select(func.count(Document.id))) or 0,
        )


def _login_cookies(app: FastAPI) -> tuple[httpx.Cookies, str]:
    async def go() -> tuple[httpx.Cookies, str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            page = await c.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            data = {"username": "leitung", "password": PASSWORD, "kommune": "alpha"}
            await c.post("/login", data=data | {"csrf_token": token})
            home = await c.get("/")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]
            return c.cookies, csrf

    return asyncio.run(go())


def test_a_200_mb_upload_in_the_browser_gets_the_german_error_page(app, worlds, db):  # type: ignore[no-untyped-def]
    """The staff upload page, sent without length: the form parser stops at the limit and the
    person sees the error page with what to do next; nothing is stored."""
    cookies, csrf = _login_cookies(app)
    before = _counts(db)
    feed = multipart_feed(BIG + 10 * MB, {"csrf_token": csrf}, "dateien", "scan.pdf")
    response = post(
        app,
        "/posteingang/hochladen",
        feed,
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        cookies=cookies,
    )
    assert response.status_code == 413
    assert "Die Anfrage ist zu groß (höchstens 200 MB)" in response.text
    assert "in mehreren Teilen senden" in response.text
    limit = BodyLimits.from_settings(app.state.settings).for_path("/posteingang/hochladen")
    assert limit < feed.sent <= limit + MB + len(feed.head)
    assert _counts(db) == before


@pytest.fixture
def small_app(db, tmp_path):  # type: ignore[no-untyped-def]
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        database_url=db.url,
        default_tenant="alpha",
        queue={"backend": "memory"},
        inbox={"max_upload_mb": 1, "max_request_mb": 3},
    )
    return create_app(settings, database=db)


def test_a_file_over_the_file_limit_is_refused_alone(small_app, worlds, db):  # type: ignore[no-untyped-def]
    """Within the request limit (3 MB) a 2 MB file over the file limit (1 MB) is refused with
    its own German message; the other file and the text of the same upload become cases."""
    from fastapi.testclient import TestClient

    from tests.web.conftest import csrf_of, login

    with TestClient(small_app, follow_redirects=False) as client:
        login(client, "leitung")
        response = client.post(
            "/posteingang/hochladen",
            data={"csrf_token": csrf_of(client), "text": "Bitte Sperrmüll am Montag abholen."},
            files=[
                ("dateien", ("gross.pdf", b"%PDF-" + b"0" * (2 * MB), "application/pdf")),
                ("dateien", ("brief.txt", b"Antrag auf Anwohnerparkausweis", "text/plain")),
            ],
        )
        assert response.status_code == 200
        assert "„gross.pdf“ ist größer als 1 MB und wurde nicht angenommen" in response.text
        over = client.post(
            "/posteingang/hochladen",
            data={"csrf_token": csrf_of(client)},
            files=[("dateien", ("riesig.pdf", b"0" * (3 * MB + 1), "application/pdf"))],
        )
        assert over.status_code == 413 and "höchstens 3 MB" in over.text
    with db.session() as session:
        names = set(session.scalars(select(Document.filename)))
        assert {"brief.txt", "text.txt"} <= names and not {"gross.pdf", "riesig.pdf"} & names


def test_every_family_matches_real_routes_and_holds_their_files(app):  # type: ignore[no-untyped-def]
    """No family names a path that no route has (a renamed route would lose its limit), and
    each upload family allows at least the per-file limit its routes enforce."""
    from rathaus.web import insights_bookings, insights_forecast, insights_process

    settings: Settings = app.state.settings
    paths = [r.path for r in all_routes(app) if "POST" in getattr(r, "methods", set())]
    for family in body_families(settings):
        for prefix in family.prefixes:
            assert any(p.startswith(prefix) for p in paths), (family.label, prefix)
    limits = BodyLimits.from_settings(settings)
    needed = {
        "/posteingang/hochladen": settings.inbox.max_upload_mb * MB,
        "/api/v1/inbox/items": settings.inbox.max_upload_mb * MB,
        "/wissen/import": settings.inbox.max_upload_mb * MB,
        "/texte/zusammenfassung": settings.inbox.max_upload_mb * MB,
        "/texte/transkription": settings.writing.max_audio_mb * MB,
        "/texte/niederschriften/1/aufnahme": settings.writing.max_audio_mb * MB,
        "/lagebild/buchungen/import": insights_bookings.MAX_UPLOAD_BYTES,
        "/lagebild/prognose/import": insights_forecast.MAX_UPLOAD_BYTES,
        "/lagebild/prozesse": insights_process.MAX_UPLOAD_BYTES,
    }
    for path, size in needed.items():
        assert limits.for_path(path) >= size, path
    assert limits.for_path("/texte/brief") == settings.limits.max_request_mb * MB


def test_a_request_limit_below_the_file_limit_is_refused_with_a_german_message():
    with pytest.raises(ValidationError, match="max_request_mb .* ist kleiner als max_upload_mb"):
        Settings(inbox={"max_upload_mb": 100, "max_request_mb": 50})
