"""Editor UI of the knowledge base for the Redaktion under /wissen: the list of entries, the edit
form with verification, the answers that used an entry and its earlier versions (view, diff,
restore), the gaps report and the import.

A thin shell over :mod:`rathaus.assistant.editorial`, :mod:`rathaus.assistant.versions`,
:mod:`rathaus.assistant.knowledge` and :mod:`rathaus.assistant.importers`. Every page needs
``Permission.EDIT_KNOWLEDGE``.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rathaus.assistant import editorial, versions
from rathaus.assistant.entries import FACTS, LIST_FACTS
from rathaus.core import audit
from rathaus.core.errors import RathausError
from rathaus.core.models import KnowledgeChunk, KnowledgeEntry, Tenant, User, utcnow
from rathaus.core.roles import Permission
from rathaus.web import reauth, reauth_step
from rathaus.web.deps import (
    CsrfDep,
    CurrentTenant,
    CurrentUser,
    SessionDep,
    SettingsDep,
    require,
)
from rathaus.web.inbox_views import read_upload, safe_filename
from rathaus.web.templating import render

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

EDIT = Depends(require(Permission.EDIT_KNOWLEDGE))
PAGE_SIZE = 100
STALE_CHOICES = (90, 180, 365, 730)
PERIODS = (7, 30, 90, 365)
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
MAX_IMPORT_FILES = 20
MAX_FIELD = 200_000
SORT_LABELS = {
    "titel": "Titel",
    "pruefung": "Älteste Prüfung zuerst",
    "nutzung": "Am häufigsten zitiert",
    "geaendert": "Zuletzt geändert",
}
# Facts shown as a multi-line field (lists: one item per line).
MULTILINE_FACTS = LIST_FACTS | {"fees", "address", "opening_hours"}
URL_INPUTS = editorial.URL_FACTS
NOTICES = {
    "gespeichert": "Der Eintrag wurde gespeichert und neu indexiert; der Assistent findet ab "
    "sofort den neuen Text.",
    "unveraendert": "Es gab keine Änderungen zu speichern.",
    "geprueft": "Der Eintrag ist als geprüft markiert.",
    "geloescht": "Der Eintrag wurde gelöscht.",
    "wiederhergestellt": "Die Version wurde wiederhergestellt und der Eintrag neu indexiert; der "
    "Stand davor steht als neueste Version in der Liste.",
    "gleich": "Diese Version entspricht dem aktuellen Stand; es wurde nichts geändert.",
}

Text = Annotated[str, Query(max_length=200)]


def get_embedder(request: Request, tenant: CurrentTenant, user: CurrentUser) -> Any:
    """The embedder for re-indexing edited and imported entries, bound to the editor's
    municipality (its own model policy, quota and lock apply). The model is built once per app
    (cheap; it loads when it first embeds)."""
    from rathaus.governance.gateway import scoped

    state = request.app.state
    embedder = getattr(state, "knowledge_embedder", None)
    if embedder is None:
        from rathaus.ai.registry import get_embedder as configured

        embedder = state.knowledge_embedder = configured(state.settings)
    # The knowledge base is the municipality's public information: level oeffentlich.
    return scoped(embedder, level="oeffentlich", tenant_id=tenant.id, actor=user.username)


EmbedderDep = Annotated[Any, Depends(get_embedder)]


def _int(value: str, choices: tuple[int, ...] | None = None) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    if choices is not None and number not in choices:
        return None
    return number if number > 0 else None


# -- the list -----------------------------------------------------------------------------------


@router.get("/wissen", dependencies=[EDIT])
def entry_list(
    request: Request,
    tenant: CurrentTenant,
    session: SessionDep,
    q: Text = "",
    ungeprueft: Text = "",
    aelter_als: Text = "",
    sortierung: Text = "titel",
    seite: Text = "1",
    meldung: Text = "",
) -> Response:
    sort = sortierung if sortierung in SORT_LABELS else "titel"
    stale = _int(aelter_als)
    stale = min(stale, 3650) if stale else None
    page = min(_int(seite) or 1, 10_000)
    found = editorial.list_entries(
        session,
        tenant_id=tenant.id,
        query=q.strip() or None,
        only_unverified=ungeprueft == "1",
        stale_days=stale,
        sort=sort,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    filters = {"q": q.strip(), "ungeprueft": "1" if ungeprueft == "1" else "", "sortierung": sort}
    if stale:
        filters["aelter_als"] = str(stale)
    pages = max(1, -(-found.total // PAGE_SIZE))
    all_entries = session.scalar(
        select(func.count())
        .select_from(KnowledgeEntry)
        .where(KnowledgeEntry.tenant_id == tenant.id)
    )

    def page_link(number: int) -> str:
        return "/wissen?" + urlencode({**{k: v for k, v in filters.items() if v}, "seite": number})

    return render(
        request,
        "knowledge_list.html",
        {
            "tenant": tenant,
            "rows": found.rows,
            "total": found.total,
            "all_entries": all_entries or 0,
            "filters": filters,
            "stale": stale,
            "stale_choices": STALE_CHOICES,
            "sort_labels": SORT_LABELS,
            "page": page,
            "pages": pages,
            "previous_link": page_link(page - 1) if page > 1 else "",
            "next_link": page_link(page + 1) if page < pages else "",
            "notice": NOTICES.get(meldung, "") if meldung == "geloescht" else "",
        },
    )


# -- the gaps report (static paths before /wissen/{entry_id}) ------------------------------------


def _gap_filters(tage: str, schwelle: str) -> tuple[int, float]:
    days = _int(tage, PERIODS) or 30
    try:
        threshold = float(schwelle.replace(",", "."))
    except ValueError:
        threshold = editorial.LOW_CONFIDENCE_BELOW
    if threshold not in THRESHOLDS:
        threshold = editorial.LOW_CONFIDENCE_BELOW
    return days, threshold


def _gaps(session: Session, tenant: Tenant, days: int, threshold: float) -> list[editorial.Gap]:
    return editorial.gaps_report(
        session,
        tenant_id=tenant.id,
        since=utcnow() - dt.timedelta(days=days),
        low_confidence_below=threshold,
    )


@router.get("/wissen/luecken", dependencies=[EDIT])
def gaps_page(
    request: Request,
    tenant: CurrentTenant,
    session: SessionDep,
    settings: SettingsDep,
    tage: Text = "30",
    schwelle: Text = "",
) -> Response:
    days, threshold = _gap_filters(tage, schwelle)
    gaps = _gaps(session, tenant, days, threshold)
    return render(
        request,
        "knowledge_gaps.html",
        {
            "tenant": tenant,
            "gaps": gaps[:300],
            "total_groups": len(gaps),
            "total_questions": sum(g.count for g in gaps),
            "days": days,
            "threshold": threshold,
            "periods": PERIODS,
            "thresholds": THRESHOLDS,
            "retention_days": settings.assistant.retention_days,
            "csv_link": "/wissen/luecken.csv?" + urlencode({"tage": days, "schwelle": threshold}),
        },
    )


@router.get("/wissen/luecken.csv", dependencies=[EDIT])
def gaps_download(
    tenant: CurrentTenant, session: SessionDep, tage: Text = "30", schwelle: Text = ""
) -> Response:
    days, threshold = _gap_filters(tage, schwelle)
    body = editorial.gaps_csv(_gaps(session, tenant, days, threshold))
    name = f"luecken-{tenant.slug}-{utcnow():%Y-%m-%d}.csv"
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- import -------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    """What became of one uploaded file: the import report, or the German error."""

    filename: str
    report: Any = None  # knowledge.ImportReport
    skipped: list[tuple[str, str]] = field(default_factory=list)  # records not read: where, why
    notes: list[str] = field(default_factory=list)
    error: str = ""


def _import_context(settings: Any, tenant: Tenant, **extra: Any) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "max_mb": settings.inbox.max_upload_mb,
        "max_files": MAX_IMPORT_FILES,
        "results": None,
        "error": "",
        **extra,
    }


def _import_file(
    session: Session, tenant: Tenant, user: User, name: str, data: bytes, embedder: Any
) -> ImportResult:
    """Parse one file (from a temporary copy under its own name, which keeps the format and
    the identity of Markdown, HTML and PDF entries) and store its entries; a file that does
    not parse changes nothing, and one whose storing fails is rolled back alone."""
    from rathaus.assistant import importers, knowledge

    read = importers.ReadReport()
    with tempfile.TemporaryDirectory(prefix="rathaus-wissen-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)

        def hide_folder(message: str) -> str:
            return message.replace(str(path), name).replace(folder, "")

        try:
            entries = list(importers.read_entries(path, report=read))
        except RathausError as exc:
            return ImportResult(name, error=hide_folder(exc.message))
        except Exception:  # noqa: BLE001 - a broken file must not break the page
            log.exception("Wissensimport: %s ließ sich nicht lesen", name)
            return ImportResult(
                name,
                error=f"„{name}“ ließ sich nicht lesen. Bitte prüfen Sie, ob die Datei "
                f"vollständig ist und eines dieser Formate hat: {importers.HINT_FORMATS}.",
            )
        skipped = [(hide_folder(where), hide_folder(why)) for where, why in read.failed]
        notes = [hide_folder(n) for n in read.notes]
    if not entries:
        return ImportResult(
            name,
            skipped=skipped,
            notes=notes,
            error=f"In „{name}“ wurde kein verwendbarer Eintrag gefunden.",
        )
    try:
        with session.begin_nested():
            report = knowledge.upsert_entries(
                session,
                tenant_id=tenant.id,
                entries=entries,
                embedder=embedder,
                actor=user.display_name or user.username,
            )
            audit.record(
                session,
                audit.Event(
                    kind="knowledge_imported",
                    actor=user.username,
                    tenant_id=tenant.id,
                    subject=f"knowledge_import:{name}",
                    data={
                        "file": name,
                        "created": report.created,
                        "updated": report.updated,
                        "unchanged": report.unchanged,
                        "failed": len(report.failed),
                    },
                ),
            )
    except RathausError as exc:
        return ImportResult(name, error=exc.message)
    session.commit()
    return ImportResult(name, report=report, skipped=skipped, notes=notes)


@router.get("/wissen/import", dependencies=[EDIT])
def import_page(request: Request, tenant: CurrentTenant, settings: SettingsDep) -> Response:
    return render(request, "knowledge_import.html", _import_context(settings, tenant))


@router.post("/wissen/import", dependencies=[CsrfDep, EDIT])
async def import_files(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    settings: SettingsDep,
    embedder: EmbedderDep,
) -> Response:
    max_bytes = settings.inbox.max_upload_mb * 1024 * 1024
    form = await request.form(max_files=MAX_IMPORT_FILES + 10, max_fields=20)
    uploads = [f for f in form.getlist("dateien") if isinstance(f, UploadFile) and f.filename]
    if not uploads:
        context = _import_context(
            settings, tenant, error="Bitte wählen Sie mindestens eine Datei aus."
        )
        return render(request, "knowledge_import.html", context, status_code=400)
    results: list[ImportResult] = []
    for index, upload in enumerate(uploads):
        name = safe_filename(upload.filename)
        if index >= MAX_IMPORT_FILES:
            results.append(
                ImportResult(
                    name,
                    error=f"Höchstens {MAX_IMPORT_FILES} Dateien auf einmal; bitte diese Datei "
                    "in einem weiteren Schritt importieren.",
                )
            )
            continue
        read = await read_upload(upload, max_bytes)
        if read.data is None:
            results.append(ImportResult(read.filename, error=read.error or ""))
            continue
        results.append(
            await run_in_threadpool(
                _import_file, session, tenant, user, read.filename, read.data, embedder
            )
        )
    return render(
        request, "knowledge_import.html", _import_context(settings, tenant, results=results)
    )


# -- one entry ----------------------------------------------------------------------------------


def _fact_fields(values: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "label": label,
            "value": values.get(key, ""),
            "multiline": key in MULTILINE_FACTS,
            "url": key in URL_INPUTS,
            "hint": (
                "Eine Zeile je Formular: Titel | Adresse"
                if key == "forms"
                else "Eine Angabe je Zeile"
                if key in LIST_FACTS
                else ""
            ),
        }
        for key, label in FACTS.items()
    ]


def _entry_page(
    request: Request,
    session: Session,
    tenant: Tenant,
    entry: KnowledgeEntry,
    *,
    form: dict[str, Any] | None = None,
    facts: dict[str, str] | None = None,
    errors: list[str] | None = None,
    notice: str = "",
    status_code: int = 200,
    reauth_state: dict[str, Any] | None = None,
    delete_checked: bool = False,
) -> Response:
    chunk_count = session.scalar(
        select(func.count())
        .select_from(KnowledgeChunk)
        .where(KnowledgeChunk.tenant_id == tenant.id, KnowledgeChunk.entry_id == entry.id)
    )
    form = form or {
        "title": entry.title,
        "url": entry.url,
        "body": entry.body,
        "keywords": entry.keywords,
        "is_published": entry.is_published,
    }
    return render(
        request,
        "knowledge_entry.html",
        {
            "tenant": tenant,
            "entry": entry,
            "form": form,
            "fact_fields": _fact_fields(
                facts if facts is not None else editorial.facts_to_form(entry.facts)
            ),
            "errors": errors or [],
            "notice": notice,
            "chunk_count": chunk_count or 0,
            "answers": editorial.answers_using(session, tenant_id=tenant.id, entry_id=entry.id),
            "link_ok": editorial.is_web_url(entry.url),
            "reauth": reauth_state or reauth.state(request),
            "delete_checked": delete_checked,
            "versions": versions.list_versions(session, tenant_id=tenant.id, entry_id=entry.id),
            "keep_versions": versions.KEEP_VERSIONS,
            "field_label": versions.field_label,
            "reason_labels": versions.REASON_LABELS,
        },
        status_code=status_code,
    )


@router.get("/wissen/{entry_id}", dependencies=[EDIT])
def entry_page(
    request: Request, entry_id: int, tenant: CurrentTenant, session: SessionDep, meldung: Text = ""
) -> Response:
    entry = editorial.get_entry(session, tenant_id=tenant.id, entry_id=entry_id)
    return _entry_page(request, session, tenant, entry, notice=NOTICES.get(meldung, ""))


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""


@router.post("/wissen/{entry_id}", dependencies=[CsrfDep, EDIT])
async def save_entry(
    request: Request,
    entry_id: int,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    embedder: EmbedderDep,
) -> Response:
    form = await request.form(max_files=0, max_fields=50)
    fields = {
        "title": _text(form, "title"),
        "url": _text(form, "url"),
        "body": _text(form, "body"),
        "keywords": _text(form, "keywords"),
        "is_published": form.get("is_published") == "1",
    }
    fact_texts = {key: _text(form, f"fact_{key}") for key in FACTS}
    facts = editorial.facts_from_form(fact_texts)

    def work() -> Response:
        entry = editorial.get_entry(session, tenant_id=tenant.id, entry_id=entry_id)
        before = entry.updated_at
        try:
            editorial.update_fields(
                session,
                tenant_id=tenant.id,
                entry_id=entry_id,
                facts=facts,
                embedder=embedder,
                user=user,
                **fields,
            )
        except editorial.EntryInvalid as exc:
            return _entry_page(
                request,
                session,
                tenant,
                entry,
                form=fields,
                facts=fact_texts,
                errors=exc.errors,
                status_code=400,
            )
        session.commit()
        notice = "gespeichert" if entry.updated_at != before else "unveraendert"
        return RedirectResponse(f"/wissen/{entry_id}?meldung={notice}", 303)

    return await run_in_threadpool(work)


@router.post("/wissen/{entry_id}/geprueft", dependencies=[CsrfDep, EDIT])
def verify_entry(
    entry_id: int, user: CurrentUser, tenant: CurrentTenant, session: SessionDep
) -> Response:
    editorial.mark_verified(session, tenant_id=tenant.id, entry_id=entry_id, user=user)
    return RedirectResponse(f"/wissen/{entry_id}?meldung=geprueft#pruefung", 303)


@router.post("/wissen/{entry_id}/loeschen", dependencies=[CsrfDep, EDIT])
async def delete_entry(
    request: Request, entry_id: int, user: CurrentUser, tenant: CurrentTenant, session: SessionDep
) -> Response:
    """Delete after the tick and, unless this session confirmed in the last minutes, the
    password (:mod:`rathaus.web.reauth`, ASVS 3.7.1): a deleted entry is gone from the
    assistant's answers until the next import brings it back."""
    form = await request.form(max_files=0, max_fields=10)
    entry = editorial.get_entry(session, tenant_id=tenant.id, entry_id=entry_id)
    if form.get("bestaetigt") != "1":
        return _entry_page(
            request,
            session,
            tenant,
            entry,
            errors=["Bitte bestätigen Sie das Löschen mit dem Häkchen neben der Schaltfläche."],
            status_code=400,
        )
    password = form.get(reauth.FIELD)
    gate, error = reauth_step.confirm_without_command(
        request,
        session,
        user,
        password=password[:500] if isinstance(password, str) else "",
        action="wissenseintrag_loeschen",
        what="das Löschen",
        instead=" – oder nehmen Sie den Eintrag bis dahin aus der Veröffentlichung",
    )
    if not gate.ok:
        page = _entry_page(
            request,
            session,
            tenant,
            entry,
            status_code=gate.status_code,
            reauth_state=reauth.state(request, action="loeschen", error=error),
            delete_checked=True,
        )
        return gate.finish(request, page)
    await run_in_threadpool(
        editorial.delete_entry, session, tenant_id=tenant.id, entry_id=entry_id, user=user
    )
    return gate.finish(request, RedirectResponse("/wissen?meldung=geloescht", 303))


