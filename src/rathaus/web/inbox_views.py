"""Posteingang pages: queues with SLA clocks, upload, case review and decisions.

Routing rules and model versions are in :mod:`rathaus.web.inbox_admin`.

The pages are a thin shell over :mod:`rathaus.inbox` (``review``, ``router``, ``training``,
``jobs``). Two helpers live here because the UI and the JSON API share them: reading uploads in
chunks up to the size limit (:func:`read_upload`) and storing items, then queueing their triage
after the commit (:func:`store_item`, :func:`queue_triage`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rathaus.core import case_service
from rathaus.core.access import visible_cases
from rathaus.core.cases import OPEN_STATUSES, TRANSITIONS
from rathaus.core.config import Settings
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import (
    AiSuggestion,
    Case,
    CaseStatus,
    Embedding,
    OrgUnit,
    Service,
    Tenant,
    User,
)
from rathaus.core.roles import Permission, permissions_of
from rathaus.core.storage import OriginalStore
from rathaus.governance import access_log
from rathaus.inbox import review, training
from rathaus.inbox import router as rules
from rathaus.inbox.classify import REQUEST_TYPES, URGENCIES
from rathaus.inbox.pipeline import case_text_parts, compose_text
from rathaus.inbox.places import case_places
from rathaus.inbox.service import IncomingItem, receive
from rathaus.web.deps import (
    CsrfDep,
    CurrentTenant,
    CurrentUser,
    SessionDep,
    SettingsDep,
    require,
)
from rathaus.web.templating import render

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

VIEW = Depends(require(Permission.VIEW_CASES))
EDIT = Depends(require(Permission.EDIT_CASES))
ADMIN = Depends(require(Permission.MANAGE_SETTINGS))

CHUNK = 1024 * 1024
PII_LABELS = {
    "PERSON": "Name",
    "ADDRESS": "Anschrift",
    "IBAN": "IBAN",
    "PHONE": "Telefon",
    "EMAIL": "E-Mail",
    "DATE_OF_BIRTH": "Geburtsdatum",
    "TAX_ID": "Steuer-ID",
    "AKTENZEICHEN": "Aktenzeichen",
    "PLATE": "Kennzeichen",
}
SOURCE_LABELS = {
    "regel": "Regel",
    "modell": "Modell",
    "ähnlichkeit": "Ähnlichkeit",
    "automatisch": "automatisch",
}
DECISION_LABELS = {
    "angenommen": "Vorschlag übernommen",
    "korrigiert": "korrigiert",
    "bearbeitet": "bearbeitet",
    "abgelehnt": "abgelehnt",
    "automatisch": "automatisch zugeordnet",
}
URGENCY_LABELS = {"normal": "normal", "hoch": "hoch", "kritisch": "kritisch"}
NOTICES = {
    "entschieden": "Die Zuordnung wurde gespeichert.",
    "entwurf": "Der Antwortentwurf wurde gespeichert.",
    "freigegeben": "Die Antwort wurde freigegeben.",
    "regel": "Die Regel wurde gespeichert.",
    "regel_aus": "Die Regel ist jetzt inaktiv und wird bei neuen Eingängen nicht mehr angewandt.",
    "regel_an": "Die Regel ist wieder aktiv.",
    "training": "Das Training wurde angestoßen. Die neue Version erscheint in der Liste, sobald "
    "es fertig ist (mit großem Bestand einige Minuten).",
    "aktiviert": "Die Modellversion ist jetzt live.",
    "zurueck": "Die vorherige Modellversion ist wieder live.",
    "einheiten": "Die Einstellungen zur automatischen Zuordnung wurden gespeichert und im "
    "Prüfprotokoll festgehalten.",
}
_REFERENCE = re.compile(r"^[A-Za-z0-9-]{1,40}$")
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_DOWNLOAD_TYPES = {
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/tiff",
    "text/plain",
    "message/rfc822",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


def _notice(key: str) -> str:
    return NOTICES.get(key, "")


def _perms(user: User) -> frozenset[Permission]:
    return permissions_of(user.roles)


def _visible_case(case_id: int, user: CurrentUser, session: SessionDep) -> Case:
    """The case if the user may open it (a dependency: checked before any form is validated)."""
    return case_service.get(session, user=user, case_id=case_id)


VisibleCase = Annotated[Case, Depends(_visible_case)]


# -- uploads: shared with the JSON API ----------------------------------------------------------


@dataclass
class Upload:
    """One received file: its bytes, or why it was not taken."""

    filename: str
    media_type: str
    data: bytes | None = None
    error: str | None = None
    too_big: bool = False


@dataclass
class Stored:
    """What became of one item: its case (new or the existing one), or the German error."""

    filename: str
    case_id: int | None = None
    reference: str | None = None
    duplicate: bool = False
    error: str | None = None
    too_big: bool = False
    visible: bool = False


def safe_filename(name: str | None) -> str:
    """The last path part, without control characters, at most 200 characters."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = "".join(
        c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C"
    )
    return base.strip()[:200] or "datei"


