"""Valid seed documents for the fuzz targets, built in code: the mutations start from these.

Every seed is a file the real parser accepts; the fuzzer then breaks it in structure-aware ways
(see ``mutate.py``). Images are rendered from a text PDF with ``pdftoppm`` once per process.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from tests.inbox.test_documents import docx, mail, text_pdf

LETTER = [
    "Stadt Musterstadt, Ordnungsamt",
    "Widerspruch gegen den Bescheid vom 12.03.2025",
    "Aktenzeichen 32-411/2025, Betrag 1.471,60 Euro",
    "Mit freundlichen Grüßen, Erika Mustermann",
]


# -- inbox files ---------------------------------------------------------------------------------


@functools.cache
def pdf_seeds() -> tuple[bytes, ...]:
    encrypted = text_pdf(LETTER).replace(
        b"/Root 1 0 R",
        b"/Root 1 0 R /Encrypt << /Filter /Standard /V 1 /R 2 /O (x) /U (y) /P -4 >>",
    )
    return (text_pdf(LETTER), text_pdf(LETTER[:2], pages=3), encrypted)


@functools.cache
def docx_seeds() -> tuple[bytes, ...]:
    table = (
        "<?xml version='1.0' encoding='UTF-8'?><w:document xmlns:w='http://schemas.openxmlformats"
        ".org/wordprocessingml/2006/main'><w:body><w:tbl><w:tr><w:tc><w:p><w:r><w:t>Gebühr"
        "</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>1.471,60 €</w:t></w:r></w:p></w:tc></w:tr>"
        "</w:tbl></w:body></w:document>"
    )
    header = {
        "word/header1.xml": "<w:hdr xmlns:w='x'><w:p><w:r><w:t>Kopf</w:t></w:r></w:p></w:hdr>"
    }
    return (docx(LETTER), docx(["Tabelle"], document=table), docx(LETTER[:1], extra=header))


@functools.cache
def image_seeds() -> tuple[bytes, ...]:
    """A small PNG, JPEG and TIFF "scan" of the letter (low resolution: OCR stays fast)."""
    renderer = shutil.which("pdftoppm")
    if renderer is None:
        return (_tiny_png(),)
    found = []
    with tempfile.TemporaryDirectory(prefix="rathaus-fuzz-") as tmp:
        source = Path(tmp) / "letter.pdf"
        source.write_bytes(text_pdf(LETTER))
        for flag, suffix in (("-png", "png"), ("-jpeg", "jpg"), ("-tiff", "tif")):
            target = Path(tmp) / f"scan-{suffix}"
            subprocess.run(  # noqa: S603 - fixed program
                [renderer, "-r", "40", "-gray", flag, "-singlefile", str(source), str(target)],
                check=True,
                timeout=60,
                capture_output=True,
            )
            found.append(target.with_suffix(f".{suffix}").read_bytes())
    return (*found, _tiny_png())


def _tiny_png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    raw = b"".join(b"\x00" + bytes([255, 0] * 4) for _ in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _fixed_boundaries(data: bytes) -> bytes:
    """The e-mail with its random MIME boundaries numbered 1, 2, … (the same bytes every run)."""
    found: dict[bytes, bytes] = {}
    for boundary in re.findall(rb"={15}\d+==", data):
        found.setdefault(boundary, b"=" * 15 + str(len(found) + 1).encode() + b"==")
    for boundary, fixed in found.items():
        data = data.replace(boundary, fixed)
    return data


@functools.cache
def mail_seeds() -> tuple[bytes, ...]:
    return tuple(_fixed_boundaries(m) for m in _mails())


def _mails() -> tuple[bytes, ...]:
    forwarded = mail([], body="Weitergeleitet")
    return (
        mail([]),
        mail([("bescheid.pdf", "application/pdf", text_pdf(LETTER))]),
        mail(
            [
                ("antrag.docx", "application/octet-stream", docx(LETTER)),
                ("notiz.txt", "text/plain", "Bitte um Rückruf".encode()),
            ]
        ),
        mail([("weiter.eml", "message/rfc822", forwarded)]),
        b"From: a@example.org\nTo: b@example.org\nSubject: =?utf-8?q?L=C3=A4rm?=\n"
        b"Content-Type: text/plain; charset=latin-1\n\nL\xe4rm in der Stra\xdfe\n",
    )


def text_seeds() -> tuple[bytes, ...]:
    return (
        "Sehr geehrte Damen und Herren, die Straßenlaterne ist defekt.".encode(),
        "Umlaute äöü in Windows-1252".encode("cp1252"),
        "UTF-16 mit BOM: Grüße".encode("utf-16"),
        b"<!doctype html><html><body><p>Antrag</p><script>x()</script></body></html>",
    )


# -- tables ----------------------------------------------------------------------------------------


def csv_bytes(header: list[str], rows: list[list[str]], delimiter: str = ";") -> bytes:
    out = io.StringIO()
    import csv

    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def xlsx_bytes(header: list[str], rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    # The same table gives the same bytes (openpyxl stamps the time into the file and the ZIP):
    # Hypothesis needs the same input for the same choices.
    return _fixed_zip(buffer.getvalue())


def _fixed_zip(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            body = source.read(info)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb">\d{4}-\d\d-\d\dT[\d:]+Z<", b">2024-01-01T00:00:00Z<", body)
            fixed = zipfile.ZipInfo(info.filename, date_time=(2024, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, body)
    return out.getvalue()


HISTORY_HEADER = ["Text", "Betreff", "Amt", "Eingang", "Erledigt", "Art", "Status"]
HISTORY_ROWS = [
    ["Laterne defekt", "Laterne", "OA", "2024-03-01 14:30", "2024-03-04", "Meldung", "erledigt"],
    ["Antrag Ausweis", "", "Bürgeramt", "01.03.2024 09:00", "", "Antrag", "offen"],
]
HISTORY_MAPPING = {
    "text": "Text",
    "subject": "Betreff",
    "unit": "Amt",
    "received": "Eingang",
    "closed": "Erledigt",
    "request_type": "Art",
    "status": "Status",
}

BOOKING_HEADER = ["Lieferant", "Datum", "Betrag", "Belegnummer", "Kategorie", "Verwendungszweck"]
BOOKING_ROWS = [
    ["Bau GmbH", "31.12.2015", "1.471,60 €", "R-1", "Bau", "Reparatur"],
    ["Papier AG", "2016-01-04", "(12,00)", "R-2", "Büro", "Gutschrift"],
    ["Bau GmbH", "04/01/2016", "999.99", "R-3", "Bau", ""],
]

SERIES_HEADER = ["Datum", "Reihe", "Anzahl"]
SERIES_ROWS = [[f"2024-01-0{d}", "Bürgeramt", str(d * 3)] for d in range(1, 8)]

EVENT_HEADER = ["case:concept:name", "concept:name", "time:timestamp", "org:resource"]
EVENT_ROWS = [
    ["F1", "Eingang", "2024-03-01T09:00:00+01:00", "Poststelle"],
    ["F1", "Prüfung", "2024-03-02 10:00", "Meier"],
    ["F2", "Eingang", "01.03.2024 11:00", ""],
]


def xes_seed() -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<log xes.version="1.0">'
        b'<trace><string key="concept:name" value="F1"/>'
        b'<event><string key="concept:name" value="Eingang"/>'
        b'<date key="time:timestamp" value="2024-03-01T09:00:00.000+01:00"/>'
        b'<string key="org:resource" value="Poststelle"/><int key="n" value="3"/></event>'
        b'<event><string key="concept:name" value="Bescheid"/>'
        b'<date key="time:timestamp" value="2024-03-05T09:00:00Z"/>'
        b'<float key="kosten" value="12.5"/><boolean key="eilig" value="true"/></event>'
        b"</trace></log>"
    )


def ocel_seed() -> dict:
    return {
        "objectTypes": [{"name": "Antrag", "attributes": []}],
        "eventTypes": [{"name": "Eingang", "attributes": []}],
        "objects": [{"id": "a1", "type": "Antrag"}, {"id": "a2", "type": "Antrag"}],
        "events": [
            {
                "id": "e1",
                "type": "Eingang",
                "time": "2024-03-01T09:00:00Z",
                "attributes": [{"name": "org:resource", "value": "Poststelle"}],
                "relationships": [{"objectId": "a1", "qualifier": "betrifft"}],
            },
            {
                "id": "e2",
                "type": "Bescheid",
                "time": "2024-03-04T09:00:00+01:00",
                "relationships": [{"objectId": "a1"}, {"objectId": "a2"}],
            },
        ],
    }


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


# -- knowledge, OParl, Open311 ---------------------------------------------------------------------


def knowledge_json_seed() -> list[dict]:
    return [
        {
            "id": "ausweis",
            "title": "Personalausweis beantragen",
            "text": "<p>Den Ausweis beantragen Sie im <strong>Bürgerbüro</strong>.</p>",
            "url": "https://musterstadt.de/ausweis",
            "gebuehren": "37,00 €",
            "unterlagen": ["Foto", "alter Ausweis"],
            "formulare": [{"title": "Antrag", "url": "https://musterstadt.de/antrag.pdf"}],
            "leika": "99088001000000",
        }
    ]


def muenchen_seed() -> dict:
    return {
        "meta": {"generated": "2024-01-01"},
        "data": [
            {
                "id": 1063441,
                "name": "Personalausweis",
                "description": "<p>Antrag im Bürgerbüro.</p>",
                "fees": "<ul><li>37 €</li></ul>",
                "locations": [{"appointment": {"allowed": True}}],
                "appointment": {"link": "https://termin.example/{serviceId}"},
                "forms": [{"name": "Online-Antrag", "link": "https://buergerserviceportal.de/x"}],
                "authorities": [{"name": "Kreisverwaltungsreferat"}],
                "meta": {"url": "https://stadt.muenchen.de/{serviceId}", "keywords": "Ausweis"},
                "leika": "99088001000000",
            }
        ],
    }


KNOWLEDGE_CSV = csv_bytes(
    ["titel", "text", "url", "gebuehren", "unterlagen", "formulare"],
    [
        [
            "Hundesteuer",
            "Anmeldung des Hundes.",
            "https://m.de/hund",
            "120 €",
            "Nachweis; Pass",
            "Antrag: https://m.de/a.pdf",
        ],
    ],
)
KNOWLEDGE_MD = (
    "---\ntitle: Sperrmüll\nurl: https://m.de/sperr\nunterlagen:\n  - Karte\n---\n"
    "# Sperrmüll\n\nSperrmüll **anmelden** mit [Karte](https://m.de/k).\n\n- eins\n- zwei\n"
).encode()
KNOWLEDGE_HTML = (
    b"<html><head><title>Wohngeld</title><link rel='canonical' href='https://m.de/wg'>"
    b"<meta name='keywords' content='Wohngeld'></head><body><nav>Men\xc3\xbc</nav><main>"
    b"<h1>Wohngeld</h1><p>Antrag beim Amt.</p><ul><li>Mietvertrag</li></ul></main></body></html>"
)


def oparl_meeting_seed() -> dict:
    return {
        "id": "https://ris.example/oparl/meeting/10022",
        "type": "https://schema.oparl.org/1.1/Meeting",
        "name": "Gemeinderat (öffentlich) am 15.01.2025",
        "start": "2025-01-15T17:00:00+01:00",
        "end": "2025-01-15T19:00:00",
        "location": {"description": "Rathaus", "room": "Saal 1", "streetAddress": "Markt 1"},
        "organization": [{"name": "Gemeinderat"}],
        "participant": [{"name": "Erika Mustermann"}, {"givenName": "Max", "familyName": "M."}],
        "agendaItem": [
            {"number": "1", "name": "Eröffnung", "order": 1, "public": True},
            {"number": 2, "name": "Haushalt", "order": 2, "result": "beschlossen"},
            "https://ris.example/oparl/agendaitem/3",
        ],
    }


def oparl_system_seed() -> dict:
    return {
        "id": "https://ris.example/oparl/system",
        "type": "https://schema.oparl.org/1.1/System",
        "body": "https://ris.example/oparl/bodies",
    }


def open311_seed() -> dict[str, str]:
    return {
        "service_code": "laerm",
        "lat": "47.66",
        "long": "9.17",
        "address_string": "Hauptstraße 5",
        "description": "Lärm aus der Gaststätte, jede Nacht bis 3 Uhr.",
        "email": "erika@example.org",
        "first_name": "Erika",
        "last_name": "Mustermann",
        "media_url": "https://example.org/foto.jpg",
    }


def zip_with(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")
