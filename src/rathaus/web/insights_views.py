"""The Lagebild under /lagebild: the dashboard page and the sub-navigation of its functions.

Every Lagebild page extends ``insights_base.html`` and passes :func:`nav_context` so the
sub-navigation lists the functions; viewing needs ``Permission.VIEW_INSIGHTS``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from rathaus.core.roles import Permission
from rathaus.web.deps import CurrentTenant, require
from rathaus.web.templating import render

router = APIRouter(include_in_schema=False)

VIEW = Depends(require(Permission.VIEW_INSIGHTS))

NAV = (
    ("/lagebild", "Kennzahlen"),
    ("/lagebild/prognose", "Prognose"),
    ("/lagebild/prozesse", "Prozesse"),
    ("/lagebild/buchungen", "Buchungsprüfung"),
    ("/lagebild/winterdienst", "Winterdienst"),
)


def nav_context(tenant: Any, **extra: Any) -> dict[str, Any]:
    """Template context every Lagebild page starts from."""
    return {"tenant": tenant, "insights_nav": NAV, **extra}


@router.get("/lagebild", dependencies=[VIEW])
def dashboard(request: Request, tenant: CurrentTenant) -> Response:
    return render(request, "insights_dashboard.html", nav_context(tenant))
