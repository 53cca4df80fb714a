"""Tenant service functions for an IT service provider: create, list, lock, quotas, policies.

One installation serves many municipalities (Kommunen); each is a :class:`Tenant`, and every
domain row carries its ``tenant_id``. The provider manages them with ``rathaus mandanten …``;
what it sets per tenant (language-model quota, model policy per confidentiality level) lives
in ``tenant_settings`` and is enforced by the governance gateway for every model call.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field
from typing import Any, get_args

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from rathaus.core import audit
from rathaus.core.config import ModelLocation
from rathaus.core.errors import ConfigError, NotFoundError, RathausError
from rathaus.core.models import (
    Case,
    Confidentiality,
    OrgUnit,
    OrgUnitKind,
    Service,
    Tenant,
    TenantSettings,
    User,
    WebSession,
    utcnow,
)

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$")
PREFIX_RE = re.compile(r"^[A-Z0-9]{1,10}$")
LAENDER = {
    "BW": "Baden-Württemberg",
    "BY": "Bayern",
    "BE": "Berlin",
    "BB": "Brandenburg",
    "HB": "Bremen",
    "HH": "Hamburg",
    "HE": "Hessen",
    "MV": "Mecklenburg-Vorpommern",
    "NI": "Niedersachsen",
    "NW": "Nordrhein-Westfalen",
    "RP": "Rheinland-Pfalz",
    "SL": "Saarland",
    "SN": "Sachsen",
    "ST": "Sachsen-Anhalt",
    "SH": "Schleswig-Holstein",
    "TH": "Thüringen",
}
TEMPLATES = ("standard", "leer")
# Words before the place name in a municipality's official name ("Stadt Musterstadt").
_NAME_PREFIXES = (
    "Große Kreisstadt ",
    "Landeshauptstadt ",
    "Hansestadt ",
    "Kreisstadt ",
    "Universitätsstadt ",
    "Stadt ",
    "Gemeinde ",
    "Markt ",
)
NO_LIMIT = "unbegrenzt"
# Words accepted for "no limit" and for "no location" on the command line.
NO_LIMIT_WORDS = {NO_LIMIT, "aus", "keins", "keine"}
NO_LOCATION_WORDS = {"keine", "keiner", "nichts"}
# Confidentiality levels and model locations, as the governance policy knows them.
LEVELS = tuple(level.value for level in Confidentiality)
LOCATIONS: tuple[str, ...] = get_args(ModelLocation)


# -- lookups --------------------------------------------------------------------------------------


def _unknown(session: Session, slug: str) -> NotFoundError:
    known = sorted(session.scalars(select(Tenant.slug)).all())
    if not known:
        hint = (
            "Es gibt noch keine Kommune: `rathaus mandanten anlegen KÜRZEL --name …` legt eine "
            "an, `rathaus demo` lädt die Demo-Kommune."
        )
    else:
        close = difflib.get_close_matches(slug, known, n=1)
        hint = f"Vorhanden: {', '.join(known[:20])}{' …' if len(known) > 20 else ''}."
        if close:
            hint = f"Meinten Sie „{close[0]}“? {hint}"
    return NotFoundError(f"Die Kommune „{slug[:64]}“ gibt es in dieser Installation nicht. {hint}")


def get(session: Session, *, slug: str) -> Tenant:
    """The tenant ``slug``, or :class:`NotFoundError` naming the existing ones."""
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise _unknown(session, slug)
    return tenant


def require_tenant(
    session: Session, slug: str, *, setting: str = "RATHAUS_DEFAULT_TENANT"
) -> Tenant:
    """The tenant named by a setting (``default_tenant``) at start-up, or a :class:`ConfigError`
    that names the setting, the existing tenants and how to create one, so that ``rathaus
    serve`` and ``rathaus worker`` stop before anything starts. A locked tenant is returned:
    locking one municipality must not stop the installation; the caller may warn."""
    try:
        return get(session, slug=slug)
    except NotFoundError as exc:
        raise ConfigError(f"{setting}: {exc.message}") from exc


def model_policies(session: Session, tenant_id: int) -> dict[str, list[str]]:
    """The tenant's own model policy per confidentiality level (empty: the installation's)."""
    row = session.get(TenantSettings, tenant_id)
    return dict(row.model_policies or {}) if row else {}


def list_tenants(session: Session) -> list[TenantOverview]:
    """Every tenant with its counts and quota, by slug."""
    tenants = session.scalars(select(Tenant).order_by(Tenant.slug)).all()
    users = _counts(session, User)
    cases = _counts(session, Case)
    limits = {row.tenant_id: row for row in session.scalars(select(TenantSettings))}
    return [
        TenantOverview(
            tenant=t,
            users=users.get(t.id, 0),
            cases=cases.get(t.id, 0),
            settings=limits.get(t.id),
        )
        for t in tenants
    ]


def _counts(session: Session, model: Any) -> dict[int, int]:
    rows = session.execute(select(model.tenant_id, func.count()).group_by(model.tenant_id))
    return {tenant_id: count for tenant_id, count in rows}


@dataclass
class TenantOverview:
    tenant: Tenant
    users: int
    cases: int
    settings: TenantSettings | None

    @property
    def requests_per_minute(self) -> int | None:
        return self.settings.requests_per_minute if self.settings else None

    @property
    def tokens_per_minute(self) -> int | None:
        return self.settings.tokens_per_minute if self.settings else None

    @property
    def policies(self) -> dict[str, list[str]]:
        return dict(self.settings.model_policies or {}) if self.settings else {}


@dataclass
class TenantDetails(TenantOverview):
    """One tenant for ``rathaus mandanten zeigen``."""

    org_units: int = 0
    services: int = 0
    warnings: list[str] = field(default_factory=list)


def details(session: Session, *, slug: str) -> TenantDetails:
    tenant = get(session, slug=slug)

    def count(model: Any) -> int:
        return session.scalar(select(func.count()).where(model.tenant_id == tenant.id)) or 0

    found = TenantDetails(
        tenant=tenant,
        users=count(User),
        cases=count(Case),
        settings=session.get(TenantSettings, tenant.id),
        org_units=count(OrgUnit),
        services=count(Service),
    )
    if not (tenant.street and tenant.postal_code and tenant.city):
        found.warnings.append(
            "Die Anschrift ist unvollständig: Briefe und Antwortentwürfe nennen die Kommune als "
            "Absender. Bitte mit `rathaus mandanten anlegen` angeben oder in der Datenbank ergänzen."
        )
    if found.users == 0:
        found.warnings.append(
            f"Noch keine Person: `rathaus users create admin --role admin --kommune {slug}`."
        )
    return found


# -- validation -----------------------------------------------------------------------------------


def validate_slug(slug: str) -> str:
    slug = slug.strip()
    if not SLUG_RE.match(slug):
        raise RathausError(
            f"Das Kürzel „{slug[:70]}“ ist ungültig: erlaubt sind 2 bis 64 Zeichen aus "
            "Kleinbuchstaben a–z, Ziffern und Bindestrichen, am Anfang und Ende kein Bindestrich, "
            "ohne Umlaute (z. B. „bad-saeckingen“). Es erscheint in Adressen wie "
            "/assistent?kommune=…"
        )
    return slug


def validate_land(land: str) -> str:
    code = land.strip().upper()
    if code not in LAENDER:
        raise RathausError(
            f"Unbekanntes Bundesland „{land[:20]}“: bitte das Kürzel angeben, eines von "
            f"{', '.join(LAENDER)} (für die Feiertage in den Fristen)."
        )
    return code


def validate_prefix(prefix: str) -> str:
    value = prefix.strip().upper()
    if not PREFIX_RE.match(value):
        raise RathausError(
            f"Das Aktenzeichen-Präfix „{prefix[:20]}“ ist ungültig: 1 bis 10 Zeichen aus "
            "Buchstaben A–Z und Ziffern (z. B. „BS“ für Aktenzeichen BS-2026-000123)."
        )
    return value


def default_prefix(slug: str) -> str:
    """``bad-saeckingen`` → ``BS``; ``konstanz`` → ``KO``."""
    parts = [p for p in slug.split("-") if p]
    letters = "".join(p[0] for p in parts) if len(parts) > 1 else slug[:2]
    return re.sub(r"[^A-Z0-9]", "", letters.upper())[:10] or "RH"


def place_name(name: str) -> str:
    """The place in an official name: ``Stadt Bad Säckingen`` → ``Bad Säckingen``."""
    for prefix in _NAME_PREFIXES:
        if name.startswith(prefix):
            return name.removeprefix(prefix)
    return name


def parse_limit(value: str | int | None, what: str) -> int | None:
    """A limit from the command line: a whole number ≥ 1, or ``unbegrenzt`` (``None``)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in NO_LIMIT_WORDS:
        return None
    if not text.isdigit() or int(text) < 1:
        raise RathausError(
            f"{what}: „{str(value)[:20]}“ ist keine gültige Grenze. Bitte eine ganze Zahl ab 1 "
            f"angeben oder „{NO_LIMIT}“ für keine Grenze."
        )
    if int(text) > 2_000_000_000:
        raise RathausError(f"{what}: höchstens 2000000000.")
    return int(text)


