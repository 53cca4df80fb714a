"""Pressemitteilungen, Briefe nach DIN 5008, Textbausteine und Übersetzung: Seiten und JSON-API.

A thin shell over :mod:`rathaus.writing.templates`, :mod:`~rathaus.writing.letters`,
:mod:`~rathaus.writing.press` and :mod:`~rathaus.writing.translate`. Pages need
``Permission.USE_WRITING``; the API (``/api/v1/texte``) takes the callers of
:mod:`rathaus.web.writing_auth`; an API key acts for the whole municipality but sees only the
general Textbausteine.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.core.access import visible_cases
from rathaus.core.config import Settings
from rathaus.core.errors import NotFoundError, PermissionDeniedError, RathausError
from rathaus.core.models import Case, OrgUnit, Tenant, TextTemplate, User
from rathaus.core.roles import Permission
from rathaus.web.deps import (
    CsrfDep,
    CurrentTenant,
    CurrentUser,
    SessionDep,
    SettingsDep,
    require,
)
from rathaus.web.templating import render
from rathaus.web.writing_auth import AUTH_RESPONSES, WritingCaller, WritingCallerDep
from rathaus.writing import bank as bank_details
from rathaus.writing import letters, press, translate
from rathaus.writing import templates as tb

router = APIRouter()
USE = Depends(require(Permission.USE_WRITING))
Text = Annotated[str, Query(max_length=300)]

MEDIA = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "txt": "text/plain; charset=utf-8",
}
NOTICES = {
    "gespeichert": "Der Textbaustein wurde gespeichert.",
    "geloescht": "Der Textbaustein wurde gelöscht.",
}


def _download(data: bytes, name: str, kind: str) -> Response:
    return Response(
        data,
        media_type=MEDIA[kind],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _backend(settings: Settings, function: str) -> str:
    """The backend that serves ``function``: its route may lead to a model server even where
    ``llm.backend`` is the local model (docs/models.md, Mehrere Modellserver)."""
    from rathaus.ai.registry import backend_for

    return backend_for(settings, function)


def _language_model(
    request: Request, tenant_id: int, actor: str, function: str, *, user: User | None = None
) -> Any:
    """The configured model, recording each call; None when ``llm.backend=none``.

    Press texts and translations pass the gateway at level ``intern``; the model's answer shows
    real values again only for a ``user`` whose role may re-identify (not for API keys).
    """
    from rathaus.ai.calls import DatabaseRecorder, RecordingLanguageModel
    from rathaus.ai.registry import get_language_model
    from rathaus.governance.gateway import scoped, user_may_reidentify

    inner = get_language_model(request.app.state.settings, function.removeprefix("texte."))
    if inner is None:
        return None
    recording = RecordingLanguageModel(
        inner,
        DatabaseRecorder(request.app.state.db),
        function=function,
        actor=actor,
        tenant_id=tenant_id,
    )
    return scoped(
        recording,
        level="intern",
        tenant_id=tenant_id,
        may_reidentify=user_may_reidentify(user),
        database=request.app.state.db,
        actor=actor,
    )


def _record_suggestion(
    request: Request,
    *,
    tenant_id: int,
    function: str,
    backend: str,
    model_version: str,
    source: str,
    text: str,
    case_id: int | None = None,
    **meta: Any,
) -> int:
    """A text the model wrote (press release, translation) goes into the decision record:
    input hash over ``source``, the text (shortened) and a few facts about it. Written in its
    own transaction, like the model call records (the model calls wrote through the database).
    Returns the suggestion's id."""
    from rathaus.governance import decisions

    with request.app.state.db.session() as session:
        row = decisions.suggest(
            session,
            tenant_id=tenant_id,
            function=function,
            backend=backend or "vorlage",
            model_version=model_version,
            input_sha256=decisions.sha256_text(source),
            case_id=case_id,
            output={"text": text[: decisions.MAX_OUTPUT_CHARS], **meta},
        )
        session.flush()
        return int(row.id)


def _record_press(
    request: Request, tenant_id: int, backend: str, points: press.KeyPoints, r: press.PressRelease
) -> int:
    return _record_suggestion(
        request,
        tenant_id=tenant_id,
        function="pressemitteilung",
        backend=backend,
        model_version=r.model,
        source=points.source_text(),
        text=r.text(),
        social=r.social,
        headline=r.headline,
        label=r.label,
        new_facts=r.new_facts,
        hints=r.hints,
    )


