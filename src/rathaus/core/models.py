"""The domain model: tenants, organisation, services, users, cases and their records.

Every row belongs to exactly one tenant (``tenant_id``); queries filter by it (see
:mod:`rathaus.core.repo`). German domain words are kept where the domain is German.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Moment(TypeDecorator[dt.datetime]):
    """A point in time, bound as UTC.

    PostgreSQL keeps the instant of an aware value whatever its offset; SQLite keeps only the
    wall-clock digits and drops the offset. Converting every aware value to UTC before it is
    bound makes both store, and compare in ``WHERE`` clauses, the same instant (an Open311
    ``start_date`` with ``+01:00`` or an import in Europe/Berlin time). Naive values are taken
    as UTC, as everywhere in Rathaus, and pass unchanged; reading is unchanged.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(dt.UTC)
        return value


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: Moment, dict[str, Any]: JSON}


class TenantScoped:
    """Mixin: the row belongs to one tenant."""

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


class Tenant(Base):
    """A municipality (Kommune); one installation may serve many, strictly separated."""

    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The municipality's own address: every letter names it as sender.
    street: Mapped[str] = mapped_column(String(200), default="")
    postal_code: Mapped[str] = mapped_column(String(10), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    website: Mapped[str] = mapped_column(String(200), default="")
    # Bundesland code (ISO 3166-2 suffix, e.g. "BW") for public holidays in SLA clocks.
    land: Mapped[str] = mapped_column(String(2), default="BW")
    # First part of every Aktenzeichen, e.g. "MS" in MS-2026-000123.
    reference_prefix: Mapped[str] = mapped_column(String(10), default="RH")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OrgUnitKind(enum.StrEnum):
    FACHBEREICH = "fachbereich"
    AMT = "amt"
    SACHGEBIET = "sachgebiet"


class OrgUnit(TenantScoped, Base):
    """An organisational unit: Fachbereich, Amt or Sachgebiet, arranged as a tree."""

    __tablename__ = "org_units"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"))
    kind: Mapped[OrgUnitKind] = mapped_column(
        Enum(
            OrgUnitKind,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    code: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    room: Mapped[str] = mapped_column(String(100), default="")
    opening_hours: Mapped[str] = mapped_column(Text, default="")
    # Automatic routing (without a human) only where an administrator enabled it for the unit;
    # the threshold overrides the one the live routing model computed for 95 % precision.
    auto_route_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_route_threshold: Mapped[float | None] = mapped_column(Float)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped[OrgUnit | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[OrgUnit]] = relationship(back_populates="parent")


class Service(TenantScoped, Base):
    """A service (Leistung) the municipality offers, optionally with its 14-digit LeiKa key."""

    __tablename__ = "services"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        CheckConstraint("leika_key IS NULL OR length(leika_key) = 14", name="leika_len"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id", ondelete="SET NULL"), index=True
    )
    code: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(200))
    leika_key: Mapped[str | None] = mapped_column(String(14))
    description: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[str] = mapped_column(Text, default="")
    fees: Mapped[str] = mapped_column(Text, default="")
    required_documents: Mapped[str] = mapped_column(Text, default="")
    online_url: Mapped[str] = mapped_column(String(300), default="")
    sla_working_days: Mapped[int] = mapped_column(Integer, default=10)
    # Reply draft for this service; {platzhalter} are filled from the case (see inbox.reply).
    reply_template: Mapped[str] = mapped_column(Text, default="")
    # Offered to reporting apps through the Open311 GeoReport v2 server.
    open311_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    org_unit: Mapped[OrgUnit | None] = relationship()


class User(TenantScoped, Base):
    """A staff member; roles and department memberships decide what they may see and do."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "username"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(300))
    oidc_subject: Mapped[str | None] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]

    role_rows: Mapped[list[UserRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    memberships: Mapped[list[Membership]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def roles(self) -> set[str]:
        return {row.role for row in self.role_rows}

    @property
    def org_unit_ids(self) -> set[int]:
        return {m.org_unit_id for m in self.memberships}


class UserRole(Base):
    """One role of a user (see :mod:`rathaus.core.roles`)."""

    __tablename__ = "user_roles"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(40), primary_key=True)


class Membership(Base):
    """A user works in an organisational unit."""

    __tablename__ = "memberships"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    org_unit_id: Mapped[int] = mapped_column(
        ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True
    )
    org_unit: Mapped[OrgUnit] = relationship(lazy="selectin")


class ApiKey(TenantScoped, Base):
    """A key for one input channel (JSON API, Open311); only its SHA-256 is stored."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]


class WebSession(Base):
    """A server-side login session; the cookie holds only a random token, stored hashed."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    # The last request, written at most once a minute (idle timeout, security.check_session).
    last_seen_at: Mapped[dt.datetime | None]


class CaseStatus(enum.StrEnum):
    """States of a case (Vorgang); allowed changes are in :mod:`rathaus.core.cases`."""

    NEU = "neu"
    TRIAGE = "triage"
    ZUGEWIESEN = "zugewiesen"
    IN_BEARBEITUNG = "in_bearbeitung"
    WARTET = "wartet"
    ERLEDIGT = "erledigt"
    ARCHIVIERT = "archiviert"


class Confidentiality(enum.StrEnum):
    OEFFENTLICH = "oeffentlich"
    INTERN = "intern"
    VERTRAULICH = "vertraulich"


def _str_enum(enum_cls: type[enum.StrEnum], length: int = 30) -> Enum:
    return Enum(
        enum_cls,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Case(TenantScoped, Base):
    """A case (Vorgang): one incoming matter, its documents, messages and history."""

    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("tenant_id", "reference"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(40))  # Aktenzeichen, e.g. MS-2026-000123
    subject: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[CaseStatus] = mapped_column(
        _str_enum(CaseStatus), default=CaseStatus.NEU, index=True
    )
    channel: Mapped[str] = mapped_column(String(30), default="upload")
    request_type: Mapped[str | None] = mapped_column(String(30))
    urgency: Mapped[str] = mapped_column(String(20), default="normal")
    confidentiality: Mapped[Confidentiality] = mapped_column(
        _str_enum(Confidentiality), default=Confidentiality.INTERN
    )
    org_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id", ondelete="SET NULL"), index=True
    )
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    sender_contact: Mapped[str] = mapped_column(String(300), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    language: Mapped[str | None] = mapped_column(String(8))
    # Set once the triage pipeline has run (successfully or with flagged steps).
    triaged_at: Mapped[dt.datetime | None]
    # Set when a retention rule or an erasure request replaced the personal data (DSGVO).
    anonymized_at: Mapped[dt.datetime | None]
    needs_review_reason: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    due_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    org_unit: Mapped[OrgUnit | None] = relationship()
    service: Mapped[Service | None] = relationship()
    assignee: Mapped[User | None] = relationship()
    documents: Mapped[list[Document]] = relationship(back_populates="case", order_by="Document.id")
    messages: Mapped[list[Message]] = relationship(back_populates="case", order_by="Message.id")
    events: Mapped[list[CaseEvent]] = relationship(back_populates="case", order_by="CaseEvent.id")


class Document(TenantScoped, Base):
    """An incoming file: original bytes kept unchanged on disk, addressed by SHA-256."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("tenant_id", "sha256"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(300))
    media_type: Mapped[str] = mapped_column(String(120), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_path: Mapped[str] = mapped_column(String(500))
    extracted_text: Mapped[str | None] = mapped_column(Text)
    extraction_status: Mapped[str] = mapped_column(String(30), default="ausstehend")
    extraction_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    case: Mapped[Case | None] = relationship(back_populates="documents")


class Message(TenantScoped, Base):
    """A message in a case: incoming text, or an outgoing reply (draft → approved → sent)."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(10))  # "in" | "out"
    channel: Mapped[str] = mapped_column(String(30), default="")
    sender: Mapped[str] = mapped_column(String(300), default="")
    recipient: Mapped[str] = mapped_column(String(300), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="eingegangen")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sent_at: Mapped[dt.datetime | None]

    case: Mapped[Case] = relationship(back_populates="messages")


class CaseEvent(TenantScoped, Base):
    """One entry of the case event log: the input for process mining and the audit of decisions."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # created, status, assigned, routed, decision …
    activity: Mapped[str] = mapped_column(String(120))  # human-readable activity name
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str | None] = mapped_column(String(30))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(120), default="system")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    case: Mapped[Case] = relationship(back_populates="events")


class AuditEvent(Base):
    """An audit event; ``prev_hash``/``hash`` chain the rows per tenant (append-only)."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(60))
    actor: Mapped[str] = mapped_column(String(120))
    subject: Mapped[str] = mapped_column(String(200), default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class ModelCall(Base):
    """One call of a model backend: what ran, how long, and hashes of input and output."""

    __tablename__ = "model_calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    function: Mapped[str] = mapped_column(String(80))
    backend: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100), default="")
    latency_ms: Mapped[float] = mapped_column(Float)
    input_sha256: Mapped[str] = mapped_column(String(64))
    output_sha256: Mapped[str] = mapped_column(String(64), default="")
    actor: Mapped[str] = mapped_column(String(120), default="system")
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    error: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class Embedding(TenantScoped, Base):
    """A stored embedding vector (float32 bytes) of some object, searched in-process per tenant."""

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("tenant_id", "owner_type", "owner_id", "model"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_type: Mapped[str] = mapped_column(String(40))
    owner_id: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(100))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    text_sha256: Mapped[str] = mapped_column(String(64))


class AiSuggestion(TenantScoped, Base):
    """An AI suggestion (routing, service, request type, urgency, fields, reply draft …) and the
    human decision that followed: accepted, edited (with the difference) or rejected."""

    __tablename__ = "ai_suggestions"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    # What the suggestion is about when it is not (only) a case: ``assistant_turn``,
    # ``writing_job``, ``booking_flag``, ``minutes`` … and that object's id.
    subject_type: Mapped[str | None] = mapped_column(String(40), index=True)
    subject_id: Mapped[str | None] = mapped_column(String(64))
    function: Mapped[str] = mapped_column(String(40))  # routing, service, request_type, urgency …
    backend: Mapped[str] = mapped_column(String(40))  # rules, classifier, similarity, template, llm
    model_version: Mapped[str] = mapped_column(String(100), default="")
    input_sha256: Mapped[str] = mapped_column(String(64), default="")
    output: Mapped[dict[str, Any]] = mapped_column(default=dict)
    confidence: Mapped[float | None] = mapped_column(Float)
    # None = open; "angenommen", "bearbeitet" (reply edited), "korrigiert" (other unit or
    # service chosen), "abgelehnt", "automatisch" (applied without a person, where the
    # administrator enabled it). ``final`` holds what the person decided (and the diff).
    decision: Mapped[str | None] = mapped_column(String(20))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[dt.datetime | None]
    final: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class RoutingRule(TenantScoped, Base):
    """An explicit, readable routing rule: words or a pattern in the item → unit and service."""

    __tablename__ = "routing_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Any of these words (comma-separated, case-insensitive, whole words or word starts with *)
    # or, if set, the regular expression must occur in the chosen part of the item.
    keywords: Mapped[str] = mapped_column(Text, default="")
    pattern: Mapped[str] = mapped_column(Text, default="")
    scope: Mapped[str] = mapped_column(String(20), default="text")  # text, subject, sender, channel
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="SET NULL"))
    priority: Mapped[int] = mapped_column(Integer, default=100)  # lower runs first
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    org_unit: Mapped[OrgUnit | None] = relationship()
    service: Mapped[Service | None] = relationship()


class RoutingModelVersion(TenantScoped, Base):
    """A trained routing model of a tenant; exactly one version per tenant is live."""

    __tablename__ = "routing_model_versions"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    # candidate → live | rejected; live → retired (a newer one went live) or rolled back.
    status: Mapped[str] = mapped_column(String(20), default="candidate")
    file_path: Mapped[str] = mapped_column(String(500))  # relative to the data directory
    file_sha256: Mapped[str] = mapped_column(String(64), default="")
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    n_train: Mapped[int] = mapped_column(Integer, default=0)
    trigger: Mapped[str] = mapped_column(String(30), default="manuell")  # manuell, zeitplan …
    created_by: Mapped[str] = mapped_column(String(120), default="system")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[dt.datetime | None]


class InboxSource(TenantScoped, Base):
    """A polled input of a tenant: an IMAP mailbox or a watched folder."""

    __tablename__ = "inbox_sources"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # imap, folder
    name: Mapped[str] = mapped_column(String(100))
    # imap: host, port, tls, username, mailbox; folder: path. The IMAP password is never stored
    # here: it is read from the environment variable named in settings["password_env"].
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_polled_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InboxSourceItem(TenantScoped, Base):
    """Ledger of what a source delivered: each mail (UIDVALIDITY/UID or Message-ID) or file is
    taken exactly once, also when a poll is interrupted and repeated."""

    __tablename__ = "inbox_source_items"
    __table_args__ = (UniqueConstraint("source_id", "item_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("inbox_sources.id", ondelete="CASCADE"))
    item_key: Mapped[str] = mapped_column(String(300))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class KnowledgeEntry(TenantScoped, Base):
    """One article of the municipality's knowledge base, usually a service page (Leistung).

    ``source`` and ``external_id`` identify where it came from (e.g. ``muenchen-dldb`` and the
    catalogue's service id, or ``markdown`` and the file name), so a re-import updates the entry
    instead of adding a second one. Structured facts live in ``facts`` and are shown as a list.
    """

    __tablename__ = "knowledge_entries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "external_id"),
        # The assistant's change check (count and newest ``updated_at`` of the published
        # entries) reads only this index instead of every row with its text.
        Index("ix_knowledge_entries_changes", "tenant_id", "is_published", "updated_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(60))
    external_id: Mapped[str] = mapped_column(String(300))
    title: Mapped[str] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")  # plain text, paragraphs split by \n\n
    keywords: Mapped[str] = mapped_column(Text, default="")  # comma-separated synonyms
    leika_key: Mapped[str | None] = mapped_column(String(14))
    service_id: Mapped[int | None] = mapped_column(
        ForeignKey("services.id", ondelete="SET NULL"), index=True
    )
    # fees, required_documents (list), office, address, opening_hours, phone, email,
    # online_url, appointment_url, forms (list of {title, url}); see assistant.knowledge.FACTS.
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    language: Mapped[str] = mapped_column(String(8), default="de")
    content_sha256: Mapped[str] = mapped_column(String(64), default="")
    is_published: Mapped[bool] = mapped_column(Boolean, default=True)
    last_verified_at: Mapped[dt.datetime | None]
    verified_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    chunks: Mapped[list[KnowledgeChunk]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", order_by="KnowledgeChunk.ordinal"
    )
    # The database deletes the versions with the entry (ondelete CASCADE); the ORM need not load
    # them first.
    versions: Mapped[list[KnowledgeEntryVersion]] = relationship(
        back_populates="entry",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="KnowledgeEntryVersion.number",
    )


class KnowledgeEntryVersion(TenantScoped, Base):
    """An earlier version of a knowledge entry: its editable content as it was *before* one
    change, with when (``created_at``), by whom (``changed_by``: a user's name or
    ``Import <source>``) and why (``reason``: ``bearbeitet``, ``import``,
    ``wiederhergestellt``) that change replaced it, and which fields it changed.

    ``number`` counts the entry's versions from 1; only the newest
    :data:`rathaus.assistant.versions.KEEP_VERSIONS` are kept (see that module).
    """

    __tablename__ = "knowledge_entry_versions"
    # (entry_id, number) also serves every lookup of an entry's versions.
    __table_args__ = (UniqueConstraint("entry_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("knowledge_entries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[str] = mapped_column(Text, default="")
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    language: Mapped[str] = mapped_column(String(8), default="de")
    is_published: Mapped[bool] = mapped_column(Boolean, default=True)
    last_verified_at: Mapped[dt.datetime | None]
    verified_by: Mapped[str] = mapped_column(String(120), default="")
    # Fields the change altered: "title", "body" …; a structured fact as "facts.fees".
    changed_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(String(20))
    changed_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    entry: Mapped[KnowledgeEntry] = relationship(back_populates="versions")


class KnowledgeChunk(TenantScoped, Base):
    """A passage of an entry: the unit of retrieval and citation.

    ``chunk_key`` is stable: derived from the entry's source, external id and the passage's
    text, so re-importing unchanged content keeps every id (and every citation link) intact.
    ``search_title`` and ``search_text`` hold the analysed terms (stemmed, compounds split) that
    the full-text index searches (SQLite FTS5 table ``knowledge_fts``, or a GIN index in
    PostgreSQL), the title weighted higher; vectors live in ``embeddings``.
    """

    __tablename__ = "knowledge_chunks"
    __table_args__ = (UniqueConstraint("tenant_id", "chunk_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_entries.id", ondelete="CASCADE"), index=True
    )
    chunk_key: Mapped[str] = mapped_column(String(64))
    ordinal: Mapped[int] = mapped_column(Integer, default=0)
    heading: Mapped[str] = mapped_column(String(300), default="")
    text: Mapped[str] = mapped_column(Text)
    search_title: Mapped[str] = mapped_column(Text, default="")  # analysed title and heading
    search_text: Mapped[str] = mapped_column(Text, default="")  # analysed passage
    text_sha256: Mapped[str] = mapped_column(String(64), default="")

    entry: Mapped[KnowledgeEntry] = relationship(back_populates="chunks")


class AssistantConversation(TenantScoped, Base):
    """A citizen's conversation with the assistant. Citizens are anonymous: the conversation is
    known only by its random ``public_id``; questions are stored pseudonymised and deleted after
    the retention period (``assistant.retention_days``)."""

    __tablename__ = "assistant_conversations"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    channel: Mapped[str] = mapped_column(String(20), default="web")  # web, widget, api
    language: Mapped[str] = mapped_column(String(8), default="de")
    easy_language: Mapped[bool] = mapped_column(Boolean, default=False)
    handed_over_case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    last_activity_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    turns: Mapped[list[AssistantTurn]] = relationship(
        back_populates="conversation",
        cascade="all, delete-orphan",
        order_by="AssistantTurn.ordinal",
    )


class AssistantTurn(TenantScoped, Base):
    """One question and the answer given: its sentences with citations, the facts shown, the
    confidence, whether it abstained, and the citizen's feedback."""

    __tablename__ = "assistant_turns"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("assistant_conversations.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer, default=0)
    question: Mapped[str] = mapped_column(Text)  # pseudonymised
    language: Mapped[str] = mapped_column(String(8), default="de")
    mode: Mapped[str] = mapped_column(String(20), default="extraktiv")  # extraktiv, generiert
    answer: Mapped[dict[str, Any]] = mapped_column(default=dict)  # sentences, facts, notes
    confidence: Mapped[float | None] = mapped_column(Float)
    abstained: Mapped[bool] = mapped_column(Boolean, default=False)
    model: Mapped[str] = mapped_column(String(120), default="")
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    feedback: Mapped[int | None] = mapped_column(Integer)  # +1, -1
    feedback_comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    conversation: Mapped[AssistantConversation] = relationship(back_populates="turns")
    citations: Mapped[list[AssistantCitation]] = relationship(
        back_populates="turn", cascade="all, delete-orphan", order_by="AssistantCitation.rank"
    )


class AssistantCitation(TenantScoped, Base):
    """Which knowledge entry (and passage) an answer used: the Redaktion sees the answers that
    rest on an entry."""

    __tablename__ = "assistant_citations"
    id: Mapped[int] = mapped_column(primary_key=True)
    turn_id: Mapped[int] = mapped_column(
        ForeignKey("assistant_turns.id", ondelete="CASCADE"), index=True
    )
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_entries.id", ondelete="CASCADE"), index=True
    )
    chunk_key: Mapped[str] = mapped_column(String(64), default="")
    rank: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[float | None] = mapped_column(Float)

    turn: Mapped[AssistantTurn] = relationship(back_populates="citations")
    entry: Mapped[KnowledgeEntry] = relationship()


class TextTemplate(TenantScoped, Base):
    """A Textbaustein: a reusable text with ``{{platzhalter}}`` for case fields, for one
    department (``org_unit_id``) or for all (None). ``kind`` says where it is offered:
    ``baustein`` (a paragraph), ``brief`` (a whole letter body), ``pressemitteilung``."""

    __tablename__ = "text_templates"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30), default="baustein")
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MeetingMinutes(TenantScoped, Base):
    """A Niederschrift in the making: the meeting, its agenda (typed in or imported via OParl),
    the transcript as timed segments, and the structured result per agenda item."""

    __tablename__ = "meeting_minutes"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    body_name: Mapped[str] = mapped_column(String(300), default="")  # Gremium
    meeting_date: Mapped[dt.datetime | None]
    location: Mapped[str] = mapped_column(String(300), default="")
    oparl_meeting_id: Mapped[str | None] = mapped_column(String(500))
    # [{number, name, public, oparl_id}]
    agenda: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # [{start, end, text}] in seconds; a typed transcript has no times
    transcript: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    attendance: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="entwurf")
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WritingJobStatus(enum.StrEnum):
    WARTET = "wartet"
    LAEUFT = "laeuft"
    FERTIG = "fertig"
    ABGEBROCHEN = "abgebrochen"
    FEHLGESCHLAGEN = "fehlgeschlagen"


