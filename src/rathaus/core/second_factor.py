"""The own second factor of password logins: enrolment, checking codes, recovery codes, reset.

A person's authenticator app shares a secret with Rathaus (:mod:`rathaus.core.totp`). The secret
is stored Fernet-encrypted with a key derived (HKDF-SHA256) from the installation secret
``secret_key``: a copy of the database alone does not reveal it. Changing ``secret_key``
therefore makes every factor unreadable; each person then needs a reset
(``rathaus users zweiter-faktor-zuruecksetzen``).

A code counts for the current 30-second step and one step before and after it, and only once:
an accepted code moves ``last_used_step`` on, and no code of that step or an earlier one is
accepted again (replay). Against guessing, every wrong code counts towards the login's lock-out
(web layer) and, here, towards :data:`MAX_FAILURES` wrong codes in a row: after that the app's
codes are refused until a recovery code is used or the factor is reset, so that even spread over
months at most :data:`MAX_FAILURES` guesses of a six-digit code are ever checked. An attempt is
counted before its code is checked, in its own committed write, so parallel requests cannot
slip past the limit.

Recovery codes: ten random codes of 50 bits, shown once, stored as salted SHA-256; each works
once. They are checked whatever the count of wrong codes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from rathaus.core import audit, totp
from rathaus.core.models import RecoveryCode, SecondFactor, User, utcnow

# Wrong codes in a row after which the app's codes are refused (recovery code or reset then).
MAX_FAILURES = 10
RECOVERY_CODES = 10
# A secret shown for enrolment stays valid this long without confirmation.
PENDING_S = 900
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
_RECOVERY_LENGTH = 10

# Outcomes of :func:`check` (``Check.reason``).
OK, WRONG, REPLAYED, LOCKED, MALFORMED, NONE = (
    "ok",
    "falsch",
    "schon_verwendet",
    "zu_viele_fehlversuche",
    "format",
    "kein_faktor",
)
TOTP, RECOVERY = "totp", "wiederherstellungscode"


@dataclass(frozen=True)
class Check:
    """The outcome of :func:`check`: ``ok``, how (``method``: :data:`TOTP` or
    :data:`RECOVERY`), why not (``reason``), and the recovery codes still unused."""

    ok: bool
    reason: str
    method: str = ""
    recovery_left: int = 0


def _sealer(secret_key: str) -> Any:
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"rathaus second factor secret"
    ).derive(secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, secret: bytes) -> str:
    return _sealer(secret_key).encrypt(secret).decode("ascii")


def unseal(secret_key: str, sealed: str) -> bytes | None:
    """The secret, or ``None`` when it cannot be decrypted (``secret_key`` changed)."""
    from cryptography.fernet import InvalidToken

    try:
        return _sealer(secret_key).decrypt(sealed.encode("ascii"))
    except (InvalidToken, ValueError):
        return None


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def get(session: Session, *, user_id: int) -> SecondFactor | None:
    return session.scalar(select(SecondFactor).where(SecondFactor.user_id == user_id))


def is_active(session: Session, *, user_id: int) -> bool:
    factor = get(session, user_id=user_id)
    return bool(factor and factor.enabled_at and factor.secret_sealed)


def required(settings: Any, user: User) -> bool:
    """Whether the policy demands a factor of ``user`` (``security.second_factor_required_for_
    roles``). Not in demo mode: the demo's logins stay usable as printed on the login page."""
    if settings.is_demo:
        return False
    return bool(user.roles & set(settings.security.second_factor_required_for_roles))


def issuer(tenant_name: str) -> str:
    """The name an authenticator app shows above the code: ``Rathaus <Kommune>``."""
    return f"Rathaus {tenant_name}".strip()


# -- enrolment ------------------------------------------------------------------------------------