def parse_locations(value: str) -> list[str]:
    """``lokal,eigener_server`` → the list; ``keine`` → ``[]`` (every model call refused)."""
    text = value.strip().lower()
    if text in NO_LOCATION_WORDS:
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


def validate_level(level: str) -> str:
    if level not in LEVELS:
        raise RathausError(
            f"Unbekannte Vertraulichkeitsstufe „{level[:30]}“; erlaubt sind {', '.join(LEVELS)}."
        )
    return level


def validate_locations(locations: list[str]) -> list[str]:
    """Known locations without duplicates, in the order lokal, eigener_server, extern."""
    unknown = [loc for loc in locations if loc not in LOCATIONS]
    if unknown:
        raise RathausError(
            f"Unbekannter Modellort „{', '.join(unknown)[:60]}“; erlaubt sind "
            f"{', '.join(LOCATIONS)}, mit Komma getrennt, oder „keine“ (sperrt jeden "
            "Modellaufruf dieser Stufe)."
        )
    return [loc for loc in LOCATIONS if loc in locations]


# -- create ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    """The municipality's own address: every letter names it as sender."""

    street: str = ""
    postal_code: str = ""
    city: str = ""
    phone: str = ""
    email: str = ""
    website: str = ""


def create(
    session: Session,
    *,
    slug: str,
    name: str,
    land: str = "BW",
    reference_prefix: str | None = None,
    template: str = "standard",
    address: Address | None = None,
    actor: str = "cli",
) -> Tenant:
    """A new tenant with the organisation of ``template`` (``standard``: the usual
    Fachbereiche, Ämter and services of a German town without any cases; ``leer``: nothing)."""
    slug = validate_slug(slug)
    name = name.strip()
    if not name or len(name) > 200:
        raise RathausError("Der Name der Kommune muss 1 bis 200 Zeichen lang sein (--name).")
    if template not in TEMPLATES:
        raise RathausError(
            f"Unbekannte Vorlage „{template[:30]}“: erlaubt sind {', '.join(TEMPLATES)}."
        )
    existing = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if existing is not None:
        raise RathausError(
            f"Die Kommune „{slug}“ gibt es schon ({existing.name}). Bitte ein anderes Kürzel "
            "wählen; `rathaus mandanten liste` zeigt alle."
        )
    address = address or Address()
    tenant = Tenant(
        slug=slug,
        name=name,
        land=validate_land(land),
        reference_prefix=validate_prefix(reference_prefix or default_prefix(slug)),
        street=address.street.strip()[:200],
        postal_code=address.postal_code.strip()[:10],
        city=(address.city.strip() or place_name(name))[:100],
        phone=address.phone.strip()[:50],
        email=address.email.strip()[:200],
        website=address.website.strip()[:200],
        is_active=True,
    )
    session.add(tenant)
    session.flush()
    units, services = apply_template(session, tenant, template)
    audit.record(
        session,
        audit.Event(
            kind="mandant.angelegt",
            actor=actor,
            tenant_id=tenant.id,
            subject=slug,
            data={"name": name, "vorlage": template, "einheiten": units, "leistungen": services},
        ),
    )
    return tenant


