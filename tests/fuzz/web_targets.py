"""The HTTP fuzz targets: the real app on a SQLite file, fed through Starlette's test client.

Checks on every answer: never a 5xx; a refusal (4xx) carries a German ``detail`` (or an Open311
``description``); the app still answers ``/healthz`` afterwards. For inbox uploads also: every
accepted file's original is in the store with its hash, and the triaged case names in German what
could not be read (a triage step that crashed is a finding).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.fuzz import mutate, seeds
from tests.fuzz.harness import Broken, Result, Target

_STEP_CRASH = re.compile(r"fehlgeschlagen: ([A-Z][A-Za-z]+(Error|Exception|Exit)?)$", re.MULTILINE)


class HttpRefusal(Exception):  # noqa: N818 - a refusal the app gave, judged by the harness
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@functools.cache
def _world(workdir: str) -> dict[str, Any]:
    """The app with one tenant, API keys for ``api`` and ``open311``, a logged-in client."""
    from fastapi.testclient import TestClient

    from rathaus.core import apikeys
    from rathaus.core.config import load_settings
    from rathaus.core.db import Database
    from rathaus.core.migrate import upgrade
    from rathaus.core.models import Service
    from rathaus.web.app import create_app
    from tests.factories import build_tenant
    from tests.web.conftest import login

    root = Path(workdir) / "web"
    root.mkdir(parents=True, exist_ok=True)
    (root / "rathaus.db").unlink(missing_ok=True)
    db = Database(f"sqlite:///{root / 'rathaus.db'}")
    upgrade(db)
    with db.session() as session:
        world = build_tenant(session, "alpha")
        tenant = world.tenant
        api_key, _ = apikeys.create(session, tenant=tenant, channel="api", name="Fuzz")
        open311_key, _ = apikeys.create(session, tenant=tenant, channel="open311", name="Fuzz")
        session.add(
            Service(
                tenant_id=tenant.id,
                code="laerm",
                name="Lärmbelästigung melden",
                org_unit_id=world.units["OA"].id,
                open311_enabled=True,
            )
        )
        tenant_id = tenant.id
    settings = load_settings(
        mode="demo",
        data_dir=root,
        database_url=db.url,
        default_tenant="alpha",
        queue={"backend": "memory"},
        inbox={"max_upload_mb": 1, "max_files_per_upload": 3},
        assistant={"rate_limit_per_minute": 10000},
        # The rate limits have their own tests (tests/hardening); here every input must get in.
        limits={"open311_per_minute": 100000, "api_per_minute": 100000},
    )
    app = create_app(settings, database=db)
    _fast_ocr_for_triage(settings, db)
    client = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
    client.__enter__()
    staff = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
    staff.__enter__()
    login(staff, "admin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', staff.get("/").text)
    # One triage before the first timed input: it loads the models (embeddings, PII) once.
    client.post("/api/v1/inbox/items", json={"text": "Die Laterne vor Hausnummer 5 ist aus."},
                headers={"Authorization": f"Bearer {api_key}"})  # fmt: skip
    return {
        "db": db,
        "settings": settings,
        "client": client,
        "staff": staff,
        "csrf": token.group(1) if token else "",
        "api_key": api_key,
        "open311_key": open311_key,
        "tenant_id": tenant_id,
    }


def _fast_ocr_for_triage(settings: Any, db: Any) -> None:
    """The triage job's kit with the fuzz targets' OCR limits (40 dpi, 4 pages): an upload is
    triaged in seconds, as in ``targets._fuzz_limits``; the limits are tested elsewhere."""
    import dataclasses

    from rathaus.inbox import jobs
    from rathaus.inbox.pipeline import TriageKit
    from tests.fuzz.targets import _fuzz_limits

    kit = TriageKit.from_settings(settings)
    fuzz = _fuzz_limits()
    kit.limits = dataclasses.replace(fuzz, max_bytes=kit.limits.max_bytes)
    key = (str(settings.data_dir.resolve()), settings.database_url or "")
    jobs._KITS[key] = (db, kit)


def _setup(workdir: Any) -> dict[str, Any]:
    return _world(str(workdir))


def _judge_response(world: dict[str, Any], response: Any) -> Any:
    """Raise for a 5xx or a refusal; return the JSON body of a success (or ``None``)."""
    if response.status_code >= 500:
        raise Broken(f"HTTP {response.status_code}: {response.text[:200]}")
    if world["client"].get("/healthz").status_code >= 500:
        raise Broken("the app stopped answering /healthz")
    body: Any = None
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            body = response.json()
        except ValueError:
            raise Broken("the answer claims JSON but is none") from None
    if response.status_code >= 400:
        raise HttpRefusal(response.status_code, _detail(body, response.text))
    return body


def _detail(body: Any, text: str) -> str:
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"]
    if isinstance(body, list) and body and isinstance(body[0], dict) and "description" in body[0]:
        return str(body[0]["description"])  # Open311 error list
    found = re.search(r"<description>([^<]*)</description>", text)
    return found.group(1) if found else text[:300]


# -- Posteingang API ---------------------------------------------------------------------------------


def _inbox(world: dict[str, Any], value: tuple[str, Any, dict[str, str]]) -> Result:
    from rathaus.core.models import Case
    from rathaus.core.storage import OriginalStore

    kind, payload, fields = value
    headers = {"Authorization": f"Bearer {world['api_key']}"}
    if kind == "json":
        response = world["client"].post(
            "/api/v1/inbox/items",
            content=payload,
            headers={**headers, "Content-Type": "application/json"},
        )
        sent: list[bytes] = []
    else:
        files = [("files", (name, data, media)) for name, data, media in payload]
        response = world["client"].post(
            "/api/v1/inbox/items", files=files, data=fields, headers=headers
        )
        sent = [data for _, data, _ in payload]
        if isinstance(fields.get("text"), str):
            sent.append(fields["text"].strip().encode("utf-8"))  # the text is an item of its own
    body = _judge_response(world, response)
    receipts = body if isinstance(body, list) else []
    texts = [r["error"] for r in receipts if isinstance(r, dict) and r.get("error")]
    store = OriginalStore(world["settings"].originals_dir)
    with world["db"].session() as session:
        for receipt in receipts:
            if not receipt.get("case_id"):
                continue
            case = session.get(Case, receipt["case_id"])
            if case is None:
                raise Broken(f"case {receipt['case_id']} was reported but does not exist")
            for document in case.documents:
                kept = store.get(world["tenant_id"], document.sha256)  # raises if lost or altered
                if sent and kept not in sent and not receipt.get("duplicate"):
                    raise Broken("the stored original differs from every uploaded file")
            if case.triaged_at is None:
                raise Broken(f"case {case.id} was not triaged")
            crashed = _STEP_CRASH.search(case.needs_review_reason or "")
            if crashed:
                raise Broken(f"a triage step crashed: {crashed.group(0)}")
            texts += (case.needs_review_reason or "").split("\n")
            for document in case.documents:
                if document.extraction_status == "fehler" and not document.extraction_error:
                    raise Broken("the document failed without a reason")
    return Result([t for t in texts if t])


def _inbox_strategy() -> st.SearchStrategy[Any]:
    item = {
        "text": "Laterne in der Hauptstraße defekt",
        "subject": "Laterne",
        "sender_name": "Erika",
        "sender_contact": "erika@example.org",
        "address": "Hauptstraße 5",
        "lat": 47.6,
        "long": 9.1,
    }
    every = (
        *seeds.pdf_seeds(),
        *seeds.docx_seeds(),
        *seeds.mail_seeds(),
        *seeds.text_seeds(),
        *seeds.image_seeds(),
    )
    file = st.tuples(
        st.sampled_from(
            (
                "brief.pdf",
                "antrag.docx",
                "mail.eml",
                "text.txt",
                "scan.png",
                "",
                "../x",
                "a\x00b.pdf",
            )
        ),
        mutate.mutated(every, random_size=1024),
        st.sampled_from(
            (
                "application/pdf",
                "application/octet-stream",
                "message/rfc822",
                "text/plain",
                "image/png",
            )
        ),
    )
    fields = st.dictionaries(
        st.sampled_from(("subject", "text", "sender_name", "address", "lat", "long")),
        st.one_of(
            st.sampled_from(("47.1", "9,5", "x", "1e999", "nan", "-91", "")), st.text(max_size=50)
        ),
        max_size=4,
    )
    return st.one_of(
        st.tuples(st.just("json"), mutate.json_documents([item]), st.just({})),
        st.tuples(st.just("multipart"), st.lists(file, min_size=1, max_size=4), fields),
    )


# -- Open311 -----------------------------------------------------------------------------------------


def _open311(world: dict[str, Any], value: tuple[str, str, str, dict[str, str], str]) -> Result:
    method, path, fmt, params, how = value
    params = {k: world["open311_key"] if v == KEY else v for k, v in params.items()}
    url = f"/open311/v2/{path}.{fmt}"
    client = world["client"]
    if (method == "GET" or how == "query") and len(str(params)) > 30_000:
        return Result()  # longer than any HTTP server takes a request line (httpx refuses it)
    if method == "GET":
        response = client.get(url, params=params)
    elif how == "json":
        response = client.post(
            url, content=json.dumps(params), headers={"Content-Type": "application/json"}
        )
    elif how == "query":
        response = client.post(url, params=params)
    else:
        response = client.post(url, data=params)
    _judge_response(world, response)
    return Result()


def _open311_strategy() -> st.SearchStrategy[Any]:
    fields = (
        "service_code",
        "lat",
        "long",
        "address_string",
        "description",
        "email",
        "media_url",
        "jurisdiction_id",
        "api_key",
        "service_request_id",
        "start_date",
        "end_date",
        "status",
    )
    values = st.one_of(
        mutate.cells(),
        st.sampled_from(("laerm", "alpha", "open", "closed,open", "2024-01-01T00:00:00Z")),
    )

    changed = st.dictionaries(st.sampled_from(fields), values, max_size=5).map(
        lambda d: {**seeds.open311_seed(), **d}
    )
    params = st.tuples(
        st.one_of(changed, st.dictionaries(st.sampled_from(fields), values)), st.booleans()
    ).map(lambda t: {**t[0], "api_key": KEY} if t[1] else t[0])
    # POST goes to requests (the only POST route, mostly); GET to every route.
    routes = st.one_of(
        st.tuples(st.just("POST"), st.sampled_from(("requests",) * 5 + ("services",))),
        st.tuples(
            st.just("GET"),
            st.sampled_from(
                (
                    "requests",
                    "services",
                    "services/laerm",
                    "requests/RH-2026-000001",
                    "requests/%00",
                )
            ),
        ),
    )
    return st.tuples(
        routes,
        st.sampled_from(("json", "json", "xml", "html")),
        params,
        st.sampled_from(("form", "json", "query")),
    ).map(lambda t: (t[0][0], t[0][1], *t[1:]))


KEY = "{api_key}"  # replaced by the tenant's real Open311 key when sent


# -- Bürgerassistent API -----------------------------------------------------------------------------


def _assistant(world: dict[str, Any], value: tuple[str, bytes]) -> Result:
    endpoint, body = value
    response = world["client"].post(
        f"/api/v1/assistant/{endpoint}", content=body, headers={"Content-Type": "application/json"}
    )
    answer = _judge_response(world, response)
    if endpoint == "ask" and response.headers.get("content-type", "").startswith(
        "application/x-ndjson"
    ):
        for line in response.text.splitlines():
            event = json.loads(line)
            if event.get("event") == "error":
                raise HttpRefusal(200, event.get("detail", ""))
    return Result(
        [answer.get("message", "")] if isinstance(answer, dict) and "message" in answer else []
    )


def _assistant_strategy() -> st.SearchStrategy[Any]:
    ask = {
        "question": "Was kostet ein Personalausweis?",
        "easy_language": False,
        "stream": False,
        "kommune": "alpha",
        "channel": "web",
    }
    feedback = {"conversation_id": "abc", "turn_id": 1, "value": 1, "comment": "gut"}
    handover = {
        "conversation_id": "abc",
        "consent": True,
        "name": "Erika",
        "email": "e@example.org",
        "message": "Bitte rufen Sie an",
    }
    return st.one_of(
        st.tuples(st.just("ask"), mutate.json_documents([ask, {**ask, "stream": True}])),
        st.tuples(st.just("feedback"), mutate.json_documents([feedback])),
        st.tuples(st.just("handover"), mutate.json_documents([handover])),
    )


# -- case API (staff) --------------------------------------------------------------------------------


def _cases(world: dict[str, Any], value: tuple[str, str, dict[str, str], bytes]) -> Result:
    kind, ident, params, body = value
    staff = world["staff"]
    if kind == "list":
        response = staff.get("/api/v1/cases", params=params)
    elif kind == "one":
        response = staff.get(f"/api/v1/cases/{ident}")
    else:
        response = staff.post(
            f"/api/v1/cases/{ident}/status",
            content=body,
            headers={"Content-Type": "application/json", "X-CSRF-Token": world["csrf"]},
        )
    _judge_response(world, response)
    return Result()


def _cases_strategy() -> st.SearchStrategy[Any]:
    idents = st.one_of(
        st.sampled_from(("1", "2", "0", "-1", "99999999999999999999999", "1.5", "x", "%00")),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
    )
    params = st.dictionaries(
        st.sampled_from(("status", "limit", "offset")),
        st.one_of(idents, st.sampled_from(("neu", "erledigt", "", "x"))),
        max_size=3,
    )
    body = mutate.json_documents([{"status": "in_bearbeitung", "reason": "Fuzz"}])
    return st.tuples(st.sampled_from(("list", "one", "status")), idents, params, body)


def web_targets() -> list[Target]:
    refusals = (HttpRefusal,)
    return [
        Target(
            "http-posteingang",
            "POST /api/v1/inbox/items (JSON, multipart) → Ablage → Vorprüfung",
            _inbox_strategy,
            _inbox,
            setup=_setup,
            refusals=refusals,
            weight=0.25,
            limit_s=30,
        ),
        Target(
            "http-open311",
            "GET/POST /open311/v2/services, requests (JSON, XML, Formular)",
            _open311_strategy,
            _open311,
            setup=_setup,
            refusals=refusals,
            weight=1.0,
        ),
        Target(
            "http-assistent",
            "POST /api/v1/assistant/ask, feedback, handover",
            _assistant_strategy,
            _assistant,
            setup=_setup,
            refusals=refusals,
            weight=0.7,
            limit_s=20,
        ),
        Target(
            "http-vorgaenge",
            "GET /api/v1/cases, /cases/{id}; POST /cases/{id}/status",
            _cases_strategy,
            _cases,
            setup=_setup,
            refusals=refusals,
            weight=0.7,
        ),
    ]
