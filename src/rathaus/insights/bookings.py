"""Buchungsprüfung der Kämmerei: import payment lists, run the checks, keep the review queue.

Import: a CSV or XLSX payment list is read completely (:func:`parse_payments`) before anything
is written; a row with a missing or invalid date or amount stops the import with a German
message naming row and field, unless the caller asks to skip such rows (``skip_invalid``) –
then they are reported by row number in the data set's summary. The original file is kept in
the original store; the rows are written in one transaction.

Checks: :func:`run_checks` runs :mod:`rathaus.insights.booking_checks` on a data set and
merges the findings into the review queue by their stable key: a finding seen before keeps its
flag (and the human decision on it), a new one becomes an open flag, an open flag no longer
found is removed, a decided flag no longer found is kept and marked as such. A decision
(:func:`decide`) is recorded in the audit log with who and when.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from rathaus.core import audit
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import (
    AiSuggestion,
    BookingFlag,
    InsightDataset,
    Payment,
    Tenant,
    User,
    utcnow,
)
from rathaus.core.storage import OriginalStore
from rathaus.governance import decisions
from rathaus.insights.booking_checks import (
    KINDS,
    BenfordResult,
    CheckConfig,
    Finding,
    Pay,
    benford,
)
from rathaus.insights.booking_checks import run_checks as run_all_checks
from rathaus.insights.tabular import (
    FieldSpec,
    Table,
    TableError,
    cell,
    map_columns,
    parse_amount_cents,
    parse_date,
    read_table,
)

DATASET_KIND = "zahlungen"
MAX_ROWS = 1_000_000
MAX_EXTRA_COLUMNS = 12
STATUSES = {"offen": "offen", "unauffaellig": "unauffällig", "pruefen": "prüfen"}
DECISIONS = ("unauffaellig", "pruefen")

FIELDS: dict[str, FieldSpec] = {
    "supplier": FieldSpec(
        "Lieferant",
        (
            "supplier_name",
            "lieferant",
            "lieferantenname",
            "kreditor",
            "kreditorname",
            "kreditorenname",
            "zahlungsempfaenger",
            "zahlungsempfänger",
            "empfaenger",
            "empfänger",
            "vendor",
            "vendor_name",
            "payee",
            "beguenstigter",
            "begünstigter",
        ),
    ),
    "amount": FieldSpec(
        "Betrag",
        (
            "amount",
            "betrag",
            "zahlbetrag",
            "bruttobetrag",
            "betrag_eur",
            "betrag in eur",
            "summe",
            "value",
            "amount_gbp",
            "net_amount",
            "auszahlungsbetrag",
        ),
    ),
    "date": FieldSpec(
        "Datum",
        (
            "paid_date",
            "payment_date",
            "zahlungsdatum",
            "buchungsdatum",
            "zahldatum",
            "belegdatum",
            "valuta",
            "valutadatum",
            "date",
            "datum",
            "transaction_date",
        ),
    ),
    "reference": FieldSpec(
        "Belegnummer",
        (
            "trans_no",
            "transaction_number",
            "reference",
            "referenz",
            "belegnummer",
            "belegnr",
            "beleg",
            "rechnungsnummer",
            "rechnungsnr",
            "invoice_number",
            "invoice",
            "buchungsnummer",
            "document_number",
        ),
        required=False,
    ),
    "category": FieldSpec(
        "Kategorie",
        (
            "expenditure_category",
            "category",
            "kategorie",
            "kostenart",
            "sachkonto",
            "ausgabeart",
            "konto",
            "expense_type",
        ),
        required=False,
    ),
    "unit": FieldSpec(
        "Organisationseinheit",
        (
            "unit_or_fund",
            "unit",
            "service_area",
            "department",
            "directorate",
            "organisationseinheit",
            "kostenstelle",
            "amt",
            "fachbereich",
            "dienststelle",
        ),
        required=False,
    ),
    "description": FieldSpec(
        "Beschreibung",
        (
            "description",
            "beschreibung",
            "verwendungszweck",
            "buchungstext",
            "text",
            "purpose",
            "expenditure_description",
        ),
        required=False,
    ),
}


class BookingError(RathausError):
    """An import or decision that cannot be done as asked."""

    http_status = 422


@dataclass
class ParsedPayments:
    """A payment list read completely: the rows to write and the rows skipped (row, reason)."""

    rows: list[dict[str, Any]]
    columns: dict[str, str]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    total_rows: int = 0


def parse_payments(
    data: bytes,
    filename: str = "",
    *,
    mapping: Mapping[str, str] | None = None,
    skip_invalid: bool = False,
) -> ParsedPayments:
    """Read a payment list. Without ``skip_invalid`` the first row with a missing or invalid
    supplier, date or amount raises :class:`TableError` naming row and field; with it, such
    rows are left out and listed in ``skipped``."""
    table = read_table(data, filename, max_rows=MAX_ROWS)
    return parse_table(table, mapping=mapping, skip_invalid=skip_invalid)


def parse_table(
    table: Table, *, mapping: Mapping[str, str] | None = None, skip_invalid: bool = False
) -> ParsedPayments:
    columns = map_columns(table, FIELDS, {k: v for k, v in (mapping or {}).items() if v})
    used = set(columns.values())
    extra = [(i, h) for i, h in enumerate(table.headers) if i not in used and h][:MAX_EXTRA_COLUMNS]
    rows: list[dict[str, Any]] = []
    skipped: list[tuple[int, str]] = []
    for index, raw in enumerate(table.rows):
        number = table.row_number(index)
        try:
            supplier = cell(table, raw, columns, "supplier")
            if not supplier:
                raise TableError(f"Zeile {number}, Feld „Lieferant“: Der Lieferant fehlt.")
            booked_on = parse_date(cell(table, raw, columns, "date"), row=number, label="Datum")
            amount = cell(table, raw, columns, "amount")
            if not amount:
                raise TableError(f"Zeile {number}, Feld „Betrag“: Der Betrag fehlt.")
            cents = parse_amount_cents(amount, row=number, label="Betrag")
        except TableError as exc:
            if not skip_invalid:
                raise
            skipped.append((number, exc.message))
            continue
        rows.append(
            {
                "row_number": number,
                "supplier": supplier[:300],
                "amount_cents": cents,
                "booked_on": booked_on,
                "reference": cell(table, raw, columns, "reference")[:100],
                "category": cell(table, raw, columns, "category")[:200],
                "unit": cell(table, raw, columns, "unit")[:200],
                "description": cell(table, raw, columns, "description")[:2000],
                "data": {
                    h: raw[i].strip()[:200] for i, h in extra if i < len(raw) and raw[i].strip()
                },
            }
        )
    if not rows:
        raise TableError(
            "Die Datei enthält keine verwendbare Zahlung"
            + (f" ({len(skipped)} Zeilen ohne gültiges Datum oder Betrag)." if skipped else ".")
        )
    return ParsedPayments(
        rows=rows,
        columns={name: table.headers[i] for name, i in columns.items()},
        skipped=skipped,
        notes=list(table.notes),
        total_rows=len(table.rows),
    )


def import_payments(
    session: Session,
    *,
    tenant: Tenant,
    data: bytes,
    filename: str,
    actor: str,
    store: OriginalStore,
    name: str = "",
    mapping: Mapping[str, str] | None = None,
    skip_invalid: bool = False,
) -> InsightDataset:
    """Parse everything, keep the original, then write the data set and its payments in the
    caller's transaction (nothing is written when a row fails)."""
    parsed = parse_payments(data, filename, mapping=mapping, skip_invalid=skip_invalid)
    stored = store.put(tenant.id, data)
    dates = [r["booked_on"] for r in parsed.rows]
    dataset = InsightDataset(
        tenant_id=tenant.id,
        kind=DATASET_KIND,
        name=(name or filename or "Zahlungsliste")[:300],
        filename=filename[:300],
        original_sha256=stored.sha256,
        rows=len(parsed.rows),
        mapping=parsed.columns,
        summary={
            "file_rows": parsed.total_rows,
            "skipped": len(parsed.skipped),
            "skipped_rows": [{"row": r, "reason": why} for r, why in parsed.skipped[:200]],
            "notes": parsed.notes,
            "first_date": min(dates).isoformat(),
            "last_date": max(dates).isoformat(),
            "total_cents": sum(r["amount_cents"] for r in parsed.rows),
            "suppliers": len({r["supplier"] for r in parsed.rows}),
        },
        created_by=actor,
    )
    session.add(dataset)
    session.flush()
    batch = 5000
    for start in range(0, len(parsed.rows), batch):
        session.execute(
            insert(Payment),
            [
                {"tenant_id": tenant.id, "dataset_id": dataset.id, **row}
                for row in parsed.rows[start : start + batch]
            ],
        )
    audit.record(
        session,
        audit.Event(
            kind="payments_imported",
            actor=actor,
            tenant_id=tenant.id,
            subject=f"insight_dataset:{dataset.id}",
            data={"file": filename, "rows": len(parsed.rows), "skipped": len(parsed.skipped)},
        ),
    )
    return dataset


