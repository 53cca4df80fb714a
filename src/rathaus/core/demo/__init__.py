"""The demo municipality Musterstadt: its data files and the demo logins shown on the login page.

Importing this package reads no database and loads no ORM; :mod:`rathaus.core.demo.loader` does
the loading.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

DEMO_DIR = Path(__file__).resolve().parent


def read_demo_file(name: str) -> dict[str, Any]:
    """One JSON file of the demo package, e.g. ``musterstadt.json``."""
    with (DEMO_DIR / name).open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@cache
def _credentials() -> tuple[tuple[str, str, str], ...]:
    from rathaus.core.roles import ROLE_LABELS

    labels = {str(role): label for role, label in ROLE_LABELS.items()}
    data = read_demo_file("musterstadt.json")
    unit_names = {unit["code"]: unit["name"] for unit in data["org_units"]}
    rows = []
    for user in data["users"]:
        roles = ", ".join(labels.get(r, r) for r in user["roles"])
        units = ", ".join(unit_names.get(code, code) for code in user["org_units"])
        rows.append((user["username"], user["password"], f"{roles} ({units})" if units else roles))
    return tuple(rows)


def demo_credentials() -> list[dict[str, str]]:
    """The demo logins (username, password, German description); only for demo mode."""
    return [{"username": u, "password": p, "description": d} for u, p, d in _credentials()]
