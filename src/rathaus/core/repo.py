"""Tenant-scoped queries: the one place that adds ``tenant_id`` to every lookup."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from rathaus.core.errors import NotFoundError
from rathaus.core.models import Tenant

M = TypeVar("M")


def scoped(model: type[M], tenant_id: int) -> Select[tuple[M]]:
    """``SELECT model WHERE tenant_id = :tenant_id`` – start every query of tenant data here."""
    return select(model).where(model.tenant_id == tenant_id)  # type: ignore[attr-defined]


def get(session: Session, model: type[M], *, tenant_id: int, id: int, label: str = "Eintrag") -> M:
    """The row ``id`` of ``model`` in the tenant, or :class:`NotFoundError` (also for other tenants)."""
    row = session.scalar(scoped(model, tenant_id).where(model.id == id))  # type: ignore[attr-defined]
    if row is None:
        raise NotFoundError(f"{label} {id} wurde nicht gefunden.")
    return row


def tenant_by_slug(session: Session, slug: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFoundError(
            f"Die Kommune „{slug}“ gibt es in dieser Installation nicht. "
            "Bitte mit `rathaus demo` laden oder RATHAUS_DEFAULT_TENANT prüfen."
        )
    return tenant


def count(session: Session, query: Select[Any]) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(query.subquery())) or 0
