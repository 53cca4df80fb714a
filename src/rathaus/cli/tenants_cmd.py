"""``rathaus mandanten``: tenants for an IT service provider: create, list, lock, quota, policy."""

from __future__ import annotations

import json
from typing import Any

import typer

from rathaus.cli.common import database, settings
from rathaus.core import tenants
from rathaus.core.errors import RathausError
from rathaus.writing import bank

app = typer.Typer(
    help="Kommunen (Mandanten) verwalten: anlegen, sperren, Kontingente, Modellrichtlinien und "
    "Bankverbindung für Briefe.",
    no_args_is_help=True,
)

SlugArg = typer.Argument(..., help="Kürzel der Kommune, z. B. bad-saeckingen")


def _limit(value: int | None) -> str:
    return tenants.NO_LIMIT if value is None else str(value)


@app.command("anlegen")
def anlegen(
    slug: str = SlugArg,
    name: str = typer.Option(..., "--name", help="Name, z. B. „Stadt Bad Säckingen“"),
    land: str = typer.Option("BW", "--land", help="Bundesland (Kürzel) für die Feiertage"),
    praefix: str | None = typer.Option(
        None,
        "--aktenzeichen-praefix",
        help="Erster Teil der Aktenzeichen (Standard: aus dem Kürzel)",
    ),
    vorlage: str = typer.Option(
        "standard",
        "--vorlage",
        help="standard: übliche Fachbereiche, Ämter und Leistungen ohne Vorgänge; leer: nichts",
    ),
    strasse: str = typer.Option("", "--strasse", help="Anschrift (Absender der Briefe)"),
    plz: str = typer.Option("", "--plz"),
    ort: str = typer.Option("", "--ort", help="Standard: der Name ohne „Stadt“/„Gemeinde“"),
    telefon: str = typer.Option("", "--telefon"),
    email: str = typer.Option("", "--email"),
    website: str = typer.Option("", "--website"),
) -> None:
    """Eine Kommune anlegen."""
    address = tenants.Address(strasse, plz, ort, telefon, email, website)
    with database().session() as session:
        tenant = tenants.create(
            session,
            slug=slug,
            name=name,
            land=land,
            reference_prefix=praefix,
            template=vorlage,
            address=address,
        )
        found = tenants.details(session, slug=tenant.slug)
        typer.echo(
            f"Angelegt: {tenant.name} ({tenant.slug}), {found.org_units} Organisationseinheiten, "
            f"{found.services} Leistungen, Aktenzeichen {tenant.reference_prefix}-JJJJ-NNNNNN."
        )
        typer.echo(
            f"Nächster Schritt: `rathaus users create admin --role admin --kommune {tenant.slug}`."
        )