# -- reading -------------------------------------------------------------------------------------


def datasets(session: Session, tenant: Tenant) -> list[InsightDataset]:
    return list(
        session.scalars(
            select(InsightDataset)
            .where(InsightDataset.tenant_id == tenant.id, InsightDataset.kind == DATASET_KIND)
            .order_by(InsightDataset.created_at.desc(), InsightDataset.id.desc())
        )
    )


def get_dataset(session: Session, tenant: Tenant, dataset_id: int) -> InsightDataset:
    dataset = session.get(InsightDataset, dataset_id)
    if dataset is None or dataset.tenant_id != tenant.id or dataset.kind != DATASET_KIND:
        raise NotFoundError(f"Die Zahlungsliste {dataset_id} gibt es nicht.")
    return dataset


def pays_of(session: Session, dataset: InsightDataset) -> list[Pay]:
    rows = session.execute(
        select(
            Payment.id,
            Payment.supplier,
            Payment.amount_cents,
            Payment.booked_on,
            Payment.reference,
            Payment.category,
            Payment.unit,
            Payment.row_number,
        ).where(Payment.dataset_id == dataset.id)
    )
    return [Pay(*r) for r in rows]


def dataset_benford(session: Session, dataset: InsightDataset, supplier: str = "") -> BenfordResult:
    query = select(Payment.amount_cents).where(Payment.dataset_id == dataset.id)
    if supplier:
        query = query.where(Payment.supplier == supplier)
    return benford(session.scalars(query))


