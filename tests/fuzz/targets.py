"""The fuzz targets: every parser and upload path of Rathaus, as reusable functions.

``PARSER_TARGETS`` feed files to the readers directly (inbox formats, history import, knowledge
import, bookings, forecast series, event logs, OParl); ``tests/fuzz/web_targets.py`` adds the
HTTP paths (Open311, the inbox, assistant and case APIs). ``all_targets()`` lists both; the CI test
(``test_fuzz.py``) and ``benchmarks/fuzz.py`` run the same targets.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import httpx
from hypothesis import strategies as st

from tests.fuzz import mutate, seeds
from tests.fuzz.harness import Broken, Result, Target

# Low OCR resolution and few pages keep one input within seconds; the limits themselves are
# tested in tests/inbox/test_documents.py.
OCR_TIMEOUT_S = 5.0


def _fuzz_limits() -> Any:
    from rathaus.inbox.documents import Limits

    return Limits(
        max_pdf_pages=4, ocr_dpi=40, ocr_timeout_s=OCR_TIMEOUT_S, ocr_budget_s=10, ocr_workers=1
    )


# -- inbox formats (upload, mail, folder, API: all go through documents.extract) --------------------


def _extraction_texts(result: Any) -> list[str]:
    texts = [t for t in [result.error, *result.warnings] if t]
    for attachment in result.attachments:
        texts += _extraction_texts(attachment)
    return texts


def _extract(context: Any, value: tuple[bytes, str, str | None]) -> Result:
    from rathaus.ai.ocr import TesseractOcr
    from rathaus.inbox.documents import extract

    data, filename, claimed = value
    result = extract(
        data, filename, claimed, limits=context, ocr=TesseractOcr(timeout_s=OCR_TIMEOUT_S)
    )
    if result.sha256 != hashlib.sha256(data).hexdigest() or result.size != len(data):
        raise Broken("the extraction does not name the original (hash, size)")
    if result.method == "none" and result.error is None:
        raise Broken(f"nothing read and no reason given ({result.media_type})")
    return Result(_extraction_texts(result), refusal=result.error)


def _file_target(
    name: str,
    seeds_of: Any,
    kind: str,
    filename: str,
    claimed: str | None,
    weight: float,
    limit: float = 15,
) -> Target:
    def strategy() -> st.SearchStrategy[Any]:
        names = st.sampled_from((filename, "datei", "x.eml", "scan.png", "../../etc/passwd"))
        types = st.sampled_from(
            (claimed, None, "application/octet-stream", "message/rfc822", "image/png")
        )
        return st.tuples(mutate.mutated(seeds_of(), kind), names, types)

    return Target(
        name=name,
        entry="rathaus.inbox.documents.extract → inbox/formats/" + kind,
        strategy=strategy,
        call=_extract,
        setup=lambda _workdir: _fuzz_limits(),
        weight=weight,
        limit_s=limit,
    )


# -- history import (CSV of decided cases; CLI `rathaus posteingang import-csv`) -------------------


def _sqlite_world(workdir: Path) -> Any:
    from rathaus.core.db import Database
    from rathaus.core.migrate import upgrade
    from tests.factories import build_tenant

    path = Path(workdir) / "fuzz.db"
    path.unlink(missing_ok=True)
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    with db.session() as session:
        tenant_id = build_tenant(session, "fuzz").tenant.id
    return db, tenant_id, Path(workdir)


def _history(context: Any, value: tuple[bytes, bool, dict[str, str]]) -> Result:
    from rathaus.core.models import Tenant
    from rathaus.inbox.history_import import import_csv

    db, tenant_id, _workdir = context
    data, create_units, mapping = value
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        report = import_csv(
            session, tenant=tenant, data=data, mapping=mapping, create_units=create_units
        )
    return Result([s.reason for s in report.skipped] + report.notes)


def _history_strategy() -> st.SearchStrategy[Any]:
    mappings = st.one_of(
        st.just(seeds.HISTORY_MAPPING),
        st.dictionaries(
            st.sampled_from(list(seeds.HISTORY_MAPPING)),
            st.sampled_from(seeds.HISTORY_HEADER + ["x", ""]),
            min_size=1,
        ),
    )
    return st.tuples(
        mutate.csv_files(seeds.HISTORY_HEADER, seeds.HISTORY_ROWS), st.booleans(), mappings
    )


# -- knowledge import (editor upload and `rathaus wissen import`) ------------------------------------


def _knowledge(context: Any, value: tuple[str, bytes]) -> Result:
    from rathaus.assistant.importers import ReadReport, read_entries

    suffix, data = value
    folder = Path(context) / "wissen"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    path = folder / f"eintrag{suffix}"
    path.write_bytes(data)
    report = ReadReport()
    entries = list(read_entries(path, report=report))
    for entry in entries:
        if not entry.title or not entry.external_id:
            raise Broken("entry without title or id")
    return Result([why for _, why in report.failed] + report.notes)


def _knowledge_strategy() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.tuples(
            st.just(".json"),
            mutate.json_documents(
                [
                    seeds.knowledge_json_seed(),
                    seeds.muenchen_seed(),
                    {"entries": seeds.knowledge_json_seed()},
                ]
            ),
        ),
        st.tuples(
            st.just(".csv"),
            mutate.csv_files(
                ["titel", "text", "url", "gebuehren", "unterlagen", "formulare", "leika"],
                [["Hund", "Steuer", "https://m.de", "1 €", "a; b", "A: https://m.de/a"]],
            ),
        ),
        st.tuples(st.just(".md"), mutate.mutated([seeds.KNOWLEDGE_MD], "csv")),
        st.tuples(st.just(".html"), mutate.mutated([seeds.KNOWLEDGE_HTML], "xml")),
    )


# -- Lagebild: bookings, forecast series, event logs ----------------------------------------------


def _bookings(_context: Any, value: tuple[bytes, str, bool]) -> Result:
    from rathaus.insights.bookings import parse_payments

    data, filename, skip = value
    parsed = parse_payments(data, filename, skip_invalid=skip)
    return Result([why for _, why in parsed.skipped] + parsed.notes)


def _series(_context: Any, value: tuple[bytes, str, str]) -> Result:
    from rathaus.insights.forecast_data import parse_series

    data, filename, layout = value
    table, _parsed = parse_series(data, filename, layout=layout)
    return Result(list(table.notes))


def _eventlog(context: Any, value: tuple[bytes, str, str | None]) -> Result:
    from rathaus.core.storage import OriginalStore
    from rathaus.insights.eventlog_store import import_event_log

    db, tenant_id, workdir = context
    data, filename, fmt = value
    session = db.sessionmaker()
    try:
        imported = import_event_log(
            session,
            tenant_id,
            data,
            filename=filename,
            fmt=fmt,
            store=OriginalStore(workdir / "originale"),
        )
    finally:
        session.rollback()
        session.close()
    return Result(list(imported.log.notes))


def _table_strategy(
    header: list[str], rows: list[list[str]], names: tuple[str, ...]
) -> st.SearchStrategy[Any]:
    files = mutate.csv_files(header, rows, xlsx=True)
    return st.tuples(files, st.sampled_from(names))


# -- OParl (upload of a meeting file, and the client against a fuzzed server) -----------------------


def _oparl_upload(_context: Any, value: tuple[bytes, str]) -> Result:
    from rathaus.web.writing_minutes import _uploaded_oparl

    data, meeting_id = value
    meeting = _uploaded_oparl(data, meeting_id)
    return Result([why for _, why in meeting.failures])


def _oparl_client(_context: Any, value: dict[str, bytes]) -> Result:
    from rathaus.writing.oparl import OParlClient

    def answer(request: httpx.Request) -> httpx.Response:
        body = value.get(str(request.url))
        if body is None:
            return httpx.Response(404)
        return httpx.Response(200, content=body)

    with OParlClient(max_pages=5) as client:
        # The fuzzed server answers in-process: only the transport is replaced, the client
        # (JSON, pages, agenda items, failures) is the real one.
        client._http.close()
        client._http = httpx.Client(transport=httpx.MockTransport(answer), follow_redirects=True)
        meeting = client.meeting("https://ris.example/oparl/meeting/10022")
        listing = client.meetings("https://ris.example/oparl/system")
    return Result([why for _, why in meeting.failures] + [m.name for m in listing.meetings][:0])


def _oparl_server_strategy() -> st.SearchStrategy[Any]:
    base = "https://ris.example/oparl/"
    body_list = {
        "data": [{"type": "Body", "name": "Rat", "meeting": base + "meetings"}],
        "links": {"next": base + "bodies?page=2"},
    }
    meetings = {
        "data": [seeds.oparl_meeting_seed(), {"type": "Meeting", "deleted": True}],
        "links": {"next": base + "meetings"},
    }
    item = {"type": "AgendaItem", "number": "3", "name": "Verschiedenes"}
    return st.fixed_dictionaries(
        {
            base + "meeting/10022": mutate.json_documents([seeds.oparl_meeting_seed()]),
            base + "system": mutate.json_documents([seeds.oparl_system_seed()]),
            base + "bodies": mutate.json_documents([body_list]),
            base + "bodies?page=2": mutate.json_documents([body_list]),
            base + "meetings": mutate.json_documents([meetings]),
            base + "agendaitem/3": mutate.json_documents([item]),
        }
    )


def _oparl_file_strategy() -> st.SearchStrategy[Any]:
    meeting = seeds.oparl_meeting_seed()
    jsonl = b"\n".join(seeds.dumps(m) for m in (meeting, {**meeting, "id": "x/2"}))
    documents = st.one_of(
        mutate.json_documents([meeting, [meeting], {"data": [meeting]}]),
        mutate.mutated([jsonl], "json"),
    )
    return st.tuples(
        documents, st.sampled_from(("", "10022", "x/2", "https://ris.example/oparl/meeting/10022"))
    )


# -- the list ----------------------------------------------------------------------------------------


def parser_targets() -> list[Target]:
    from rathaus.writing.oparl import OParlError

    db_setup = _sqlite_world
    return [
        _file_target(
            "posteingang-pdf", seeds.pdf_seeds, "pdf", "brief.pdf", "application/pdf", 1.0, 20
        ),
        _file_target("posteingang-docx", seeds.docx_seeds, "zip", "antrag.docx", None, 1.0),
        _file_target(
            "posteingang-bild", seeds.image_seeds, "image", "scan.png", "image/png", 0.25, 20
        ),
        _file_target(
            "posteingang-eml", seeds.mail_seeds, "mail", "mail.eml", "message/rfc822", 1.0, 20
        ),
        _file_target("posteingang-text", seeds.text_seeds, "xml", "brief.txt", "text/plain", 0.7),
        Target(
            "historie-csv",
            "rathaus.inbox.history_import.import_csv",
            _history_strategy,
            _history,
            setup=db_setup,
            weight=0.7,
        ),
        Target(
            "wissen-import",
            "rathaus.assistant.importers.read_entries (CSV, JSON, Münchner JSON, Markdown, HTML)",
            _knowledge_strategy,
            _knowledge,
            setup=lambda workdir: workdir,
            weight=1.0,
        ),
        Target(
            "zahlungen",
            "rathaus.insights.bookings.parse_payments (CSV/XLSX)",
            lambda: st.tuples(
                mutate.csv_files(seeds.BOOKING_HEADER, seeds.BOOKING_ROWS, xlsx=True),
                st.sampled_from(("zahlungen.csv",) * 3 + ("zahlungen.xlsx",)),
                st.booleans(),
            ),
            _bookings,
            weight=1.0,
        ),
        Target(
            "zeitreihen",
            "rathaus.insights.forecast_data.parse_series (CSV/XLSX/.gz)",
            lambda: st.tuples(
                st.one_of(
                    mutate.csv_files(seeds.SERIES_HEADER, seeds.SERIES_ROWS, xlsx=True),
                    mutate.csv_files(seeds.SERIES_HEADER, seeds.SERIES_ROWS).map(seeds.gzip_bytes),
                    mutate.mutated(
                        [seeds.gzip_bytes(seeds.csv_bytes(seeds.SERIES_HEADER, seeds.SERIES_ROWS))],
                        "zip",
                    ),
                ),
                st.sampled_from(("reihe.csv", "reihe.csv.gz", "reihe.xlsx")),
                st.sampled_from(("auto", "aggregiert", "einzeln")),
            ),
            _series,
            weight=0.8,
        ),
        Target(
            "ereignisse-csv",
            "rathaus.insights.eventlog_store.import_event_log (CSV/XLSX)",
            lambda: st.tuples(
                mutate.csv_files(seeds.EVENT_HEADER, seeds.EVENT_ROWS, xlsx=True),
                st.sampled_from(("log.csv",) * 3 + ("log.xlsx",)),
                st.just("csv"),
            ),
            _eventlog,
            setup=db_setup,
            weight=0.8,
        ),
        Target(
            "ereignisse-xes",
            "rathaus.insights.eventlog_store.import_event_log (XES)",
            lambda: st.tuples(
                st.one_of(mutate.xes_documents(), mutate.mutated([seeds.xes_seed()], "xml")),
                st.just("log.xes"),
                st.sampled_from(("xes", None)),
            ),
            _eventlog,
            setup=db_setup,
            weight=1.0,
        ),
        Target(
            "ereignisse-ocel",
            "rathaus.insights.eventlog_store.import_event_log (OCEL 2.0 JSON)",
            lambda: st.tuples(
                mutate.json_documents([seeds.ocel_seed()]),
                st.just("log.jsonocel"),
                st.sampled_from(("ocel", None)),
            ),
            _eventlog,
            setup=db_setup,
            weight=1.0,
        ),
        Target(
            "oparl-datei",
            "rathaus.web.writing_minutes._uploaded_oparl → writing.oparl.meeting_from_json",
            _oparl_file_strategy,
            _oparl_upload,
            refusals=(OParlError,),
            weight=0.8,
        ),
        Target(
            "oparl-server",
            "rathaus.writing.oparl.OParlClient.meeting/.meetings (fuzzed server answers)",
            _oparl_server_strategy,
            _oparl_client,
            refusals=(OParlError,),
            weight=0.5,
        ),
    ]


def all_targets() -> list[Target]:
    from tests.fuzz.web_targets import web_targets

    return parser_targets() + web_targets()