class WritingJob(TenantScoped, Base):
    """A long writing task run on the task queue (a transcription of a recording): progress
    0..1, a German status message, cancellable; the uploaded original is kept in the original
    store under ``original_sha256`` whatever happens, partial results stay in ``result``."""

    __tablename__ = "writing_jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))  # transkription
    status: Mapped[str] = mapped_column(String(20), default=WritingJobStatus.WARTET.value)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    filename: Mapped[str] = mapped_column(String(300), default="")
    original_sha256: Mapped[str] = mapped_column(String(64), default="")
    minutes_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting_minutes.id", ondelete="SET NULL"), index=True
    )
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


# -- Lagebild (decision support) ---------------------------------------------------------------


class InsightDataset(TenantScoped, Base):
    """An imported data set for the Lagebild: a count series (``zeitreihe``), an event log
    (``ereignisprotokoll``) or a payment list (``zahlungen``). The uploaded original is kept in
    the original store under ``original_sha256``; the rows are written in one transaction, so a
    failed import leaves nothing behind. ``mapping`` records which column became which field."""

    __tablename__ = "insight_datasets"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), index=True)
    name: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(300), default="")
    original_sha256: Mapped[str] = mapped_column(String(64), default="")
    rows: Mapped[int] = mapped_column(Integer, default=0)
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SeriesPoint(TenantScoped, Base):
    """One day of an imported count series (e.g. requests per department and day)."""

    __tablename__ = "series_points"
    __table_args__ = (UniqueConstraint("dataset_id", "series", "day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("insight_datasets.id", ondelete="CASCADE"), index=True
    )
    series: Mapped[str] = mapped_column(String(200))
    day: Mapped[dt.date] = mapped_column(Date)
    value: Mapped[float] = mapped_column(Float, default=0.0)


class ProcessEvent(TenantScoped, Base):
    """One event of an imported event log (CSV, XES or OCEL 2.0). ``position`` keeps the file
    order for events with equal timestamps; ``data`` holds further attributes and, for OCEL,
    the related objects."""

    __tablename__ = "process_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("insight_datasets.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    case_key: Mapped[str] = mapped_column(String(200))
    activity: Mapped[str] = mapped_column(String(200))
    timestamp: Mapped[dt.datetime]
    resource: Mapped[str] = mapped_column(String(200), default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Payment(TenantScoped, Base):
    """One payment of an imported payment list (Kämmerei); amounts in cents."""

    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("insight_datasets.id", ondelete="CASCADE"), index=True
    )
    row_number: Mapped[int] = mapped_column(Integer)
    supplier: Mapped[str] = mapped_column(String(300))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    booked_on: Mapped[dt.date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(100), default="")
    category: Mapped[str] = mapped_column(String(200), default="")
    unit: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class BookingFlag(TenantScoped, Base):
    """A finding of a booking check, waiting for a human decision in the review queue. A flag
    is a hint with its explanation, never an accusation: ``status`` starts at ``offen`` and only
    a person sets ``unauffaellig`` or ``pruefen`` (with ``decided_by``/``decided_at``)."""

    __tablename__ = "booking_flags"
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("insight_datasets.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30), index=True)  # duplikat, splitting, benford …
    supplier: Mapped[str] = mapped_column(String(300), default="")
    payment_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    explanation: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="offen", index=True)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str] = mapped_column(String(120), default="")
    decided_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RoutePlan(TenantScoped, Base):
    """A winter-service plan of the Bauhof: the street network with its required links,
    vehicles and depots (``network``), the solver settings and the routes found."""

    __tablename__ = "route_plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(300), default="")
    original_sha256: Mapped[str] = mapped_column(String(64), default="")
    network: Mapped[dict[str, Any]] = mapped_column(default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    solution: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="neu")
    total_time: Mapped[float | None] = mapped_column(Float)
    feasible: Mapped[bool | None] = mapped_column(Boolean)
    message: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    solved_at: Mapped[dt.datetime | None]