def config_for(tenant: Tenant, **overrides: Any) -> CheckConfig:
    """The default thresholds with the tenant's Land for public holidays, then ``overrides``
    (``None`` values are ignored)."""
    base = CheckConfig(holiday_country="DE", holiday_subdiv=tenant.land or None)
    values = base.to_dict() | {k: v for k, v in overrides.items() if v is not None}
    return CheckConfig.from_dict(values)


@dataclass
class CheckReport:
    new: int = 0
    updated: int = 0
    removed: int = 0
    kept_decided: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "updated": self.updated,
            "removed": self.removed,
            "kept_decided": self.kept_decided,
            "counts": self.counts,
        }


def merge_findings(
    session: Session, dataset: InsightDataset, findings: list[Finding]
) -> CheckReport:
    """Bring the review queue of ``dataset`` in line with ``findings`` by key, keeping every
    human decision."""
    report = CheckReport(counts=dict(Counter(f.kind for f in findings)))
    existing = {
        flag.details.get("key", f"#{flag.id}"): flag
        for flag in session.scalars(select(BookingFlag).where(BookingFlag.dataset_id == dataset.id))
    }
    seen: set[str] = set()
    created: list[BookingFlag] = []
    for finding in findings:
        seen.add(finding.key)
        details = finding.details | {"key": finding.key}
        flag = existing.get(finding.key)
        if flag is None:
            flag = BookingFlag(
                tenant_id=dataset.tenant_id,
                dataset_id=dataset.id,
                kind=finding.kind,
                supplier=finding.supplier[:300],
                payment_ids=finding.payment_ids,
                score=finding.score,
                explanation=finding.explanation,
                details=details,
            )
            session.add(flag)
            created.append(flag)
            report.new += 1
        else:
            flag.explanation = finding.explanation
            flag.score = finding.score
            flag.supplier = finding.supplier[:300]
            flag.payment_ids = finding.payment_ids
            flag.details = details
            report.updated += 1
    removed: list[str] = []
    for key, flag in existing.items():
        if key in seen:
            continue
        if flag.status == "offen":
            removed.append(str(flag.id))
            session.delete(flag)
            report.removed += 1
        else:
            flag.details = flag.details | {"not_found_again": True}
            report.kept_decided += 1
    session.flush()
    _record_suggestions(session, dataset, created, removed)
    return report


