"""The sub-navigation of the Governance pages under /governance, filtered by permission.

Every Governance page extends ``governance_base.html`` and passes :func:`nav_context`.
"""

from __future__ import annotations

from typing import Any

from rathaus.core.models import User
from rathaus.core.roles import Permission, permissions_of

# (href, label, permission needed to see the entry; None: every signed-in person)
NAV: tuple[tuple[str, str, Permission | None], ...] = (
    ("/governance", "Übersicht", None),
    ("/governance/protokoll", "Prüfprotokoll", Permission.VIEW_AUDIT),
    ("/governance/entscheidungen", "KI-Entscheidungen", Permission.VIEW_AUDIT),
    ("/governance/ki-register", "KI-Register", None),
    ("/governance/modelle", "Modelle & Richtlinien", Permission.VIEW_AUDIT),
    ("/governance/datenschutz", "Datenschutz", Permission.MANAGE_PRIVACY),
)


def visible_nav(user: User) -> list[tuple[str, str]]:
    granted = permissions_of(user.roles)
    return [(href, label) for href, label, need in NAV if need is None or need in granted]


def nav_context(user: User, tenant: Any, **extra: Any) -> dict[str, Any]:
    """Template context every Governance page starts from."""
    return {"tenant": tenant, "governance_nav": visible_nav(user), **extra}