class PseudonymMap(TenantScoped, Base):
    """The placeholder → value mapping of one case (or other scope) for the pseudonymisation
    gateway, encrypted with the key ``key_id`` (Fernet); deleted with its case."""

    __tablename__ = "pseudonym_maps"
    __table_args__ = (UniqueConstraint("tenant_id", "scope"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(80))  # case:17, writing_job:4 …
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    key_id: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RetentionRule(TenantScoped, Base):
    """How long cases of one request type (``request_type`` empty: every type) or assistant
    conversations are kept after they are closed, and what happens then."""

    __tablename__ = "retention_rules"
    __table_args__ = (UniqueConstraint("tenant_id", "target", "request_type"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[str] = mapped_column(String(30))  # vorgang, unterhaltung
    request_type: Mapped[str] = mapped_column(String(30), default="")
    days: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20), default="loeschen")  # loeschen, anonymisieren
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_by: Mapped[str] = mapped_column(String(120), default="system")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CaseAccess(TenantScoped, Base):
    """Access log: who opened, exported or downloaded which case, and through which channel.
    The reference is kept so the entry stays readable after the case is erased."""

    __tablename__ = "case_access_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL"), index=True
    )
    case_reference: Mapped[str] = mapped_column(String(40), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(120), default="")
    action: Mapped[str] = mapped_column(String(30), default="angesehen")
    channel: Mapped[str] = mapped_column(String(20), default="web")  # web, api, cli
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class PrivacyRequest(TenantScoped, Base):
    """A data subject request (DSGVO Art. 15 Auskunft, Art. 17 Löschung). The person's
    identifiers are not stored, only their hash and what was found and done."""

    __tablename__ = "privacy_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # auskunft, loeschung
    subject_sha256: Mapped[str] = mapped_column(String(64))
    criteria: Mapped[list[str]] = mapped_column(JSON, default=list)  # kinds: name, email, iban …
    status: Mapped[str] = mapped_column(String(20), default="offen")  # offen, erledigt, abgelehnt
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None]


