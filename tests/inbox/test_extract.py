"""Field extraction from the demo letters: sender, Aktenzeichen, dates, deadlines, amounts."""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from pathlib import Path

from rathaus.inbox.extract import add_months, extract_fields, next_working_day

DEMO = Path(__file__).resolve().parents[2] / "src/rathaus/core/demo/eingaenge.json"
BY_ID = {item["id"]: item for item in json.loads(DEMO.read_text(encoding="utf-8"))["items"]}
OWN = "Rathausplatz 1, 12345 Musterstadt"


def fields(item_id: str):  # type: ignore[no-untyped-def]
    return extract_fields(BY_ID[item_id]["body"], own_address=OWN)


def test_letterhead_sender_is_not_the_rathaus() -> None:
    result = fields("E01")
    assert result.sender is not None
    assert result.sender.name == "Walter Mustermann"
    assert result.sender.address == "Am Mühlbach 17, 12345 Musterstadt"
    assert result.sender.phone == "01234 77412"
    assert result.sender.source == "briefkopf"
    assert all("Rathausplatz" not in a for a in result.addresses)


def test_sender_never_the_own_address_across_the_corpus() -> None:
    for item in BY_ID.values():
        sender = extract_fields(item["body"], own_address=OWN).sender
        if sender is not None and sender.address:
            assert "Rathausplatz" not in sender.address, item["id"]
            assert sender.address.split(",")[0] in item["sender_contact"], item["id"]


def test_sender_from_signature_and_form() -> None:
    e03 = fields("E03").sender
    assert e03 is not None
    assert (e03.name, e03.address, e03.source) == (
        "Sabine Probe",
        "Kirchgasse 8, 12345 Musterstadt",
        "unterschrift",
    )
    e06 = fields("E06").sender  # a form filled in by the son for his mother
    assert e06 is not None
    assert e06.name == "Thomas Beispiel"
    assert e06.email == "thomas.beispiel@example.com"
    e05 = fields("E05").sender  # a company letterhead addressed to the Kämmerei in the Rathaus
    assert e05 is not None
    assert e05.name == "Beispiel Büromöbel GmbH"
    assert e05.address == "Gewerbering 12, 12346 Nachbarstadt"


def test_amounts_in_german_format() -> None:
    amounts = [(a.value, a.currency) for a in fields("E01").amounts]
    assert amounts == [("1471.60", "EUR"), ("612.40", "EUR"), ("367.90", "EUR")]
    text = "Gebühr EUR 25,- bzw. 25 Euro, Ersparnis 4.000 €, Summe 1.995,37 €"
    values = [a.value for a in extract_fields(text).amounts]
    assert values == ["25.00", "25.00", "4000.00", "1995.37"]
    # Measurements are no amounts.
    assert extract_fields("Fläche 4,00 m × 3,00 m = 12 m²").amounts == []


def test_dates_with_labels_and_explicit_deadlines() -> None:
    result = fields("E01")
    dates = {(d.date, d.label) for d in result.dates}
    assert ("2026-10-26", "den Grundsteuerbescheid vom") in dates
    assert ("2026-11-16", "Musterstadt") in dates
    explicit = [d.date for d in result.deadlines if d.kind == "explizit"]
    assert "2026-11-30" in explicit
    e05 = fields("E05")
    assert [(d.date, d.label) for d in e05.deadlines] == [("2026-12-12", "Abzug bis zum")]
    assert ("2026-11-12", "Rechnungsdatum") in {(d.date, d.label) for d in e05.dates}
    # A validity date and the end of a period are no deadlines.
    assert fields("E06").deadlines == []
    assert fields("E14").deadlines == []


