"""Reading untrusted JSON, XML, CSV and BOM-marked text: the parsers' errors as German phrases.

The standard library's parsers describe bad input in English ("Expecting value: line 1 column 1
(char 0)", "mismatched tag", "field larger than field limit") and fail in ways their callers do
not expect (``RecursionError`` on deeply nested JSON, ``inf`` for ``1e999``). Every reader of an
upload uses these helpers, so a refused file always gets one German sentence part that names
the place and the problem; the caller puts it into its own error type and says what to do.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import xml.etree.ElementTree as ET
from typing import Any
from xml.parsers import expat


class ParseProblem(ValueError):
    """Bad input; ``message`` is one German sentence without the final full stop, such as
    "In Zeile 3, Spalte 7 fehlt ein Komma"; callers write "<what>: <message>. <what to do>"."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_JSON_MESSAGES = {
    "Expecting ',' delimiter": "fehlt ein Komma",
    "Expecting ':' delimiter": "fehlt ein Doppelpunkt",
    "Expecting value": "fehlt ein Wert, oder er ist ungültig",
    "Expecting property name enclosed in double quotes": (
        "muss ein Name in doppelten Anführungszeichen stehen (oder ein Komma ist zu viel)"
    ),
    "Unterminated string starting at": "beginnt eine Zeichenkette, die nicht geschlossen wird",
    "Extra data": "folgt nach dem Ende der Daten weiterer Text",
    "Invalid control character at": "enthält eine Zeichenkette ein Steuerzeichen",
    "Invalid \\escape": "steht ein ungültiges Escape-Zeichen (\\)",
    "Invalid \\uXXXX escape": "steht ein ungültiges Unicode-Escape (\\u)",
}


def json_problem(exc: json.JSONDecodeError) -> str:
    """Where and what: "In Zeile 2, Spalte 5 fehlt ein Komma"."""
    what = _JSON_MESSAGES.get(exc.msg, "ist die Schreibweise fehlerhaft")
    return f"In Zeile {exc.lineno}, Spalte {exc.colno} {what}"


def _finite(text: str) -> float | str:
    value = float(text)
    return value if math.isfinite(value) else text


def parse_json(data: str | bytes) -> Any:
    """JSON from text or UTF-8 bytes (BOM allowed). ``NaN``, ``Infinity`` and numbers too large
    for a float stay text, so no non-finite number reaches a database. Raises
    :class:`ParseProblem` for anything that is not JSON, also for nesting too deep to read."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ParseProblem(
                f"Der Inhalt ist nicht UTF-8-kodiert (unlesbares Byte an Stelle {exc.start + 1})"
            ) from None
    try:
        return json.loads(data, parse_constant=str, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise ParseProblem(json_problem(exc)) from None
    except RecursionError:
        raise ParseProblem("Die Daten sind zu tief verschachtelt, um gelesen zu werden") from None


_XML_MESSAGES = {
    expat.errors.XML_ERROR_SYNTAX: "ist die Schreibweise fehlerhaft",
    expat.errors.XML_ERROR_NO_ELEMENTS: "endet die Datei, bevor alle Elemente geschlossen sind",
    expat.errors.XML_ERROR_INVALID_TOKEN: "steht ein ungültiges Zeichen",
    expat.errors.XML_ERROR_UNCLOSED_TOKEN: "ist ein Element nicht vollständig",
    expat.errors.XML_ERROR_PARTIAL_CHAR: "ist ein Zeichen unvollständig kodiert",
    expat.errors.XML_ERROR_TAG_MISMATCH: "passt ein schließendes Element nicht zum öffnenden",
    expat.errors.XML_ERROR_DUPLICATE_ATTRIBUTE: "steht ein Attribut doppelt",
    expat.errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT: "folgt nach dem Ende des Dokuments weiterer Inhalt",
    expat.errors.XML_ERROR_UNDEFINED_ENTITY: "wird eine unbekannte Entität (&…;) verwendet",
    expat.errors.XML_ERROR_BAD_CHAR_REF: "verweist eine Zeichenreferenz (&#…;) auf ein ungültiges Zeichen",
    expat.errors.XML_ERROR_MISPLACED_XML_PI: "steht die XML-Deklaration nicht am Anfang",
    expat.errors.XML_ERROR_UNKNOWN_ENCODING: "ist eine unbekannte Zeichenkodierung angegeben",
    expat.errors.XML_ERROR_INCORRECT_ENCODING: "passt die angegebene Zeichenkodierung nicht zum Inhalt",
    expat.errors.XML_ERROR_UNCLOSED_CDATA_SECTION: "wird ein CDATA-Abschnitt nicht geschlossen",
    expat.errors.XML_ERROR_UNBOUND_PREFIX: "wird ein nicht deklariertes Namensraum-Präfix verwendet",
    expat.errors.XML_ERROR_XML_DECL: "ist die XML-Deklaration fehlerhaft",
}


def xml_problem(exc: ET.ParseError) -> str:
    """Where and what: "In Zeile 4, Spalte 2 passt ein schließendes Element nicht zum öffnenden"."""
    line, column = getattr(exc, "position", (0, 0))
    code = getattr(exc, "code", None)
    what = next(
        (text for name, text in _XML_MESSAGES.items() if expat.errors.codes.get(name) == code),
        "ist die XML-Struktur fehlerhaft",
    )
    return f"In Zeile {line}, Spalte {column + 1} {what}"


def csv_problem(exc: csv.Error) -> str:
    """What went wrong in a CSV record, without the csv module's English text."""
    text = str(exc)
    if "field larger than field limit" in text:
        return f"Ein Feld ist länger als {csv.field_size_limit():,} Zeichen".replace(",", ".")
    if "NUL" in text:
        return "Die Zeile enthält ein Nullzeichen (Binärdaten)"
    if "new-line character seen in unquoted field" in text:
        return "Ein Zeilenumbruch steht in einem Feld ohne Anführungszeichen"
    if "expected after" in text:
        return "Nach einem schließenden Anführungszeichen folgt kein Trennzeichen"
    if "unexpected end of data" in text:
        return "Die Datei endet mitten in einem Feld mit Anführungszeichen"
    return "Anführungszeichen und Trennzeichen passen nicht zusammen"


_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def decode_utf16(data: bytes) -> str:
    """Text that starts with a UTF-16 byte-order mark (Excel's "Unicode-Text"), BOM removed;
    a file that breaks off or is not UTF-16 after all raises :class:`ParseProblem`."""
    try:
        return data.decode("utf-16").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise ParseProblem(
            "Die Datei beginnt mit der Kennung für UTF-16, ist aber nicht vollständig UTF-16-kodiert "
            f"(Byte {exc.start + 1})"
        ) from None


def is_utf16(data: bytes) -> bool:
    return data.startswith(_UTF16_BOMS)