class EvalRun(Base):
    """The result of one ``rathaus eval …`` run: the measured quality the AI register shows."""

    __tablename__ = "eval_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(60), index=True)  # routing, assistant, forecast …
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data: Mapped[str] = mapped_column(String(500), default="")  # which data set
    command: Mapped[str] = mapped_column(String(500), default="")
    version: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


# --- Tenants of an IT service provider (issue 8): model policies and quotas per tenant ------


class TenantSettings(Base):
    """What the provider set for one tenant: language-model calls and tokens per minute
    (``None``: no limit), model policy overrides per confidentiality level (level →
    allowed locations), which replace the installation's policy for that level, and the
    settings of its letters (bank details)."""

    __tablename__ = "tenant_settings"
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    tokens_per_minute: Mapped[int | None] = mapped_column(Integer)
    model_policies: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What the tenant's letters carry, e.g. ``{"bankverbindung": {...}}`` (rathaus.writing.bank).
    letter_settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_by: Mapped[str] = mapped_column(String(120), default="system")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TenantUsage(Base):
    """Language-model use of one tenant in one minute (``minute`` = Unix time // 60): the
    counter behind the quotas, raised by an atomic upsert from every web and worker process."""

    __tablename__ = "tenant_usage"
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    minute: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)


class RateLimitUsage(Base):
    """Requests of one client of a public endpoint in one window (``minute`` = the window's
    first minute, Unix time // 60), shared by every web process (:mod:`rathaus.web.limits`).

    ``bucket`` is a keyed hash of the rule and the client (address, account or API key): no
    address or user name is stored. Rows older than an hour are deleted as new ones arrive.
    The columns are those of ``tenant_usage``, so both are counted by the same code
    (:class:`rathaus.governance.quota.UsageCounter`); ``tokens`` stays 0.
    """

    __tablename__ = "rate_limit_usage"
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    minute: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)


class ReauthKeptForm(Base):
    """A form an account without a password sent before its confirmation at the identity
    provider (:mod:`rathaus.web.reauth_keep`): kept minutes long for one login session and one
    action's path, and shown once after the confirmation. Only the SHA-256 of its reference is
    stored; ending the session deletes it."""

    __tablename__ = "reauth_kept_forms"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    web_session_id: Mapped[int] = mapped_column(
        ForeignKey("web_sessions.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(String(500))
    action: Mapped[str] = mapped_column(String(60))
    # The fields as sent, in order, as JSON ``[name, value]`` pairs (no files, no passwords),
    # Fernet-encrypted with a key derived from the reference only the browser holds.
    sealed: Mapped[str] = mapped_column(Text)
    files_left_out: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]


# --- Own second factor (TOTP) for password logins (rathaus.core.second_factor) ----------------


class SecondFactor(Base):
    """A person's authenticator app (TOTP, RFC 6238): the secret, Fernet-encrypted with a key
    derived from the installation secret, active from ``enabled_at``. ``last_used_step`` is the
    time step of the last accepted code (no code of it or an earlier step counts again);
    ``failed_attempts`` counts wrong codes in a row. ``pending_sealed`` is a secret shown for
    enrolment and not yet confirmed with a code."""

    __tablename__ = "second_factors"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    secret_sealed: Mapped[str | None] = mapped_column(Text)
    enabled_at: Mapped[dt.datetime | None]
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    pending_sealed: Mapped[str | None] = mapped_column(Text)
    pending_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RecoveryCode(Base):
    """A one-time recovery code of a second factor: only a salted SHA-256 is stored; ``used_at``
    is set when it was used (it never counts again)."""

    __tablename__ = "second_factor_recovery_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    factor_id: Mapped[int] = mapped_column(
        ForeignKey("second_factors.id", ondelete="CASCADE"), index=True
    )
    salt: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[dt.datetime | None]


class LoginChallenge(Base):
    """A login whose password was right but that is not complete yet: the second step (a code,
    or the enrolment the policy demands) is still missing. The browser holds a random token in
    a cookie, only its SHA-256 is stored; a challenge lasts minutes and is used once."""

    __tablename__ = "login_challenges"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # "code" (enter a code), "einrichtung" (enrol first), "fertig" (enrolled, codes shown).
    purpose: Mapped[str] = mapped_column(String(20))
    next_url: Mapped[str] = mapped_column(String(500), default="/")
    password_listed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
