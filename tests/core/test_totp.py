"""TOTP (RFC 6238) and HOTP (RFC 4226) against the test vectors of the RFCs, the ±1 step
window, and what authenticator apps read (base32 key, ``otpauth://`` URI)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from rathaus.core import totp

# RFC 6238 appendix B: the seed of the SHA-1 vectors is the ASCII string "12345678901234567890".
SEED_SHA1 = b"12345678901234567890"
SEED_SHA256 = b"12345678901234567890123456789012"
SEED_SHA512 = b"1234567890123456789012345678901234567890123456789012345678901234"
RFC6238_SHA1 = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]
RFC6238_OTHERS = [
    ("SHA256", SEED_SHA256, 59, "46119246"),
    ("SHA256", SEED_SHA256, 1111111109, "68084774"),
    ("SHA256", SEED_SHA256, 20000000000, "77737706"),
    ("SHA512", SEED_SHA512, 59, "90693936"),
    ("SHA512", SEED_SHA512, 1234567890, "93441116"),
    ("SHA512", SEED_SHA512, 20000000000, "47863826"),
]
# RFC 4226 appendix D: HOTP of counters 0 to 9 with the same seed, six digits.
RFC4226 = ["755224", "287082", "359152", "969429", "338314",
           "254676", "287922", "162583", "399871", "520489"]  # fmt: skip


@pytest.mark.parametrize(("at", "expected"), RFC6238_SHA1)
def test_rfc6238_sha1_vectors(at, expected):
    assert totp.code_at(SEED_SHA1, at, digits=8) == expected
    # Rathaus's own six digits are the last six of the eight (the same truncation, mod 10^6).
    assert totp.code_at(SEED_SHA1, at) == expected[-6:]


@pytest.mark.parametrize(("algorithm", "seed", "at", "expected"), RFC6238_OTHERS)
def test_rfc6238_sha256_and_sha512_vectors(algorithm, seed, at, expected):
    assert totp.code_at(seed, at, digits=8, algorithm=algorithm) == expected


def test_rfc4226_hotp_vectors():
    assert [totp.hotp(SEED_SHA1, counter) for counter in range(10)] == RFC4226


def test_one_step_back_and_ahead_count_two_do_not():
    at = 1111111111.0
    now = totp.step_at(at)
    for offset in (-1, 0, 1):
        code = totp.hotp(SEED_SHA1, now + offset)
        assert totp.matching_step(SEED_SHA1, code, at=at) == now + offset
    for offset in (-2, 2):
        assert totp.matching_step(SEED_SHA1, totp.hotp(SEED_SHA1, now + offset), at=at) is None
    window = {totp.hotp(SEED_SHA1, now + offset) for offset in (-1, 0, 1)}
    wrong = next(f"{n:06d}" for n in range(10) if f"{n:06d}" not in window)
    assert totp.matching_step(SEED_SHA1, wrong, at=at) is None


def test_new_secrets_are_160_bit_and_random():
    first, second = totp.new_secret(), totp.new_secret()
    assert len(first) == 20 and first != second
    text = totp.to_base32(first)
    assert len(text) == 32 and "=" not in text and base64.b32decode(text) == first
    assert totp.grouped(text) == " ".join(text[i : i + 4] for i in range(0, 32, 4))


def test_otpauth_uri_names_issuer_account_and_parameters():
    uri = totp.otpauth_uri(SEED_SHA1, issuer="Rathaus Stadt: Alpha", account="erika")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert unquote(parts.path) == "/Rathaus Stadt  Alpha:erika"  # no second colon in the label
    query = parse_qs(parts.query)
    assert query == {
        "secret": [totp.to_base32(SEED_SHA1)],
        "issuer": ["Rathaus Stadt  Alpha"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }
