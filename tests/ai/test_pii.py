"""PII detection and pseudonymisation on the demo letters and on edge cases."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import pytest

from rathaus.ai.pii import (
    AKTENZEICHEN,
    DATE_OF_BIRTH,
    EMAIL,
    IBAN,
    PERSON,
    PHONE,
    PLATE,
    TAX_ID,
    detect_pii,
    iban_is_valid,
    pseudonymize,
    reidentify,
    steuer_id_is_valid,
)

DEMO = Path(__file__).resolve().parents[2] / "src/rathaus/core/demo/eingaenge.json"
ITEMS = json.loads(DEMO.read_text(encoding="utf-8"))["items"]
BY_ID = {item["id"]: item for item in ITEMS}
IBAN_IN_TEXT = re.compile(r"\b[A-Z]{2}\d{2}(?: \d{4}){4} \d{2}\b")
PHONE_IN_CONTACT = re.compile(r"0\d{4} \d{4,6}(?:-\d+)?")
EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w.-]+\.\w+")
# Organisations, not people: their names are no personal data to hide.
COMPANY_SENDERS = {"E05", "E17", "E29", "E33", "E34", "E36", "E45", "E59"}


def kinds_and_texts(text: str) -> set[tuple[str, str]]:
    return {(span.kind, span.text) for span in detect_pii(text)}


def test_every_iban_in_the_corpus_is_found_and_valid() -> None:
    expected = [m.group() for item in ITEMS for m in IBAN_IN_TEXT.finditer(item["body"])]
    assert len(expected) == 6
    found = [s.text for item in ITEMS for s in detect_pii(item["body"]) if s.kind == IBAN]
    assert found == expected
    assert all(iban_is_valid(value) for value in found)


@pytest.mark.parametrize(
    "value",
    [
        "DE89 3704 0044 0532 0130 01",  # last digit changed
        "DE98 3704 0044 0532 0130 00",  # check digits swapped
        "DE89 3704 0044 0532 0130 0",  # too short for DE
        "XX89 3704 0044 0532 0130 00",
    ],
)
def test_a_tampered_iban_is_rejected(value: str) -> None:
    assert not iban_is_valid(value)
    assert IBAN not in {s.kind for s in detect_pii(f"Bitte überweisen auf IBAN {value}.")}
    # Its digit groups are no phone number either.
    assert PHONE not in {s.kind for s in detect_pii(f"IBAN {value}")}


def test_iban_forms() -> None:
    for text in ("DE89370400440532013000", "de89 3704 0044 0532 0130 00", "AT611904300234573201"):
        assert [s.kind for s in detect_pii(f"Konto: {text}")] == [IBAN]
    # A following number is not swallowed into the IBAN.
    spans = detect_pii("IBAN DE89 3704 0044 0532 0130 00 1234 Betrag")
    assert spans[0].text == "DE89 3704 0044 0532 0130 00"


def test_no_iban_or_tax_id_from_random_digit_runs() -> None:
    rng = random.Random(7)
    runs = [
        "".join(rng.choice("0123456789") for _ in range(rng.randint(8, 30))) for _ in range(500)
    ]
    spans = detect_pii("\n".join(f"Vorgang {run} erledigt" for run in runs))
    assert IBAN not in {s.kind for s in spans}
    # An 11-digit Steuer-ID passes its check digit about one time in eleven: only real ones pass.
    assert all(steuer_id_is_valid(s.text) for s in spans if s.kind == TAX_ID and "/" not in s.text)


def test_steuer_id_check_digit() -> None:
    assert steuer_id_is_valid("65929970489")
    assert steuer_id_is_valid("86095742719")
    assert not steuer_id_is_valid("65929970488")  # wrong check digit
    assert not steuer_id_is_valid("01234567890")  # leading zero
    assert not steuer_id_is_valid("12345678903")  # no repeated digit
    found = kinds_and_texts("Steuer-ID: 65 929 970 489, Steuernummer 123/456/78901")
    assert {(TAX_ID, "65 929 970 489"), (TAX_ID, "123/456/78901")} <= found
    assert (TAX_ID, "12345/67890") in kinds_and_texts(BY_ID["E34"]["body"])
    assert (TAX_ID, "DE999999999") in kinds_and_texts(BY_ID["E05"]["body"])


def test_people_from_salutation_signature_letterhead_and_labels() -> None:
    e01 = detect_pii(BY_ID["E01"]["body"])
    assert [s.text for s in e01 if s.kind == PERSON] == ["Walter Mustermann"] * 2
    assert (PERSON, "Elfriede Mustermann") in kinds_and_texts(BY_ID["E10"]["body"])
    assert (PERSON, "Dr. Felix Probe") in kinds_and_texts(BY_ID["E17"]["body"])
    assert (PERSON, "Hildegard Beispiel") in kinds_and_texts(BY_ID["E06"]["body"])
    assert (PERSON, "Ірина Тестенко") in kinds_and_texts(BY_ID["E21"]["body"])
    assert (PERSON, "Ayşe Örnek") in kinds_and_texts(BY_ID["E18"]["body"])
    found = kinds_and_texts("Ich, Max Mustermann, erkläre hiermit Folgendes.")
    assert (PERSON, "Max Mustermann") in found
    # Companies and authorities are not people.
    texts = {s.text for s in detect_pii(BY_ID["E05"]["body"]) if s.kind == PERSON}
    assert "Beispiel Büromöbel GmbH" not in texts
    assert not any("Stadt" in t or "Damen" in t for t in texts)


def test_addresses_phones_emails_dates_of_birth() -> None:
    found = kinds_and_texts(BY_ID["E06"]["body"])
    assert ("ADDRESS", "Rosenweg 2, Whg. 14, 12345 Musterstadt") in found
    assert (DATE_OF_BIRTH, "03.04.1938") in found
    assert (EMAIL, "thomas.beispiel@example.com") in found
    text = "Tel. +49 30 1234567, mobil 0171/1234567, Fax (030) 123 45-67, geboren am 1. März 1980"
    found = kinds_and_texts(text)
    assert {(PHONE, "+49 30 1234567"), (PHONE, "0171/1234567"), (PHONE, "(030) 123 45-67")} <= found
    assert (DATE_OF_BIRTH, "1. März 1980") in found
    assert ("ADDRESS", "Karl-Marx-Straße 12a, 10115 Berlin") in kinds_and_texts(
        "wohnhaft Karl-Marx-Straße 12a, 10115 Berlin"
    )
    # Dates, amounts and Kassenzeichen are no phone numbers.
    found = kinds_and_texts("am 01.10.2026 zahlte ich 0,50 € auf Kassenzeichen 5.0123.456789.2")
    assert PHONE not in {kind for kind, _ in found}


def test_aktenzeichen_and_plates() -> None:
    text = "Az. 63-0815/2026 · Ihr Zeichen: MS-2026-000417 · Aktenzeichen: 32-OWi-2026-118734"
    assert [s.text for s in detect_pii(text) if s.kind == AKTENZEICHEN] == [
        "63-0815/2026",
        "MS-2026-000417",
        "32-OWi-2026-118734",
    ]
    plates = [
        s.text for s in detect_pii("Kennzeichen MU-AB 123, B-XY 1234E und M-A 1") if s.kind == PLATE
    ]
    assert plates == ["MU-AB 123", "B-XY 1234E", "M-A 1"]
    assert [s.text for s in detect_pii(BY_ID["E58"]["body"]) if s.kind == PLATE] == [
        "MU-K 88",
        "MU-RT 2025",
    ]
    # Reference numbers and sports teams are no plates.
    assert PLATE not in {s.kind for s in detect_pii("BE-40-2026-0217, D-Jugend, E-Mail 2")}


def test_spans_are_sorted_non_overlapping_and_match_the_text() -> None:
    for item in ITEMS:
        text = item["body"]
        spans = detect_pii(text)
        for span in spans:
            assert text[span.start : span.end] == span.text
            assert 0 < span.score <= 1
        for left, right in zip(spans, spans[1:], strict=False):
            assert left.end <= right.start


def test_pseudonymize_roundtrip_with_consistent_placeholders() -> None:
    text = BY_ID["E01"]["body"]
    spans = detect_pii(text)
    masked, mapping = pseudonymize(text, spans)
    assert masked.count("[PERSON_1]") == 2  # letterhead and signature: one person, one placeholder
    assert "Walter Mustermann" not in masked
    assert reidentify(masked, mapping) == text
    # A second text of the same case reuses the mapping; new values get the next number.
    follow_up = "Herr Walter Mustermann und Frau Erika Probe, Tel. 01234 77412."
    masked2, mapping2 = pseudonymize(follow_up, detect_pii(follow_up), mapping)
    assert masked2.startswith("Herr [PERSON_1] und Frau [PERSON_2], Tel. [PHONE_1]")
    assert mapping2["[PERSON_2]"] == "Erika Probe"
    assert "[PERSON_2]" not in mapping  # the given mapping is left unchanged
    assert reidentify(masked2, mapping2) == follow_up


def test_same_iban_in_other_spelling_gets_the_same_placeholder() -> None:
    text = "IBAN DE89 3704 0044 0532 0130 00, also DE89370400440532013000."
    masked, mapping = pseudonymize(text, detect_pii(text))
    assert masked == "IBAN [IBAN_1], also [IBAN_1]."
    assert reidentify("[IBAN_1] [EMAIL_9]", mapping) == "DE89 3704 0044 0532 0130 00 [EMAIL_9]"


def test_no_iban_email_or_phone_left_in_pseudonymised_corpus() -> None:
    for item in ITEMS:
        body = item["body"]
        masked, mapping = pseudonymize(body, detect_pii(body))
        assert reidentify(masked, mapping) == body
        secrets = IBAN_IN_TEXT.findall(body) + EMAIL_IN_TEXT.findall(body)
        secrets += [p for p in PHONE_IN_CONTACT.findall(item["sender_contact"]) if p in body]
        for secret in secrets:
            assert secret not in masked, (item["id"], secret)
        if item["sender_name"] in body and item["id"] not in COMPANY_SENDERS:
            assert item["sender_name"] not in masked, item["id"]


def test_edge_cases() -> None:
    assert detect_pii("") == []
    assert pseudonymize("", []) == ("", {})
    weird = "Ｆｒａｕ 🙂 Zoë\u200b Ünal \x00 ﷽ Straße 𝟙𝟚𝟛 \ud7ff DE00"
    detect_pii(weird)  # does not raise
    assert detect_pii("\n\n  \t") == []


def test_throughput_and_a_200_kb_text() -> None:
    bodies = [item["body"] for item in ITEMS]
    started = time.perf_counter()
    for _ in range(5):
        for body in bodies:
            detect_pii(body)
    per_second = 5 * len(bodies) / (time.perf_counter() - started)
    assert per_second > 200  # about 1,300/s measured; a generous floor for slow CI machines
    big = ("\n".join(bodies) * 4)[:200_000]
    started = time.perf_counter()
    spans = detect_pii(big)
    assert time.perf_counter() - started < 5
    assert sum(s.kind == IBAN for s in spans) >= 6
