"""``rathaus inbox`` input commands: CSV import of historical cases, polled sources (IMAP, folder)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from rathaus.cli.common import database, settings
from rathaus.core.numbers import german_number as num
from rathaus.core.repo import tenant_by_slug

TenantOpt = typer.Option(
    None, "--kommune", help="Kommune (Kürzel); Standard: RATHAUS_DEFAULT_TENANT."
)
MAX_SKIPPED_SHOWN = 25


def _slug(value: str | None) -> str:
    return value or settings().default_tenant


def _local(at: dt.datetime | None) -> str:
    if at is None:
        return "noch nie"
    if at.tzinfo is None:  # SQLite gives back UTC without a zone
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(ZoneInfo("Europe/Berlin")).strftime("%d.%m.%Y %H:%M")


def import_csv(
    path: Path = typer.Argument(..., help="CSV-Datei (UTF-8; Windows-1252 wird erkannt)."),
    spalten: str = typer.Option(
        ...,
        "--spalten",
        help="Zuordnung feld=Spalte, kommagetrennt. Felder: text (Pflicht), betreff, amt, "
        "leistung, eingang, erledigt, art, status. Beispiel: text=Text,amt=Gruppe,"
        "eingang=Gemeldet-am,erledigt=Geprueft-am",
    ),
    neue_aemter: bool = typer.Option(
        False,
        "--neue-aemter",
        help="Unbekannte Ämter als Sachgebiete unter dem Amt „Import“ anlegen, statt die Zeilen "
        "zu überspringen.",
    ),
    trennzeichen: str | None = typer.Option(
        None, "--trennzeichen", help="Trennzeichen , ; oder tab (Standard: erkennen)."
    ),
    kodierung: str | None = typer.Option(
        None, "--kodierung", help="Zeichenkodierung, z. B. cp1252 (Standard: erkennen)."
    ),
    kommune: str | None = TenantOpt,
) -> None:
    """Historische Vorgänge aus einer CSV-Datei importieren (wiederholbar ohne Dubletten)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from rathaus.inbox import history_import

    mapping = history_import.parse_mapping(spalten)
    with database().session() as session:
        tenant = tenant_by_slug(session, _slug(kommune))
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("Importiere Vorgänge", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = history_import.import_file(
                session,
                tenant=tenant,
                path=path,
                mapping=mapping,
                create_units=neue_aemter,
                delimiter=trennzeichen,
                encoding=kodierung,
                progress=progress,
            )
    shown = "tab" if report.delimiter == "\t" else report.delimiter
    typer.echo(
        f"{path.name}: {report.rows} Zeilen gelesen (Kodierung {report.encoding}, "
        f"Trennzeichen „{shown}“) in {num(report.seconds)} s."
    )
    typer.echo(f"Importiert: {report.imported} Vorgänge")
    typer.echo(f"Bereits vorhanden (Dubletten): {report.duplicates}")
    typer.echo(f"Übersprungen: {len(report.skipped)}")
    for row in report.skipped[:MAX_SKIPPED_SHOWN]:
        typer.echo(f"  Zeile {row.line}: {row.reason}")
    if len(report.skipped) > MAX_SKIPPED_SHOWN:
        typer.echo(f"  … und {len(report.skipped) - MAX_SKIPPED_SHOWN} weitere.")
    if report.created_units:
        typer.echo(f"Neu angelegte Sachgebiete unter „Import“: {', '.join(report.created_units)}")
    for note in report.notes:
        typer.secho(f"Hinweis: {note}", fg=typer.colors.YELLOW)


def sources_list(kommune: str | None = TenantOpt) -> None:
    """Eingangsquellen der Kommune (Postfächer, Ordner) mit letztem Abruf und Fehler."""
    from rathaus.inbox.channels import poll

    with database().session() as session:
        tenant = tenant_by_slug(session, _slug(kommune))
        sources = poll.list_sources(session, tenant=tenant)
        if not sources:
            typer.echo("Keine Eingangsquellen eingerichtet.")
        for source in sources:
            state = "aktiv" if source.is_active else "aus"
            polled = _local(source.last_polled_at)
            typer.echo(
                f"{source.name:<20} {poll.KIND_LABELS.get(source.kind, source.kind):<13} "
                f"{state:<6} zuletzt: {polled:<16} {poll.describe(source)}"
            )
            if source.last_error:
                typer.secho(f"  Fehler: {source.last_error}", fg=typer.colors.RED)


def source_imap(
    name: str = typer.Argument(..., help="Name der Quelle, z. B. Poststelle."),
    host: str = typer.Option(..., "--host", help="IMAP-Server, z. B. imap.kommune.de."),
    port: int | None = typer.Option(None, "--port", help="Port (Standard: 993 bzw. 143)."),
    tls: str = typer.Option("ssl", "--tls", help="ssl, starttls oder none (nur lokal)."),
    benutzer: str = typer.Option(..., "--benutzer", help="Benutzername des Postfachs."),
    postfach: str = typer.Option("INBOX", "--postfach", help="Abgerufener Ordner."),
    passwort_variable: str | None = typer.Option(
        None,
        "--passwort-variable",
        help="Name der Umgebungsvariablen mit dem Passwort; muss mit RATHAUS_IMAP_<KÜRZEL>_ "
        "beginnen (Standard: RATHAUS_IMAP_<KÜRZEL>_<NAME>).",
    ),
    verschieben_nach: str | None = typer.Option(
        None, "--verschieben-nach", help="Erfasste E-Mails in diesen Ordner verschieben."
    ),
    klartext_erlauben: bool = typer.Option(
        False,
        "--klartext-erlauben",
        help="Unverschlüsseltes IMAP (tls none) auch zu einem anderen Rechner erlauben.",
    ),
    ca_datei: str | None = typer.Option(
        None, "--ca-datei", help="Zusätzliche Zertifizierungsstelle (PEM-Datei, absoluter Pfad)."
    ),
    idle: bool = typer.Option(
        False,
        "--idle",
        help="Neue E-Mails sofort per IMAP IDLE empfangen (läuft mit `rathaus inbox lauschen`).",
    ),
    kommune: str | None = TenantOpt,
) -> None:
    """IMAP-Postfach als Eingangsquelle einrichten (das Passwort steht nur in der Umgebung)."""
    from rathaus.inbox.channels import imap, poll

    s = settings()
    with database(s).session() as session:
        tenant = tenant_by_slug(session, _slug(kommune))
        variable = passwort_variable or imap.default_password_env(tenant.slug, name)
        values: dict[str, object] = {
            "host": host,
            "tls": tls,
            "username": benutzer,
            "mailbox": postfach,
            "password_env": variable,
        }
        if port is not None:
            values["port"] = port
        if verschieben_nach:
            values["move_to"] = verschieben_nach
        if klartext_erlauben:
            values["allow_plaintext"] = True
        if ca_datei:
            values["ca_file"] = ca_datei
        if idle:
            values["idle"] = True
        source = poll.create_source(
            session,
            tenant=tenant,
            kind="imap",
            name=name,
            settings=values,
            allowed_networks=s.network.allowed_networks,
        )
        typer.echo(f"Eingerichtet: {source.name} – {poll.describe(source)}")
    typer.echo(
        f"Bitte das Passwort in der Umgebungsvariablen {variable} des Workers setzen; "
        "`rathaus inbox abrufen` prüft die Verbindung."
    )


def source_folder(
    name: str = typer.Argument(..., help="Name der Quelle, z. B. Scanner."),
    pfad: str = typer.Option(..., "--pfad", help="Beobachteter Ordner (absoluter Pfad)."),
    ablage: str | None = typer.Option(
        None, "--ablage", help="Ordner für erfasste Dateien (Standard: <pfad>/erledigt)."
    ),
    kommune: str | None = TenantOpt,
) -> None:
    """Ordner als Eingangsquelle einrichten (z. B. Zielordner eines Scanners)."""
    from rathaus.inbox.channels import poll
    from rathaus.inbox.channels.folder import FolderRoots

    s = settings()
    values = {"path": pfad, **({"done_dir": ablage} if ablage else {})}
    with database(s).session() as session:
        tenant = tenant_by_slug(session, _slug(kommune))
        source = poll.create_source(
            session,
            tenant=tenant,
            kind="folder",
            name=name,
            settings=values,
            folder_roots=FolderRoots.from_settings(s),
        )
        typer.echo(f"Eingerichtet: {source.name} – {poll.describe(source)}")


def source_remove(
    name: str = typer.Argument(..., help="Name der Quelle."),
    kommune: str | None = TenantOpt,
) -> None:
    """Eingangsquelle entfernen; bereits erfasste Vorgänge bleiben."""
    from rathaus.inbox.channels import poll

    with database().session() as session:
        tenant = tenant_by_slug(session, _slug(kommune))
        poll.remove_source(session, tenant=tenant, name=name)
    typer.echo(f"Entfernt: {name}")


def fetch(
    quelle: str | None = typer.Option(None, "--quelle", help="Nur diese Quelle abrufen."),
    kommune: str | None = TenantOpt,
) -> None:
    """Alle aktiven Quellen der Kommune jetzt abrufen; Exit-Code 1, wenn eine Fehler meldet."""
    from rathaus import jobs
    from rathaus.core.storage import OriginalStore
    from rathaus.inbox.channels import poll
    from rathaus.inbox.channels.folder import FolderRoots

    s = settings()
    jobs.get_huey(s)  # new cases are queued for triage with these settings
    store = OriginalStore(s.originals_dir)
    max_bytes = s.inbox.max_upload_mb * 1024 * 1024
    with database(s).session() as session:
        tenant = tenant_by_slug(session, _slug(kommune))
        if quelle:
            sources = [poll.get_source(session, tenant=tenant, name=quelle)]
        else:
            sources = poll.list_sources(session, tenant=tenant, active_only=True)
        if not sources:
            typer.echo("Keine aktiven Eingangsquellen eingerichtet.")
        results = [
            poll.poll_source(
                session,
                source,
                store=store,
                max_bytes=max_bytes,
                allowed_networks=s.network.allowed_networks,
                folder_roots=FolderRoots.from_settings(s),
            )
            for source in sources
        ]
    failed = False
    for result in results:
        typer.echo(f"{result.source}: {result.summary()}")
        for note in result.notes:
            typer.secho(f"  Hinweis: {note}", fg=typer.colors.YELLOW)
        for error in result.errors:
            failed = True
            typer.secho(f"  Fehler: {error}", fg=typer.colors.RED, err=True)
    if failed:
        raise typer.Exit(1)


def source_idle(
    name: str = typer.Argument(..., help="Name der IMAP-Quelle."),
    aus: bool = typer.Option(False, "--aus", help="IDLE wieder ausschalten (nur Abruf)."),
    kommune: str | None = TenantOpt,
) -> None:
    """IMAP IDLE für ein Postfach ein- oder ausschalten (der Abruf bleibt als Sicherheitsnetz)."""
    from rathaus.inbox.channels import poll

    with database().session() as session:
        tenant = tenant_by_slug(session, _slug(kommune))
        source = poll.get_source(session, tenant=tenant, name=name)
        if source.kind != "imap":
            raise poll.SourceSettingsError(
                f"„{name}“ ist kein IMAP-Postfach; IDLE gibt es nur für IMAP-Quellen."
            )
        values = {k: v for k, v in (source.settings or {}).items() if k != "idle"}
        if not aus:
            values["idle"] = True
        source.settings = values
    if aus:
        typer.echo(f"{name}: IDLE aus; das Postfach wird regelmäßig abgerufen.")
    else:
        typer.echo(
            f"{name}: IDLE an. `rathaus inbox lauschen` muss laufen (z. B. als eigener Dienst "
            "neben dem Worker); bis dahin wird das Postfach weiter regelmäßig abgerufen."
        )


def listen(
    kommune: str | None = typer.Option(
        None, "--kommune", help="Nur diese Kommune (Kürzel); Standard: alle aktiven Kommunen."
    ),
    erneuern_nach: int = typer.Option(
        1500,
        "--erneuern-nach",
        min=10,
        max=1740,
        help="Sekunden, nach denen IDLE neu begonnen wird (höchstens 1740 = 29 Minuten).",
    ),
    hoechste_pause: int = typer.Option(
        300,
        "--hoechste-pause",
        min=1,
        max=3600,
        help="Längste Pause in Sekunden zwischen zwei Verbindungsversuchen nach Fehlern.",
    ),
) -> None:
    """Neue E-Mails per IMAP IDLE sofort erfassen (läuft, bis SIGTERM oder Strg+C kommt)."""
    import signal
    import threading

    from rathaus import jobs
    from rathaus.core.logging import configure_logging
    from rathaus.core.storage import OriginalStore
    from rathaus.inbox.channels import idle

    s = settings()
    configure_logging(s)
    jobs.get_huey(s)  # new cases are queued for triage with these settings
    db = database(s)
    tenant_id = None
    if kommune:
        with db.session() as session:
            tenant_id = tenant_by_slug(session, kommune).id
    options = idle.ListenOptions(
        store=OriginalStore(s.originals_dir),
        max_bytes=s.inbox.max_upload_mb * 1024 * 1024,
        allowed_networks=s.network.allowed_networks,
        renew_s=erneuern_nach,
        backoff_max_s=hoechste_pause,
        poll_interval_s=s.inbox.poll_interval_s,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def on_change(listeners: dict[int, idle.MailboxListener]) -> None:
        if listeners:
            typer.echo(f"Lausche per IMAP IDLE auf {len(listeners)} Postfach/Postfächer.")
        else:
            typer.echo(
                "Keine aktive IMAP-Quelle mit IDLE; `rathaus inbox quelle-idle NAME` schaltet "
                "es ein. Die Liste wird jede Minute neu gelesen."
            )

    with db.session() as session:
        if not idle.idle_sources(session, tenant_id=tenant_id):
            on_change({})
    idle.listen(db, options, stop=stop, tenant_id=tenant_id, on_change=on_change)
    typer.echo("IMAP IDLE beendet.")


def register(app: typer.Typer) -> None:
    """Add the commands to ``app`` (mounted as ``rathaus inbox``)."""
    app.command("import-csv")(import_csv)
    app.command("quellen-liste")(sources_list)
    app.command("quelle-imap")(source_imap)
    app.command("quelle-ordner")(source_folder)
    app.command("quelle-entfernen")(source_remove)
    app.command("abrufen")(fetch)
    app.command("quelle-idle")(source_idle)
    app.command("lauschen")(listen)
