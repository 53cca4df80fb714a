"""Forms kept while an account without a password confirms at the identity provider.

An account that signs in through single sign-on confirms a critical action
(:mod:`rathaus.web.reauth`) at the provider, which takes the browser away from the form. So
when such an account sends the form of a critical action before its confirmation, the fields
it sent are kept here, server-side, before the browser goes to the provider: in
``reauth_kept_forms``, bound to the login session (ending the session deletes them) and to the
action's path, for :data:`KEEP_S` seconds, and handed out at most once. The browser carries
only a random reference (``formular``, its SHA-256 is stored) through the signed flow cookie.
The fields are stored encrypted with a key derived from that reference (:func:`_sealer`), so the
database alone never reveals what was typed – IBANs, names of people to be erased.
After the confirmation the person sees the kept form on a page of its own and sends it with a
click (:mod:`rathaus.web.oidc_reauth`); nothing runs by itself.

Not kept: files (a form cannot carry them back), any field whose name contains ``passwort`` or
``password``, and the CSRF token (the page carries a fresh one). A form larger than
:data:`MAX_BYTES` is not kept at all: the person is told to enter it again after confirming.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from rathaus.core.models import ReauthKeptForm, WebSession, utcnow

KEEP_S = 600
MAX_BYTES = 64 * 1024
# The most forms one session keeps at once; older ones give way.
MAX_PER_SESSION = 5

TOO_LARGE = (
    "Das Formular ist zu groß, um es während der Bestätigung beim Anmeldedienst "
    "aufzubewahren (höchstens 64 KiB); ausgeführt wurde nichts. Bitte melden Sie sich zuerst "
    "beim Anmeldedienst erneut an („Beim Anmeldedienst erneut anmelden“) und geben Sie Ihre "
    "Eingaben danach noch einmal ein."
)

_SECRET_NAMES = ("passwort", "password")
_NOT_KEPT = {"csrf_token"}
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")

# What the confirmation page calls an action (the audit name given to reauth.confirm).
LABELS = {
    "aufbewahrung_anwenden": "Aufbewahrungsregeln ausführen",
    "aufbewahrungsregel_entfernen": "Aufbewahrungsregel entfernen",
    "aufbewahrungsregel_speichern": "Aufbewahrungsregel speichern",
    "automatische_zuordnung_aendern": "Automatische Zuordnung ändern",
    "bankverbindung": "Bankverbindung der Kommune ändern",
    "dsgvo_loeschung": "Löschung nach Art. 17 DSGVO ausführen",
    "eingangsquelle_entfernen": "Eingangsquelle entfernen",
    "prognose_datensatz_loeschen": "Prognose-Datensatz löschen",
    "wissenseintrag_loeschen": "Wissenseintrag löschen",
    "zuordnungsregel_speichern": "Zuordnungsregel speichern",
}


@dataclass(frozen=True)
class Kept:
    """A kept form: where it goes, the audit name of its action and its fields."""

    path: str
    action: str
    fields: list[tuple[str, str]]
    files_left_out: bool
    expires_at: dt.datetime

    @property
    def label(self) -> str:
        return label(self.action)


def label(action: str) -> str:
    """The German name of ``action`` for the confirmation page."""
    known = LABELS.get(action)
    if known:
        return known
    words = action.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else "Aktion"


def sent_form(request: Request) -> FormData | None:
    """The form of this request as already parsed, or ``None`` (no form, e.g. a JSON body).

    Starlette keeps a parsed form on the request; every critical action's route has read it
    (its ``Form`` parameters, the CSRF check) before it asks for a confirmation, and the
    synchronous confirmation cannot await it again."""
    form = getattr(request, "_form", None)
    return form if isinstance(form, FormData) else None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _sealer(token: str) -> Any:
    """The Fernet cipher of the form behind ``token``: its key is HKDF-SHA256 of the reference,
    which only the browser's signed flow cookie carries (the database holds its SHA-256)."""
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"rathaus reauth kept form"
    ).derive(token.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(key))


