"""``rathaus governance``: Governance: Pseudonymisierungsschlüssel und Modellrichtlinien."""

from __future__ import annotations

import json
from typing import Any

import typer

app = typer.Typer(
    help="Governance: Pseudonymisierungsschlüssel und Modellrichtlinien.", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """Governance: Pseudonymisierungsschlüssel und Modellrichtlinien."""


@app.command("schluessel-erzeugen")
def schluessel_erzeugen() -> None:
    """Einen neuen Schlüssel für die Zuordnungstabellen der Pseudonymisierung ausgeben."""
    from rathaus.governance.keys import KEYS_SETTING, generate_key, key_id

    key = generate_key()
    typer.echo(key)
    typer.echo(
        f"Schlüssel-ID {key_id(key)}. Vorn in {KEYS_SETTING} eintragen (die bisherigen dahinter "
        "lassen) und danach `rathaus governance schluessel-rotieren` ausführen.",
        err=True,
    )


@app.command("schluessel-rotieren")
def schluessel_rotieren() -> None:
    """Alle Zuordnungstabellen mit dem ersten Schlüssel neu verschlüsseln."""
    from rathaus.cli.common import database, settings
    from rathaus.core.errors import RathausError
    from rathaus.governance.keys import KEYS_SETTING, Keyring, rotate

    s = settings()
    keyring = Keyring.from_settings(s)
    db = database(s)
    with db.session() as session:
        result = rotate(session, keyring)
    db.dispose()
    source = "aus RATHAUS_SECRET_KEY abgeleitet" if keyring.derived else "erster Schlüssel"
    typer.echo(f"Aktueller Schlüssel: {result.current_id} ({source}).")
    typer.echo(
        f"Neu verschlüsselt: {result.rotated}, schon aktuell: {result.unchanged}, "
        f"nicht lesbar: {len(result.unreadable)}."
    )
    if result.unreadable:
        needed = sorted({kid for _, _, kid in result.unreadable})
        scopes = ", ".join(scope for _, scope, _ in result.unreadable[:5])
        more = " …" if len(result.unreadable) > 5 else ""
        raise RathausError(
            f"{len(result.unreadable)} Zuordnungstabelle(n) ({scopes}{more}) sind mit "
            f"Schlüssel(n) {', '.join(needed)} verschlüsselt, den/die keiner der konfigurierten "
            f"Schlüssel öffnet. Sie bleiben unverändert. Bitte den alten Schlüssel wieder in "
            f"{KEYS_SETTING} aufnehmen (hinter den aktuellen) und erneut rotieren."
        )


@app.command("richtlinien")
def richtlinien(
    as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    kommune: str | None = typer.Option(
        None, "--kommune", help="Die wirksame Richtlinie dieser Kommune (mit ihrer eigenen)."
    ),
) -> None:
    """Modellrichtlinie je Vertraulichkeitsstufe und die konfigurierten Modelle mit ihrem Ort.

    Mit --kommune die für diese Kommune wirksame Richtlinie (eigene Stufen ersetzen die der
    Installation). Exit-Code 1, wenn die Richtlinie für eine Stufe jedes konfigurierte Modell
    verbietet.
    """
    from rathaus.cli.common import settings
    from rathaus.core.errors import RathausError
    from rathaus.governance import policy

    s = settings()
    overrides = _tenant_policies(s, kommune) if kommune else None
    models = policy.configured_models(s)
    rows = policy.matrix(s, overrides)
    problems = policy.problems(s, overrides, kommune)
    if as_json:
        data = {
            "modelle": [
                {
                    "funktion": m.kind,
                    "server": m.server or None,
                    "backend": m.backend,
                    "modell": m.model,
                    "ort": m.location,
                }
                for m in models
            ],
            "richtlinie": {
                row.level: {
                    "erlaubt": row.allowed,
                    "modelle": {m.key: ok for m, ok in row.models},
                }
                for row in rows
            },
            "probleme": problems,
        }
        if kommune:
            data["kommune"] = {"kuerzel": kommune, "eigene_stufen": sorted(overrides or {})}
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        typer.echo("Konfigurierte Modelle:")
        for m in models:
            typer.echo(f"  {m.label:<18} {m.backend:<8} {m.model:<40} {m.location}")
        title = f"Kommune {kommune}" if kommune else "RATHAUS_GOVERNANCE__POLICIES"
        typer.echo(f"\nRichtlinie ({title}):")
        for row in rows:
            verdicts = ", ".join(
                f"{m.label} {'erlaubt' if ok else 'gesperrt'}" for m, ok in row.models
            )
            own = "  (eigene der Kommune)" if overrides and row.level in overrides else ""
            typer.echo(
                f"  {row.label:<12} erlaubt: {', '.join(row.allowed) or '–':<32} {verdicts}{own}"
            )
    if problems:
        raise RathausError(" ".join(problems))


def _tenant_policies(s: Any, slug: str) -> dict[str, list[str]]:
    """The tenant's own policy levels (``rathaus mandanten richtlinie``)."""
    from rathaus.cli.common import database
    from rathaus.core import tenants

    with database(s).session() as session:
        return tenants.model_policies(session, tenants.get(session, slug=slug).id)