def too_big_message(filename: str, max_bytes: int) -> str:
    return (
        f"„{filename}“ ist größer als {max_bytes // (1024 * 1024)} MB und wurde nicht "
        "angenommen. Bitte die Datei verkleinern (z. B. mit geringerer Auflösung scannen) oder "
        "in mehreren Teilen einreichen."
    )


async def read_upload(upload: UploadFile, max_bytes: int) -> Upload:
    """Read an uploaded file in chunks and stop at ``max_bytes``: a too big file is never held
    in memory as a whole (the form parser keeps file parts on disk)."""
    name = safe_filename(upload.filename)
    media = (upload.content_type or "").split(";")[0].strip().lower()[:120]
    media = media or "application/octet-stream"
    if upload.size is not None and upload.size > max_bytes:
        return Upload(name, media, error=too_big_message(name, max_bytes), too_big=True)
    buffer = bytearray()
    while chunk := await upload.read(CHUNK):
        buffer += chunk
        if len(buffer) > max_bytes:
            return Upload(name, media, error=too_big_message(name, max_bytes), too_big=True)
    if not buffer:
        return Upload(name, media, error=f"„{name}“ ist leer und wurde nicht übernommen.")
    return Upload(name, media, data=bytes(buffer))


def text_item(
    text: str, *, subject: str = "", channel: str = "upload", **extra: Any
) -> IncomingItem:
    """A pasted or posted text as an item; its UTF-8 bytes are the original."""
    return IncomingItem(
        channel=channel,
        original=text.encode("utf-8"),
        filename="text.txt",
        media_type="text/plain",
        subject=subject[:300],
        body=text,
        **extra,
    )


def file_item(
    upload: Upload, *, subject: str = "", channel: str = "upload", **extra: Any
) -> IncomingItem:
    assert upload.data is not None
    return IncomingItem(
        channel=channel,
        original=upload.data,
        filename=upload.filename,
        media_type=upload.media_type,
        subject=(subject or upload.filename)[:300],
        **extra,
    )


Entry = tuple[str, IncomingItem | None, str | None, bool]  # file name, item, error, too big


def store_item(session: Session, tenant: Tenant, entry: Entry, store: OriginalStore) -> Stored:
    """Store one item (the same bytes twice are the existing case), or report why it was not
    taken. Nothing is committed: the caller commits after the batch, then queues the triage
    (:func:`queue_triage`). One failing item does not stop the others."""
    filename, item, error, too_big = entry
    if item is None:
        return Stored(filename, error=error, too_big=too_big)
    try:
        received = _receive(session, tenant, item, store)
    except RathausError as exc:
        return Stored(filename, error=exc.message)
    return Stored(
        filename,
        case_id=received.case.id,
        reference=received.case.reference,
        duplicate=received.duplicate,
    )


# As often as a channel tries to take an item (rathaus.inbox.channels.poll.TAKE_ATTEMPTS, not
# imported here: that module loads the job queue).
RECEIVE_ATTEMPTS = 3


