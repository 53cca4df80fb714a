"""What the fuzzer found, each as the smallest input that broke it: a crash, or an English
library message where a German one belongs. Fixed in the shared readers (core/parsing.py) and
in the parsers named in each test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rathaus.assistant.importers import KnowledgeImportError, read_entries
from rathaus.core.parsing import ParseProblem, parse_json
from rathaus.inbox.history_import import HistoryImportError, decode, import_csv, parse_date
from rathaus.insights.eventlog import parse_event_log, parse_ocel, parse_xes
from rathaus.insights.tabular import TableError, parse_datetime, read_table
from rathaus.writing import oparl
from tests.factories import build_tenant
from tests.fuzz.harness import german_problem

HUGE_FIELD = b'Text\n"' + b"a" * 140_000 + b'"\n'


def _german(message: str) -> None:
    assert german_problem(message) is None, message


# -- core/parsing.py: one German reader for JSON ---------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000, b'{"a":' * 60_000, b"\xff\xfe{}", b"{'a': 1}", b'{"a": 1,}', b""],
)
def test_parse_json_refuses_in_german(data: bytes) -> None:
    with pytest.raises(ParseProblem) as caught:
        parse_json(data)
    _german(caught.value.message)


def test_parse_json_keeps_non_finite_numbers_as_text() -> None:
    value = parse_json(b'{"a": NaN, "b": 1e999, "c": -Infinity, "d": 1.5}')
    assert value == {"a": "NaN", "b": "1e999", "c": "-Infinity", "d": 1.5}
    json.dumps(value, allow_nan=False)  # storable as JSON (PostgreSQL refuses NaN)


# -- inbox/history_import.py -------------------------------------------------------------------------


def test_history_utf16_file_that_breaks_off_is_refused_in_german() -> None:
    with pytest.raises(HistoryImportError) as caught:
        decode(b"\xff\xfeT\x00e\x00x")  # was UnicodeDecodeError
    _german(caught.value.message)


def test_history_date_before_the_first_utc_moment_is_not_a_date() -> None:
    with pytest.raises(ValueError):
        parse_date("01.01.0001 00:30")  # was OverflowError (Berlin is UTC+1)


def test_history_csv_error_is_german(sqlite_db) -> None:  # type: ignore[no-untyped-def]
    with sqlite_db.session() as session:
        tenant = build_tenant(session, "alpha").tenant
        with pytest.raises(HistoryImportError) as caught:
            import_csv(session, tenant=tenant, data=HUGE_FIELD, mapping={"text": "Text"})
    assert "field larger" not in caught.value.message
    _german(caught.value.message)


# -- insights: tables and event logs -----------------------------------------------------------------


def test_table_with_a_huge_field_is_refused_in_german() -> None:
    with pytest.raises(TableError) as caught:
        read_table(HUGE_FIELD.replace(b"Text", b"Datum;Wert"), "x.csv")
    assert "field larger" not in caught.value.message
    _german(caught.value.message)


def test_time_before_the_first_utc_moment_is_refused() -> None:
    with pytest.raises(TableError) as caught:
        parse_datetime("0001-01-01T00:00:00+01:00")
    _german(caught.value.message)
    data = b"case;activity;timestamp\nF1;Eingang;0001-01-01 00:30:00+01:00\n"
    with pytest.raises(TableError):
        parse_event_log(data, "log.csv")  # was OverflowError when converted to UTC


def test_xes_syntax_error_is_german() -> None:
    with pytest.raises(TableError) as caught:
        parse_xes(b"<log><trace></log>")
    assert "mismatched" not in caught.value.message
    _german(caught.value.message)


def test_xes_float_nan_stays_json() -> None:
    log = parse_xes(
        b'<log><trace><event><string key="concept:name" value="A"/>'
        b'<date key="time:timestamp" value="2024-01-01T00:00:00Z"/>'
        b'<float key="x" value="nan"/></event></trace></log>'
    )
    json.dumps(log.events[0].data, allow_nan=False)


def _ocel(events: list) -> bytes:
    return json.dumps({"objects": [{"id": "a", "type": "Antrag"}], "events": events}).encode()


@pytest.mark.parametrize(
    "data",
    [
        _ocel([{"type": "A", "time": "2024-01-01", "relationships": ["a"]}]),  # was AttributeError
        _ocel([{"type": "A", "time": "2024-01-01", "relationships": "a"}]),  # was AttributeError
        _ocel(
            [
                {
                    "type": "A",
                    "time": "2024-01-01",
                    "relationships": [{"objectId": "a"}],
                    "attributes": 5,
                }
            ]  # fmt: skip
        ),  # was TypeError
        b'{"events": ' + b"[" * 100_000,  # was RecursionError
        b'{"events": [}',  # was "Expecting value: line 1 column 13 (char 12)"
    ],
)
def test_ocel_with_wrong_types_or_broken_json_is_refused_in_german(data: bytes) -> None:
    try:
        log = parse_ocel(data)
    except TableError as exc:
        _german(exc.message)
    else:
        assert log.events


# -- assistant/importers.py --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [("liste.csv", b"\xff\xfet\x00i"), ("liste.json", b"[" * 100_000)],
)
def test_knowledge_file_is_refused_in_german(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(KnowledgeImportError) as caught:  # was UnicodeDecodeError, RecursionError
        list(read_entries(path))
    _german(caught.value.message)


# -- writing/oparl.py --------------------------------------------------------------------------------


def test_oparl_meeting_with_numbers_where_lists_belong() -> None:
    meeting = oparl.meeting_from_json(  # was TypeError: 'int' object is not iterable
        {"name": "Rat am 1.2.2025", "organization": 5, "participant": 7, "agendaItem": 3}
    )
    assert meeting.name == "Rat am 1.2.2025" and meeting.agenda == []


def test_oparl_upload_nested_too_deep_is_refused_in_german() -> None:
    with pytest.raises(oparl.OParlError) as caught:
        oparl.parse_upload(b"[" * 100_000)  # was RecursionError
    _german(caught.value.message)


def test_oparl_file_not_in_utf8_is_refused_in_german(tmp_path: Path) -> None:
    path = tmp_path / "sitzungen.json"
    path.write_bytes('{"name": "Gemeinderat Überlingen"}'.encode("latin-1"))
    with pytest.raises(oparl.OParlError) as caught:  # was UnicodeDecodeError
        oparl.meeting_from_file(path)
    _german(caught.value.message)


# -- web/app.py: the framework's English for a body that is no JSON ---------------------------------


def test_body_that_is_no_json_gets_a_german_answer(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/api/v1/assistant/feedback", content=b"\x9c", headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422)
    detail = response.json()["detail"]
    assert "There was an error" not in detail
    _german(detail)


# -- core/db.py and web/app.py: values PostgreSQL refuses ---------------------------------------------


def test_text_with_nul_is_stored_on_every_database(db) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from rathaus.core.models import Message

    with db.session() as session:  # was DataError on PostgreSQL: text cannot hold U+0000
        world = build_tenant(session, "alpha")
        message = Message(tenant_id=world.tenant.id, case_id=world.cases["BA"].id,
                          direction="in", body="Hallo\x00Welt")  # fmt: skip
        session.add(message)
        session.flush()
        message_id = message.id
    with db.session() as session:
        body = session.scalar(select(Message.body).where(Message.id == message_id))
    assert body in ("Hallo\x00Welt", "Hallo\ufffdWelt")


def test_id_too_large_for_the_database_is_a_german_400(client, worlds) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import login

    login(client, "admin")
    for url in (
        "/api/v1/cases/99999999999999999999999",
        "/api/v1/cases?offset=99999999999999999999",
    ):
        response = client.get(url)  # was 500 (OverflowError on SQLite, DataError on PostgreSQL)
        assert response.status_code == 400, response.text
        _german(response.json()["detail"])


def test_xlsx_with_a_broken_deflate_stream_is_refused_in_german() -> None:
    import io
    import zipfile

    from tests.fuzz.seeds import xlsx_bytes

    data = bytearray(xlsx_bytes(["Lieferant", "Datum", "Betrag"], [["A", "2024-01-01", "1,00"]]))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("[Content_Types].xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start : start + 4] = b"\xff\xff\xff\xff"  # deflate block type 3 does not exist
    with pytest.raises(TableError) as caught:  # was zlib.error from openpyxl
        read_table(bytes(data), "zahlungen.xlsx")
    _german(caught.value.message)
