"""Encrypted storage of the pseudonym mappings: Fernet keys from the settings, key ids, rotation.

``governance.pseudonym_keys`` lists Fernet keys; the first encrypts, every one decrypts. Without
keys, one key is derived from ``secret_key`` (HKDF-SHA256). Each :class:`PseudonymMap` row names
its key by ``key_id`` (the first 16 hex digits of a SHA-256 of the key), so a row that no
configured key opens is reported with the id of the key it needs; it is never overwritten.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.core.errors import ConfigError, RathausError
from rathaus.core.models import PseudonymMap, utcnow

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

    from rathaus.core.config import Settings

KEYS_SETTING = "RATHAUS_GOVERNANCE__PSEUDONYM_KEYS"
FORMAT_VERSION = 1


class PseudonymKeyError(RathausError):
    """A stored mapping that none of the configured keys decrypts (a lost or removed key)."""

    def __init__(self, message: str, *, scope: str, key_id: str) -> None:
        super().__init__(message)
        self.scope = scope
        self.key_id = key_id


def generate_key() -> str:
    """A new random Fernet key (URL-safe Base64, 44 characters)."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


def key_id(key: bytes | str) -> str:
    raw = key.encode("ascii") if isinstance(key, str) else key
    return hashlib.sha256(b"rathaus-pseudonym-key\0" + raw).hexdigest()[:16]


def derive_key(secret_key: str) -> bytes:
    """The Fernet key used when no pseudonym key is configured (HKDF-SHA256 of secret_key)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"rathaus", info=b"pseudonym-maps"
    ).derive(secret_key.encode("utf-8"))
    return base64.urlsafe_b64encode(raw)


@dataclass(frozen=True)
class Keyring:
    """The configured keys as ``(key_id, Fernet)``; the first encrypts."""

    keys: tuple[tuple[str, Fernet], ...]
    derived: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        from cryptography.fernet import Fernet

        configured = [k.get_secret_value().strip() for k in settings.governance.pseudonym_keys]
        if not configured:
            key = derive_key(settings.secret_key.get_secret_value())
            return cls(((key_id(key), Fernet(key)),), derived=True)
        keys: list[tuple[str, Fernet]] = []
        for position, key in enumerate(configured, start=1):
            try:
                fernet = Fernet(key.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                raise ConfigError(
                    f"Der {position}. Schlüssel in {KEYS_SETTING} ist kein gültiger Fernet-"
                    "Schlüssel (44 Zeichen URL-sicheres Base64). Einen neuen erzeugt "
                    "`rathaus governance schluessel-erzeugen`."
                ) from None
            if all(key_id(key) != kid for kid, _ in keys):
                keys.append((key_id(key), fernet))
        return cls(tuple(keys))

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    @property
    def ids(self) -> list[str]:
        return [kid for kid, _ in self.keys]

    def encrypt(self, mapping: dict[str, str]) -> tuple[str, bytes]:
        """``(key_id, ciphertext)`` of the mapping with the first key."""
        payload = json.dumps({"v": FORMAT_VERSION, "map": mapping}, ensure_ascii=False)
        kid, fernet = self.keys[0]
        return kid, fernet.encrypt(payload.encode("utf-8"))

    def decrypt(self, key_id_: str, ciphertext: bytes, *, scope: str) -> dict[str, str]:
        """The mapping; the key named by ``key_id_`` is tried first, then every other one."""
        from cryptography.fernet import InvalidToken

        ordered = sorted(self.keys, key=lambda item: item[0] != key_id_)
        for _, fernet in ordered:
            try:
                data = json.loads(fernet.decrypt(bytes(ciphertext)).decode("utf-8"))
            except InvalidToken:
                continue
            return dict(data.get("map") or {})
        raise PseudonymKeyError(
            f"Die Zuordnungstabelle der Pseudonymisierung für {scope} ist mit dem Schlüssel "
            f"{key_id_} verschlüsselt, den keiner der konfigurierten Schlüssel "
            f"({', '.join(self.ids)}) öffnet. Bitte den alten Schlüssel wieder in {KEYS_SETTING} "
            "aufnehmen (hinter den aktuellen) und `rathaus governance schluessel-rotieren` "
            "ausführen. Bis dahin ruft Rathaus für diesen Bereich kein Modell außerhalb des "
            "Prozesses auf; die gespeicherte Zuordnung bleibt unverändert.",
            scope=scope,
            key_id=key_id_,
        )


def case_scope(case_id: int) -> str:
    return f"case:{case_id}"


def _row(session: Session, tenant_id: int, scope: str) -> PseudonymMap | None:
    return session.scalar(
        select(PseudonymMap).where(PseudonymMap.tenant_id == tenant_id, PseudonymMap.scope == scope)
    )


def load_mapping(
    session: Session, *, tenant_id: int, scope: str, keyring: Keyring
) -> dict[str, str]:
    """The stored mapping of ``scope`` (empty when there is none); a lost key raises
    :class:`PseudonymKeyError`."""
    row = _row(session, tenant_id, scope)
    if row is None:
        return {}
    return keyring.decrypt(row.key_id, row.ciphertext, scope=scope)


def save_mapping(
    session: Session,
    *,
    tenant_id: int,
    scope: str,
    mapping: dict[str, str],
    keyring: Keyring,
    case_id: int | None = None,
) -> None:
    """Store ``mapping`` for ``scope`` encrypted with the first key (insert or replace).

    The caller has loaded the current mapping first (so a row that no key opens was refused
    before and is never replaced here).
    """
    kid, ciphertext = keyring.encrypt(mapping)
    row = _row(session, tenant_id, scope)
    if row is None:
        session.add(
            PseudonymMap(
                tenant_id=tenant_id,
                scope=scope,
                case_id=case_id,
                key_id=kid,
                ciphertext=ciphertext,
            )
        )
    else:
        row.key_id, row.ciphertext, row.updated_at = kid, ciphertext, utcnow()
    session.flush()


@dataclass
class Rotation:
    """What :func:`rotate` did: re-encrypted rows, rows already on the first key, rows no key
    opens (``(tenant_id, scope, key_id)``; left unchanged)."""

    current_id: str
    rotated: int = 0
    unchanged: int = 0
    unreadable: list[tuple[int, str, str]] = field(default_factory=list)


def rotate(session: Session, keyring: Keyring) -> Rotation:
    """Re-encrypt every mapping of every tenant with the first key."""
    result = Rotation(current_id=keyring.current_id)
    for row in session.scalars(select(PseudonymMap).order_by(PseudonymMap.id)):
        try:
            mapping = keyring.decrypt(row.key_id, row.ciphertext, scope=row.scope)
        except PseudonymKeyError:
            result.unreadable.append((row.tenant_id, row.scope, row.key_id))
            continue
        if row.key_id == keyring.current_id:
            result.unchanged += 1
            continue
        row.key_id, row.ciphertext = keyring.encrypt(mapping)
        row.updated_at = utcnow()
        result.rotated += 1
    session.flush()
    return result