def _receive(session: Session, tenant: Tenant, item: IncomingItem, store: OriginalStore) -> Any:
    # Parallel receipts wait for each other (receive takes lock_references first), so neither
    # the same Aktenzeichen nor the same original is taken twice. The unique constraints stay
    # the last guard: should one refuse the item anyway, the savepoint is rolled back and the
    # item received again, as the channels do.
    for attempt in range(RECEIVE_ATTEMPTS):
        try:
            with session.begin_nested():
                return receive(session, tenant=tenant, item=item, store=store)
        except IntegrityError:
            if attempt == RECEIVE_ATTEMPTS - 1:
                raise RathausError(
                    f"„{item.filename}“ konnte wegen gleichzeitiger Eingänge nicht gespeichert "
                    "werden. Bitte noch einmal hochladen."
                ) from None
            log.info(
                "„%s“ gleichzeitig mit einem anderen Eingang erfasst, neuer Versuch", item.filename
            )
    raise AssertionError("unreachable")  # pragma: no cover


def new_case_ids(results: list[Stored]) -> list[int]:
    return [r.case_id for r in results if r.case_id is not None and not r.duplicate]


def queue_triage(settings: Settings, case_ids: list[int]) -> bool:
    """Queue the triage of committed cases; ``False`` if the queue is unavailable (the
    reconcile job picks the cases up later, nothing is lost)."""
    if not case_ids:
        return True
    from rathaus.inbox.jobs import enqueue_triage
    from rathaus.jobs import get_huey

    try:
        get_huey(settings)  # the queue of this app's settings, also in tests
        enqueue_triage(case_ids)
    except Exception:  # noqa: BLE001 - stored is stored; the reconcile job triages later
        log.exception("Vorprüfung für %s konnte nicht eingereiht werden", case_ids)
        return False
    return True


def _queue_job(settings: Settings, job: Any, *args: Any) -> None:
    from rathaus.jobs import get_huey

    get_huey(settings)
    job.enqueue(*args)


# -- queue --------------------------------------------------------------------------------------


def _latest_routing(session: Session, case_ids: list[int]) -> dict[int, AiSuggestion]:
    if not case_ids:
        return {}
    found: dict[int, AiSuggestion] = {}
    for suggestion in session.scalars(
        select(AiSuggestion)
        .where(AiSuggestion.case_id.in_(case_ids), AiSuggestion.function == "routing")
        .order_by(AiSuggestion.id)
    ):
        found[suggestion.case_id] = suggestion  # type: ignore[index]
    return found


def _top(suggestion: AiSuggestion | None) -> dict[str, Any] | None:
    if suggestion is None:
        return None
    candidates = (suggestion.output or {}).get("candidates") or []
    return candidates[0] if candidates else None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@router.get("/posteingang", dependencies=[VIEW])
def inbox_queue(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    amt: str = "",
    triage: str = "",
    dringlichkeit: str = "",
    art: str = "",
    markiert: str = "",
    uebergeben: str = "",
) -> Response:
    perms = _perms(user)
    may_triage = Permission.TRIAGE in perms
    counts = review.queue_counts(session, user)
    open_cases = visible_cases(session, user).where(Case.status.in_(list(OPEN_STATUSES)))
    counts["total"] = session.scalar(select(func.count()).select_from(open_cases.subquery()))
    unit_id = _int(amt)
    triage_only = may_triage and triage == "1"
    cases = review.queue(
        session,
        user,
        org_unit_id=unit_id,
        triage_only=triage_only,
        urgency=dringlichkeit if dringlichkeit in URGENCIES else None,
        request_type=art if art in REQUEST_TYPES else None,
        flagged=True if markiert == "1" else None,
    )
    suggestions = _latest_routing(session, [c.id for c in cases])
    rows = [
        {
            "case": c,
            "clock": review.sla_clock(c, tenant.land),
            "top": _top(suggestions.get(c.id)),
            "flags": (c.needs_review_reason or "").split("\n") if c.needs_review_reason else [],
        }
        for c in cases
    ]
    return render(
        request,
        "inbox_queue.html",
        {
            "tenant": tenant,
            "counts": counts,
            "rows": rows,
            "may_triage": may_triage,
            "filters": {
                "amt": unit_id,
                "triage": triage_only,
                "dringlichkeit": dringlichkeit,
                "art": art,
                "markiert": markiert == "1",
            },
            "urgencies": URGENCIES,
            "request_types": REQUEST_TYPES,
            "handed_over": uebergeben if _REFERENCE.match(uebergeben) else "",
        },
    )


