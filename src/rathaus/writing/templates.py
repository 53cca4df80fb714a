"""Textbausteine: reusable texts per department with ``{{platzhalter}}`` filled from a case.

Who sees what: every user with ``Permission.USE_WRITING`` sees the general templates
(``org_unit_id`` None) and those of their departments, including the units above and below
them (a Fachbereich's template applies to its Ämter). Administrators see all of their tenant's
templates. Creating, editing and deleting is for department heads (``fachbereichsleitung``,
within their units) and administrators (everywhere, including general templates).

Rendering never blanks a placeholder silently: a value that is missing is shown as the visible
gap ``[[aktenzeichen fehlt]]``, an unknown name as ``[[xyz unbekannt]]``; both are listed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from rathaus.core import audit
from rathaus.core.access import unit_subtree_ids
from rathaus.core.errors import NotFoundError, PermissionDeniedError, RathausError
from rathaus.core.models import Case, OrgUnit, Service, Tenant, TextTemplate, User
from rathaus.core.roles import Role

KINDS = {
    "baustein": "Textbaustein",
    "brief": "Brief",
    "pressemitteilung": "Pressemitteilung",
}

PLACEHOLDERS = {
    "aktenzeichen": "Aktenzeichen des Vorgangs",
    "name": "Name der Bürgerin oder des Bürgers (Empfänger)",
    "anrede": "Anrede, z. B. „Sehr geehrte Frau Muster“ oder „Sehr geehrte Damen und Herren“",
    "datum": "heutiges Datum, z. B. „21. November 2026“",
    "frist": "erste erkannte Frist im Schreiben",
    "betreff": "Betreff des Vorgangs",
    "eingang": "Eingangsdatum des Schreibens",
    "bearbeitung_bis": "Ziel-Erledigungsdatum",
    "leistung": "Name der Leistung",
    "gebuehren": "Gebühren der Leistung",
    "unterlagen": "erforderliche Unterlagen der Leistung",
    "amt": "zuständiges Amt",
    "amt_telefon": "Telefon des Amts",
    "amt_email": "E-Mail des Amts",
    "oeffnungszeiten": "Öffnungszeiten des Amts",
    "kommune": "Name der Kommune",
    "sachbearbeitung": "Name der bearbeitenden Person",
}

MONTHS = (
    "Januar", "Februar", "März", "April", "Mai", "Juni",
    "Juli", "August", "September", "Oktober", "November", "Dezember",
)  # fmt: skip

MAX_NAME = 200
MAX_SUBJECT = 300
MAX_BODY = 50_000

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_SINGLE = re.compile(r"(?<!\{)\{\s*([A-Za-zÄÖÜäöüß_][\wÄÖÜäöüß]*)\s*\}(?!\})")


def german_date(value: dt.date) -> str:
    """``21. November 2026`` (DIN 5008 allows this alphanumeric form in letters)."""
    return f"{value.day}. {MONTHS[value.month - 1]} {value.year}"


# -- placeholders -----------------------------------------------------------------------------


def placeholders_in(text: str) -> list[str]:
    """The placeholder names used in ``text``, in order of first use."""
    seen: dict[str, None] = {}
    for match in _PLACEHOLDER.finditer(text):
        seen.setdefault(match.group(1), None)
    return list(seen)


def template_placeholders(row: TextTemplate) -> list[str]:
    """The placeholder names a Textbaustein uses in its subject and body, in order of first use."""
    return placeholders_in(row.subject + "\n" + row.body)


def syntax_errors(text: str, *, field_label: str = "Text") -> list[str]:
    """German messages for every malformed or unknown placeholder in ``text`` (empty: valid)."""
    errors: list[str] = []
    rest = _PLACEHOLDER.sub("", text)
    if "{{" in rest or "}}" in rest:
        errors.append(
            f"{field_label}: Ein Platzhalter ist nicht geschlossen. Platzhalter werden so "
            "geschrieben: {{aktenzeichen}}."
        )
    for match in _SINGLE.finditer(rest):
        errors.append(
            f"{field_label}: „{match.group(0)}“ hat nur eine geschweifte Klammer; bitte "
            f"{{{{{match.group(1)}}}}} schreiben."
        )
    for name in placeholders_in(text):
        if not name:
            errors.append(f"{field_label}: Ein Platzhalter {{{{}}}} ist leer.")
        elif not _NAME.fullmatch(name):
            errors.append(
                f"{field_label}: Der Platzhalter „{{{{{name}}}}}“ ist ungültig: erlaubt sind "
                "Kleinbuchstaben, Ziffern und Unterstrich, ohne Umlaute (z. B. {{amt_telefon}})."
            )
        elif name not in PLACEHOLDERS:
            errors.append(
                f"{field_label}: Den Platzhalter „{{{{{name}}}}}“ gibt es nicht. Verfügbar sind: "
                + ", ".join(PLACEHOLDERS)
                + "."
            )
    return errors


@dataclass
class Rendered:
    """A filled text: the gaps it still has are visible in ``text`` and listed."""

    text: str
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.unknown


def gap(name: str) -> str:
    return f"[[{name} fehlt]]"


def render_text(text: str, values: dict[str, str]) -> Rendered:
    """``text`` with its placeholders filled from ``values``; gaps are marked, never blanked."""
    missing: dict[str, None] = {}
    unknown: dict[str, None] = {}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PLACEHOLDERS:
            unknown.setdefault(name, None)
            return f"[[{name} unbekannt]]"
        value = (values.get(name) or "").strip()
        if not value:
            missing.setdefault(name, None)
            return gap(name)
        return value

    return Rendered(_PLACEHOLDER.sub(fill, text), list(missing), list(unknown))


def _short_date(value: dt.datetime | dt.date | None) -> str:
    return value.strftime("%d.%m.%Y") if value else ""


def sender_of(case: Case) -> dict[str, str]:
    """The citizen who wrote (the letter's recipient): name and postal address, as far as the
    triage extracted them. Never the municipality's own address (the extraction skips it)."""
    extracted = (case.fields or {}).get("extracted") or {}
    sender = extracted.get("sender") or {}
    return {
        "name": (sender.get("name") or case.sender_name or "").strip(),
        "address": (sender.get("address") or "").strip(),
        "email": (sender.get("email") or "").strip(),
    }


def values_for_case(
    case: Case,
    tenant: Tenant,
    *,
    unit: OrgUnit | None = None,
    service: Service | None = None,
    user: User | None = None,
    today: dt.date | None = None,
) -> dict[str, str]:
    """Placeholder values from a case, its department and service; empty where unknown."""
    unit = unit if unit is not None else case.org_unit
    service = service if service is not None else case.service
    extracted: dict[str, Any] = (case.fields or {}).get("extracted") or {}
    name = sender_of(case)["name"]
    frist = ""
    deadlines = extracted.get("deadlines") or []
    if deadlines:
        try:
            frist = german_date(dt.date.fromisoformat(str(deadlines[0]["date"])))
        except (KeyError, TypeError, ValueError):
            frist = ""
    return {
        "aktenzeichen": case.reference,
        "name": name,
        "anrede": salutation(name),
        "datum": german_date(today or dt.date.today()),
        "frist": frist,
        "betreff": case.subject,
        "eingang": _short_date(case.received_at),
        "bearbeitung_bis": _short_date(case.due_at),
        "leistung": service.name if service else "",
        "gebuehren": service.fees if service else "",
        "unterlagen": service.required_documents if service else "",
        "amt": unit.name if unit else "",
        "amt_telefon": (unit.phone if unit else "") or tenant.phone,
        "amt_email": (unit.email if unit else "") or tenant.email,
        "oeffnungszeiten": unit.opening_hours if unit else "",
        "kommune": tenant.name,
        "sachbearbeitung": (user.display_name or user.username) if user else "",
    }


def salutation(name: str) -> str:
    """A neutral salutation: the gender of a name is not guessed."""
    name = name.strip()
    return f"Guten Tag {name}" if name else "Sehr geehrte Damen und Herren"


# -- access ------------------------------------------------------------------------------------


def _ancestor_ids(session: Session, tenant_id: int, unit_ids: set[int]) -> set[int]:
    parents = dict(
        session.execute(
            select(OrgUnit.id, OrgUnit.parent_id).where(OrgUnit.tenant_id == tenant_id)
        ).all()
    )
    found: set[int] = set()
    for unit_id in unit_ids:
        current = parents.get(unit_id)
        while current is not None and current not in found:
            found.add(current)
            current = parents.get(current)
    return found


def is_admin(user: User) -> bool:
    return Role.ADMIN.value in user.roles


def visible_unit_ids(session: Session, user: User) -> set[int] | None:
    """Units whose templates ``user`` sees; None means all (administrators)."""
    if is_admin(user):
        return None
    own = set(user.org_unit_ids)
    return unit_subtree_ids(session, user.tenant_id, own) | _ancestor_ids(
        session, user.tenant_id, own
    )


def managed_unit_ids(session: Session, user: User) -> set[int] | None:
    """Units whose templates ``user`` may create or edit; None means all (administrators)."""
    if is_admin(user):
        return None
    if Role.LEITUNG.value not in user.roles:
        return set()
    return unit_subtree_ids(session, user.tenant_id, set(user.org_unit_ids))


def can_manage(session: Session, user: User, org_unit_id: int | None) -> bool:
    units = managed_unit_ids(session, user)
    if units is None:
        return True
    return org_unit_id is not None and org_unit_id in units


def may_create_any(user: User) -> bool:
    return is_admin(user) or Role.LEITUNG.value in user.roles


# -- service functions -------------------------------------------------------------------------


def list_templates(
    session: Session,
    *,
    user: User,
    kind: str | None = None,
    query: str | None = None,
    general_only: bool = False,
) -> list[TextTemplate]:
    """Templates ``user`` may use, general ones first, then by name."""
    stmt = select(TextTemplate).where(TextTemplate.tenant_id == user.tenant_id)
    units = visible_unit_ids(session, user)
    if general_only:
        stmt = stmt.where(TextTemplate.org_unit_id.is_(None))
    elif units is not None:
        stmt = stmt.where(
            or_(TextTemplate.org_unit_id.is_(None), TextTemplate.org_unit_id.in_(units))
        )
    if kind:
        stmt = stmt.where(TextTemplate.kind == kind)
    if query:
        like = f"%{query.lower()}%"
        stmt = stmt.where(
            or_(
                TextTemplate.name.ilike(like),
                TextTemplate.subject.ilike(like),
                TextTemplate.body.ilike(like),
            )
        )
    rows = list(session.scalars(stmt))
    rows.sort(key=lambda t: (t.org_unit_id is not None, t.name.lower(), t.id))
    return rows


def list_general(
    session: Session, *, tenant_id: int, kind: str | None = None
) -> list[TextTemplate]:
    """The tenant's general templates (for an API key, which acts for no department)."""
    stmt = select(TextTemplate).where(
        TextTemplate.tenant_id == tenant_id, TextTemplate.org_unit_id.is_(None)
    )
    if kind:
        stmt = stmt.where(TextTemplate.kind == kind)
    return sorted(session.scalars(stmt), key=lambda t: (t.name.lower(), t.id))


def get(session: Session, *, user: User, template_id: int) -> TextTemplate:
    """The template if ``user`` may see it, else :class:`NotFoundError` (also for another
    tenant's template: its existence is not revealed)."""
    row = session.get(TextTemplate, template_id)
    visible = (
        row is not None
        and row.tenant_id == user.tenant_id
        and (row.org_unit_id is None or _unit_visible(session, user, row.org_unit_id))
    )
    if not visible:
        raise NotFoundError(f"Einen Textbaustein Nr. {template_id} gibt es für Sie nicht.")
    assert row is not None
    return row


def get_by_name(session: Session, *, user: User, name: str) -> TextTemplate:
    wanted = name.strip().lower()
    for row in list_templates(session, user=user):
        if row.name.lower() == wanted:
            return row
    raise NotFoundError(
        f"Einen Textbaustein „{name}“ gibt es nicht. `rathaus text bausteine liste` zeigt alle."
    )


def _unit_visible(session: Session, user: User, unit_id: int) -> bool:
    units = visible_unit_ids(session, user)
    return units is None or unit_id in units


@dataclass
class TemplateData:
    """What a person enters for a template."""

    name: str
    body: str
    kind: str = "baustein"
    subject: str = ""
    org_unit_id: int | None = None


class TemplateInvalidError(RathausError):
    """The entered template is incomplete or has malformed placeholders; ``errors`` lists why."""

    http_status = 422

    def __init__(self, errors: list[str]) -> None:
        super().__init__("Der Textbaustein wurde nicht gespeichert: " + " ".join(errors))
        self.errors = errors


def validate(session: Session, tenant_id: int, data: TemplateData) -> list[str]:
    errors = []
    if not data.name.strip():
        errors.append("Bitte einen Namen angeben.")
    elif len(data.name) > MAX_NAME:
        errors.append(f"Der Name ist zu lang (höchstens {MAX_NAME} Zeichen).")
    if data.kind not in KINDS:
        errors.append("Bitte als Art Textbaustein, Brief oder Pressemitteilung wählen.")
    if len(data.subject) > MAX_SUBJECT:
        errors.append(f"Der Betreff ist zu lang (höchstens {MAX_SUBJECT} Zeichen).")
    if not data.body.strip():
        errors.append("Bitte einen Text angeben.")
    elif len(data.body) > MAX_BODY:
        errors.append(f"Der Text ist zu lang (höchstens {MAX_BODY} Zeichen).")
    errors += syntax_errors(data.subject, field_label="Betreff")
    errors += syntax_errors(data.body, field_label="Text")
    if data.org_unit_id is not None:
        unit = session.get(OrgUnit, data.org_unit_id)
        if unit is None or unit.tenant_id != tenant_id:
            errors.append("Die gewählte Organisationseinheit gibt es nicht.")
    return errors


def _check(session: Session, user: User, data: TemplateData) -> None:
    errors = validate(session, user.tenant_id, data)
    if errors:
        raise TemplateInvalidError(errors)
    if not can_manage(session, user, data.org_unit_id):
        raise PermissionDeniedError(
            "Textbausteine für alle Bereiche legt die Administration an; eine "
            "Fachbereichsleitung nur für die eigenen Organisationseinheiten."
            if data.org_unit_id is None
            else "Textbausteine dieser Organisationseinheit darf nur ihre Fachbereichsleitung "
            "oder die Administration anlegen und ändern."
        )


def _record(session: Session, user: User, kind: str, row: TextTemplate) -> None:
    audit.record(
        session,
        audit.Event(
            kind=kind,
            actor=user.username,
            tenant_id=user.tenant_id,
            subject=f"text_template:{row.id}",
            data={"name": row.name, "kind": row.kind, "org_unit_id": row.org_unit_id},
        ),
    )


def create(session: Session, *, user: User, data: TemplateData) -> TextTemplate:
    _check(session, user, data)
    return _insert(session, user.tenant_id, data, user.username)


def create_for_tenant(
    session: Session, *, tenant_id: int, data: TemplateData, actor: str = "cli"
) -> TextTemplate:
    """Create without a person's department check (the command line acts as administrator)."""
    errors = validate(session, tenant_id, data)
    if errors:
        raise TemplateInvalidError(errors)
    return _insert(session, tenant_id, data, actor)


def _insert(session: Session, tenant_id: int, data: TemplateData, actor: str) -> TextTemplate:
    row = TextTemplate(
        tenant_id=tenant_id,
        org_unit_id=data.org_unit_id,
        name=data.name.strip(),
        kind=data.kind,
        subject=data.subject.strip(),
        body=data.body.strip(),
        created_by=actor,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        audit.Event(
            kind="text_template_created",
            actor=actor,
            tenant_id=tenant_id,
            subject=f"text_template:{row.id}",
            data={"name": row.name, "kind": row.kind, "org_unit_id": row.org_unit_id},
        ),
    )
    return row


def list_all(session: Session, *, tenant_id: int) -> list[TextTemplate]:
    """Every template of the tenant (for the command line)."""
    rows = session.scalars(select(TextTemplate).where(TextTemplate.tenant_id == tenant_id))
    return sorted(rows, key=lambda t: (t.org_unit_id is not None, t.name.lower(), t.id))


def update(session: Session, *, user: User, template_id: int, data: TemplateData) -> TextTemplate:
    row = get(session, user=user, template_id=template_id)
    if not can_manage(session, user, row.org_unit_id):
        raise PermissionDeniedError(
            "Diesen Textbaustein dürfen nur die zuständige Fachbereichsleitung oder die "
            "Administration ändern."
        )
    _check(session, user, data)
    row.name = data.name.strip()
    row.kind = data.kind
    row.subject = data.subject.strip()
    row.body = data.body.strip()
    row.org_unit_id = data.org_unit_id
    session.flush()
    _record(session, user, "text_template_updated", row)
    return row


def delete(session: Session, *, user: User, template_id: int) -> None:
    row = get(session, user=user, template_id=template_id)
    if not can_manage(session, user, row.org_unit_id):
        raise PermissionDeniedError(
            "Diesen Textbaustein dürfen nur die zuständige Fachbereichsleitung oder die "
            "Administration löschen."
        )
    _record(session, user, "text_template_deleted", row)
    session.delete(row)
    session.flush()


def unit_choices(session: Session, user: User) -> list[OrgUnit]:
    """Units ``user`` may assign a template to (administrators: all of the tenant's)."""
    units = managed_unit_ids(session, user)
    stmt = select(OrgUnit).where(OrgUnit.tenant_id == user.tenant_id)
    if units is not None:
        stmt = stmt.where(OrgUnit.id.in_(units))
    return list(session.scalars(stmt.order_by(OrgUnit.code)))


# -- demo --------------------------------------------------------------------------------------

_CLOSING_HINT = "Bei Rückfragen erreichen Sie uns unter {{amt_telefon}} oder {{amt_email}}."

DEMO_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "Eingangsbestätigung",
        "kind": "brief",
        "unit": None,
        "subject": "Eingangsbestätigung – {{betreff}}",
        "body": "vielen Dank für Ihr Schreiben vom {{eingang}}. Es ist bei uns eingegangen und "
        "wird unter dem Aktenzeichen {{aktenzeichen}} bearbeitet. Bitte geben Sie dieses "
        "Aktenzeichen bei allen Rückfragen an.\n\nWir melden uns, sobald wir Ihr Anliegen "
        "geprüft haben. " + _CLOSING_HINT,
    },
    {
        "name": "Nachforderung von Unterlagen",
        "kind": "brief",
        "unit": "33",
        "subject": "Fehlende Unterlagen zu Ihrem Antrag – {{leistung}}",
        "body": "wir haben Ihren Antrag vom {{eingang}} geprüft. Für die weitere Bearbeitung "
        "benötigen wir noch folgende Unterlagen:\n\n{{unterlagen}}\n\nBitte reichen Sie die "
        "Unterlagen bis zum {{frist}} ein, persönlich im {{amt}} ({{oeffnungszeiten}}), per "
        "Post oder per E-Mail an {{amt_email}}. Liegen sie bis dahin nicht vor, müssen wir "
        "nach Aktenlage entscheiden.",
    },
    {
        "name": "Anhörung",
        "kind": "brief",
        "unit": "32",
        "subject": "Anhörung nach § 28 VwVfG – {{betreff}}",
        "body": "wir beabsichtigen, in der oben genannten Angelegenheit einen Bescheid zu "
        "erlassen, der in Ihre Rechte eingreift. Bevor wir entscheiden, geben wir Ihnen "
        "nach § 28 des Verwaltungsverfahrensgesetzes Gelegenheit, sich zu den für die "
        "Entscheidung erheblichen Tatsachen zu äußern.\n\nIhre Stellungnahme erbitten wir "
        "schriftlich bis zum {{frist}} unter Angabe des Aktenzeichens {{aktenzeichen}}. "
        "Äußern Sie sich nicht, entscheiden wir nach Aktenlage.",
    },
    {
        "name": "Widerspruch – Eingangsbestätigung",
        "kind": "brief",
        "unit": "10",
        "subject": "Ihr Widerspruch – Aktenzeichen {{aktenzeichen}}",
        "body": "wir bestätigen den Eingang Ihres Widerspruchs vom {{eingang}}. Die Einlegung "
        "des Widerspruchs wahrt die Frist.\n\nWir prüfen den angefochtenen Bescheid in vollem "
        "Umfang erneut. Hilft die Behörde dem Widerspruch nicht ab, erhalten Sie einen "
        "Widerspruchsbescheid. " + _CLOSING_HINT,
    },
    {
        "name": "Bescheid-Begleitschreiben",
        "kind": "brief",
        "unit": None,
        "subject": "Ihr Bescheid – {{leistung}}",
        "body": "anbei erhalten Sie den Bescheid zu Ihrem Anliegen „{{betreff}}“ "
        "(Aktenzeichen {{aktenzeichen}}). Bitte lesen Sie ihn vollständig, insbesondere "
        "die Rechtsbehelfsbelehrung am Ende.\n\nDie Gebühren betragen: {{gebuehren}}. "
        + _CLOSING_HINT,
    },
    {
        "name": "Hinweis Öffnungszeiten",
        "kind": "baustein",
        "unit": None,
        "subject": "",
        "body": "Sie erreichen das {{amt}} zu folgenden Zeiten: {{oeffnungszeiten}}. "
        + _CLOSING_HINT,
    },
]


def seed_demo(session: Session, tenant: Tenant, *, actor: str = "demo") -> int:
    """Add the demo Textbausteine to ``tenant``; idempotent by name. Returns how many were new."""
    units = {
        u.code: u.id for u in session.scalars(select(OrgUnit).where(OrgUnit.tenant_id == tenant.id))
    }
    present = set(
        session.scalars(select(TextTemplate.name).where(TextTemplate.tenant_id == tenant.id))
    )
    added = 0
    for row in DEMO_TEMPLATES:
        if row["name"] in present:
            continue
        unit_code = row["unit"]
        session.add(
            TextTemplate(
                tenant_id=tenant.id,
                org_unit_id=units.get(unit_code) if unit_code else None,
                name=row["name"],
                kind=row["kind"],
                subject=row["subject"],
                body=row["body"],
                created_by=actor,
            )
        )
        added += 1
    session.flush()
    return added