@app.command("liste")
def liste(as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben.")) -> None:
    """Alle Kommunen mit Zustand, Personen, Vorgängen und Kontingent."""
    with database().session() as session:
        rows = tenants.list_tenants(session)
        if as_json:
            typer.echo(json.dumps([_overview(r) for r in rows], ensure_ascii=False, indent=2))
            return
        if not rows:
            typer.echo("Noch keine Kommune. `rathaus mandanten anlegen KÜRZEL --name …`")
            return
        for r in rows:
            state = "aktiv" if r.tenant.is_active else "gesperrt"
            quota = (
                f"{_limit(r.requests_per_minute)} Anfragen/min, "
                f"{_limit(r.tokens_per_minute)} Tokens/min"
            )
            own = " eigene Richtlinie" if r.policies else ""
            typer.echo(
                f"{r.tenant.slug:<24} {state:<9} {r.tenant.name[:36]:<36} {r.users:>5} Personen "
                f"{r.cases:>7} Vorgänge  {quota}{own}"
            )


def _overview(r: tenants.TenantOverview) -> dict[str, Any]:
    t = r.tenant
    return {
        "kuerzel": t.slug,
        "name": t.name,
        "aktiv": t.is_active,
        "land": t.land,
        "aktenzeichen_praefix": t.reference_prefix,
        "personen": r.users,
        "vorgaenge": r.cases,
        "anfragen_pro_minute": r.requests_per_minute,
        "tokens_pro_minute": r.tokens_per_minute,
        "richtlinie": r.policies,
    }


@app.command("zeigen")
def zeigen(
    slug: str = SlugArg,
    as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
) -> None:
    """Eine Kommune: Anschrift, Umfang, Kontingent mit Verbrauch, wirksame Modellrichtlinie."""
    from rathaus.governance import policy, quota

    s = settings()
    db = database(s)
    with db.session() as session:
        found = tenants.details(session, slug=slug)
        t = found.tenant
        effective = policy.effective_policies(s, found.policies)
        minute = int(quota.clock() // 60)
        counter = quota.counter_for(db.engine)
        now = counter.minute(t.id, minute) if counter else quota.Usage()
        hour = counter.since(t.id, minute - 59) if counter else quota.Usage()
        data = _overview(found) | {
            "anschrift": {
                "strasse": t.street,
                "plz": t.postal_code,
                "ort": t.city,
                "telefon": t.phone,
                "email": t.email,
                "website": t.website,
            },
            "angelegt": tenants.created_label(t),
            "organisationseinheiten": found.org_units,
            "leistungen": found.services,
            "wirksame_richtlinie": effective,
            "verbrauch": {
                "diese_minute": now.__dict__,
                "letzte_stunde": hour.__dict__,
            },
            "hinweise": found.warnings,
        }
        details = bank.get(session, tenant_id=t.id)
        data["bankverbindung"] = details.footer() if details else ""
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    state = "aktiv" if t.is_active else "gesperrt"
    typer.echo(f"{t.name} ({t.slug}), {state}, angelegt {data['angelegt']}")
    address = ", ".join(p for p in (t.street, f"{t.postal_code} {t.city}".strip()) if p)
    typer.echo(f"  Anschrift:      {address or '–'}")
    typer.echo(f"  Land:           {t.land} ({tenants.LAENDER.get(t.land, '?')})")
    typer.echo(f"  Aktenzeichen:   {t.reference_prefix}-JJJJ-NNNNNN")
    typer.echo(
        f"  Umfang:         {found.org_units} Einheiten, {found.services} Leistungen, "
        f"{found.users} Personen, {found.cases} Vorgänge"
    )
    typer.echo(
        f"  Kontingent:     {_limit(found.requests_per_minute)} Anfragen/min, "
        f"{_limit(found.tokens_per_minute)} Tokens/min"
    )
    typer.echo(
        f"  Verbrauch:      diese Minute {now.requests} Anfragen, {now.tokens} Tokens, "
        f"{now.refused} abgelehnt; letzte Stunde {hour.requests} Anfragen, {hour.tokens} "
        f"Tokens, {hour.refused} abgelehnt"
    )
    typer.echo("  Modellrichtlinie (wirksam):")
    for level, allowed in effective.items():
        own = "  (eigene Richtlinie der Kommune)" if level in found.policies else ""
        typer.echo(f"    {level:<12} {', '.join(allowed) or 'keine Modelle'}{own}")
    typer.echo(f"  Bankverbindung: {data['bankverbindung'] or '–'}")
    for warning in found.warnings:
        typer.secho(f"Hinweis: {warning}", fg=typer.colors.YELLOW)


@app.command("sperren")
def sperren(slug: str = SlugArg) -> None:
    """Eine Kommune sperren: keine Anmeldung, öffentliche Zugänge antworten 404, keine Modellaufrufe."""
    with database().session() as session:
        ended = tenants.set_active(session, slug=slug, active=False)
    typer.echo(f"Gesperrt: {slug} ({ended} Anmeldesitzung(en) beendet).")


@app.command("entsperren")
def entsperren(slug: str = SlugArg) -> None:
    """Eine gesperrte Kommune wieder freigeben."""
    with database().session() as session:
        tenants.set_active(session, slug=slug, active=True)
    typer.echo(f"Entsperrt: {slug}.")


@app.command("kontingent")
def kontingent(
    slug: str = SlugArg,
    anfragen: str | None = typer.Option(
        None,
        "--anfragen-pro-minute",
        help="Sprachmodell-Aufrufe je Minute (Zahl ab 1 oder „unbegrenzt“)",
    ),
    tokens: str | None = typer.Option(
        None, "--tokens-pro-minute", help="Tokens (Eingabe + Ausgabe) je Minute, oder „unbegrenzt“"
    ),
) -> None:
    """Kontingent der Kommune für Sprachmodell-Aufrufe setzen (gilt sofort in allen Prozessen)."""
    if anfragen is None and tokens is None:
        raise RathausError(
            "Bitte --anfragen-pro-minute und/oder --tokens-pro-minute angeben (Zahl ab 1 oder "
            "„unbegrenzt“)."
        )
    changes: dict[str, Any] = {}
    if anfragen is not None:
        changes["requests_per_minute"] = tenants.parse_limit(anfragen, "--anfragen-pro-minute")
    if tokens is not None:
        changes["tokens_per_minute"] = tenants.parse_limit(tokens, "--tokens-pro-minute")
    with database().session() as session:
        row = tenants.set_quota(session, slug=slug, **changes)
        typer.echo(
            f"Kontingent von {slug}: {_limit(row.requests_per_minute)} Anfragen/min, "
            f"{_limit(row.tokens_per_minute)} Tokens/min."
        )


@app.command("richtlinie")
def richtlinie(
    slug: str = SlugArg,
    stufe: str = typer.Option(..., "--stufe", help="oeffentlich, intern oder vertraulich"),
    orte: str | None = typer.Option(
        None,
        "--orte",
        help="Erlaubte Modellorte, mit Komma: lokal, eigener_server, extern; „keine“ sperrt",
    ),
    zuruecksetzen: bool = typer.Option(
        False, "--zuruecksetzen", help="Eigene Richtlinie der Stufe entfernen (Installation gilt)"
    ),
) -> None:
    """Eigene Modellrichtlinie der Kommune für eine Vertraulichkeitsstufe (ersetzt die der Installation)."""
    if (orte is None) == (not zuruecksetzen):
        raise RathausError("Bitte entweder --orte … oder --zuruecksetzen angeben.")
    s = settings()
    locations = None if zuruecksetzen else tenants.parse_locations(orte or "")
    with database(s).session() as session:
        change = tenants.set_policy(
            session,
            slug=slug,
            level=stufe,
            locations=locations,
            installation={k: list(v) for k, v in s.governance.policies.items()},
        )
    if locations is None:
        typer.echo(f"{slug}, Stufe {stufe}: es gilt wieder die Richtlinie der Installation.")
    else:
        allowed = change.policies[stufe]
        typer.echo(f"{slug}, Stufe {stufe}: erlaubt {', '.join(allowed) or 'keine Modelle'}.")
    for note in change.notes:
        typer.secho(note, fg=typer.colors.YELLOW)


@app.command("bankverbindung")
def bankverbindung(
    slug: str = SlugArg,
    kreditinstitut: str | None = typer.Option(
        None, "--kreditinstitut", help="z. B. „Sparkasse Musterstadt“"
    ),
    iban: str | None = typer.Option(None, "--iban", help="wird mit den Prüfziffern geprüft"),
    bic: str = typer.Option("", "--bic", help="optional, 8 oder 11 Zeichen"),
    entfernen: bool = typer.Option(
        False, "--entfernen", help="Gespeicherte Bankverbindung löschen"
    ),
) -> None:
    """Bankverbindung der Kommune für die Fußzeile ihrer Briefe (ein Brief kann eine andere angeben)."""
    if entfernen == (kreditinstitut is not None or iban is not None):
        raise bank.BankDetailsError(
            "Bitte entweder --kreditinstitut … --iban … [--bic …] oder --entfernen angeben."
        )
    details = None if entfernen else bank.make(
        institute=kreditinstitut or "", iban=iban or "", bic=bic
    )  # fmt: skip
    with database().session() as session:
        tenant = tenants.get(session, slug=slug)
        bank.save(session, tenant=tenant, details=details, actor="cli")
    if details is None:
        typer.echo(f"{slug}: Bankverbindung entfernt.")
    else:
        typer.echo(f"{slug}: Bankverbindung gespeichert: {details.footer()}")
