"""Roles and what they may do; checked in one place for every route and command."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    ADMIN = "admin"
    SACHBEARBEITUNG = "sachbearbeitung"
    LEITUNG = "fachbereichsleitung"
    DATENSCHUTZ = "datenschutz"
    REDAKTION = "redaktion"


ROLE_LABELS = {
    Role.ADMIN: "Administration",
    Role.SACHBEARBEITUNG: "Sachbearbeitung",
    Role.LEITUNG: "Fachbereichsleitung",
    Role.DATENSCHUTZ: "Datenschutz",
    Role.REDAKTION: "Redaktion",
}


class Permission(enum.StrEnum):
    VIEW_CASES = "cases.view"
    EDIT_CASES = "cases.edit"
    VIEW_ALL_DEPARTMENTS = "cases.view_all"
    MANAGE_USERS = "users.manage"
    VIEW_AUDIT = "audit.view"
    VIEW_INSIGHTS = "insights.view"
    # Import data into the Lagebild, decide booking flags, plan winter-service routes.
    MANAGE_INSIGHTS = "insights.manage"
    EDIT_KNOWLEDGE = "knowledge.edit"
    USE_WRITING = "writing.use"
    MANAGE_SETTINGS = "settings.manage"
    TRIAGE = "cases.triage"
    # Open cases marked ``vertraulich`` (still only those of the own departments).
    VIEW_CONFIDENTIAL = "cases.view_confidential"
    # See the original personal data behind the gateway's placeholders in model output.
    REIDENTIFY = "pii.reidentify"
    # Retention rules, DSGVO Art. 15 access and Art. 17 erasure requests, the access log.
    MANAGE_PRIVACY = "privacy.manage"


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # Administration runs the installation but reads no confidential case content.
    Role.ADMIN: frozenset(Permission) - {Permission.VIEW_CONFIDENTIAL},
    Role.SACHBEARBEITUNG: frozenset(
        {
            Permission.VIEW_CASES,
            Permission.EDIT_CASES,
            Permission.USE_WRITING,
            Permission.VIEW_CONFIDENTIAL,
            Permission.REIDENTIFY,
        }
    ),
    Role.LEITUNG: frozenset(
        {
            Permission.VIEW_CASES,
            Permission.EDIT_CASES,
            Permission.VIEW_INSIGHTS,
            Permission.MANAGE_INSIGHTS,
            Permission.USE_WRITING,
            Permission.TRIAGE,
            Permission.VIEW_CONFIDENTIAL,
            Permission.REIDENTIFY,
        }
    ),
    Role.DATENSCHUTZ: frozenset(
        {Permission.VIEW_AUDIT, Permission.VIEW_INSIGHTS, Permission.MANAGE_PRIVACY}
    ),
    Role.REDAKTION: frozenset({Permission.EDIT_KNOWLEDGE, Permission.USE_WRITING}),
}


def permissions_of(roles: set[str]) -> frozenset[Permission]:
    granted: set[Permission] = set()
    for name in roles:
        try:
            granted |= PERMISSIONS[Role(name)]
        except ValueError:
            continue  # an unknown role grants nothing
    return frozenset(granted)


def parse_role(name: str) -> Role:
    from rathaus.core.errors import RathausError

    try:
        return Role(name)
    except ValueError as exc:
        allowed = ", ".join(r.value for r in Role)
        raise RathausError(f"Unbekannte Rolle „{name}“. Erlaubt sind: {allowed}.") from exc
