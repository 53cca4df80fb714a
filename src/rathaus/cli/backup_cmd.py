"""``rathaus backup``, ``restore``, ``backup-pruefen`` and ``migrate-to-postgres``."""

from __future__ import annotations

from pathlib import Path

import typer

from rathaus.core.errors import RathausError
from rathaus.core.numbers import german_number as num


def _echo(line: str) -> None:
    typer.echo(line)


def _warn(lines: list[str]) -> None:
    for line in lines:
        typer.secho(f"Hinweis: {line}", err=True, fg=typer.colors.YELLOW)


def _chains(chains: list[dict]) -> str:  # type: ignore[type-arg]
    from rathaus.core.archive import number

    entries = sum(c["entries"] for c in chains)
    return (
        f"Prüfprotokoll intakt ({len(chains)} {'Kette' if len(chains) == 1 else 'Ketten'}, "
        f"{number(entries)} {'Eintrag' if entries == 1 else 'Einträge'})"
    )


def _confirm(question: str) -> None:
    """A German yes/no question; anything but j/ja (or no terminal at all) stops here."""
    typer.echo(f"{question} [j/N] ", nl=False)
    try:
        answer = input().strip().lower()
    except EOFError:
        answer = ""
    if answer not in ("j", "ja", "y", "yes"):
        raise RathausError("Abgebrochen, nichts verändert. (Ohne Rückfrage: --ja.)")


def backup(
    ziel: Path = typer.Argument(..., help="Archivdatei (.tar.gz) oder ein Verzeichnis dafür."),
    ohne_originale: bool = typer.Option(
        False, "--ohne-originale", help="Gespeicherte Originale nicht mitsichern."
    ),
) -> None:
    """Datenbank, Originale und Zuordnungsmodelle in ein Archiv sichern (im laufenden Betrieb)."""
    from rathaus.cli.common import database, settings
    from rathaus.core.archive import number
    from rathaus.core.backup import secret_fingerprint, write_archive

    s = settings()
    # Any schema revision: the backup before `rathaus db upgrade` is the important one.
    db = database(s, require_migrated=False)
    typer.echo(f"Sichere {'SQLite' if db.is_sqlite else 'PostgreSQL'}-Datenbank …")
    result = write_archive(
        db,
        s.data_dir,
        ziel,
        include_originals=not ohne_originale,
        secret_key_id=secret_fingerprint(s.secret_key.get_secret_value()),
        progress=_echo,
    )
    manifest = result.manifest
    rows = sum(t["rows"] for t in manifest["tables"])
    size = result.path.stat().st_size
    typer.echo(
        f"Sicherung geschrieben: {result.path} ({num(size / 1e6)} MB; {len(manifest['tables'])} "
        f"Tabellen, {number(rows)} Zeilen, {number(manifest['originals']['count'])} Originale, "
        f"Schema-Revision {manifest['alembic_revision']})."
    )
    _warn(result.warnings)
    typer.echo(
        "Nicht im Archiv: RATHAUS_SECRET_KEY und die Pseudonymisierungs-Schlüssel – getrennt "
        "aufbewahren (siehe docs/backup.md)."
    )


def check(archiv: Path = typer.Argument(..., help="Archivdatei.")) -> None:
    """Archiv vollständig lesen und jede Prüfsumme prüfen, ohne etwas zu verändern."""
    from rathaus.core.archive import number, verify_archive
    from rathaus.core.restore import check_revision_known

    verified = verify_archive(archiv)
    m = verified.manifest
    typer.echo(
        f"{archiv}: Rathaus-Sicherung vom {m['created_at'][:19].replace('T', ' ')} UTC "
        f"(Rathaus {m['rathaus_version']}, Quelle {m['source']['kind']}, Schema-Revision "
        f"{m['alembic_revision']})."
    )
    typer.echo(
        f"{len(verified.tables)} Tabellen, {number(verified.rows)} Zeilen, "
        f"{number(m['originals']['count'])} Originale, {len(m['files'])} weitere Dateien – "
        "alle Prüfsummen und Zeilenzahlen stimmen."
    )
    chains = m.get("audit_chains")
    if chains is not None:
        broken = [c for c in chains if not c["ok"]]
        typer.echo(
            f"Prüfprotokoll: {len(chains)} Kette(n), "
            + ("bei der Sicherung intakt." if not broken else f"{len(broken)} schon gebrochen.")
        )
    _warn(list(m.get("warnings", [])))
    check_revision_known(verified.revision, "Das Archiv")