# -- versions -----------------------------------------------------------------------------------


@router.get("/wissen/{entry_id}/versionen/{version_id}", dependencies=[EDIT])
def version_page(
    request: Request, entry_id: int, version_id: int, tenant: CurrentTenant, session: SessionDep
) -> Response:
    """An earlier version, what differs from the current entry, and the restore button."""
    entry = editorial.get_entry(session, tenant_id=tenant.id, entry_id=entry_id)
    version = versions.get_version(
        session, tenant_id=tenant.id, entry_id=entry_id, version_id=version_id
    )
    facts = editorial.facts_to_form(version.facts)
    return render(
        request,
        "knowledge_version.html",
        {
            "tenant": tenant,
            "entry": entry,
            "version": version,
            "changes": versions.field_changes(version, entry),
            "diff": versions.body_diff(version.body, entry.body),
            "facts": [(label, facts[key]) for key, label in FACTS.items() if facts[key]],
            "field_label": versions.field_label,
            "reason_labels": versions.REASON_LABELS,
            "link_ok": editorial.is_web_url(version.url),
        },
    )


@router.post(
    "/wissen/{entry_id}/versionen/{version_id}/wiederherstellen", dependencies=[CsrfDep, EDIT]
)
def restore_version(
    entry_id: int,
    version_id: int,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    embedder: EmbedderDep,
) -> Response:
    """Put the version's content back; the current content becomes a version first."""
    changed = editorial.restore_version(
        session,
        tenant_id=tenant.id,
        entry_id=entry_id,
        version_id=version_id,
        embedder=embedder,
        user=user,
    )
    session.commit()
    notice = "wiederhergestellt" if changed else "gleich"
    return RedirectResponse(f"/wissen/{entry_id}?meldung={notice}#versionen", 303)
