"""The municipality's bank details (Bankverbindung) for the letter footer: checked, stored per tenant.

A :class:`BankDetails` holds Kreditinstitut, IBAN (checked with its ISO 7064 mod-97 check digits
and the length of its country) and an optional BIC. One per tenant is kept in its
``tenant_settings`` row, in the JSON column ``letter_settings`` under :data:`SETTINGS_KEY`.
Letters use it in the footer unless a letter gives its own (:func:`footer_for`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.orm import Session, object_session

from rathaus.core import audit
from rathaus.core.errors import RathausError
from rathaus.core.models import Tenant, TenantSettings, utcnow

# Key in tenant_settings.letter_settings.
SETTINGS_KEY = "bankverbindung"
MAX_INSTITUTE = 120
# IBAN lengths of the SEPA countries a German municipality pays from or to (ISO 13616 registry).
IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31,
    "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "VA": 22,
}  # fmt: skip
_BIC = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")


class BankDetailsError(RathausError):
    """Bank details that cannot be used (IBAN check digits wrong, BIC malformed, …)."""

    exit_code = 2
    http_status = 422


@dataclass(frozen=True)
class BankDetails:
    """Kreditinstitut, IBAN (without spaces, upper case) and BIC (may be empty)."""

    institute: str
    iban: str
    bic: str = ""

    @property
    def iban_grouped(self) -> str:
        """The IBAN in groups of four, as printed: ``DE89 3704 0044 0532 0130 00``."""
        return " ".join(self.iban[i : i + 4] for i in range(0, len(self.iban), 4))

    def footer(self) -> str:
        """One line for the letter footer."""
        parts = [self.institute, f"IBAN {self.iban_grouped}"]
        if self.bic:
            parts.append(f"BIC {self.bic}")
        return " · ".join(p for p in parts if p)

    def as_dict(self) -> dict[str, str]:
        return {"kreditinstitut": self.institute, "iban": self.iban, "bic": self.bic}


def normalize_iban(value: str) -> str:
    """The IBAN without spaces in upper case, or :class:`BankDetailsError` (German) when its
    country, length, characters or check digits are wrong."""
    iban = re.sub(r"[\s-]", "", value or "").upper()
    shown = (value or "").strip()[:40]
    if not iban:
        raise BankDetailsError("Bitte die IBAN angeben (z. B. DE89 3704 0044 0532 0130 00).")
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", iban):
        raise BankDetailsError(
            f"Die IBAN „{shown}“ ist ungültig: sie beginnt mit dem Länderkürzel (z. B. DE) und "
            "zwei Prüfziffern und enthält sonst nur Buchstaben und Ziffern."
        )
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is None:
        raise BankDetailsError(
            f"Die IBAN „{shown}“ ist ungültig: das Länderkürzel „{iban[:2]}“ gehört zu keinem "
            "Land des SEPA-Raums."
        )
    if len(iban) != expected:
        raise BankDetailsError(
            f"Die IBAN „{shown}“ hat {len(iban)} Stellen, eine IBAN aus {iban[:2]} hat "
            f"{expected}. Bitte die IBAN vollständig vom Kontoauszug abschreiben."
        )
    digits = "".join(str(int(c, 36)) for c in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        raise BankDetailsError(
            f"Die IBAN „{shown}“ ist ungültig: die Prüfziffern stimmen nicht (wahrscheinlich "
            "ein Tippfehler). Bitte die IBAN Ziffer für Ziffer mit dem Kontoauszug vergleichen."
        )
    return iban


def normalize_bic(value: str) -> str:
    """The BIC in upper case (``""`` when none is given), or :class:`BankDetailsError`."""
    bic = re.sub(r"\s", "", value or "").upper()
    if bic and not _BIC.match(bic):
        raise BankDetailsError(
            f"Die BIC „{(value or '').strip()[:20]}“ ist ungültig: sie hat 8 oder 11 Zeichen, "
            "vier Buchstaben für die Bank, zwei für das Land (z. B. COBADEFFXXX)."
        )
    return bic


def make(*, institute: str, iban: str, bic: str = "") -> BankDetails:
    """Checked bank details; every problem in one German message."""
    errors = []
    name = " ".join((institute or "").split())
    if not name:
        errors.append("Bitte das Kreditinstitut angeben (z. B. „Sparkasse Musterstadt“).")
    elif len(name) > MAX_INSTITUTE:
        errors.append(f"Der Name des Kreditinstituts ist zu lang (höchstens {MAX_INSTITUTE}).")
    checked_iban = checked_bic = ""
    for check, raw in ((normalize_iban, iban), (normalize_bic, bic)):
        try:
            result = check(raw)
        except BankDetailsError as exc:
            errors.append(exc.message)
            continue
        if check is normalize_iban:
            checked_iban = result
        else:
            checked_bic = result
    if checked_bic and checked_iban and checked_bic[4:6] != checked_iban[:2]:
        errors.append(
            f"BIC ({checked_bic}) und IBAN ({checked_iban[:2]}…) nennen verschiedene Länder. "
            "Bitte beide prüfen."
        )
    if errors:
        raise BankDetailsError(" ".join(errors))
    return BankDetails(institute=name, iban=checked_iban, bic=checked_bic)


def get(session: Session, *, tenant_id: int) -> BankDetails | None:
    """The tenant's stored bank details, or ``None``."""
    row = session.get(TenantSettings, tenant_id)
    stored = (row.letter_settings or {}).get(SETTINGS_KEY) if row is not None else None
    if not isinstance(stored, dict) or not stored.get("iban"):
        return None
    return BankDetails(
        institute=str(stored.get("kreditinstitut") or ""),
        iban=str(stored["iban"]),
        bic=str(stored.get("bic") or ""),
    )


