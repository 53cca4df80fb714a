"""The confirmation step for critical actions started from a row of a table or list (ASVS 3.7.1).

Removing an Eingangsquelle or a retention rule, deleting a forecast data set and activating or
rolling back a routing model are buttons in a row; a password field in every row would crowd the
table. So the row's button sends no password: within the five minutes of a confirmation
(:mod:`rathaus.web.reauth`) the action runs at once, else the page answers with a card for that
one item (``templates/_reauth_step.html``) that asks for the password and repeats the action.
The first answer shows no error (nothing was typed yet); the card's own form carries
``schritt=bestaetigen``, so an empty or wrong password sent from it is named next to the field.

An action that no command on the server does (rules, automatic routing, knowledge entries,
forecast data sets) confirms through :func:`confirm_without_command`, with a card or with the
form's own password field.
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session

from rathaus.core.models import User
from rathaus.web import reauth

FIELD = "schritt"
REPEATED = "bestaetigen"


def step_error(gate: reauth.Gate, *, password: str, step: str) -> str:
    """The error for the card: none on the first step (the row's button, no password sent)."""
    if gate.status_code == 401 and not password and step != REPEATED:
        return ""
    return gate.error


def without_command(gate: reauth.Gate, user: User, *, what: str, instead: str = "") -> str:
    """``gate.error``, except for an account without a password (SSO) refused for an action
    that has no command on the server, where reauth's pointer to the command line would lead
    nowhere: then what such an account can do instead."""
    if gate.status_code != 403 or user.password_hash is not None:
        return gate.error
    return (
        "Ihr Konto meldet sich über den Anmeldedienst (SSO) an und hat kein Passwort in Rathaus, "
        f"mit dem Sie {what} bestätigen könnten; ausgeführt wurde nichts. Bitte lassen Sie es "
        f"von einer Person mit denselben Rechten ausführen, die sich mit Passwort anmeldet{instead}."
    )


def confirm_without_command(
    request: Request,
    session: Session,
    user: User,
    *,
    password: str,
    action: str,
    what: str,
    step: str | None = None,
    instead: str = "",
) -> tuple[reauth.Gate, str]:
    """:func:`rathaus.web.reauth.confirm` for an action that no command on the server does: the
    gate and the error to show. ``step`` is the ``schritt`` a row's button sends (its card's
    :func:`step_error`), ``None`` for a form with its own password field; an account without a
    password is told what it can do instead (:func:`without_command`)."""
    gate = reauth.confirm(request, session, password=password, action=action)
    if step is not None and gate.status_code == 401:
        return gate, step_error(gate, password=password, step=step)
    return gate, without_command(gate, user, what=what, instead=instead)