def _seal(token: str, fields: list[tuple[str, str]]) -> str:
    plain = json.dumps([[name, value] for name, value in fields], ensure_ascii=False)
    return _sealer(token).encrypt(plain.encode("utf-8")).decode("ascii")


def _unseal(token: str, sealed: str) -> list[tuple[str, str]] | None:
    from cryptography.fernet import InvalidToken

    try:
        plain = _sealer(token).decrypt(sealed.encode("ascii"))
    except (InvalidToken, ValueError):
        return None
    return [(str(name), str(value)) for name, value in json.loads(plain)]


def valid_token(token: str) -> bool:
    """Whether ``token`` looks like a reference this module hands out (from a URL)."""
    return bool(_TOKEN.fullmatch(token))


def _fields(form: FormData) -> tuple[list[tuple[str, str]], bool, int]:
    """The fields to keep, whether a file was left out, and their size in bytes."""
    fields: list[tuple[str, str]] = []
    files = False
    size = 0
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            files = files or bool(value.filename)
            continue
        lowered = name.casefold()
        if name in _NOT_KEPT or any(secret in lowered for secret in _SECRET_NAMES):
            continue
        fields.append((name, value))
        size += len(name.encode("utf-8")) + len(value.encode("utf-8"))
    return fields, files, size


def keep(
    request: Request, session: Session, web_session: WebSession, *, form: FormData, action: str
) -> str:
    """Keep ``form`` (sent to this request's path) for ``web_session``; the reference to it,
    or ``""`` when it is larger than :data:`MAX_BYTES` (:data:`TOO_LARGE`). Commits: the form
    must outlive the page that refuses the action."""
    fields, files, size = _fields(form)
    if size > MAX_BYTES:
        return ""
    now = utcnow()
    query = request.url.query
    path = request.url.path + (f"?{query}" if query else "")
    session.execute(delete(ReauthKeptForm).where(ReauthKeptForm.expires_at <= now))
    session.execute(
        delete(ReauthKeptForm).where(
            ReauthKeptForm.web_session_id == web_session.id, ReauthKeptForm.path == path
        )
    )
    token = secrets.token_urlsafe(24)
    session.add(
        ReauthKeptForm(
            token_hash=_hash(token),
            web_session_id=web_session.id,
            path=path[:500],
            action=action[:60],
            sealed=_seal(token, fields),
            files_left_out=files,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=KEEP_S),
        )
    )
    session.flush()
    older = session.scalars(
        select(ReauthKeptForm.id)
        .where(ReauthKeptForm.web_session_id == web_session.id)
        .order_by(ReauthKeptForm.id.desc())
        .offset(MAX_PER_SESSION)
    ).all()
    if older:
        session.execute(delete(ReauthKeptForm).where(ReauthKeptForm.id.in_(older)))
    session.commit()
    return token


def _row(session: Session, web_session: WebSession, token: str) -> ReauthKeptForm | None:
    if not valid_token(token):
        return None
    return session.scalars(
        select(ReauthKeptForm).where(
            ReauthKeptForm.token_hash == _hash(token),
            ReauthKeptForm.web_session_id == web_session.id,
            ReauthKeptForm.expires_at > utcnow(),
        )
    ).first()


def waiting(session: Session, web_session: WebSession, token: str) -> dt.datetime | None:
    """When the form behind ``token`` expires, if ``web_session`` still has it (not used)."""
    row = _row(session, web_session, token)
    return row.expires_at if row else None


def take(session: Session, web_session: WebSession, token: str) -> Kept | None:
    """The form behind ``token``, if it belongs to ``web_session`` and has not expired; it is
    deleted (one use only). Another session's or another person's reference finds nothing."""
    row = _row(session, web_session, token)
    if row is None:
        return None
    fields = _unseal(token, row.sealed)
    if fields is None:  # cannot happen with the reference whose hash found the row
        session.delete(row)
        session.flush()
        return None
    kept = Kept(
        path=row.path,
        action=row.action,
        fields=fields,
        files_left_out=row.files_left_out,
        expires_at=row.expires_at,
    )
    session.delete(row)
    session.flush()
    return kept
