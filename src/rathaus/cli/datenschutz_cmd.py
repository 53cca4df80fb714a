"""``rathaus datenschutz``: Datenschutz: Aufbewahrungsregeln, Auskunft (Art. 15), Löschung (Art. 17), Zugriffsprotokoll."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    help="Datenschutz: Aufbewahrungsregeln, Auskunft (Art. 15), Löschung (Art. 17), "
    "Zugriffsprotokoll.",
    no_args_is_help=True,
)

TenantOpt = typer.Option(
    None, "--kommune", help="Kommune (Kürzel); Standard: RATHAUS_DEFAULT_TENANT."
)
JsonOpt = typer.Option(False, "--json", help="Als JSON ausgeben.")
ACTOR = "cli"


@app.callback()
def _group() -> None:
    """Datenschutz: Aufbewahrungsregeln, Auskunft (Art. 15), Löschung (Art. 17), Zugriffsprotokoll."""


NameOpt = typer.Option([], "--name", help="Vor- und Nachname (mehrfach möglich).")
EmailOpt = typer.Option([], "--email", help="E-Mail-Adresse (mehrfach möglich).")
PhoneOpt = typer.Option([], "--telefon", help="Telefonnummer (mehrfach möglich).")
IbanOpt = typer.Option([], "--iban", help="IBAN (mehrfach möglich).")
AddressOpt = typer.Option([], "--anschrift", help="Straße und Hausnummer (mehrfach möglich).")
ReferenceOpt = typer.Option([], "--aktenzeichen", help="Aktenzeichen (mehrfach möglich).")


def _person(
    names: list[str],
    emails: list[str],
    phones: list[str],
    ibans: list[str],
    addresses: list[str],
    references: list[str],
):  # type: ignore[no-untyped-def]
    from rathaus.governance.privacy import Person

    return Person.parse(
        names=names,
        emails=emails,
        phones=phones,
        ibans=ibans,
        addresses=addresses,
        references=references,
    )


# -- retention ----------------------------------------------------------------------------------


@app.command("aufbewahrung")
def aufbewahrung(kommune: str | None = TenantOpt, as_json: bool = JsonOpt) -> None:
    """Aufbewahrungsregeln der Kommune anzeigen."""
    from rathaus.cli.common import database, settings
    from rathaus.core.repo import tenant_by_slug
    from rathaus.governance import retention

    s = settings()
    with database(s).session() as session:
        tenant = tenant_by_slug(session, kommune or s.default_tenant)
        rules = retention.list_rules(session, tenant_id=tenant.id)
        days, from_rule = retention.conversation_period(
            session, tenant_id=tenant.id, default_days=s.assistant.retention_days
        )
        rows = [
            {
                "ziel": r.target,
                "anliegenart": r.request_type,
                "tage": r.days,
                "aktion": r.action,
                "aktiv": r.is_active,
                "geaendert_von": r.updated_by,
                "beschreibung": retention.rule_label(r),
            }
            for r in rules
        ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("Keine Aufbewahrungsregeln für Vorgänge: abgeschlossene Vorgänge bleiben.")
    for row in rows:
        state = "" if row["aktiv"] else " (inaktiv)"
        typer.echo(f"{row['beschreibung']}{state} – zuletzt geändert von {row['geaendert_von']}")
    if not from_rule:
        typer.echo(
            f"Unterhaltungen des Bürgerassistenten: {days} Tage (Einstellung "
            "assistant.retention_days, keine eigene Regel)."
        )


@app.command("aufbewahrung-setzen")
def aufbewahrung_setzen(
    tage: int = typer.Option(..., "--tage", help="Tage nach Abschluss (bzw. letzter Frage)."),
    ziel: str = typer.Option("vorgang", "--ziel", help="vorgang oder unterhaltung."),
    art: str = typer.Option(
        "", "--art", help="Anliegenart (Antrag, Anfrage …); leer: alle übrigen Arten."
    ),
    aktion: str = typer.Option("loeschen", "--aktion", help="loeschen oder anonymisieren."),
    inaktiv: bool = typer.Option(False, "--inaktiv", help="Regel anlegen, aber nicht anwenden."),
    kommune: str | None = TenantOpt,
) -> None:
    """Eine Aufbewahrungsregel anlegen oder ändern (im Prüfprotokoll festgehalten)."""
    from rathaus.cli.common import database, settings
    from rathaus.core.repo import tenant_by_slug
    from rathaus.governance import retention

    s = settings()
    with database(s).session() as session:
        tenant = tenant_by_slug(session, kommune or s.default_tenant)
        rule = retention.set_rule(
            session,
            tenant_id=tenant.id,
            target=ziel,
            request_type=art,
            days=tage,
            action=aktion,
            is_active=not inaktiv,
            actor=ACTOR,
        )
        label = retention.rule_label(rule)
    typer.echo(f"Regel gespeichert: {label}.")


@app.command("aufbewahrung-entfernen")
def aufbewahrung_entfernen(
    ziel: str = typer.Option("vorgang", "--ziel", help="vorgang oder unterhaltung."),
    art: str = typer.Option("", "--art", help="Anliegenart; leer: die Regel für alle übrigen."),
    kommune: str | None = TenantOpt,
) -> None:
    """Eine Aufbewahrungsregel entfernen."""
    from rathaus.cli.common import database, settings
    from rathaus.core.repo import tenant_by_slug
    from rathaus.governance import retention

    s = settings()
    with database(s).session() as session:
        tenant = tenant_by_slug(session, kommune or s.default_tenant)
        retention.remove_rule(
            session, tenant_id=tenant.id, target=ziel, request_type=art, actor=ACTOR
        )
    typer.echo("Regel entfernt.")


@app.command("aufbewahrung-anwenden")
def aufbewahrung_anwenden(
    probelauf: bool = typer.Option(
        False, "--probelauf", help="Nur anzeigen, was gelöscht oder anonymisiert würde."
    ),
    kommune: str | None = TenantOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Aufbewahrungsregeln jetzt anwenden (sonst täglich zur Stunde governance.retention_hour)."""
    from rathaus.cli.common import database, settings
    from rathaus.core.repo import tenant_by_slug
    from rathaus.core.storage import OriginalStore
    from rathaus.governance import retention

    s = settings()
    with database(s).session() as session:
        tenant = tenant_by_slug(session, kommune or s.default_tenant)
        report = retention.apply(
            session,
            tenant_id=tenant.id,
            store=OriginalStore(s.originals_dir),
            default_conversation_days=s.assistant.retention_days,
            dry_run=probelauf,
            actor=ACTOR,
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    verb = {"loeschen": "löschen", "anonymisieren": "anonymisieren"}
    for c in report.cases:
        typer.echo(
            f"{c.reference:<20} {c.request_type or '–':<12} abgeschlossen "
            f"{c.closed_at:%d.%m.%Y}  {'würde ' if probelauf else ''}{verb[c.action]}"
            f"{'' if probelauf else ' ✓'}  ({c.rule})"
        )
    counts = report.counts()
    prefix = "Probelauf – nichts geändert. Es würden" if probelauf else "Erledigt:"
    typer.echo(
        f"{prefix} {counts['loeschen']} Vorgang/Vorgänge gelöscht, {counts['anonymisieren']} "
        f"anonymisiert und {counts['unterhaltungen']} Unterhaltung(en) gelöscht "
        f"(Frist {report.conversation_days} Tage)."
    )


# -- Art. 15 / Art. 17 --------------------------------------------------------------------------


def _keyring(s):  # type: ignore[no-untyped-def]
    from rathaus.governance.keys import Keyring

    return Keyring.from_settings(s)


@app.command("auskunft")
def auskunft(
    ausgabe: Path = typer.Option(..., "--ausgabe", help="ZIP-Datei, die geschrieben wird."),
    name: list[str] = NameOpt,
    email: list[str] = EmailOpt,
    telefon: list[str] = PhoneOpt,
    iban: list[str] = IbanOpt,
    anschrift: list[str] = AddressOpt,
    aktenzeichen: list[str] = ReferenceOpt,
    kommune: str | None = TenantOpt,
) -> None:
    """Auskunft nach Art. 15 DSGVO: alle Daten zu einer Person als ZIP (JSON, Originale, Anschreiben)."""
    from rathaus.cli.common import database, settings
    from rathaus.core.errors import RathausError
    from rathaus.core.repo import tenant_by_slug
    from rathaus.core.storage import OriginalStore
    from rathaus.governance.privacy import access_request

    person = _person(name, email, telefon, iban, anschrift, aktenzeichen)
    if ausgabe.suffix.lower() != ".zip":
        raise RathausError("Die Ausgabedatei muss auf .zip enden.")
    if ausgabe.exists():
        raise RathausError(f"Die Datei {ausgabe} gibt es schon; bitte einen anderen Namen wählen.")
    s = settings()
    with database(s).session() as session:
        tenant = tenant_by_slug(session, kommune or s.default_tenant)
        export = access_request(
            session,
            tenant=tenant,
            person=person,
            actor=ACTOR,
            channel="cli",
            store=OriginalStore(s.originals_dir),
            keyring=_keyring(s),
            default_conversation_days=s.assistant.retention_days,
        )
        try:
            ausgabe.write_bytes(export.zip_bytes)
        except OSError as exc:
            raise RathausError(
                f"Die Datei {ausgabe} kann nicht geschrieben werden ({exc.strerror})."
            ) from exc
        counts = export.findings.counts()
        request_id = export.request.id
        empty = export.findings.empty
    if empty:
        typer.echo(
            "Zu diesen Angaben sind keine Daten gespeichert (Negativauskunft); das Anschreiben "
            f"steht in {ausgabe}."
        )
    else:
        typer.echo(
            f"Auskunft Nr. {request_id} geschrieben: {ausgabe} – {counts['vorgaenge_betroffen']} "
            f"Vorgang/Vorgänge betreffen die Person, in {counts['vorgaenge_erwaehnt']} wird sie "
            f"erwähnt; {counts['dokumente']} Dokument(e), {counts['ki_vorschlaege']} "
            f"KI-Vorschläge, {counts['zugriffe']} Zugriffe."
        )


def _queue_retrain(s, tenant_id: int) -> bool:  # type: ignore[no-untyped-def]
    from rathaus.inbox.jobs import retrain_job
    from rathaus.jobs import get_huey

    try:
        get_huey(s)
        retrain_job.enqueue(tenant_id, "datenschutz", ACTOR)
    except Exception:  # noqa: BLE001 - the recommendation stands; the nightly training catches up
        return False
    return True


@app.command("loeschen")
def loeschen(
    name: list[str] = NameOpt,
    email: list[str] = EmailOpt,
    telefon: list[str] = PhoneOpt,
    iban: list[str] = IbanOpt,
    anschrift: list[str] = AddressOpt,
    aktenzeichen: list[str] = ReferenceOpt,
    bestaetigen: bool = typer.Option(
        False, "--bestaetigen", help="Wirklich löschen (ohne: nur anzeigen, was geschähe)."
    ),
    offene: bool = typer.Option(
        False, "--offene-einbeziehen", help="Auch noch offene Vorgänge löschen bzw. schwärzen."
    ),
    kommune: str | None = TenantOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Löschung nach Art. 17 DSGVO: zuerst Probelauf, mit --bestaetigen ausführen."""
    from rathaus.cli.common import database, settings
    from rathaus.core.repo import tenant_by_slug
    from rathaus.core.storage import OriginalStore
    from rathaus.governance.privacy import erasure_request

    person = _person(name, email, telefon, iban, anschrift, aktenzeichen)
    s = settings()
    with database(s).session() as session:
        tenant = tenant_by_slug(session, kommune or s.default_tenant)
        tenant_id = tenant.id
        result = erasure_request(
            session,
            tenant=tenant,
            person=person,
            actor=ACTOR,
            confirm=bestaetigen,
            include_open=offene,
            store=OriginalStore(s.originals_dir),
            keyring=_keyring(s),
        )
    if bestaetigen and result.training:
        queued = _queue_retrain(s, tenant_id)
        result.training["neutraining"] = "eingereiht" if queued else "empfohlen"
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    for c in result.cases:
        typer.echo(f"{c.reference:<20} {c.status:<15} {c.label}  ({', '.join(c.reasons)})")
    counts = result.counts
    if bestaetigen:
        typer.echo(
            f"Löschantrag Nr. {result.request_id} ausgeführt: {counts['loeschen']} Vorgang/"
            f"Vorgänge gelöscht, in {counts['schwaerzen']} die Erwähnungen ersetzt "
            f"({counts.get('ersetzungen', 0)} Stellen)."
        )
    else:
        typer.echo(
            f"Probelauf – nichts gelöscht. Es würden {counts['loeschen']} Vorgang/Vorgänge "
            f"gelöscht und in {counts['schwaerzen']} die Erwähnungen ersetzt. Zum Ausführen "
            "denselben Befehl mit --bestaetigen aufrufen."
        )
    for message in result.messages:
        typer.echo(f"Hinweis: {message}")
    if result.training:
        typer.echo(f"Modelltraining: {result.training['hinweis']}")
        if result.training["neutraining"] == "eingereiht":
            typer.echo(
                "Ein Neutraining wurde eingereiht. Besteht die neue Version die Qualitätsprüfung "
                "nicht, bleibt das alte Modell live: dann `rathaus inbox train` prüfen und die "
                "neue Version mit `rathaus inbox activate` aktivieren."
            )
        else:
            typer.echo("Bitte nach der Löschung `rathaus inbox train` ausführen.")


# -- access log ---------------------------------------------------------------------------------


@app.command("zugriffe")
def zugriffe(
    aktenzeichen: str | None = typer.Option(None, "--aktenzeichen", help="Nur dieser Vorgang."),
    benutzer: str | None = typer.Option(None, "--benutzer", help="Nur diese Person."),
    von: str | None = typer.Option(None, "--von", help="Erster Tag (JJJJ-MM-TT)."),
    bis: str | None = typer.Option(None, "--bis", help="Letzter Tag (JJJJ-MM-TT)."),
    limit: int = typer.Option(200, "--limit", help="Höchstens so viele Einträge (bis 5000)."),
    csv_datei: Path | None = typer.Option(None, "--csv", help="Als CSV in diese Datei schreiben."),
    kommune: str | None = TenantOpt,
) -> None:
    """Zugriffsprotokoll: wer welchen Vorgang geöffnet, heruntergeladen oder exportiert hat."""
    from rathaus.cli.common import database, settings
    from rathaus.core.errors import RathausError
    from rathaus.core.repo import tenant_by_slug
    from rathaus.governance import access_log
    from rathaus.insights.export import to_csv

    s = settings()
    with database(s).session() as session:
        tenant = tenant_by_slug(session, kommune or s.default_tenant)
        items = access_log.entries(
            session,
            tenant_id=tenant.id,
            reference=aktenzeichen,
            username=benutzer,
            since=von,
            until=bis,
            limit=limit,
        )
        table = access_log.rows(items)
    if csv_datei is not None:
        try:
            csv_datei.write_bytes(to_csv(access_log.CSV_HEADERS, table))
        except OSError as exc:
            raise RathausError(
                f"Die Datei {csv_datei} kann nicht geschrieben werden ({exc.strerror})."
            ) from exc
        typer.echo(f"{len(table)} Einträge nach {csv_datei} geschrieben.")
        return
    if not table:
        typer.echo("Keine Zugriffe zu diesen Angaben protokolliert.")
    for when, reference, user, action, channel in table:
        typer.echo(f"{when}  {reference:<20} {user:<20} {action} ({channel})")