def _record_suggestions(
    session: Session, dataset: InsightDataset, created: list[BookingFlag], removed: list[str]
) -> None:
    """Each new flag is an AI suggestion ("buchungspruefung") in the decision record; the
    suggestions of flags that were not found again are marked as replaced."""
    for flag in created:
        decisions.suggest(
            session,
            tenant_id=dataset.tenant_id,
            function="buchungspruefung",
            backend="regeln",
            model_version=flag.kind,
            input_sha256=decisions.sha256_text(f"{dataset.id}:{sorted(flag.payment_ids)}"),
            output={"kind": flag.kind, "score": flag.score, "explanation": flag.explanation},
            confidence=flag.score,
            subject_type="booking_flag",
            subject_id=flag.id,
        )
    for start in range(0, len(removed), 500):
        session.execute(
            update(AiSuggestion)
            .where(
                AiSuggestion.tenant_id == dataset.tenant_id,
                AiSuggestion.subject_type == "booking_flag",
                AiSuggestion.subject_id.in_(removed[start : start + 500]),
                AiSuggestion.decision.is_(None),
            )
            .values(decision="ersetzt", decided_at=utcnow())
        )
    session.flush()


def run_checks(
    session: Session, *, tenant: Tenant, dataset: InsightDataset, config: CheckConfig, actor: str
) -> CheckReport:
    """Run every enabled check on the data set and merge the findings into its queue."""
    findings = run_all_checks(pays_of(session, dataset), config)
    report = merge_findings(session, dataset, findings)
    dataset.summary = dataset.summary | {
        "checked_at": utcnow().isoformat(timespec="seconds"),
        "checked_by": actor,
        "config": config.to_dict(),
        "counts": report.counts,
    }
    audit.record(
        session,
        audit.Event(
            kind="booking_checks_run",
            actor=actor,
            tenant_id=tenant.id,
            subject=f"insight_dataset:{dataset.id}",
            data=report.to_dict(),
        ),
    )
    return report


def list_flags(
    session: Session,
    dataset: InsightDataset,
    *,
    kind: str = "",
    status: str = "",
    supplier: str = "",
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[BookingFlag], int]:
    """Flags of the data set, strongest first, filtered by kind, status and supplier text."""
    query = select(BookingFlag).where(BookingFlag.dataset_id == dataset.id)
    if kind:
        query = query.where(BookingFlag.kind == kind)
    if status:
        query = query.where(BookingFlag.status == status)
    if supplier:
        query = query.where(func.lower(BookingFlag.supplier).contains(supplier.lower()))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    query = query.order_by(BookingFlag.score.desc(), BookingFlag.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query)), total


def flag_counts(session: Session, dataset: InsightDataset) -> dict[str, dict[str, int]]:
    """Number of flags per kind and status."""
    rows = session.execute(
        select(BookingFlag.kind, BookingFlag.status, func.count())
        .where(BookingFlag.dataset_id == dataset.id)
        .group_by(BookingFlag.kind, BookingFlag.status)
    )
    counts: dict[str, dict[str, int]] = {}
    for kind, status, n in rows:
        counts.setdefault(kind, {})[status] = n
    return counts


def get_flag(session: Session, tenant: Tenant, flag_id: int) -> BookingFlag:
    flag = session.get(BookingFlag, flag_id)
    if flag is None or flag.tenant_id != tenant.id:
        raise NotFoundError(f"Den Prüfhinweis {flag_id} gibt es nicht.")
    return flag


def payments_of(session: Session, flag: BookingFlag, limit: int = 500) -> list[Payment]:
    ids = list(flag.payment_ids)[:limit]
    if not ids:
        return []
    return list(
        session.scalars(
            select(Payment)
            .where(Payment.dataset_id == flag.dataset_id, Payment.id.in_(ids))
            .order_by(Payment.booked_on, Payment.id)
        )
    )