def pending_secret(
    session: Session, *, user: User, secret_key: str, fresh: bool = False
) -> tuple[bytes, dt.datetime]:
    """The secret to show for enrolment and when it stops being valid: the one shown before if
    it is still valid (a reload shows the same), else (or with ``fresh``) a new one.
    The active secret, if any, stays active until the new one is confirmed (:func:`confirm`)."""
    factor = get(session, user_id=user.id)
    now = utcnow()
    if factor is None:
        factor = SecondFactor(user_id=user.id, failed_attempts=0, created_at=now)
        session.add(factor)
    elif not fresh and factor.pending_sealed and factor.pending_at:
        started = _aware(factor.pending_at)
        secret = unseal(secret_key, factor.pending_sealed)
        if secret is not None and now - started < dt.timedelta(seconds=PENDING_S):
            return secret, started + dt.timedelta(seconds=PENDING_S)
    secret = totp.new_secret()
    factor.pending_sealed = seal(secret_key, secret)
    factor.pending_at = now
    session.flush()
    return secret, now + dt.timedelta(seconds=PENDING_S)


def has_pending(session: Session, *, user_id: int) -> bool:
    """Whether a secret shown for enrolment is still waiting for its confirmation."""
    factor = get(session, user_id=user_id)
    return bool(
        factor
        and factor.pending_sealed
        and factor.pending_at
        and utcnow() - _aware(factor.pending_at) < dt.timedelta(seconds=PENDING_S)
    )


def _new_recovery_codes(session: Session, factor: SecondFactor) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.factor_id == factor.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        code = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        salt = secrets.token_hex(16)
        session.add(RecoveryCode(factor_id=factor.id, salt=salt, code_hash=_hash(salt, code)))
        codes.append(f"{code[:5]}-{code[5:]}")
    session.flush()
    return codes


def _hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}\0{code}".encode()).hexdigest()


def confirm(
    session: Session, *, user: User, secret_key: str, code: str, actor: str = ""
) -> list[str] | None:
    """Activate the pending secret if ``code`` is one of its current codes: the new recovery
    codes (shown once, only their hashes are kept), or ``None`` for a wrong or late code.
    A factor active before is replaced, its recovery codes with it."""
    factor = get(session, user_id=user.id)
    digits = normalize(code)
    if not (factor and factor.pending_sealed and factor.pending_at and _is_totp(digits)):
        return None
    if utcnow() - _aware(factor.pending_at) >= dt.timedelta(seconds=PENDING_S):
        return None
    secret = unseal(secret_key, factor.pending_sealed)
    step = totp.matching_step(secret, digits) if secret is not None else None
    if step is None:
        return None
    renewed = factor.enabled_at is not None
    factor.secret_sealed = factor.pending_sealed
    factor.pending_sealed = None
    factor.pending_at = None
    factor.enabled_at = utcnow()
    factor.last_used_step = step  # the code just typed does not open a login afterwards
    factor.failed_attempts = 0
    codes = _new_recovery_codes(session, factor)
    audit.record(
        session,
        audit.Event(
            kind="second_factor_enrolled",
            actor=actor or user.username,
            tenant_id=user.tenant_id,
            subject=f"user:{user.id}",
            data={"erneuert": renewed, "wiederherstellungscodes": len(codes)},
        ),
    )
    return codes


# -- checking a code ------------------------------------------------------------------------------


def normalize(code: str) -> str:
    """A typed code without spaces and dashes, in upper case."""
    return "".join(ch for ch in code if ch not in " -\t").upper()


def _is_totp(code: str) -> bool:
    return len(code) == totp.DIGITS and code.isascii() and code.isdigit()


def _is_recovery(code: str) -> bool:
    return len(code) == _RECOVERY_LENGTH and all(ch in _RECOVERY_ALPHABET for ch in code)


def recovery_left(session: Session, factor_id: int) -> int:
    rows = session.scalars(
        select(RecoveryCode.id).where(
            RecoveryCode.factor_id == factor_id, RecoveryCode.used_at.is_(None)
        )
    ).all()
    return len(rows)


