"""Time-based one-time passwords (TOTP, RFC 6238 over HOTP, RFC 4226): secrets, codes, URIs.

Pure functions without a database: :mod:`rathaus.core.second_factor` stores the secrets and
decides which time step may still be used. Rathaus issues what every authenticator app reads:
160-bit secrets in base32, SHA-1, six digits, 30-second steps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

DIGITS = 6
STEP_S = 30
SECRET_BYTES = 20  # 160 bit, the length RFC 4226 recommends for HMAC-SHA-1
_ALGORITHMS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def new_secret() -> bytes:
    """A fresh random secret (:data:`SECRET_BYTES` bytes from the system's CSPRNG)."""
    return secrets.token_bytes(SECRET_BYTES)


def to_base32(secret: bytes) -> str:
    """The secret as authenticator apps take it: base32, upper case, without padding."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def grouped(text: str, size: int = 4) -> str:
    """``ABCDEFGH…`` as ``ABCD EFGH …`` for typing it in by hand."""
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


def hotp(secret: bytes, counter: int, *, digits: int = DIGITS, algorithm: str = "SHA1") -> str:
    """The HOTP value of ``counter`` (RFC 4226 5.3: HMAC, dynamic truncation, modulo)."""
    digest = hmac.new(secret, struct.pack(">Q", counter), _ALGORITHMS[algorithm]).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def step_at(at: float) -> int:
    """The number of the 30-second time step that contains the Unix time ``at`` (T0 = 0)."""
    return int(at // STEP_S)


def code_at(secret: bytes, at: float, *, digits: int = DIGITS, algorithm: str = "SHA1") -> str:
    """The TOTP code valid at Unix time ``at`` (RFC 6238 4.2)."""
    return hotp(secret, step_at(at), digits=digits, algorithm=algorithm)


def matching_step(
    secret: bytes, code: str, *, at: float | None = None, window: int = 1
) -> int | None:
    """The time step whose code is ``code``, looking ``window`` steps back and ahead of the
    current one (clocks of phones drift), or ``None``. Every candidate is compared in constant
    time; when two match, the later step counts."""
    now = step_at(time.time() if at is None else at)
    found = None
    for step in range(now - window, now + window + 1):
        if hmac.compare_digest(hotp(secret, step).encode(), code.encode()):
            found = step
    return found


def otpauth_uri(secret: bytes, *, issuer: str, account: str) -> str:
    """The ``otpauth://totp/…`` URI (Key Uri Format) that apps import: the label
    ``issuer:account``, and the issuer again as a parameter. A colon would split the label, so
    it is left out of both names."""
    issuer = issuer.replace(":", " ").strip()
    account = account.replace(":", " ").strip()
    label = quote(f"{issuer}:{account}", safe=":")
    query = urlencode(
        {
            "secret": to_base32(secret),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_S,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"