def apply_template(session: Session, tenant: Tenant, template: str) -> tuple[int, int]:
    """Write the template's org units and services; their counts."""
    if template == "leer":
        return 0, 0
    structure = standard_structure(place_name(tenant.name))
    units: dict[str, OrgUnit] = {}
    for row in structure["org_units"]:
        unit = OrgUnit(
            tenant_id=tenant.id,
            kind=OrgUnitKind(row["kind"]),
            code=row["code"],
            name=row["name"],
            description=row["description"],
            parent=units[row["parent"]] if row["parent"] else None,
        )
        units[row["code"]] = unit
    session.add_all(units.values())
    services = [
        Service(
            tenant_id=tenant.id,
            org_unit=units[row["org_unit"]],
            **{k: v for k, v in row.items() if k != "org_unit"},
        )
        for row in structure["services"]
    ]
    session.add_all(services)
    session.flush()
    return len(units), len(services)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _generic(text: str, place: str) -> str:
    """The sentences of a demo description that hold for any town: none that names
    Musterstadt or gives a number (fees, deadlines and amounts differ between towns)."""
    kept = [
        s
        for s in _SENTENCE_END.split(text.strip())
        if s and "musterstadt" not in s.lower() and not re.search(r"\d", s)
    ]
    return " ".join(kept).replace("der Stadt", f"der Stadt {place}" if place else "der Stadt")