def _record_translation(
    request: Request, tenant_id: int, backend: str, source: str, r: translate.Translation
) -> None:
    _record_suggestion(
        request,
        tenant_id=tenant_id,
        function="uebersetzung",
        backend=backend,
        model_version=r.model,
        source=source,
        text=r.text,
        target=r.target,
        lost_numbers=r.lost,
        label=r.label,
    )


# -- Textbausteine ------------------------------------------------------------------------------


def _unit_names(session: Session, tenant_id: int) -> dict[int, str]:
    return dict(
        session.execute(
            select(OrgUnit.id, OrgUnit.name).where(OrgUnit.tenant_id == tenant_id)
        ).all()
    )


@router.get("/texte/bausteine", dependencies=[USE], include_in_schema=False)
def template_list(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    q: Text = "",
    art: Text = "",
    meldung: Text = "",
) -> Response:
    kind = art if art in tb.KINDS else None
    rows = tb.list_templates(session, user=user, kind=kind, query=q.strip() or None)
    return render(
        request,
        "writing_templates_list.html",
        {
            "tenant": tenant,
            "rows": rows,
            "units": _unit_names(session, tenant.id),
            "kinds": tb.KINDS,
            "q": q.strip(),
            "art": kind or "",
            "may_create": tb.may_create_any(user),
            "notice": NOTICES.get(meldung, ""),
        },
    )


def _form_context(
    session: Session, user: User, tenant: Tenant, form: dict[str, Any], errors: list[str]
) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "form": form,
        "errors": errors,
        "kinds": tb.KINDS,
        "unit_choices": tb.unit_choices(session, user),
        "may_general": tb.is_admin(user),
        "placeholders": tb.PLACEHOLDERS,
    }


def _template_data(name: str, kind: str, subject: str, body: str, unit: str) -> tb.TemplateData:
    return tb.TemplateData(
        name=name,
        kind=kind,
        subject=subject,
        body=body.replace("\r\n", "\n"),
        org_unit_id=int(unit) if unit.strip().isdigit() else None,
    )


@router.get("/texte/bausteine/neu", dependencies=[USE], include_in_schema=False)
def template_new(
    request: Request, user: CurrentUser, tenant: CurrentTenant, session: SessionDep
) -> Response:
    if not tb.may_create_any(user):
        raise PermissionDeniedError(
            "Textbausteine legen die Fachbereichsleitung und die Administration an."
        )
    form = {"name": "", "kind": "brief", "subject": "", "body": "", "org_unit_id": None}
    return render(
        request, "writing_templates_form.html", _form_context(session, user, tenant, form, [])
    )


