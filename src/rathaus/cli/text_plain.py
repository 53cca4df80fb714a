"""`rathaus text leichte-sprache …` und `rathaus eval plain-language`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from rathaus.core.errors import RathausError
from rathaus.core.numbers import german_number as num
from rathaus.core.numbers import german_percent as pct

DEFAULT_DATA = Path("../shared/data/simplification/deplain_web_sent_open.csv")


def _read(source: str, max_chars: int | None = None) -> str:
    if source == "-":
        text = sys.stdin.read()
    else:
        path = Path(source)
        if not path.is_file():
            raise RathausError(f"Die Datei {path} gibt es nicht. Bitte den Pfad prüfen.")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise RathausError(
                f"Die Datei {path} ist kein UTF-8-Text. Bitte als reinen Text (UTF-8) speichern."
            ) from exc
    if not text.strip():
        raise RathausError(
            "Der Text ist leer. Bitte einen Text als Datei oder mit - über stdin geben."
        )
    if max_chars is not None and len(text) > max_chars:
        raise RathausError(
            f"Der Text ist länger als {max_chars} Zeichen (writing.max_document_chars). "
            "Bitte kürzen oder in Teilen prüfen."
        )
    return text


def _fail(exc: RathausError) -> None:
    typer.secho(f"Fehler: {exc.message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(exc.exit_code)


def _print_report(report, readability) -> None:  # type: ignore[no-untyped-def]
    typer.echo(
        f"{len(report.sentences)} Sätze, {report.findings} Hinweise "
        f"({num(report.violations_per_sentence, 2)} je Satz), "
        f"Schweregrad {num(report.severity, 2)}."
    )
    typer.echo(
        f"Lesbarkeit: Flesch-Amstad {num(readability.flesch_amstad)} (höher ist leichter), "
        f"Wiener Sachtextformel {num(readability.wiener_sachtextformel)} (niedriger ist leichter)."
    )
    for sentence in report.sentences:
        if not sentence.findings:
            continue
        typer.echo(f"\n{sentence.index + 1}. {sentence.text}")
        for f in sentence.findings:
            hint = f" – {f.suggestion}" if f.suggestion else ""
            typer.echo(f"   [{f.label}] „{f.span}“{hint}")


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add this file's commands to ``rathaus text`` (and its measurements to ``rathaus eval``)."""
    plain = typer.Typer(
        help="Leichte Sprache: Text prüfen (ohne Modell) und mit einem Sprachmodell umschreiben.",
        no_args_is_help=True,
    )
    app.add_typer(plain, name="leichte-sprache")

    @plain.command("pruefen")
    def pruefen(
        datei: str = typer.Argument("-", help="Textdatei (UTF-8) oder - für stdin."),
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
        max_woerter: int = typer.Option(
            15, "--max-woerter", min=5, max=60, help="Höchstens so viele Wörter je Satz."
        ),
    ) -> None:
        """Jeden Satz nach den Regeln der Leichten Sprache prüfen, mit Lesbarkeitswerten."""
        from rathaus.writing.plain_language import RuleConfig, check, readability

        try:
            text = _read(datei)
        except RathausError as exc:
            _fail(exc)
        report = check(text, config=RuleConfig(max_words=max_woerter))
        scores = readability(text)
        if as_json:
            data = report.to_dict() | {"readability": scores.to_dict()}
            typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
            return
        _print_report(report, scores)

    @plain.command("umschreiben")
    def umschreiben(
        datei: str = typer.Argument("-", help="Textdatei (UTF-8) oder - für stdin."),
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
        runden: int | None = typer.Option(
            None,
            "--runden",
            min=1,
            max=10,
            help="Höchstens so viele Runden (Standard: writing.plain_language_max_rounds).",
        ),
    ) -> None:
        """Mit dem eingerichteten Sprachmodell in Leichte Sprache umschreiben (Entwurf)."""
        from rathaus.ai.registry import get_language_model
        from rathaus.core.config import load_settings
        from rathaus.governance.gateway import scoped
        from rathaus.writing.plain_rewrite import rewrite

        try:
            settings = load_settings()
            text = _read(datei, settings.writing.max_document_chars)
            result = rewrite(
                text,
                model=scoped(
                    get_language_model(settings, "leichte_sprache"),
                    may_reidentify=True,
                    actor="cli",
                ),
                max_rounds=runden or settings.writing.plain_language_max_rounds,
            )
        except RathausError as exc:
            _fail(exc)
        if as_json:
            typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
            return
        typer.echo(f"{result.label} · Modell: {result.model} ({result.backend})")
        for note in result.notes:
            typer.echo(note)
        typer.echo("")
        typer.echo(result.text)
        typer.echo("")
        if result.facts_ok:
            typer.echo("Faktenprüfung: keine neuen Zahlen, Daten, Beträge oder Namen.")
        else:
            added = ", ".join(f"{f.label} „{f.text}“" for f in result.best.added_facts)
            typer.echo(f"Faktenprüfung: NICHT BESTANDEN – neu im Text: {added}.")
        typer.echo(
            f"Schweregrad vorher {num(result.source_report.severity, 2)}, nachher "
            f"{num(result.best.report.severity, 2)}; {result.best.report.findings} Hinweise im "
            f"Entwurf (Runde {result.best.round} von {len(result.drafts)})."
        )

    @eval_app.command("plain-language")
    def plain_language(
        data: Path = typer.Option(DEFAULT_DATA, "--data", help="DEplain-web-Satzpaare (CSV)."),
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
        umschreiben: bool = typer.Option(
            False,
            "--umschreiben",
            help="Zusätzlich mit dem Sprachmodell umschreiben: SARI und erhaltene Fakten.",
        ),
        limit: int = typer.Option(
            5, "--limit", min=1, help="Mit --umschreiben: nur die ersten N Paare."
        ),
    ) -> None:
        """Prüfer für Leichte Sprache auf DEplain-web: pairwise, Regelverstöße, Lesbarkeit."""
        from rathaus.cli.eval_cmd import record_run
        from rathaus.writing.plain_eval import evaluate_checker, evaluate_rewrite

        try:
            result = evaluate_checker(data)
            if umschreiben:
                from rathaus.ai.registry import get_language_model
                from rathaus.core.config import load_settings

                settings = load_settings(mode="demo")
                result["rewrite"] = evaluate_rewrite(
                    data,
                    model=get_language_model(settings, "leichte_sprache"),
                    limit=limit,
                    max_rounds=settings.writing.plain_language_max_rounds,
                )
        except RathausError as exc:
            _fail(exc)
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
            record_run("plain-language", result, data)
            return
        d = result["pairwise_detail"]
        v = result["violations_per_sentence"]
        r = result["readability"]
        typer.echo(
            f"{result['pairs']} Satzpaare: Vereinfachung als einfacher erkannt (pairwise) "
            f"{pct(result['pairwise'])} (Abstimmungshälfte {pct(d['tuning_half']['share'])}, "
            f"zurückgehaltene Hälfte {pct(d['held_out_half']['share'])}; Gleichstand zählt als "
            f"Fehler: {d['all']['ties']}); naive Grundlinie {pct(result['baseline_naive'])}."
        )
        typer.echo(
            f"Regelverstöße je Satz: Original {num(v['original']['violations_per_sentence'], 2)}, "
            f"Vereinfachung {num(v['simplification']['violations_per_sentence'], 2)}."
        )
        typer.echo(
            f"Flesch-Amstad: Original {num(r['original']['flesch_amstad_mean'])}, Vereinfachung "
            f"{num(r['simplification']['flesch_amstad_mean'])}; Wiener Sachtextformel: Original "
            f"{num(r['original']['wiener_sachtextformel_mean'])}, Vereinfachung "
            f"{num(r['simplification']['wiener_sachtextformel_mean'])}."
        )
        if "rewrite" in result:
            rw = result["rewrite"]
            typer.echo(
                f"Umschreiben ({rw['pairs']} Paare, Modell {rw['model']}): SARI {num(rw['sari'], 2)}, "
                f"Fakten erhalten {pct(rw['facts_preserved'])}."
            )
            if rw["failed"]:
                typer.echo(
                    f"Ohne Antwort des Modells (nicht mitgezählt): {len(rw['failed'])} Paare, "
                    f"zuerst: {rw['failed'][0]['reason']}"
                )
        record_run("plain-language", result, data)
