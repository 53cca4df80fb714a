"""``rathaus users``: create and disable staff accounts, set roles and departments."""

from __future__ import annotations

import sys

import typer

from rathaus.cli.common import database, settings
from rathaus.core import users
from rathaus.core.roles import ROLE_LABELS
from rathaus.core.security import hash_password

app = typer.Typer(
    help="Beschäftigte verwalten: anlegen, sperren, Rollen und Ämter.", no_args_is_help=True
)

TenantOpt = typer.Option(
    None, "--kommune", help="Kommune (Kürzel); Standard: RATHAUS_DEFAULT_TENANT."
)


def _tenant(value: str | None) -> str:
    return value or settings().default_tenant


RULES_HELP = (
    "mindestens 12 Zeichen und kein bekanntes Passwort aus Datenlecks (auch nicht mit "
    "angehängten Ziffern oder Satzzeichen)"
)


def _read_password(password_stdin: bool) -> str:
    """The new password, checked before anything else happens (length, list of breached
    passwords: :func:`rathaus.core.users.check_password`)."""
    if password_stdin:
        secret = sys.stdin.readline().rstrip("\n")
    else:
        secret = typer.prompt("Passwort", hide_input=True, confirmation_prompt=True)
    users.check_password(secret)
    return secret


@app.command("list")
def list_(kommune: str | None = TenantOpt) -> None:
    """Alle Personen der Kommune mit Rollen und Ämtern."""
    with database().session() as session:
        for u in users.list_users(session, tenant_slug=_tenant(kommune)):
            roles = ", ".join(sorted(u.roles)) or "–"
            units = ", ".join(sorted(m.org_unit.code for m in u.memberships)) or "–"
            state = "aktiv" if u.is_active else "gesperrt"
            typer.echo(f"{u.username:<20} {state:<9} Rollen: {roles:<40} Ämter: {units}")


@app.command("create")
def create(
    username: str = typer.Argument(..., help="Benutzername"),
    name: str = typer.Option("", "--name", help="Anzeigename"),
    email: str = typer.Option("", "--email"),
    role: list[str] = typer.Option(
        [], "--role", help="Rolle (mehrfach): " + ", ".join(r.value for r in ROLE_LABELS)
    ),
    unit: list[str] = typer.Option([], "--unit", help="Organisationseinheit (Kürzel, mehrfach)"),
    password_stdin: bool = typer.Option(
        False,
        "--password-stdin",
        help=f"Passwort von der Standardeingabe lesen ({RULES_HELP}).",
    ),
    no_password: bool = typer.Option(False, "--no-password", help="Nur Anmeldung über OIDC."),
    kommune: str | None = TenantOpt,
) -> None:
    """Eine Person anlegen."""
    password = None if no_password else _read_password(password_stdin)
    with database().session() as session:
        user = users.create(
            session,
            tenant_slug=_tenant(kommune),
            username=username,
            password=password,
            password_hasher=hash_password,
            display_name=name,
            email=email,
            roles=role,
            unit_codes=unit,
        )
        typer.echo(f"Angelegt: {user.username} (Rollen: {', '.join(sorted(user.roles)) or '–'})")


@app.command("disable")
def disable(username: str, kommune: str | None = TenantOpt) -> None:
    """Eine Person sperren (alle Sitzungen enden sofort)."""
    with database().session() as session:
        users.set_active(session, tenant_slug=_tenant(kommune), username=username, active=False)
    typer.echo(f"Gesperrt: {username}")


@app.command("enable")
def enable(username: str, kommune: str | None = TenantOpt) -> None:
    """Eine gesperrte Person wieder freischalten."""
    with database().session() as session:
        users.set_active(session, tenant_slug=_tenant(kommune), username=username, active=True)
    typer.echo(f"Freigeschaltet: {username}")


@app.command("roles")
def roles(
    username: str,
    role: list[str] = typer.Option(..., "--role", help="Neue Rollen (ersetzen die bisherigen)."),
    kommune: str | None = TenantOpt,
) -> None:
    """Rollen einer Person setzen."""
    with database().session() as session:
        user = users.set_roles(session, tenant_slug=_tenant(kommune), username=username, roles=role)
        typer.echo(f"{username}: {', '.join(sorted(user.roles))}")


@app.command("units")
def units(
    username: str,
    unit: list[str] = typer.Option(
        ..., "--unit", help="Organisationseinheiten (Kürzel; ersetzen die bisherigen)."
    ),
    kommune: str | None = TenantOpt,
) -> None:
    """Organisationseinheiten einer Person setzen."""
    with database().session() as session:
        users.set_units(session, tenant_slug=_tenant(kommune), username=username, unit_codes=unit)
    typer.echo(f"{username}: {', '.join(unit)}")


@app.command("password")
def password(
    username: str,
    password_stdin: bool = typer.Option(
        False,
        "--password-stdin",
        help=f"Passwort von der Standardeingabe lesen ({RULES_HELP}).",
    ),
    kommune: str | None = TenantOpt,
) -> None:
    """Passwort einer Person neu setzen (beendet ihre Sitzungen); mindestens 12 Zeichen, kein
    bekanntes Passwort aus Datenlecks."""
    secret = _read_password(password_stdin)
    with database().session() as session:
        users.set_password(
            session,
            tenant_slug=_tenant(kommune),
            username=username,
            password=secret,
            password_hasher=hash_password,
        )
    typer.echo(f"Passwort geändert: {username}")


@app.command("zweiter-faktor-zuruecksetzen")
def reset_second_factor(username: str, kommune: str | None = TenantOpt) -> None:
    """Zweiten Faktor (TOTP) einer Person zurücksetzen, etwa nach Verlust des Geräts: Schlüssel
    und Wiederherstellungscodes werden gelöscht, alle Sitzungen der Person enden (Prüfprotokoll:
    second_factor_reset). Verlangt die Richtlinie einen Faktor, richtet sie ihn bei der nächsten
    Anmeldung neu ein."""
    from rathaus.core import second_factor

    with database().session() as session:
        was_active = second_factor.reset(session, tenant_slug=_tenant(kommune), username=username)
    if was_active:
        typer.echo(f"Zweiter Faktor zurückgesetzt: {username} (alle Sitzungen beendet)")
    else:
        typer.echo(
            f"{username} hatte keinen eingerichteten zweiten Faktor; angefangene Einrichtungen "
            "und alle Sitzungen wurden trotzdem beendet."
        )