def decide(
    session: Session, *, tenant: Tenant, flag_id: int, status: str, note: str, actor: str
) -> BookingFlag:
    """A person's decision on a flag (``unauffaellig`` or ``pruefen``), recorded in the audit log."""
    if status not in DECISIONS:
        raise BookingError(
            "Bitte eine Entscheidung wählen: „unauffällig“ (unauffaellig) oder „prüfen“ (pruefen)."
        )
    note = note.strip()
    if len(note) > 4000:
        raise BookingError("Die Notiz ist zu lang (höchstens 4000 Zeichen).")
    flag = get_flag(session, tenant, flag_id)
    previous = flag.status
    flag.status = status
    flag.decision_note = note
    flag.decided_by = actor
    flag.decided_at = utcnow()
    suggestion = decisions.latest_for(
        session,
        tenant_id=tenant.id,
        subject_type="booking_flag",
        subject_id=flag.id,
        function="buchungspruefung",
    )
    if suggestion is not None:  # flags from before the decision record have none
        decisions.decide(
            session,
            suggestion,
            decision="angenommen" if status == "pruefen" else "abgelehnt",
            user=session.scalar(
                select(User).where(User.tenant_id == tenant.id, User.username == actor)
            ),
            actor=actor,
            final={"status": status},
            at=flag.decided_at,
        )
    audit.record(
        session,
        audit.Event(
            kind="booking_flag_decided",
            actor=actor,
            tenant_id=tenant.id,
            subject=f"booking_flag:{flag.id}",
            data={"from": previous, "to": status, "note": note, "kind": flag.kind},
        ),
    )
    session.flush()
    return flag


def delete_dataset(session: Session, *, tenant: Tenant, dataset_id: int, actor: str) -> None:
    dataset = get_dataset(session, tenant, dataset_id)
    flag_ids = session.scalars(
        select(BookingFlag.id).where(BookingFlag.dataset_id == dataset.id)
    ).all()
    decisions.forget_subjects(session, "booking_flag", list(flag_ids))
    session.execute(delete(BookingFlag).where(BookingFlag.dataset_id == dataset.id))
    session.execute(delete(Payment).where(Payment.dataset_id == dataset.id))
    session.delete(dataset)
    audit.record(
        session,
        audit.Event(
            kind="payments_deleted",
            actor=actor,
            tenant_id=tenant.id,
            subject=f"insight_dataset:{dataset_id}",
            data={"name": dataset.name},
        ),
    )


# -- export --------------------------------------------------------------------------------------

EXPORT_HEADERS = (
    "Nr.",
    "Prüfung",
    "Lieferant",
    "Zahlungen",
    "Zeilen in der Datei",
    "Gewicht",
    "Erläuterung",
    "Status",
    "Notiz",
    "Entschieden von",
    "Entschieden am",
)


def export_rows(session: Session, dataset: InsightDataset, **filters: Any) -> list[list[Any]]:
    flags, _ = list_flags(session, dataset, **filters)
    rows_of = dict(
        session.execute(
            select(Payment.id, Payment.row_number).where(Payment.dataset_id == dataset.id)
        ).all()
    )
    out = []
    for flag in flags:
        out.append(
            [
                flag.id,
                KINDS.get(flag.kind, flag.kind),
                flag.supplier,
                len(flag.payment_ids),
                ", ".join(str(rows_of.get(i, "?")) for i in flag.payment_ids[:50]),
                round(flag.score, 3),
                flag.explanation,
                STATUSES.get(flag.status, flag.status),
                flag.decision_note,
                flag.decided_by,
                flag.decided_at.replace(microsecond=0) if flag.decided_at else None,
            ]
        )
    return out


def parse_thresholds(text: str) -> tuple[int, ...]:
    """``"1000; 5.000; 25000"`` (whole currency units) → cents, sorted; German message if not."""
    values = []
    for part in text.replace(";", " ").replace("\n", " ").split():
        try:
            units = (
                float(part.replace(".", "").replace(",", "."))
                if "," in part or part.count(".") > 1
                else float(part)
            )
        except ValueError:
            raise BookingError(
                f"„{part}“ ist keine Wertgrenze. Bitte ganze Beträge angeben, z. B. 1000; 25000."
            ) from None
        if units <= 0:
            raise BookingError("Wertgrenzen müssen größer als 0 sein.")
        values.append(round(units * 100))
    if not values:
        raise BookingError("Bitte mindestens eine Wertgrenze angeben, z. B. 1000; 25000.")
    return tuple(sorted(set(values)))