def standard_structure(place: str = "") -> dict[str, list[dict[str, Any]]]:
    """The ``standard`` template: the demo town's Fachbereiche, Ämter and Sachgebiete with
    their descriptions (which day-one routing compares letters with) and its services with
    LeiKa keys, keywords, documents to bring and processing times. Left out is everything that
    belongs to Musterstadt: contacts, rooms, opening hours, fees, links, reply templates, and
    every sentence that names it or a number; staff and cases are never copied."""
    from rathaus.core.demo import read_demo_file

    base = read_demo_file("musterstadt.json")
    units = [
        {
            "code": row["code"],
            "kind": row["kind"],
            "parent": row.get("parent"),
            "name": row["name"],
            "description": _generic(row.get("description", ""), place),
        }
        for row in base["org_units"]
    ]
    services = [
        {
            "code": row["code"],
            "name": row["name"],
            "org_unit": row["org_unit"],
            "leika_key": row.get("leika_key"),
            "description": _generic(row.get("description", ""), place),
            "keywords": row.get("keywords", ""),
            "required_documents": row.get("required_documents", ""),
            "sla_working_days": row.get("sla_working_days", 10),
            "open311_enabled": bool(row.get("open311", False)),
        }
        for row in base["services"]
    ]
    return {"org_units": units, "services": services}


# -- lock, quota, policy --------------------------------------------------------------------------


def set_active(session: Session, *, slug: str, active: bool, actor: str = "cli") -> int:
    """Lock or unlock a tenant. Locking ends every login session of its staff at once (their
    next request goes to the login page, which refuses them); its public assistant, Open311
    and API keys answer as for an unknown municipality, and the gateway refuses its model
    calls. Returns the number of ended sessions."""
    tenant = get(session, slug=slug)
    ended = 0
    if not active:
        ended = session.execute(
            delete(WebSession).where(WebSession.tenant_id == tenant.id)
        ).rowcount
    if tenant.is_active != active:
        tenant.is_active = active
        audit.record(
            session,
            audit.Event(
                kind="mandant.entsperrt" if active else "mandant.gesperrt",
                actor=actor,
                tenant_id=tenant.id,
                subject=slug,
                data={"beendete_sitzungen": ended},
            ),
        )
    session.flush()
    return int(ended or 0)