# -- upload -------------------------------------------------------------------------------------


def _upload_context(settings: Settings, tenant: Tenant, **extra: Any) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "max_mb": settings.inbox.max_upload_mb,
        "max_files": settings.inbox.max_files_per_upload,
        "results": None,
        "error": "",
        **extra,
    }


@router.get("/posteingang/hochladen", dependencies=[EDIT])
def upload_page(request: Request, tenant: CurrentTenant, settings: SettingsDep) -> Response:
    return render(request, "inbox_upload.html", _upload_context(settings, tenant))


@router.post("/posteingang/hochladen", dependencies=[CsrfDep, EDIT])
async def upload(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    limit = settings.inbox.max_files_per_upload
    max_bytes = settings.inbox.max_upload_mb * 1024 * 1024
    form = await request.form(max_files=limit + 50, max_fields=50)
    uploads = [f for f in form.getlist("dateien") if isinstance(f, UploadFile) and f.filename]
    text = form.get("text")
    text = text.strip() if isinstance(text, str) else ""
    subject = form.get("betreff")
    subject = subject.strip()[:300] if isinstance(subject, str) else ""
    if not uploads and not text:
        context = _upload_context(
            settings,
            tenant,
            error="Bitte wählen Sie mindestens eine Datei aus oder fügen Sie einen Text ein.",
        )
        return render(request, "inbox_upload.html", context, status_code=400)
    store = OriginalStore(settings.originals_dir)
    results: list[Stored] = []
    # One file at a time: read (up to the limit), store, let go of its bytes, read the next.
    for index, upload in enumerate(uploads):
        if index >= limit:
            name = safe_filename(upload.filename)
            message = (
                f"„{name}“ wurde nicht angenommen: höchstens {limit} Dateien auf einmal. "
                "Bitte die übrigen Dateien in einem weiteren Schritt hochladen."
            )
            results.append(Stored(name, error=message))
            continue
        read = await read_upload(upload, max_bytes)
        entry = (read.filename, file_item(read) if read.data else None, read.error, read.too_big)
        results.append(await run_in_threadpool(store_item, session, tenant, entry, store))
    if text:
        entry = ("Eingefügter Text", text_item(text, subject=subject), None, False)
        results.append(await run_in_threadpool(store_item, session, tenant, entry, store))

    def work() -> bool:
        session.commit()
        queued = queue_triage(settings, new_case_ids(results))
        ids = [r.case_id for r in results if r.case_id]
        visible = set(
            session.scalars(
                visible_cases(session, user).with_only_columns(Case.id).where(Case.id.in_(ids))
            )
        )
        for r in results:
            r.visible = r.case_id in visible
        return queued

    queued = await run_in_threadpool(work)
    return render(
        request,
        "inbox_upload.html",
        _upload_context(settings, tenant, results=results, queued=queued),
    )


# -- the case review ----------------------------------------------------------------------------


def triage_text(case: Case) -> tuple[str, bool]:
    """The text the pipeline read (as ``pipeline.read_text`` composes it), and whether it is
    exactly that text: its SHA-256 is stored with the PII offsets. The subject may have changed
    since (an e-mail's subject replaces the file name), so the likely subjects are tried; if
    none matches, the text is shown without marks rather than with wrong ones."""
    bodies, extracted = case_text_parts(case)
    wanted = (case.fields or {}).get("text_sha256")
    subjects = [case.subject, "", *(d.filename for d in case.documents)]
    first = None
    for subject in dict.fromkeys(s.strip() for s in subjects):
        composed = compose_text(subject, bodies, extracted)
        first = composed if first is None else first
        if wanted and hashlib.sha256(composed.encode("utf-8")).hexdigest() == wanted:
            return composed, True
    return first or "", False


def _overlaps(start: int, end: int, taken: list[tuple[int, int]]) -> bool:
    return any(start < b and a < end for a, b in taken)


def highlight(text: str, fields: dict[str, Any]) -> Markup:
    """``text`` escaped, with personal data and recognised fields wrapped in ``<mark>``.

    Personal data comes first; a field that overlaps it is not marked again. The kind is in
    ``data-kind`` (shown by the stylesheet), so the marking does not rely on colour."""
    spans: list[tuple[int, int, str, str]] = []
    taken: list[tuple[int, int]] = []
    for span in fields.get("pii") or []:
        start, end, kind = span.get("start"), span.get("end"), str(span.get("kind", ""))
        if not isinstance(start, int) or not isinstance(end, int):
            continue
        if 0 <= start < end <= len(text) and not _overlaps(start, end, taken):
            taken.append((start, end))
            spans.append((start, end, f"pii pii-{kind.lower()}", PII_LABELS.get(kind, kind)))
    extracted = fields.get("extracted") or {}
    candidates: list[tuple[int, int, str, str]] = []
    for mention in extracted.get("dates") or []:
        start, found = mention.get("start"), mention.get("text") or ""
        if isinstance(start, int) and found and text[start : start + len(found)] == found:
            candidates.append((start, start + len(found), "feld feld-datum", "Datum"))
    for amount in extracted.get("amounts") or []:
        found = amount.get("text") or ""
        for m in re.finditer(re.escape(found), text) if found else []:
            candidates.append((m.start(), m.end(), "feld feld-betrag", "Betrag"))
    for start, end, css, label in sorted(candidates):
        if not _overlaps(start, end, taken):
            taken.append((start, end))
            spans.append((start, end, css, label))
    out: list[Markup] = []
    position = 0
    for start, end, css, label in sorted(spans):
        out.append(escape(text[position:start]))
        out.append(
            Markup('<mark class="{}" data-kind="{}">{}</mark>').format(css, label, text[start:end])
        )
        position = end
    out.append(escape(text[position:]))
    return Markup("").join(out)


def _iso_date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def _field_rows(extracted: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The extracted fields as (German label, values) for a definition list."""

    def day(value: Any) -> str:
        parsed = _iso_date(value)
        return parsed.strftime("%d.%m.%Y") if parsed else str(value)

    rows = [
        ("Aktenzeichen", list(extracted.get("aktenzeichen") or [])),
        (
            "Fristen",
            [
                f"{day(d.get('date'))} – {d.get('label') or d.get('kind')}"
                + (f" ({d['basis']})" if d.get("basis") else "")
                for d in extracted.get("deadlines") or []
            ],
        ),
        (
            "Daten",
            [
                f"{day(d.get('date'))}" + (f" ({d['label']})" if d.get("label") else "")
                for d in extracted.get("dates") or []
            ],
        ),
        ("Beträge", [a.get("text") or a.get("value", "") for a in extracted.get("amounts") or []]),
        ("Anschriften", list(extracted.get("addresses") or [])),
        ("IBAN", list(extracted.get("ibans") or [])),
        ("Kfz-Kennzeichen", list(extracted.get("plates") or [])),
        ("E-Mail", list(extracted.get("emails") or [])),
        ("Telefon", list(extracted.get("phones") or [])),
    ]
    sender = extracted.get("sender") or {}
    parts = [sender.get(k) for k in ("name", "address", "email", "phone") if sender.get(k)]
    if parts:
        rows.append(("Absender", [", ".join(parts)]))
    return [(label, [str(v) for v in values]) for label, values in rows if values]


def _stored_vector(session: Session, case: Case) -> Any:
    from rathaus.inbox.vectors import OWNER, from_bytes

    row = session.execute(
        select(Embedding.dim, Embedding.vector)
        .where(
            Embedding.tenant_id == case.tenant_id,
            Embedding.owner_type == OWNER,
            Embedding.owner_id == case.id,
        )
        .order_by(Embedding.id.desc())
        .limit(1)
    ).first()
    return None if row is None else from_bytes(row[1], row[0])


def occlusion(
    model: Any, text: str, vector: Any = None, *, k: int = 12, place: Any = None
) -> dict[str, Any]:
    """Decisive words: the ``k`` words with the highest TF-IDF weight in ``text`` are removed one
    at a time; how far the probability of the top unit drops shows how much it rests on them.
    The meaning vector and the place (if the model uses them) are kept fixed, so this measures
    the words' direct effect only, and it costs one batch prediction of ``k + 1`` texts."""
    import numpy as np

    words_model = getattr(model, "_word", None)
    if words_model is None:
        return {"words": []}
    row = words_model.transform([text])
    names = words_model.get_feature_names_out()
    weighted = sorted(
        (
            (float(row.data[i]), str(names[row.indices[i]]))
            for i in range(row.nnz)
            if " " not in names[row.indices[i]]
        ),
        reverse=True,
    )[:k]
    words = [w for _, w in weighted]
    variants = [text] + [
        re.sub(rf"(?<!\w){re.escape(w)}(?!\w)", " ", text, flags=re.IGNORECASE) for w in words
    ]
    vectors = None if vector is None else np.repeat(np.asarray(vector)[None, :], len(variants), 0)
    extra = None if place is None else [place] * len(variants)
    proba = model.predict_proba(variants, vectors=vectors, extra_features=extra)
    top = int(proba[0].argmax())
    drops = [(w, float(proba[0, top] - proba[i + 1, top])) for i, w in enumerate(words)]
    return {
        "unit_code": str(model.classes_[top]),
        "probability": round(float(proba[0, top]), 4),
        "words": [
            {"word": w, "drop": round(d, 4)}
            for w, d in sorted(drops, key=lambda x: -x[1])
            if d >= 0.001
        ],
    }


def decisive_words(
    session: Session,
    settings: Settings,
    tenant: Tenant,
    case: Case,
    suggestion: AiSuggestion | None,
    text: str,
) -> dict[str, Any] | None:
    """Decisive words for the live model, computed once and kept in the suggestion's output."""
    try:
        live = training.live_model(
            session,
            tenant,
            data_dir=settings.data_dir,
            secret_key=settings.secret_key.get_secret_value(),
        )
    except RathausError as exc:
        return {"error": exc.message, "words": []}
    if live is None or not text.strip() or "unit" not in live.models:
        return None
    cached = (suggestion.output or {}).get("decisive_words") if suggestion else None
    if cached and cached.get("model") == live.label:
        return cached
    model = live.models["unit"]
    vector = None
    if live.uses_vectors:
        vector = _stored_vector(session, case)
        if vector is None or vector.shape[0] != getattr(model, "_dim", -1):
            return {"model": live.label, "words": [], "error": "Für diesen Eingang liegt kein "
                    "Bedeutungsvektor vor; die entscheidenden Wörter lassen sich nicht berechnen."}  # fmt: skip
    try:
        place = case_places(case) if live.uses_location else None
        result = {"model": live.label, **occlusion(model, text, vector, place=place)}
    except (ValueError, RathausError) as exc:
        log.warning("Entscheidende Wörter für Vorgang %s nicht berechnet: %s", case.id, exc)
        return None
    if suggestion is not None:
        suggestion.output = {**(suggestion.output or {}), "decisive_words": result}
    return result


def _users_by_id(session: Session, ids: set[int | None]) -> dict[int, User]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(wanted)))}