def save(
    session: Session, *, tenant: Tenant, details: BankDetails | None, actor: str
) -> BankDetails | None:
    """Store (or with ``None`` remove) the tenant's bank details; the change goes into the
    audit trail. The caller commits."""
    row = session.get(TenantSettings, tenant.id)
    if row is None:
        row = TenantSettings(tenant_id=tenant.id, model_policies={}, letter_settings={})
        session.add(row)
    stored = dict(row.letter_settings or {})
    if details is None:
        stored.pop(SETTINGS_KEY, None)
    else:
        stored[SETTINGS_KEY] = details.as_dict()
    row.letter_settings = stored  # a new dict: the JSON column sees the change
    row.updated_by = actor[:120]
    row.updated_at = utcnow()
    audit.record(
        session,
        audit.Event(
            kind="mandant.bankverbindung",
            actor=actor,
            tenant_id=tenant.id,
            subject=tenant.slug,
            data=details.as_dict() if details else {"entfernt": True},
        ),
    )
    session.flush()
    return details


def footer_for(tenant: Tenant, given: str = "") -> str:
    """The bank line of a letter: ``given`` when the letter has its own, else the tenant's
    stored details (read through the tenant's session; ``""`` for a tenant without one)."""
    if given.strip():
        return given.strip()
    session = object_session(tenant)
    if session is None or tenant.id is None:
        return ""
    details = get(session, tenant_id=tenant.id)
    return details.footer() if details else ""


_IBAN_START = re.compile(r"\b([A-Z]{2})(\d{2})")
_ALNUM_RUN = re.compile(r"(?: ?[A-Z0-9])*")


def check_line(text: str) -> str:
    """A bank line typed for one letter: returned as given, but an IBAN in it must be valid
    (:class:`BankDetailsError` otherwise), so a typo does not reach a citizen.

    An IBAN is a SEPA country code and two digits followed by enough letters and digits (single
    spaces allowed) for that country's length; shorter runs count only after the word "IBAN".
    """
    upper = (text or "").upper()
    for match in _IBAN_START.finditer(upper):
        length = IBAN_LENGTHS.get(match.group(1))
        if length is None:
            continue
        run = _ALNUM_RUN.match(upper, match.end())
        chars = run.group(0).replace(" ", "") if run else ""
        if len(chars) < length - 4:
            if "IBAN" in upper[max(0, match.start() - 8) : match.start()]:
                normalize_iban(match.group(0) + chars)  # raises: too short
            continue
        normalize_iban(match.group(0) + chars[: length - 4])
    return (text or "").strip()