def _settings_row(session: Session, tenant: Tenant) -> TenantSettings:
    row = session.get(TenantSettings, tenant.id)
    if row is None:
        row = TenantSettings(tenant_id=tenant.id, model_policies={})
        session.add(row)
    return row


_UNCHANGED: Any = object()


def set_quota(
    session: Session,
    *,
    slug: str,
    requests_per_minute: int | None = _UNCHANGED,
    tokens_per_minute: int | None = _UNCHANGED,
    actor: str = "cli",
) -> TenantSettings:
    """Set the tenant's language-model quota; ``None`` removes a limit, an argument left out
    keeps it. Takes effect with the next model call in every process."""
    tenant = get(session, slug=slug)
    for value, what in ((requests_per_minute, "Anfragen"), (tokens_per_minute, "Tokens")):
        if value is not _UNCHANGED and value is not None and value < 1:
            raise RathausError(f"{what} pro Minute: bitte eine ganze Zahl ab 1 oder unbegrenzt.")
    row = _settings_row(session, tenant)
    if requests_per_minute is not _UNCHANGED:
        row.requests_per_minute = requests_per_minute
    if tokens_per_minute is not _UNCHANGED:
        row.tokens_per_minute = tokens_per_minute
    row.updated_by = actor[:120]
    row.updated_at = utcnow()
    audit.record(
        session,
        audit.Event(
            kind="mandant.kontingent",
            actor=actor,
            tenant_id=tenant.id,
            subject=slug,
            data={
                "anfragen_pro_minute": row.requests_per_minute,
                "tokens_pro_minute": row.tokens_per_minute,
            },
        ),
    )
    session.flush()
    return row


@dataclass(frozen=True)
class PolicyChange:
    """The tenant's policy after a change, and German notes (e.g. looser than the
    installation's)."""

    policies: dict[str, list[str]]
    notes: list[str]


def set_policy(
    session: Session,
    *,
    slug: str,
    level: str,
    locations: list[str] | None,
    installation: dict[str, list[str]],
    actor: str = "cli",
) -> PolicyChange:
    """Give the tenant its own policy for ``level`` (``locations``; ``[]`` refuses every model
    call of the level), or drop it (``None``: the installation's policy applies again).

    ``installation`` is the installation's policy (``governance.policies``), for the note when
    the tenant's is looser.
    """
    validate_level(level)
    tenant = get(session, slug=slug)
    row = _settings_row(session, tenant)
    policies = dict(row.model_policies or {})
    notes: list[str] = []
    if locations is None:
        policies.pop(level, None)
    else:
        allowed = validate_locations(locations)
        policies[level] = allowed
        looser = [loc for loc in allowed if loc not in installation.get(level, [])]
        if looser:
            notes.append(
                f"Hinweis: Die Richtlinie der Kommune erlaubt für die Stufe „{level}“ mehr als "
                f"die der Installation (zusätzlich: {', '.join(looser)})."
            )
    row.model_policies = policies
    row.updated_by = actor[:120]
    row.updated_at = utcnow()
    audit.record(
        session,
        audit.Event(
            kind="mandant.richtlinie",
            actor=actor,
            tenant_id=tenant.id,
            subject=slug,
            data={"stufe": level, "orte": locations, "richtlinie": policies},
        ),
    )
    session.flush()
    return PolicyChange(policies, notes)


def created_label(tenant: Tenant) -> str:
    at = tenant.created_at
    if at is None:
        return ""
    at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).strftime("%d.%m.%Y")
