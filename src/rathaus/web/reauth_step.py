"""The confirmation step for critical actions started from a row of a table or list (ASVS 3.7.1).

Removing an Eingangsquelle or a retention rule, deleting a forecast data set and activating or
rolling back a routing model are buttons in a row; a password field in every row would crowd the
table. So the row's button sends no password: within the five minutes of a confirmation
(:mod:`rathaus.web.reauth`) the action runs at once, else the page answers with a card for that
one item (``templates/_reauth_step.html``) that asks for the password and repeats the action.
The first answer shows no error (nothing was typed yet); the card's own form carries
``schritt=bestaetigen``, so an empty or wrong password sent from it is named next to the field.
"""

from __future__ import annotations

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
