"""Reading tabular uploads: encodings, delimiters, German dates and amounts, clear errors."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from rathaus.insights.export import to_csv, to_xlsx
from rathaus.insights.tabular import (
    FieldSpec,
    TableError,
    map_columns,
    parse_amount_cents,
    parse_date,
    parse_datetime,
    read_table,
)

FIELDS = {
    "supplier": FieldSpec("Lieferant", ("supplier_name", "Kreditor")),
    "amount": FieldSpec("Betrag", ("amount",)),
    "note": FieldSpec("Notiz", required=False),
}


def test_windows_1252_semicolon_file_is_read() -> None:
    data = "Kreditor;Betrag\nMüller & Söhne;1.471,60 €\nStraßenbau GmbH;12,50\n".encode("cp1252")
    table = read_table(data, "zahlungen.csv")
    assert table.encoding == "windows-1252" and table.delimiter == ";"
    assert table.rows[0] == ["Müller & Söhne", "1.471,60 €"]
    columns = map_columns(table, FIELDS)
    assert columns == {"supplier": 0, "amount": 1}
    assert any("Windows-1252" in note for note in table.notes)


def test_utf8_bom_comma_and_quoted_fields() -> None:
    data = '\ufeffsupplier_name,amount\n"Amt, Nord",1500.0\n'.encode()
    table = read_table(data, "x.csv")
    assert table.headers == ["supplier_name", "amount"] and table.rows == [["Amt, Nord", "1500.0"]]


def test_missing_column_names_the_field_and_the_headers() -> None:
    table = read_table(b"Name;Summe\nA;1\n", "x.csv")
    with pytest.raises(TableError) as err:
        map_columns(table, FIELDS)
    assert "„Lieferant“" in err.value.message and "„Betrag“" in err.value.message
    assert "Name, Summe" in err.value.message


def test_wrong_delimiter_gets_a_hint() -> None:
    table = read_table(b"Kreditor:Betrag\nA:1\n", "x.csv")
    with pytest.raises(TableError, match="anderes Trennzeichen"):
        map_columns(table, FIELDS)


def test_explicit_mapping_to_a_missing_header_is_named() -> None:
    table = read_table(b"a;b\n1;2\n", "x.csv")
    with pytest.raises(TableError, match="„Zahlbetrag“ für „Betrag“"):
        map_columns(table, FIELDS, {"supplier": "a", "amount": "Zahlbetrag"})
    assert map_columns(table, FIELDS, {"supplier": "a", "amount": "b"}) == {
        "supplier": 0,
        "amount": 1,
    }


def test_binary_and_empty_and_old_excel_are_refused() -> None:
    with pytest.raises(TableError, match="Binärdaten"):
        read_table(b"\x00\x01\x02abc", "x.csv")
    with pytest.raises(TableError, match="leer"):
        read_table(b"  \n", "x.csv")
    with pytest.raises(TableError, match=".xls"):
        read_table(b"\xd0\xcf\x11\xe0rest", "x.xls")
    with pytest.raises(TableError, match="beschädigt"):
        read_table(b"PK\x03\x04 not a zip", "x.xlsx")


def test_xlsx_round_trip_through_the_exporter() -> None:
    data = to_xlsx(["Lieferant", "Betrag", "Datum"], [["Stadtwerke", 12.5, dt.date(2026, 1, 31)]])
    table = read_table(data, "x.xlsx")
    assert table.headers == ["Lieferant", "Betrag", "Datum"]
    assert table.rows == [["Stadtwerke", "12.5", "2026-01-31 00:00:00"]]
    assert parse_date(table.rows[0][2]) == dt.date(2026, 1, 31)


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("1.471,60 €", 147160),
        ("1471.60", 147160),
        ("£1,234.56", 123456),
        ("1500.0", 150000),
        ("-12,5", -1250),
        ("(12.00)", -1200),
        ("12,50-", -1250),
        ("1.234.567", 123456700),
        ("1,471", 147100),
        ("7", 700),
    ],
)
def test_amounts(text: str, cents: int) -> None:
    assert parse_amount_cents(text) == cents


@pytest.mark.parametrize("text", ["zwölf", "1,2,3.4.5", "12.345,678", ""])
def test_bad_amount_names_row_and_field(text: str) -> None:
    with pytest.raises(TableError, match="Zeile 7, Feld „Betrag“"):
        parse_amount_cents(text, row=7)


def test_dates_and_times() -> None:
    assert parse_date("31.12.2015") == dt.date(2015, 12, 31)
    assert parse_date("31.12.15") == dt.date(2015, 12, 31)
    assert parse_date("2015-12-31 23:10:00") == dt.date(2015, 12, 31)
    assert parse_date("31/12/2015") == dt.date(2015, 12, 31)
    moment = parse_datetime("2011-10-11 13:45:40.276000+02:00")
    assert moment.utcoffset() == dt.timedelta(hours=2)
    assert parse_datetime("31.12.2015 14:30").tzinfo is dt.UTC
    with pytest.raises(TableError, match="Zeile 3, Feld „Buchungsdatum“: „31.02.2015“"):
        parse_date("31.02.2015", row=3, label="Buchungsdatum")


def test_csv_export_is_excel_friendly_and_defuses_formulas() -> None:
    body = to_csv(["Name", "Wert"], [['=HYPERLINK("x")', 1.5], ["-3", None]]).decode("utf-8")
    assert body.startswith("\ufeffName;Wert\r\n")
    assert "'=HYPERLINK" in body and ";1,5\r\n" in body and "-3;\r\n" in body
    table = read_table(body.encode("utf-8"), "x.csv")
    assert table.rows[0][0].startswith("'=")


def test_xlsx_export_defuses_formulas() -> None:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(to_xlsx(["A"], [["=1+1"], ["+49 30"]])))
    values = [row[0].value for row in book.active.iter_rows(min_row=2)]
    assert values == ["'=1+1", "'+49 30"]