def _directory(session: Session, tenant_id: int) -> tuple[list[OrgUnit], list[Service]]:
    directory = rules.Directory.load(session, tenant_id)
    units = sorted(directory.units.values(), key=lambda u: u.name)
    services = sorted(directory.services.values(), key=lambda s: s.name)
    return units, services


def _similar(session: Session, user: User, case: Case) -> tuple[list[dict[str, Any]], int]:
    pairs = [(int(p[0]), float(p[1])) for p in (case.fields or {}).get("similar") or []]
    related = {int(r["case_id"]): r for r in (case.fields or {}).get("related") or []}
    ids = [cid for cid, _ in pairs] + [cid for cid in related if cid not in dict(pairs)]
    if not ids:
        return [], 0
    seen = {c.id: c for c in session.scalars(visible_cases(session, user).where(Case.id.in_(ids)))}
    scores = dict(pairs)
    rows = [
        {
            "case": seen[cid],
            "score": scores.get(cid),
            "reason": related.get(cid, {}).get("reason", "ähnlicher Text"),
        }
        for cid in ids
        if cid in seen
    ]
    return rows, len(ids) - len(rows)


def review_context(
    request: Request, session: Session, user: User, tenant: Tenant, case: Case
) -> dict[str, Any]:
    """Everything the case page shows besides the case itself."""
    settings: Settings = request.app.state.settings
    perms = _perms(user)
    fields = case.fields or {}
    text, exact = triage_text(case)
    routing = review.latest_suggestion(session, case, "routing")
    request_type = review.latest_suggestion(session, case, "request_type")
    urgency = review.latest_suggestion(session, case, "urgency")
    units, services = _directory(session, tenant.id)
    similar, hidden_similar = _similar(session, user, case)
    replies = [m for m in case.messages if m.direction == "out"]
    people = _users_by_id(
        session,
        {m.approved_by_id for m in replies} | {routing.decided_by_id if routing else None},
    )
    words = (
        decisive_words(session, settings, tenant, case, routing, text) if case.triaged_at else None
    )
    unit_names = {u.code: u.name for u in units}
    top = _top(routing)
    can_edit = Permission.EDIT_CASES in perms
    return {
        "text": text,
        "highlighted": highlight(text, fields) if exact else None,
        "field_rows": _field_rows(fields.get("extracted") or {}),
        "pii_count": len(fields.get("pii") or []),
        "flags": case.needs_review_reason.split("\n") if case.needs_review_reason else [],
        "clock": review.sla_clock(case, tenant.land),
        "routing": routing,
        "candidates": ((routing.output or {}).get("candidates") or [])[:3] if routing else [],
        "top": top,
        "request_type_suggestion": request_type,
        "urgency_suggestion": urgency,
        "decisive": words,
        "unit_names": unit_names,
        "similar": similar,
        "hidden_similar": hidden_similar,
        "units": units,
        "services": services,
        "service_units": {u.id: u for u in units},
        "replies": replies,
        "people": people,
        "can_edit": can_edit,
        "can_route": can_edit
        and (
            case.org_unit_id is not None
            or Permission.TRIAGE in perms
            or Permission.VIEW_ALL_DEPARTMENTS in perms
        ),
        "SOURCE_LABELS": SOURCE_LABELS,
        "DECISION_LABELS": DECISION_LABELS,
        "image_documents": {
            d.id
            for d in case.documents
            if d.media_type.split(";")[0] in {t for _, t in _IMAGE_MAGIC}
        },
    }