def test_widerspruchsfrist_from_the_bescheid_date() -> None:
    # Bescheid vom 26.10.2026 + 4 days notification = 30.10. + one month = 30.11.2026,
    # the date the writer of E01 names himself.
    frist = [d for d in fields("E01").deadlines if d.kind == "widerspruchsfrist"]
    assert [d.date for d in frist] == ["2026-11-30"]
    assert "2026-10-26" in frist[0].basis
    e15 = fields("E15")  # "einen Monat Zeit ... Frist bis zum 07.12.2026"
    assert {d.date for d in e15.deadlines} == {"2026-12-07"}
    assert {d.kind for d in e15.deadlines} == {"explizit", "relativ", "widerspruchsfrist"}


def test_einspruchsfrist_of_a_bussgeldbescheid_runs_from_delivery() -> None:
    deadlines = fields("E16").deadlines
    einspruch = [d for d in deadlines if d.kind == "einspruchsfrist"]
    assert [d.date for d in einspruch] == ["2026-11-26"]
    assert "zugestellt am 2026-11-12" in einspruch[0].basis


def test_relative_deadline_innerhalb_eines_monats() -> None:
    text = "Gegen den Bescheid vom 15.01.2027 ist innerhalb eines Monats der Widerspruch zulässig."
    result = extract_fields(text)
    relative = [d for d in result.deadlines if d.kind == "relativ"]
    # 19.01.2027 + one month = 19.02.2027, a Friday.
    assert [d.date for d in relative] == ["2027-02-19"]
    invoice = fields("E34")  # "Zahlbar innerhalb von 30 Tagen" from the invoice date 16.11.2026
    assert ("2026-12-16", "relativ") in {(d.date, d.kind) for d in invoice.deadlines}
    received = extract_fields(
        "Bitte antworten Sie innerhalb von zwei Wochen.", received_at=datetime(2026, 11, 20, 9)
    )
    assert [d.date for d in received.deadlines] == ["2026-12-04"]


def test_deadline_rules() -> None:
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)
    assert next_working_day(date(2026, 11, 28)) == date(2026, 11, 30)  # Saturday → Monday
    assert next_working_day(date(2026, 12, 25)) == date(
        2026, 12, 28
    )  # Christmas, Boxing Day, Sunday


def test_aktenzeichen_plates_ibans_emails_phones() -> None:
    e17 = fields("E17")
    assert e17.aktenzeichen == ["214/26 Pr/ke", "RS-2026-0093", "63-0815/2026"]
    e16 = fields("E16")
    assert e16.aktenzeichen == ["32-OWi-2026-118734"]
    assert e16.plates == ["MU-AB 123"]
    assert fields("E56").plates == ["MU-XY 4711"]
    assert fields("E56").ibans == ["DE48 6115 0020 0048 1516 23"]
    assert extract_fields("IBAN DE89370400440532013000").ibans == ["DE89 3704 0044 0532 0130 00"]
    assert extract_fields("IBAN DE89370400440532013001").ibans == []
    e06 = fields("E06")
    assert e06.emails == ["thomas.beispiel@example.com"]
    assert e06.phones == ["01234 66021"]


def test_to_dict_is_json_serialisable() -> None:
    data = fields("E01").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["sender"]["name"] == "Walter Mustermann"
    assert data["amounts"][0] == {"value": "1471.60", "currency": "EUR", "text": "1.471,60 €"}


def test_edge_cases() -> None:
    empty = extract_fields("")
    assert empty.to_dict()["sender"] is None
    assert empty.dates == [] and empty.amounts == []
    assert extract_fields("Termin am 31.02.2026 und am 99.99.2026").dates == []
    weird = extract_fields("Ｆｒｉｓｔ 🙂 bis zum 3.\u200b4.2026 \x00 €€ EUR ,- 1.2.3.4 €")
    json.dumps(weird.to_dict())
    big = "\n".join(item["body"] for item in BY_ID.values()) * 4
    started = time.perf_counter()
    result = extract_fields(big[:200_000], own_address=OWN)
    assert time.perf_counter() - started < 10
    assert len(result.ibans) == 6
