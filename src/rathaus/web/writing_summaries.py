"""Zusammenfassungen (Dokument, Vorgang, Ratsvorlage): Seiten und JSON-API.

A thin shell over :mod:`rathaus.writing.summarize`: the form under ``/texte/zusammenfassung``
(paste text or upload TXT/PDF/DOCX), the case entry point, and ``/api/v1/texte/zusammenfassung``
for the logged-in staff (session cookie plus ``X-CSRF-Token``, like the rest of ``/api/v1``).
Every route needs ``Permission.USE_WRITING``; a case summary also needs the case to be visible.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rathaus.core.roles import Permission
from rathaus.web.deps import CsrfDep, CurrentUser, SessionDep, SettingsDep, require
from rathaus.web.inbox_views import read_upload
from rathaus.web.templating import render
from rathaus.writing.summarize import EXTRACTIVE, GENERATED, MODES, Summary, SummaryError

router = APIRouter()

WRITE = Depends(require(Permission.USE_WRITING))
LENGTHS = {"kurz": 4, "mittel": 8, "lang": 15}
MAX_FORM_TEXT = 2_500_000


def get_embedder(request: Request) -> Any:
    """The configured embedder, built once per app (the model loads when it first embeds)."""
    state = request.app.state
    embedder = getattr(state, "summary_embedder", None)
    if embedder is None:
        from rathaus.ai.registry import get_embedder as configured

        embedder = state.summary_embedder = configured(state.settings)
    return embedder


def get_llm(request: Request) -> Any:
    """The configured language model or None; built on first use of the generated mode."""
    state = request.app.state
    if not hasattr(state, "summary_llm"):
        from rathaus.ai.registry import get_language_model

        state.summary_llm = get_language_model(state.settings, "zusammenfassung")
    return state.summary_llm


EmbedderDep = Annotated[Any, Depends(get_embedder)]


def _sentences(value: Any, default: int) -> int:
    if isinstance(value, str) and value in LENGTHS:
        return LENGTHS[value]
    try:
        return max(1, min(int(value), 30))
    except (TypeError, ValueError):
        return default


def _model_scope(user: Any, session: Any, case: Any = None) -> dict[str, Any]:
    """Model calls of a summary pass the gateway at the case's level with its placeholders (a
    pasted text: level intern); real values come back only for roles that may re-identify."""
    from rathaus.governance.gateway import user_may_reidentify

    scope: dict[str, Any] = {
        "tenant_id": user.tenant_id,
        "may_reidentify": user_may_reidentify(user),
        "session": session,
        "actor": user.username,
    }
    if case is not None:
        scope.update(level=case.confidentiality, case_id=case.id)
    return scope


async def _run(request: Request, settings: Any, embedder: Any, parts: Any, *, sentences: int,
               mode: str, scope: dict[str, Any]) -> Summary:  # fmt: skip
    from rathaus.governance.gateway import scoped
    from rathaus.writing.summarize import summarize_parts

    llm = get_llm(request) if mode == GENERATED else None
    return await run_in_threadpool(
        summarize_parts,
        parts,
        embedder=scoped(embedder, **scope),
        sentences=sentences,
        mode=mode,
        llm=scoped(llm, **scope),
        max_chars=settings.writing.max_document_chars,
    )


def _document(summary: Summary) -> list[dict[str, Any]]:
    """The sections with their paragraphs for the page; summary sentences are marked."""
    marked: dict[str, list[str]] = {}
    for s in [*summary.sentences, *(x for sec in summary.sections for x in sec.sentences)]:
        if s.verbatim:
            marked.setdefault(s.paragraph_id, []).append(s.text)
    in_summary = {s.paragraph_id for s in summary.sentences}
    by_section: dict[int, list[Any]] = {}
    for p in summary.paragraphs:
        by_section.setdefault(p.section_id, []).append(p)
    out = []
    for row in summary.coverage.rows:
        paragraphs = []
        for p in by_section.get(row.section_id, []):
            segments: list[tuple[str, bool]] = [(p.text, False)]
            for sentence in marked.get(p.id, []):
                split: list[tuple[str, bool]] = []
                for text, is_marked in segments:
                    if is_marked or sentence not in text:
                        split.append((text, is_marked))
                        continue
                    before, _, after = text.partition(sentence)
                    split += [(before, False), (sentence, True), (after, False)]
                segments = [x for x in split if x[0]]
            paragraphs.append(
                {"id": p.id, "kind": p.kind, "reason": p.reason, "segments": segments,
                 "in_summary": p.id in in_summary}
            )  # fmt: skip
        out.append({"row": row, "paragraphs": paragraphs})
    return out


def _form_context(settings: Any, **extra: Any) -> dict[str, Any]:
    return {
        "lengths": LENGTHS,
        "max_mb": settings.inbox.max_upload_mb,
        "max_chars": settings.writing.max_document_chars,
        "mode": EXTRACTIVE,
        "length": "mittel",
        "text": "",
        "error": None,
        **extra,
    }


def record_summary(
    session: Any, tenant_id: int, parts: Any, summary: Summary, *, case: Any = None
) -> None:
    """A summary is an AI suggestion: about its case (decision record, case page), or for a
    pasted or uploaded text about the document, named by the first 16 hex digits of its
    input hash."""
    from rathaus.governance import decisions

    digest = decisions.sha256_text("\n\n".join(p.text for p in parts))
    decisions.suggest(
        session,
        tenant_id=tenant_id,
        case_id=case.id if case is not None else None,
        function="zusammenfassung",
        backend=summary.mode,
        model_version=summary.model or summary.label,
        input_sha256=digest,
        subject_type=None if case is not None else "dokument",
        subject_id=None if case is not None else digest[:16],
        output={"sentences": [s.text for s in summary.sentences], "notes": summary.notes},
    )
    session.commit()


# -- pages --------------------------------------------------------------------------------------


@router.get("/texte/zusammenfassung", dependencies=[WRITE], include_in_schema=False)
def form(request: Request, settings: SettingsDep) -> Response:
    return render(request, "writing_summary_form.html", _form_context(settings))


@router.post("/texte/zusammenfassung", dependencies=[WRITE, CsrfDep], include_in_schema=False)
async def summarize_form(
    request: Request,
    settings: SettingsDep,
    embedder: EmbedderDep,
    user: CurrentUser,
    session: SessionDep,
) -> Response:
    from rathaus.writing.sections import Part
    from rathaus.writing.summary_sources import text_of_file

    form_data = await request.form(max_files=2, max_fields=20)
    text = form_data.get("text")
    text = text if isinstance(text, str) else ""
    mode = form_data.get("modus")
    mode = mode if mode in MODES else EXTRACTIVE
    length = form_data.get("laenge")
    length = length if length in LENGTHS else "mittel"
    upload = form_data.get("datei")
    context = _form_context(settings, mode=mode, length=length, text=text[:MAX_FORM_TEXT])
    notes: list[str] = []
    title = ""
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            read = await read_upload(upload, settings.inbox.max_upload_mb * 1024 * 1024)
            if read.data is None:
                raise SummaryError(read.error or "Die Datei ließ sich nicht lesen.")
            text, notes = await run_in_threadpool(text_of_file, read.data, read.filename)
            title = read.filename
        parts = [Part(key="text", title=title, text=text.replace("\r\n", "\n"))]
        summary = await _run(
            request,
            settings,
            embedder,
            parts,
            sentences=LENGTHS[length],
            mode=mode,
            scope=_model_scope(user, session),
        )
    except SummaryError as exc:
        context["error"] = exc.message
        return render(request, "writing_summary_form.html", context, status_code=400)
    summary.notes[:0] = notes
    record_summary(session, user.tenant_id, parts, summary)
    return render(
        request,
        "writing_summary_result.html",
        {**context, "summary": summary, "case": None, "document": _document(summary)},
    )


@router.get(
    "/texte/zusammenfassung/vorgang/{case_id}", dependencies=[WRITE], include_in_schema=False
)
async def summarize_case_page(
    case_id: int,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    embedder: EmbedderDep,
    laenge: str = "mittel",
    modus: str = EXTRACTIVE,
) -> Response:
    from rathaus.writing.summary_sources import case_parts

    case, parts, notes = case_parts(session, user=user, case_id=case_id)
    mode = modus if modus in MODES else EXTRACTIVE
    length = laenge if laenge in LENGTHS else "mittel"
    context = _form_context(settings, mode=mode, length=length)
    try:
        summary = await _run(
            request,
            settings,
            embedder,
            parts,
            sentences=LENGTHS[length],
            mode=mode,
            scope=_model_scope(user, session, case),
        )
    except SummaryError as exc:
        context.update(error=exc.message, case=case)
        return render(request, "writing_summary_result.html", context, status_code=400)
    summary.notes[:0] = notes
    record_summary(session, case.tenant_id, parts, summary, case=case)
    return render(
        request,
        "writing_summary_result.html",
        {
            **context,
            "summary": summary,
            "case": case,
            "document": _document(summary),
            "urls": {p.key: p.url for p in parts},
        },
    )


# -- JSON API -----------------------------------------------------------------------------------


class SummaryIn(BaseModel):
    """Ein Text zum Zusammenfassen."""

    text: str = Field(max_length=MAX_FORM_TEXT, description="Der Text (ohne Kürzung)")
    title: str = Field(default="", max_length=300, description="Titel des Dokuments (optional)")
    sentences: int = Field(default=8, ge=1, le=30, description="Sätze der Gesamtfassung")
    mode: str = Field(default=EXTRACTIVE, pattern="^(extraktiv|generiert)$")


class CaseSummaryIn(BaseModel):
    sentences: int = Field(default=8, ge=1, le=30)
    mode: str = Field(default=EXTRACTIVE, pattern="^(extraktiv|generiert)$")


class SentencePublic(BaseModel):
    text: str
    paragraph_id: str = Field(description="Absatz: Abschnitt.Absatz, z. B. 3.2")
    section_id: int
    section_title: str
    source: str = Field(description="Teil: text, dokument-ID, nachricht-ID")
    start: int = Field(description="Zeichenposition im Originaltext des Teils")
    end: int
    supported: bool = Field(description="Von der verlinkten Fundstelle gedeckt (geprüft)")
    link: str = Field(description="Anker auf der Ergebnisseite bzw. Adresse der Quelle")


class SectionPublic(BaseModel):
    section_id: int
    title: str
    status: str = Field(description="verwendet, leer, doppelt oder Formalien")
    reason: str
    chars: int
    paragraphs: int
    chars_used: int
    in_summary: bool
    sentences: list[SentencePublic]


class SummaryPublic(BaseModel):
    mode: str
    label: str = Field(description="Wie die Zusammenfassung entstand (Modell, Demo-Qualität)")
    language: str
    notes: list[str]
    removed: list[str] = Field(description="Entfernte generierte Sätze ohne Beleg")
    sentences: list[SentencePublic]
    sections: list[SectionPublic]
    share_text: float = Field(description="Anteil des Textes, der eingeflossen ist")
    share_sections: float = Field(description="Anteil der verwendeten Abschnitte mit Satz")
    document_chars: int
    runtime_s: float


def _public(summary: Summary, urls: dict[str, str | None]) -> SummaryPublic:
    def sentence(s: Any) -> SentencePublic:
        url = urls.get(s.part_key)
        return SentencePublic(
            text=s.text,
            paragraph_id=s.paragraph_id,
            section_id=s.section_id,
            section_title=s.section_title,
            source=s.part_key,
            start=s.start,
            end=s.end,
            supported=s.supported,
            link=url or f"#absatz-{s.paragraph_id}",
        )

    by_section = {s.section_id: s for s in summary.sections}
    return SummaryPublic(
        mode=summary.mode,
        label=summary.label,
        language=summary.language,
        notes=summary.notes,
        removed=summary.removed,
        sentences=[sentence(s) for s in summary.sentences],
        sections=[
            SectionPublic(
                section_id=r.section_id,
                title=r.title,
                status=r.status,
                reason=r.reason,
                chars=r.chars,
                paragraphs=r.paragraphs,
                chars_used=r.chars_used,
                in_summary=r.represented,
                sentences=[sentence(s) for s in by_section[r.section_id].sentences]
                if r.section_id in by_section
                else [],
            )
            for r in summary.coverage.rows
        ],
        share_text=summary.coverage.share_text,
        share_sections=summary.coverage.share_sections,
        document_chars=summary.document_chars,
        runtime_s=round(summary.runtime_s, 3),
    )


@router.post(
    "/api/v1/texte/zusammenfassung",
    summary="Text zusammenfassen (extraktiv oder generiert, mit Abdeckung und Fundstellen)",
    tags=["Schreibassistenz"],
    dependencies=[WRITE, CsrfDep],
)
async def api_summary(
    body: SummaryIn,
    request: Request,
    settings: SettingsDep,
    embedder: EmbedderDep,
    user: CurrentUser,
    session: SessionDep,
) -> SummaryPublic:
    from rathaus.writing.sections import Part

    parts = [Part(key="text", title=body.title, text=body.text.replace("\r\n", "\n"))]
    summary = await _run(
        request,
        settings,
        embedder,
        parts,
        sentences=body.sentences,
        mode=body.mode,
        scope=_model_scope(user, session),
    )
    record_summary(session, user.tenant_id, parts, summary)
    return _public(summary, {})


@router.post(
    "/api/v1/texte/zusammenfassung/vorgang/{case_id}",
    summary="Ganzen Vorgang zusammenfassen (Dokumente und Nachrichten nach Datum)",
    tags=["Schreibassistenz"],
    dependencies=[WRITE, CsrfDep],
)
async def api_case_summary(
    case_id: int,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    embedder: EmbedderDep,
    body: CaseSummaryIn | None = None,
) -> SummaryPublic:
    from rathaus.writing.summary_sources import case_parts

    body = body or CaseSummaryIn()
    case, parts, notes = case_parts(session, user=user, case_id=case_id)
    summary = await _run(
        request,
        settings,
        embedder,
        parts,
        sentences=body.sentences,
        mode=body.mode,
        scope=_model_scope(user, session, case),
    )
    summary.notes[:0] = notes
    record_summary(session, case.tenant_id, parts, summary, case=case)
    return _public(summary, {p.key: p.url for p in parts})
