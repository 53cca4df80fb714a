"""`rathaus text zusammenfassen` und `rathaus eval summaries`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from rathaus.core.numbers import german_number as num
from rathaus.core.numbers import german_percent as pct
from rathaus.writing.summary_eval import DEFAULT_PAPERS

TenantOpt = typer.Option(
    None, "--kommune", help="Kommune (Kürzel); Standard: RATHAUS_DEFAULT_TENANT."
)


def _print(summary: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{summary.label}.")
    for note in summary.notes:
        typer.echo(f"Hinweis: {note}")
    typer.echo("")
    for s in summary.sentences:
        where = f"{s.section_title}, " if s.section_title else ""
        typer.echo(f"- {s.text} [Absatz {s.paragraph_id}, {where}Zeichen {s.start}–{s.end}]")
    c = summary.coverage
    typer.echo("")
    typer.echo(
        f"Abdeckung: {pct(c.share_text, 0)} des Textes ({c.used_chars} von {c.total_chars} "
        "Zeichen); "
        f"{c.sections_used} von {c.sections_total} Abschnitten verwendet, "
        f"{c.sections_in_summary} in der Gesamtfassung."
    )
    for r in c.rows:
        mark = "✓" if r.represented else " "
        why = f" – {r.reason}" if r.reason else ""
        title = r.title or "ohne Überschrift"
        typer.echo(f"  {mark} {r.section_id:>3}. {title[:60]}: {r.status}{why} ({r.chars} Zeichen)")
    if summary.removed:
        typer.echo(f"Entfernt (ohne Beleg): {len(summary.removed)} Satz/Sätze.")


def _llm(mode: str, s: Any) -> Any:
    if mode != "generiert":
        return None
    from rathaus.ai.registry import get_language_model
    from rathaus.governance.gateway import scoped

    # The operator's own file: level intern, real values back in the output.
    return scoped(get_language_model(s, "zusammenfassung"), may_reidentify=True, actor="cli")


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add this file's commands to ``rathaus text`` (and its measurements to ``rathaus eval``)."""

    @app.command("zusammenfassen")
    def summarize(
        datei: Path = typer.Argument(..., help="Text-, PDF- oder DOCX-Datei."),
        saetze: int | None = typer.Option(
            None,
            "--saetze",
            min=1,
            max=100,
            help="Sätze der Gesamtfassung (Standard: Einstellung).",
        ),
        modus: str = typer.Option(
            "extraktiv", "--modus", help="extraktiv (ohne Sprachmodell) oder generiert."
        ),
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    ) -> None:
        """Ein Dokument abschnittsweise zusammenfassen, mit Fundstellen und Abdeckung."""
        from rathaus.ai.registry import get_embedder
        from rathaus.cli.common import settings
        from rathaus.core.errors import RathausError
        from rathaus.writing.summarize import MODES, summarize_text
        from rathaus.writing.summary_sources import text_of_file

        if modus not in MODES:
            raise typer.BadParameter(f"erlaubt: {', '.join(MODES)}", param_hint="--modus")
        if not datei.is_file():
            raise RathausError(f"Die Datei {datei} gibt es nicht. Bitte den Pfad prüfen.")
        s = settings()
        text, warnings = text_of_file(datei.read_bytes(), datei.name)
        summary = summarize_text(
            text,
            embedder=get_embedder(s),
            title=datei.name,
            sentences=saetze or s.writing.summary_sentences,
            mode=modus,
            llm=_llm(modus, s),
            max_chars=s.writing.max_document_chars,
        )
        summary.notes[:0] = warnings
        _print(summary, as_json)

    @app.command("zusammenfassen-vorgang")
    def summarize_case(
        vorgang: str = typer.Argument(..., metavar="AKTENZEICHEN_ODER_ID"),
        kommune: str | None = TenantOpt,
        saetze: int | None = typer.Option(None, "--saetze", min=1, max=100),
        modus: str = typer.Option("extraktiv", "--modus", help="extraktiv oder generiert."),
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    ) -> None:
        """Alle Dokumente und Nachrichten eines Vorgangs nach Datum zusammenfassen."""
        from rathaus.ai.registry import get_embedder
        from rathaus.cli.common import database, settings
        from rathaus.core.repo import tenant_by_slug
        from rathaus.writing.summarize import summarize_parts
        from rathaus.writing.summary_sources import case_for_cli

        s = settings()
        with database(s).session() as session:
            tenant = tenant_by_slug(session, kommune or s.default_tenant)
            case, parts, notes = case_for_cli(session, tenant_id=tenant.id, key=vorgang)
            reference = case.reference
        summary = summarize_parts(
            parts,
            embedder=get_embedder(s),
            sentences=saetze or s.writing.summary_sentences,
            mode=modus,
            llm=_llm(modus, s),
            max_chars=s.writing.max_document_chars,
        )
        summary.notes[:0] = notes
        if not as_json:
            typer.echo(f"Vorgang {reference}")
        _print(summary, as_json)

    @eval_app.command("summaries")
    def evaluate(
        data: Path = typer.Option(DEFAULT_PAPERS, "--data", help="Ratsvorlagen (JSONL, OParl)."),
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben (je Vorlage)."),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Nur die ersten N."),
        saetze: int = typer.Option(8, "--saetze", min=1, max=100),
    ) -> None:
        """Extraktive Zusammenfassungen der Karlsruher Ratsvorlagen: Abdeckung, Länge, Beleg, Zeit."""
        from rathaus.ai.registry import get_embedder
        from rathaus.cli.eval_cmd import record_run
        from rathaus.core.config import load_settings
        from rathaus.writing.summary_eval import evaluate_summaries

        embedder = get_embedder(load_settings(mode="demo"))
        result = evaluate_summaries(data, embedder=embedder, sentences=saetze, limit=limit)
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
            record_run("summaries", result, data)
            return
        typer.echo(
            f"{result['papers']} Vorlagen (längste {result['longest_chars']} Zeichen): Abschnitte "
            f"mit Satz {pct(result['section_coverage'])}, in der Gesamtfassung "
            f"{pct(result['summary_section_share'])}; Text berücksichtigt "
            f"{pct(result['text_considered'])}; Längenverhältnis {num(result['length_ratio'], 3)}; "
            f"Sätze von ihrer Fundstelle gedeckt {pct(result['supported_share'])}; Laufzeit p50 "
            f"{num(result['seconds_p50'], 2)} s, p95 {num(result['seconds_p95'], 2)} s, max "
            f"{num(result['seconds_max'], 2)} s. Daten: {result['attribution']}."
        )
        record_run("summaries", result, data)