def restore(
    archiv: Path = typer.Argument(..., help="Archivdatei aus `rathaus backup`."),
    ersetzen: bool = typer.Option(
        False, "--ersetzen", help="Eine nicht leere Datenbank ersetzen (fragt nach)."
    ),
    ja: bool = typer.Option(False, "--ja", help="Die Rückfrage von --ersetzen bejahen."),
) -> None:
    """Sicherung in die konfigurierte, leere Datenbank und das Datenverzeichnis einspielen."""
    from rathaus.cli.common import settings
    from rathaus.core.archive import number, verify_archive
    from rathaus.core.db import Database, describe_url
    from rathaus.core.restore import (
        check_revision_known,
        describe_contents,
        restore_archive,
        target_contents,
    )

    s = settings()
    db = Database.from_settings(s)
    verified = verify_archive(archiv, progress=_echo)
    check_revision_known(verified.revision, "Das Archiv")
    found = target_contents(db)
    if found and not ersetzen:
        raise RathausError(
            f"Die Datenbank {describe_url(db.url)} ist nicht leer ({describe_contents(found)}). "
            "Wiederhergestellt wird nur in eine leere Datenbank; `--ersetzen` ersetzt ihren "
            "Inhalt nach Rückfrage. Es wurde nichts verändert."
        )
    if found and not ja:
        _confirm(
            f"Die Datenbank {describe_url(db.url)} enthält Daten ({describe_contents(found)}). "
            "Alles darin durch die Sicherung ersetzen?"
        )
    report = restore_archive(
        archiv, db, s.data_dir, replace=bool(found), progress=_echo, verified=verified
    )
    typer.echo(
        f"Wiederhergestellt: {report.tables} Tabellen, {number(report.rows)} Zeilen, "
        f"{number(report.originals)} Originale, {report.files} weitere Dateien; Schema-Revision "
        f"{report.revision}; {_chains(report.chains)}."
    )
    _warn(report.warnings + _key_warnings(s, db, verified.manifest))
    typer.echo("Anmeldesitzungen werden nicht gesichert: bitte neu anmelden.")


def _key_warnings(s, db, manifest: dict) -> list[str]:  # type: ignore[no-untyped-def, type-arg]
    """Keys live outside the archive: say so when this installation lacks the ones it needs."""
    from sqlalchemy import select

    from rathaus.core.backup import secret_fingerprint
    from rathaus.core.models import PseudonymMap
    from rathaus.governance.keys import Keyring

    warnings = []
    archived = manifest.get("secret_key_id")
    if archived and archived != secret_fingerprint(s.secret_key.get_secret_value()):
        warnings.append(
            "RATHAUS_SECRET_KEY ist ein anderer als bei der Sicherung: Zuordnungsmodelle, "
            "Export-Signaturen und aus ihm abgeleitete Pseudonym-Schlüssel passen nicht. Bitte den "
            "Schlüssel der gesicherten Installation einsetzen."
        )
    with db.session() as session:
        needed = set(session.scalars(select(PseudonymMap.key_id).distinct()))
    missing = sorted(needed - set(Keyring.from_settings(s).ids))
    if missing:
        warnings.append(
            f"Pseudonym-Zuordnungen brauchen die Schlüssel {', '.join(missing)}, die hier nicht "
            "konfiguriert sind (RATHAUS_GOVERNANCE__PSEUDONYM_KEYS): ohne sie bleiben sie "
            "verschlossen."
        )
    return warnings


def migrate_to_postgres(
    postgres_url: str = typer.Argument(
        ..., help="Leere PostgreSQL-Datenbank, z. B. postgresql://rathaus:…@db:5432/rathaus."
    ),
) -> None:
    """Eingebettete Installation (SQLite) in eine leere PostgreSQL-Datenbank übertragen."""
    from rathaus.cli.common import database, settings
    from rathaus.core.archive import number
    from rathaus.core.config import mask_url
    from rathaus.core.db import Database
    from rathaus.core.restore import copy_database, ping_target, postgres_url_for_engine

    s = settings()
    if not s.is_sqlite:
        raise RathausError(
            "Diese Installation nutzt schon PostgreSQL. Für einen Umzug zwischen zwei "
            "PostgreSQL-Datenbanken: `rathaus backup` und `rathaus restore`."
        )
    url = postgres_url_for_engine(postgres_url)
    source = database(s)
    target = Database(url)
    ping_target(target)
    typer.echo(
        "Übertrage die SQLite-Datenbank nach PostgreSQL. Rathaus (Web und Worker) sollte "
        "dabei angehalten sein: Änderungen nach diesem Augenblick kommen nicht mit."
    )
    report = copy_database(source, target, progress=_echo)
    typer.echo(
        f"Übertragen und geprüft: {report.tables} Tabellen, {number(report.rows)} Zeilen "
        f"(Zeile für Zeile gezählt), {_chains(report.chains)}."
    )
    redis = s.queue.redis_url
    typer.echo(
        "\nJetzt in der Umgebung (oder rathaus.toml) aller Rathaus-Prozesse einstellen und neu "
        "starten:\n"
        f"  RATHAUS_DATABASE_URL={mask_url(postgres_url)}\n"
        "  RATHAUS_QUEUE__BACKEND=redis\n"
        f"  RATHAUS_QUEUE__REDIS_URL={mask_url(redis)}\n"
        "Die Aufgaben erledigen dann eigene Worker-Prozesse (`rathaus worker`). "
        f"Das Datenverzeichnis {s.data_dir.resolve()} (Originale, Zuordnungsmodelle) bleibt, wo "
        "es ist: alle Web- und Worker-Prozesse brauchen es. Die SQLite-Datei bleibt unverändert "
        "als Rückfallebene. Das Passwort steht oben maskiert; bitte selbst einsetzen."
    )
