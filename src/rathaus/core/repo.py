"""Tenant lookups shared by the CLI and the service functions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.core.errors import NotFoundError
from rathaus.core.models import Tenant


def tenant_by_slug(session: Session, slug: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFoundError(
            f"Die Kommune „{slug}“ gibt es in dieser Installation nicht. "
            "Bitte mit `rathaus demo` laden oder RATHAUS_DEFAULT_TENANT prüfen."
        )
    return tenant