@router.get("/vorgaenge/{case_id}")  # visible_cases: no case, no page (404, also without role)
def case_view(
    request: Request,
    case: VisibleCase,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    meldung: str = "",
) -> Response:
    context = {
        "tenant": tenant,
        "case": case,
        "next_statuses": sorted(TRANSITIONS[CaseStatus(case.status)]),
        "notice": _notice(meldung),
        **review_context(request, session, user, tenant, case),
    }
    access_log.record_access(session, case=case, user=user, action="angesehen", channel="web")
    return render(request, "case.html", context)


def _disposition(kind: str, filename: str) -> str:
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:100] or "original"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/vorgaenge/{case_id}/dokumente/{document_id}")
def original(
    case: VisibleCase,
    document_id: int,
    settings: SettingsDep,
    user: CurrentUser,
    session: SessionDep,
    ansicht: bool = False,
) -> Response:
    """The stored original, unchanged: as a download, or shown inline if it really is an image
    (checked from its bytes, never from what the sender claimed)."""
    document = next((d for d in case.documents if d.id == document_id), None)
    if document is None:
        raise NotFoundError("Dieses Dokument gibt es in diesem Vorgang nicht.")
    data = OriginalStore(settings.originals_dir).get(case.tenant_id, document.sha256)
    access_log.record_access(session, case=case, user=user, action="original", channel="web")
    image = next((t for magic, t in _IMAGE_MAGIC if data.startswith(magic)), None)
    inline = ansicht and image is not None
    claimed = document.media_type.split(";")[0].strip().lower()
    media_type = image or (claimed if claimed in _DOWNLOAD_TYPES else "application/octet-stream")
    return Response(
        data,
        media_type=media_type,
        headers={
            "Content-Disposition": _disposition(
                "inline" if inline else "attachment", document.filename
            ),
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


# -- decisions ----------------------------------------------------------------------------------


def _service_fits(session: Session, tenant_id: int, unit: OrgUnit, service: Service) -> bool:
    """A service belongs to the chosen unit, one of its sub-units, or a unit above it."""
    from rathaus.core.access import unit_subtree_ids

    if service.org_unit_id is None:
        return True
    if service.org_unit_id in unit_subtree_ids(session, tenant_id, {unit.id}):
        return True
    return unit.id in unit_subtree_ids(session, tenant_id, {service.org_unit_id})


def _retrain_if_due(session: Session, settings: Settings, tenant: Tenant, user: User) -> None:
    from rathaus.inbox.jobs import corrections_since_last_training, retrain_job

    needed = settings.inbox.retrain_after_corrections
    if needed <= 0 or corrections_since_last_training(session, tenant.id) < needed:
        return
    try:
        _queue_job(settings, retrain_job, tenant.id, "korrekturen", user.username)
    except Exception:  # noqa: BLE001 - the nightly training catches up
        log.exception("Neutraining nach Korrekturen konnte nicht eingereiht werden")


@router.post("/vorgaenge/{case_id}/zuordnung", dependencies=[CsrfDep, EDIT])
def decide(
    case: VisibleCase,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    settings: SettingsDep,
    aktion: Annotated[str, Form(max_length=20)] = "zuordnen",
    org_unit_id: Annotated[str, Form(max_length=20)] = "",
    service_id: Annotated[str, Form(max_length=20)] = "",
    notiz: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Accept the top suggestion ("Übernehmen") or route to the chosen unit ("Zuordnen")."""
    if aktion == "uebernehmen":
        top = _top(review.latest_suggestion(session, case, "routing"))
        if top is None:
            raise RathausError(
                "Es gibt keinen Vorschlag zum Übernehmen. Bitte wählen Sie ein Amt und "
                "klicken Sie auf „Zuordnen“."
            )
        unit_id, chosen_service = top.get("org_unit_id"), top.get("service_id")
    else:
        unit_id, chosen_service = _int(org_unit_id), _int(service_id)
    if not isinstance(unit_id, int):
        raise RathausError("Bitte wählen Sie das zuständige Amt aus.")
    unit = session.get(OrgUnit, unit_id)
    service = session.get(Service, chosen_service) if chosen_service else None
    if (
        unit is not None
        and service is not None
        and unit.tenant_id == service.tenant_id
        and not _service_fits(session, tenant.id, unit, service)
    ):
        raise RathausError(
            f"Die Leistung „{service.name}“ gehört nicht zu „{unit.name}“. Bitte eine "
            "Leistung dieses Amtes wählen oder das Feld leer lassen."
        )
    updated, _decision = review.decide_routing(
        session,
        user,
        case.id,
        org_unit_id=unit_id,
        service_id=chosen_service,
        note=notiz.strip(),
    )
    reference = updated.reference
    session.commit()
    _retrain_if_due(session, settings, tenant, user)
    if session.scalar(
        visible_cases(session, user).with_only_columns(Case.id).where(Case.id == case.id)
    ):
        return RedirectResponse(f"/vorgaenge/{case.id}?meldung=entschieden#zustaendigkeit", 303)
    return RedirectResponse(f"/posteingang?uebergeben={quote(reference)}", 303)


@router.post("/vorgaenge/{case_id}/antworten/{message_id}", dependencies=[CsrfDep, EDIT])
def save_reply(
    case: VisibleCase,
    message_id: int,
    user: CurrentUser,
    session: SessionDep,
    text: Annotated[str, Form(max_length=50000)] = "",
    aktion: Annotated[str, Form(max_length=20)] = "speichern",
) -> Response:
    approve = aktion == "freigeben"
    review.save_reply(session, user, case.id, message_id, body=text, approve=approve)
    notice = "freigegeben" if approve else "entwurf"
    return RedirectResponse(f"/vorgaenge/{case.id}?meldung={notice}#antwort", 303)