@router.post("/texte/bausteine/neu", dependencies=[USE, CsrfDep], include_in_schema=False)
def template_create(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    name: Annotated[str, Form(max_length=300)] = "",
    kind: Annotated[str, Form(max_length=30)] = "baustein",
    subject: Annotated[str, Form(max_length=1000)] = "",
    body: Annotated[str, Form(max_length=60_000)] = "",
    org_unit_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    data = _template_data(name, kind, subject, body, org_unit_id)
    try:
        row = tb.create(session, user=user, data=data)
    except tb.TemplateInvalidError as exc:
        session.rollback()
        form = vars(data)
        context = _form_context(session, user, tenant, form, exc.errors)
        return render(request, "writing_templates_form.html", context, status_code=422)
    return RedirectResponse(f"/texte/bausteine/{row.id}?meldung=gespeichert", status_code=303)


def _case_by_reference(session: Session, user: User | None, tenant: Tenant, ref: str) -> Case:
    ref = ref.strip()
    query = (
        visible_cases(session, user)
        if user is not None
        else select(Case).where(Case.tenant_id == tenant.id)
    )
    case = session.scalar(query.where(Case.reference == ref))
    if case is None:
        raise NotFoundError(
            f"Einen Vorgang mit dem Aktenzeichen „{ref}“ gibt es für Sie nicht. Bitte das "
            "Aktenzeichen prüfen."
        )
    return case


@router.get("/texte/bausteine/{template_id}", dependencies=[USE], include_in_schema=False)
def template_entry(
    template_id: int,
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    vorgang: Text = "",
    meldung: Text = "",
) -> Response:
    row = tb.get(session, user=user, template_id=template_id)
    preview = None
    preview_error = ""
    if vorgang.strip():
        try:
            case = _case_by_reference(session, user, tenant, vorgang)
            values = tb.values_for_case(case, tenant, user=user)
            preview = tb.render_text(row.body, values)
        except NotFoundError as exc:
            preview_error = exc.message
    form = {
        "name": row.name,
        "kind": row.kind,
        "subject": row.subject,
        "body": row.body,
        "org_unit_id": row.org_unit_id,
    }
    context = _form_context(session, user, tenant, form, [])
    context.update(
        {
            "row": row,
            "unit_name": _unit_names(session, tenant.id).get(row.org_unit_id or -1, ""),
            "used": tb.template_placeholders(row),
            "may_edit": tb.can_manage(session, user, row.org_unit_id),
            "vorgang": vorgang.strip(),
            "preview": preview,
            "preview_error": preview_error,
            "notice": NOTICES.get(meldung, ""),
        }
    )
    return render(request, "writing_templates_entry.html", context)


@router.post("/texte/bausteine/{template_id}", dependencies=[USE, CsrfDep], include_in_schema=False)
def template_update(
    template_id: int,
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    name: Annotated[str, Form(max_length=300)] = "",
    kind: Annotated[str, Form(max_length=30)] = "baustein",
    subject: Annotated[str, Form(max_length=1000)] = "",
    body: Annotated[str, Form(max_length=60_000)] = "",
    org_unit_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    data = _template_data(name, kind, subject, body, org_unit_id)
    try:
        tb.update(session, user=user, template_id=template_id, data=data)
    except tb.TemplateInvalidError as exc:
        session.rollback()
        row = tb.get(session, user=user, template_id=template_id)
        context = _form_context(session, user, tenant, vars(data), exc.errors)
        context.update(
            {
                "row": row,
                "unit_name": "",
                "used": tb.template_placeholders(row),
                "may_edit": True,
                "vorgang": "",
                "preview": None,
                "preview_error": "",
                "notice": "",
            }
        )
        return render(request, "writing_templates_entry.html", context, status_code=422)
    return RedirectResponse(f"/texte/bausteine/{template_id}?meldung=gespeichert", status_code=303)


@router.post(
    "/texte/bausteine/{template_id}/loeschen",
    dependencies=[USE, CsrfDep],
    include_in_schema=False,
)
def template_delete(template_id: int, user: CurrentUser, session: SessionDep) -> Response:
    tb.delete(session, user=user, template_id=template_id)
    return RedirectResponse("/texte/bausteine?meldung=geloescht", status_code=303)


# -- Briefe -------------------------------------------------------------------------------------


def _letter_templates(session: Session, user: User) -> list[TextTemplate]:
    return [t for t in tb.list_templates(session, user=user) if t.kind in ("brief", "baustein")]


def _letter_page(
    request: Request,
    session: Session,
    user: User,
    tenant: Tenant,
    form: dict[str, Any],
    *,
    letter: letters.Letter | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    return render(
        request,
        "writing_letters.html",
        {
            "tenant": tenant,
            "templates": _letter_templates(session, user),
            "tenant_bank": bank_details.get(session, tenant_id=tenant.id),
            "form": form,
            "letter": letter,
            "error": error,
        },
        status_code=status,
    )


def _empty_letter_form(**values: str) -> dict[str, str]:
    form = dict.fromkeys(
        ("vorlage", "vorgang", "empfaenger_name", "empfaenger_anschrift", "ihr_zeichen", "bank"),
        "",
    )
    form.update(values)
    return form


@router.get("/texte/brief", dependencies=[USE], include_in_schema=False)
def letter_form(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    vorlage: Text = "",
    vorgang: Text = "",
) -> Response:
    form = _empty_letter_form(vorlage=vorlage, vorgang=vorgang)
    return _letter_page(request, session, user, tenant, form)


@router.get("/texte/brief/vorgang/{case_id}", dependencies=[USE], include_in_schema=False)
def letter_for_case(
    case_id: int,
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
) -> Response:
    case = session.scalar(visible_cases(session, user).where(Case.id == case_id))
    if case is None:
        raise NotFoundError(f"Einen Vorgang Nr. {case_id} gibt es für Sie nicht.")
    citizen = tb.sender_of(case)
    form = _empty_letter_form(
        vorgang=case.reference,
        empfaenger_name=citizen["name"],
        empfaenger_anschrift=citizen["address"],
    )
    return _letter_page(request, session, user, tenant, form)


def build_letter(
    session: Session,
    *,
    user: User | None,
    tenant: Tenant,
    template: TextTemplate,
    reference: str,
    recipient_name: str,
    recipient_address: str,
    your_reference: str = "",
    bank: str = "",
) -> letters.Letter:
    """A letter from a template, with a case's fields when ``reference`` names one."""
    if reference.strip():
        case = _case_by_reference(session, user, tenant, reference)
        return letters.letter_from_case(
            case,
            tenant,
            template,
            user=user,
            recipient_name=recipient_name or None,
            recipient_address=recipient_address or None,
            your_reference=your_reference,
            bank=bank,
        )
    return letters.letter_from_fields(
        tenant,
        subject=template.subject,
        body=template.body,
        values={},
        recipient_name=recipient_name,
        recipient_address=recipient_address,
        user=user,
        your_reference=your_reference,
        bank=bank,
    )


@router.post("/texte/brief", dependencies=[USE, CsrfDep], include_in_schema=False)
def letter_make(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    vorlage: Annotated[str, Form(max_length=20)] = "",
    vorgang: Annotated[str, Form(max_length=60)] = "",
    empfaenger_name: Annotated[str, Form(max_length=200)] = "",
    empfaenger_anschrift: Annotated[str, Form(max_length=500)] = "",
    ihr_zeichen: Annotated[str, Form(max_length=100)] = "",
    bank: Annotated[str, Form(max_length=200)] = "",
    format: Annotated[str, Form(max_length=10)] = "vorschau",
) -> Response:
    form = _empty_letter_form(
        vorlage=vorlage,
        vorgang=vorgang,
        empfaenger_name=empfaenger_name,
        empfaenger_anschrift=empfaenger_anschrift,
        ihr_zeichen=ihr_zeichen,
        bank=bank,
    )
    if not vorlage.strip().isdigit():
        return _letter_page(
            request, session, user, tenant, form, error="Bitte einen Textbaustein wählen.",
            status=422,
        )  # fmt: skip
    try:
        template = tb.get(session, user=user, template_id=int(vorlage))
        letter = build_letter(
            session,
            user=user,
            tenant=tenant,
            template=template,
            reference=vorgang,
            recipient_name=empfaenger_name.strip(),
            recipient_address=empfaenger_anschrift.strip(),
            your_reference=ihr_zeichen.strip(),
            bank=bank.strip(),
        )
    except RathausError as exc:
        return _letter_page(request, session, user, tenant, form, error=exc.message, status=422)
    if format == "pdf":
        return _download(letters.to_pdf(letter), letters.filename(letter, "pdf"), "pdf")
    if format == "docx":
        return _download(letters.to_docx(letter), letters.filename(letter, "docx"), "docx")
    return _letter_page(request, session, user, tenant, form, letter=letter)


# -- Pressemitteilung ---------------------------------------------------------------------------

PRESS_FIELDS = ("thema", "wer", "was", "wann", "wo", "warum", "fakten", "zitat", "sprecher")
PRESS_FIELDS += ("kontakt", "ort", "datum")


def _press_page(
    request: Request, tenant: Tenant, settings: Settings, form: dict[str, str], **extra: Any
) -> Response:
    backend = _backend(settings, "pressemitteilung")
    context = {
        "tenant": tenant,
        "form": form,
        "model_available": backend != "none",
        "model_is_local": backend == "local",
        "result": None,
        "generated": None,
        "edited": None,
        "suggestion": None,
        "error": "",
        "form_values": press.form_values,
        "press_fields": PRESS_FIELDS,
        "social_limit": press.SOCIAL_LIMIT,
    }
    context.update(extra)
    return render(request, "writing_press.html", context, status_code=extra.get("status", 200))


def _press_download(release: press.PressRelease, kind: str) -> Response:
    if kind == "txt":
        return _download(release.text().encode("utf-8"), "Pressemitteilung.txt", "txt")
    return _download(press.to_docx(release), "Pressemitteilung.docx", "docx")


@router.get("/texte/pressemitteilung", dependencies=[USE], include_in_schema=False)
def press_form(request: Request, tenant: CurrentTenant, settings: SettingsDep) -> Response:
    form = dict.fromkeys(PRESS_FIELDS, "")
    form["ort"] = tenant.city
    form["datum"] = dt.date.today().isoformat()
    return _press_page(request, tenant, settings, form)


@router.post("/texte/pressemitteilung", dependencies=[USE, CsrfDep], include_in_schema=False)
async def press_make(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    settings: SettingsDep,
) -> Response:
    """Both versions on the page; with ``format`` txt or docx the download at once: the
    model's version when the model wrote one, else the assembled one."""
    raw = await request.form()
    form = {k: str(raw.get(k) or "")[: press.MAX_FIELD * 3] for k in PRESS_FIELDS}
    wanted = str(raw.get("format") or "vorschau")
    with_model = raw.get("mit_modell") == "1"
    try:
        points = press.key_points_from_mapping(form)
        assembled = press.from_key_points(points, place=tenant.city)
    except RathausError as exc:
        return _press_page(request, tenant, settings, form, error=exc.message, status=422)
    generated = None
    suggestion = None
    error = ""
    if with_model:
        from starlette.concurrency import run_in_threadpool

        from rathaus.ai.llm import ModelUnavailableError

        model = _language_model(
            request, tenant.id, user.username, "texte.pressemitteilung", user=user
        )
        if model is None:
            error = (
                "Es ist kein Sprachmodell eingerichtet; gezeigt wird die zusammengesetzte Fassung."
            )
        else:
            try:
                generated, _ = await run_in_threadpool(
                    press.generate, points, model, place=tenant.city
                )
            except (ModelUnavailableError, RathausError) as exc:
                error = exc.message
            else:
                suggestion = _record_press(
                    request, tenant.id, _backend(settings, "pressemitteilung"), points, generated
                )
    if wanted in ("txt", "docx"):
        return _press_download(generated or assembled, wanted)
    return _press_page(
        request,
        tenant,
        settings,
        form,
        result=assembled,
        generated=generated,
        suggestion=suggestion,
        error=error,
    )


def _decide_press(
    session: Session,
    *,
    tenant: Tenant,
    user: User,
    suggestion_id: str,
    version: str,
    release: press.PressRelease,
) -> None:
    """The person downloads a version: for the model's suggestion that is a decision
    (``angenommen`` unchanged, ``bearbeitet`` with the diff, ``korrigiert`` when the assembled
    version was taken instead). A suggestion of another tenant or function is ignored."""
    from rathaus.core.models import AiSuggestion
    from rathaus.governance import decisions

    if not suggestion_id.strip().isdigit():
        return
    row = session.get(AiSuggestion, int(suggestion_id))
    if row is None or row.tenant_id != tenant.id or row.function != "pressemitteilung":
        return
    original = str((row.output or {}).get("text") or "")
    edited = release.text()
    if version == "modell" and edited == original:
        decisions.decide(session, row, decision="angenommen", user=user)
        return
    decisions.decide(
        session,
        row,
        decision="bearbeitet" if version == "modell" else "korrigiert",
        user=user,
        final={"fassung": "sprachmodell" if version == "modell" else "zusammengesetzt"},
        original_text=original,
        edited_text=edited,
    )


@router.post(
    "/texte/pressemitteilung/herunterladen", dependencies=[USE, CsrfDep], include_in_schema=False
)
async def press_download(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    settings: SettingsDep,
    session: SessionDep,
) -> Response:
    """Download exactly the version on the page, as the person edited it (TXT or DOCX)."""
    raw = await request.form()
    data = {k: str(raw.get(k) or "")[: press.MAX_BODY + 1] for k in press.FORM_FIELDS}
    form = {k: str(raw.get(k) or "")[: press.MAX_FIELD * 3] for k in PRESS_FIELDS}
    wanted = "txt" if raw.get("format") == "txt" else "docx"
    version = "modell" if raw.get("fassung") == "modell" else "zusammengesetzt"
    suggestion = str(raw.get("vorschlag") or "")[:20]
    try:
        release = press.release_from_form(data)
    except RathausError as exc:
        edited = press.release_from_form(data, check=False)
        return _press_page(
            request,
            tenant,
            settings,
            form,
            edited=edited,
            edited_version=version,
            suggestion=suggestion if suggestion.isdigit() else None,
            error=exc.message,
            status=422,
        )
    _decide_press(
        session,
        tenant=tenant,
        user=user,
        suggestion_id=suggestion,
        version=version,
        release=release,
    )
    return _press_download(release, wanted)


# -- Übersetzung ---------------------------------------------------------------------------------


@router.get("/texte/uebersetzung", dependencies=[USE], include_in_schema=False)
def translate_form(request: Request, tenant: CurrentTenant, settings: SettingsDep) -> Response:
    return render(
        request,
        "writing_translate.html",
        {
            "tenant": tenant,
            "languages": translate.LANGUAGES,
            "unavailable": translate.unavailable_reason(_backend(settings, "uebersetzung")),
            "form": {"text": "", "nach": "en"},
            "result": None,
            "error": "",
        },
    )


@router.post("/texte/uebersetzung", dependencies=[USE, CsrfDep], include_in_schema=False)
async def translate_make(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    settings: SettingsDep,
    text: Annotated[str, Form(max_length=translate.MAX_CHARS * 2)] = "",
    nach: Annotated[str, Form(max_length=10)] = "en",
) -> Response:
    from starlette.concurrency import run_in_threadpool

    from rathaus.ai.llm import ModelUnavailableError

    result = None
    error = ""
    status = 200
    try:
        translate.check_request(text, nach)
        model = _language_model(request, tenant.id, user.username, "texte.uebersetzung", user=user)
        result = await run_in_threadpool(
            translate.translate, text, nach, model=model, backend=_backend(settings, "uebersetzung")
        )
        _record_translation(request, tenant.id, _backend(settings, "uebersetzung"), text, result)
    except (ModelUnavailableError, RathausError) as exc:
        error = exc.message
        status = getattr(exc, "http_status", 503)
    return render(
        request,
        "writing_translate.html",
        {
            "tenant": tenant,
            "languages": translate.LANGUAGES,
            "unavailable": translate.unavailable_reason(_backend(settings, "uebersetzung")),
            "form": {"text": text, "nach": nach},
            "result": result,
            "error": error,
        },
        status_code=status,
    )


# -- JSON-API ------------------------------------------------------------------------------------

api = APIRouter(prefix="/api/v1/texte", tags=["Schreibassistenz"], responses=AUTH_RESPONSES)


def _guarded(call: Any) -> Response | Any:
    try:
        return call()
    except RathausError as exc:
        status = 404 if isinstance(exc, NotFoundError) else getattr(exc, "http_status", 400)
        if isinstance(exc, PermissionDeniedError):
            status = 403
        return JSONResponse({"detail": exc.message}, status_code=status)


class TemplatePublic(BaseModel):
    id: int
    name: str
    kind: str = Field(description="baustein, brief oder pressemitteilung")
    subject: str
    body: str
    org_unit_id: int | None = Field(description="Organisationseinheit (leer: für alle)")
    placeholders: list[str]
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: TextTemplate) -> TemplatePublic:
        return cls(
            id=row.id,
            name=row.name,
            kind=row.kind,
            subject=row.subject,
            body=row.body,
            org_unit_id=row.org_unit_id,
            placeholders=tb.template_placeholders(row),
            updated_at=row.updated_at,
        )


class TemplateCreate(BaseModel):
    name: str = Field(min_length=1, max_length=tb.MAX_NAME)
    kind: Literal["baustein", "brief", "pressemitteilung"] = "baustein"
    subject: str = Field(default="", max_length=tb.MAX_SUBJECT)
    body: str = Field(min_length=1, max_length=tb.MAX_BODY)
    org_unit_id: int | None = None


@api.get("/bausteine", summary="Textbausteine, die der Zugang verwenden darf")
def api_templates(
    session: SessionDep,
    caller: WritingCallerDep,
    art: str | None = None,
) -> Any:
    def work() -> list[TemplatePublic]:
        kind = art if art in tb.KINDS else None
        rows = (
            tb.list_templates(session, user=caller.user, kind=kind)
            if caller.user
            else tb.list_general(session, tenant_id=caller.tenant.id, kind=kind)
        )
        return [TemplatePublic.of(r) for r in rows]

    return _guarded(work)


@api.post("/bausteine", summary="Textbaustein anlegen", status_code=201)
def api_template_create(
    body: TemplateCreate,
    session: SessionDep,
    caller: WritingCallerDep,
) -> Any:
    def work() -> Any:
        if caller.user is None:
            raise PermissionDeniedError(
                "Textbausteine legen angemeldete Personen an (Fachbereichsleitung oder "
                "Administration), nicht ein API-Schlüssel."
            )
        try:
            row = tb.create(session, user=caller.user, data=tb.TemplateData(**body.model_dump()))
        except tb.TemplateInvalidError as exc:
            session.rollback()
            return JSONResponse({"detail": exc.message, "errors": exc.errors}, status_code=422)
        return JSONResponse(TemplatePublic.of(row).model_dump(mode="json"), status_code=201)

    return _guarded(work)


class LetterIn(BaseModel):
    baustein_id: int | None = Field(default=None, description="Nummer des Textbausteins")
    baustein: str | None = Field(default=None, max_length=200, description="…oder sein Name")
    aktenzeichen: str = Field(default="", max_length=60, description="Vorgang (optional)")
    empfaenger_name: str = Field(default="", max_length=200)
    empfaenger_anschrift: str = Field(default="", max_length=500, description="Zeilen mit Komma")
    ihr_zeichen: str = Field(default="", max_length=100)
    bankverbindung: str = Field(default="", max_length=200)
    format: Literal["json", "pdf", "docx"] = "json"


class LetterPublic(BaseModel):
    absender: str = Field(description="Rücksendeangabe: die Kommune")
    empfaenger: list[str] = Field(description="Anschriftfeld")
    betreff: str
    anrede: str
    text: str
    datum: str
    unser_zeichen: str
    luecken: list[str] = Field(description="Platzhalter ohne Wert: im Text als [[… fehlt]]")
    unbekannt: list[str] = Field(description="Unbekannte Platzhalter")
    klartext: str


def _template_for(session: Session, caller: WritingCaller, body: LetterIn) -> TextTemplate:
    if body.baustein_id is None and not body.baustein:
        raise letters.LetterInputError("Bitte „baustein_id“ oder „baustein“ angeben.")
    if caller.user is not None:
        if body.baustein_id is not None:
            return tb.get(session, user=caller.user, template_id=body.baustein_id)
        return tb.get_by_name(session, user=caller.user, name=body.baustein or "")
    for row in tb.list_general(session, tenant_id=caller.tenant.id):
        if row.id == body.baustein_id or row.name.lower() == (body.baustein or "").lower():
            return row
    raise NotFoundError("Diesen Textbaustein gibt es für diesen Zugang nicht.")


@api.post("/brief", summary="Brief nach DIN 5008 (JSON, PDF oder DOCX)")
def api_letter(body: LetterIn, session: SessionDep, caller: WritingCallerDep) -> Any:
    def work() -> Any:
        template = _template_for(session, caller, body)
        letter = build_letter(
            session,
            user=caller.user,
            tenant=caller.tenant,
            template=template,
            reference=body.aktenzeichen,
            recipient_name=body.empfaenger_name.strip(),
            recipient_address=body.empfaenger_anschrift.strip(),
            your_reference=body.ihr_zeichen.strip(),
            bank=body.bankverbindung.strip(),
        )
        if body.format == "pdf":
            return _download(letters.to_pdf(letter), letters.filename(letter, "pdf"), "pdf")
        if body.format == "docx":
            return _download(letters.to_docx(letter), letters.filename(letter, "docx"), "docx")
        return LetterPublic(
            absender=letter.sender.return_line,
            empfaenger=letter.recipient,
            betreff=letter.subject,
            anrede=letter.salutation,
            text=letter.body,
            datum=tb.german_date(letter.date),
            unser_zeichen=letter.our_reference,
            luecken=letter.gaps,
            unbekannt=letter.unknown,
            klartext=letter.plain_text(),
        )

    return _guarded(work)


class PressIn(BaseModel):
    thema: str = Field(min_length=1, max_length=press.MAX_FIELD)
    fakten: list[str] = Field(default_factory=list, max_length=press.MAX_FACTS)
    wer: str = Field(default="", max_length=press.MAX_FIELD)
    was: str = Field(default="", max_length=press.MAX_FIELD)
    wann: str = Field(default="", max_length=press.MAX_FIELD)
    wo: str = Field(default="", max_length=press.MAX_FIELD)
    warum: str = Field(default="", max_length=press.MAX_FIELD)
    zitat: str = Field(default="", max_length=press.MAX_FIELD)
    sprecher: str = Field(default="", max_length=press.MAX_FIELD)
    kontakt: str = Field(default="", max_length=press.MAX_FIELD)
    ort: str = Field(default="", max_length=200)
    datum: dt.date | None = None
    mit_modell: bool = Field(default=False, description="Zusätzlich vom Sprachmodell schreiben")
    format: Literal["json", "txt", "docx"] = Field(
        default="json",
        description="txt oder docx: die Datei der Fassung des Sprachmodells, wenn es eine "
        "geschrieben hat, sonst der zusammengesetzten (mit Kurzfassung für soziale Medien)",
    )


class PressPublic(BaseModel):
    kennzeichnung: str
    ueberschrift: str
    ortszeile: str
    vorspann: str
    text: list[str]
    zitat: str
    pressekontakt: str
    kurzfassung: str = Field(description="Höchstens 280 Zeichen, mit Hashtags")
    hinweise: list[str]
    neue_fakten: list[str] = Field(description="Angaben, die nicht in den Stichpunkten stehen")
    modell: str

    @classmethod
    def of(cls, r: press.PressRelease) -> PressPublic:
        return cls(
            kennzeichnung=r.label,
            ueberschrift=r.headline,
            ortszeile=r.dateline,
            vorspann=r.lead,
            text=r.body,
            zitat=r.quote,
            pressekontakt=r.contact,
            kurzfassung=r.social,
            hinweise=r.hints,
            neue_fakten=r.new_facts,
            modell=r.model,
        )


class PressOut(BaseModel):
    zusammengesetzt: PressPublic
    erzeugt: PressPublic | None
    hinweis: str = ""


@api.post("/pressemitteilung", summary="Pressemitteilung aus Stichpunkten")
def api_press(
    body: PressIn, request: Request, session: SessionDep, caller: WritingCallerDep
) -> Any:
    from rathaus.ai.llm import ModelUnavailableError

    def work() -> Any:
        data = body.model_dump(exclude={"mit_modell", "datum", "format"})
        points = press.key_points_from_mapping(data)
        points.datum = body.datum
        assembled = press.from_key_points(points, place=caller.tenant.city)
        generated = None
        note = ""
        if body.mit_modell:
            model = _language_model(
                request, caller.tenant.id, caller.actor, "texte.pressemitteilung", user=caller.user
            )
            if model is None:
                note = "Es ist kein Sprachmodell eingerichtet (RATHAUS_LLM__BACKEND=none)."
            else:
                try:
                    generated, _ = press.generate(points, model, place=caller.tenant.city)
                except ModelUnavailableError as exc:
                    note = exc.message
                else:
                    backend = _backend(request.app.state.settings, "pressemitteilung")
                    _record_press(request, caller.tenant.id, backend, points, generated)
        if body.format != "json":
            return _press_download(generated or assembled, body.format)
        return PressOut(
            zusammengesetzt=PressPublic.of(assembled),
            erzeugt=PressPublic.of(generated) if generated else None,
            hinweis=note,
        )

    return _guarded(work)


class TranslateIn(BaseModel):
    text: str = Field(min_length=1, max_length=translate.MAX_CHARS)
    nach: str = Field(default="en", max_length=10, description="Zielsprache, z. B. en, tr, uk")


class TranslateOut(BaseModel):
    text: str
    ziel: str
    modell: str
    kennzeichnung: str
    fehlende_zahlen: list[str] = Field(
        description="Zahlen, Daten, Beträge des Originals, die fehlen"
    )


@api.post("/uebersetzung", summary="Text übersetzen (nur mit Modellserver)")
def api_translate(
    body: TranslateIn,
    request: Request,
    caller: WritingCallerDep,
) -> Any:
    from rathaus.ai.llm import ModelUnavailableError

    def work() -> Any:
        settings = request.app.state.settings
        translate.check_request(body.text, body.nach)
        reason = translate.unavailable_reason(_backend(settings, "uebersetzung"))
        if reason:
            raise translate.TranslationUnavailableError(reason)
        model = _language_model(
            request, caller.tenant.id, caller.actor, "texte.uebersetzung", user=caller.user
        )
        try:
            result = translate.translate(
                body.text, body.nach, model=model, backend=_backend(settings, "uebersetzung")
            )
        except ModelUnavailableError as exc:
            return JSONResponse({"detail": exc.message}, status_code=503)
        _record_translation(
            request, caller.tenant.id, _backend(settings, "uebersetzung"), body.text, result
        )
        return TranslateOut(
            text=result.text,
            ziel=result.target,
            modell=result.model,
            kennzeichnung=result.label,
            fehlende_zahlen=result.lost,
        )

    return _guarded(work)


router.include_router(api)