def check(session: Session, *, user: User, secret_key: str, code: str) -> Check:
    """Check ``code`` (six digits from the app, or a recovery code) for ``user``'s active
    factor. Commits: a counted attempt and a used step or recovery code must hold even if the
    request's own work is rolled back. Audits nothing (the caller knows the context)."""
    factor = get(session, user_id=user.id)
    if not (factor and factor.enabled_at and factor.secret_sealed):
        return Check(False, NONE)
    typed = normalize(code)
    if _is_recovery(typed):
        return _check_recovery(session, factor, typed)
    if not _is_totp(typed):
        return Check(False, MALFORMED)
    # Count the attempt first, within the limit, in one atomic statement.
    reserved = session.execute(
        update(SecondFactor)
        .where(SecondFactor.id == factor.id, SecondFactor.failed_attempts < MAX_FAILURES)
        .values(failed_attempts=SecondFactor.failed_attempts + 1)
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    if not reserved:
        return Check(False, LOCKED)
    secret = unseal(secret_key, factor.secret_sealed)
    step = totp.matching_step(secret, typed) if secret is not None else None
    if step is None:
        return Check(False, WRONG)
    accepted = session.execute(
        update(SecondFactor)
        .where(
            SecondFactor.id == factor.id,
            (SecondFactor.last_used_step.is_(None)) | (SecondFactor.last_used_step < step),
        )
        .values(last_used_step=step, failed_attempts=0)
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    if not accepted:
        return Check(False, REPLAYED)
    return Check(True, OK, TOTP, recovery_left(session, factor.id))


def _check_recovery(session: Session, factor: SecondFactor, typed: str) -> Check:
    rows = session.scalars(
        select(RecoveryCode).where(
            RecoveryCode.factor_id == factor.id, RecoveryCode.used_at.is_(None)
        )
    ).all()
    match = next((r for r in rows if hmac.compare_digest(_hash(r.salt, typed), r.code_hash)), None)
    used = 0
    if match is not None:
        used = session.execute(
            update(RecoveryCode)
            .where(RecoveryCode.id == match.id, RecoveryCode.used_at.is_(None))
            .values(used_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]
    values = (
        {"failed_attempts": 0} if used else {"failed_attempts": SecondFactor.failed_attempts + 1}
    )
    session.execute(update(SecondFactor).where(SecondFactor.id == factor.id).values(**values))
    session.commit()
    if not used:
        return Check(False, WRONG)
    return Check(True, OK, RECOVERY, recovery_left(session, factor.id))


# -- switching off and resetting ------------------------------------------------------------------


def remove(session: Session, *, user: User, actor: str, kind: str) -> bool:
    """Delete ``user``'s factor and its recovery codes; audit it as ``kind``
    (``second_factor_disabled`` by the person, ``second_factor_reset`` by the administration).
    Whether there was an active one."""
    factor = get(session, user_id=user.id)
    was_active = bool(factor and factor.enabled_at)
    if factor is not None:
        session.delete(factor)
        session.flush()
    audit.record(
        session,
        audit.Event(
            kind=kind,
            actor=actor,
            tenant_id=user.tenant_id,
            subject=f"user:{user.id}",
            data={"war_aktiv": was_active},
        ),
    )
    return was_active


def reset(session: Session, *, tenant_slug: str, username: str, actor: str = "cli") -> bool:
    """The administration's reset of a lost factor: the factor and its recovery codes are
    deleted, every session and unfinished login of the person ends, and it is audited
    (``second_factor_reset``). Whether there was an active factor. The next password login
    enrols anew where the policy demands a factor."""
    from rathaus.core import users
    from rathaus.core.models import LoginChallenge
    from rathaus.core.security import end_all_sessions

    user = users.get(session, tenant_slug=tenant_slug, username=username)
    was_active = remove(session, user=user, actor=actor, kind="second_factor_reset")
    end_all_sessions(session, user.id)
    session.execute(delete(LoginChallenge).where(LoginChallenge.user_id == user.id))
    return was_active
