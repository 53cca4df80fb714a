"""``rathaus eval``: measure the AI functions on real data with the documented splits."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import typer

from rathaus.core.numbers import german_number as num
from rathaus.core.numbers import german_percent as pct

app = typer.Typer(help="KI-Funktionen auf echten Daten messen.", no_args_is_help=True)


def _current_context() -> Any:
    # Typer ≥ 0.20 ships its own copy of click; older versions use click itself.
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - depends on the installed Typer
        from click import get_current_context
    return get_current_context(silent=True)


def _command_line(name: str) -> str:
    """The command as it was called (options that differ from their default), for the record."""
    import shlex

    parts = ["rathaus", "eval", name]
    ctx = _current_context()
    if ctx is None:
        return shlex.join(parts)
    for param in ctx.command.params:
        if getattr(param, "param_type_name", "") != "option" or param.name is None:
            continue
        value = ctx.params.get(param.name)
        default = param.get_default(ctx, call=True)
        if value == default or (value is not None and str(value) == str(default)):
            continue
        if param.is_flag:
            flags = param.opts if value else param.secondary_opts
            parts += flags[:1]
        elif value is not None:
            parts += [param.opts[0], str(value)]
    return shlex.join(parts)


def record_run(name: str, result: Any, data: Path | str) -> None:
    """Store a measurement for the KI-Register after it was printed; never fails the command.

    Without a usable database (none created yet, not migrated, unreachable) a German note goes
    to stderr and the printed result stands.
    """
    from rathaus.core.config import load_settings
    from rathaus.core.errors import RathausError
    from rathaus.governance import eval_store

    try:
        # Storing needs only the database setting, not the server's secrets (as the measuring).
        database = eval_store.existing_database(load_settings(mode="demo"))
        try:
            eval_store.save_run(
                database, name=name, metrics=result, data=data, command=_command_line(name)
            )
        finally:
            database.dispose()
    except RathausError as exc:
        typer.echo(
            f"Hinweis: Das Ergebnis wurde nicht für das KI-Register gespeichert ({exc.message}).",
            err=True,
        )


DEFAULT_INBOX = Path("../shared/data/inbox/konstanz_maengelmelder_2020-2022.csv")


@app.command("inbox")
def inbox(
    data: Path = typer.Option(DEFAULT_INBOX, "--data", help="Konstanz-Mängelmelder-CSV."),
    as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    embeddings: bool = typer.Option(
        True, "--embeddings/--no-embeddings", help="Satz-Embeddings zusätzlich zu TF-IDF nutzen."
    ),
    cache: Path = typer.Option(
        Path("var/cache/inbox-embeddings"), "--cache", help="Ordner für berechnete Embeddings."
    ),
    monthly: bool = typer.Option(
        False,
        "--monatlich",
        help="Zusätzlich: Genauigkeit, wenn das Modell zu Beginn jedes Monats 2022 mit allen "
        "bis dahin entschiedenen Meldungen neu trainiert wird (dauert etwa 12-mal länger).",
    ),
) -> None:
    """Zuordnung (Organisationseinheit) und Kategorie: Training 2020–2021, Test 2022."""
    from rathaus.inbox.evaluation import evaluate_inbox

    embedder = None
    if embeddings:
        from rathaus.ai.registry import get_embedder
        from rathaus.core.config import load_settings

        # An offline measurement needs only the embedding settings, not the server's secrets.
        embedder = get_embedder(load_settings(mode="demo"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's convergence notes are not for the reader
        result = evaluate_inbox(data, embedder=embedder, cache_dir=cache, monthly=monthly)
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        record_run("inbox", result, data)
        return
    for task, name in (
        ("unit", "Organisationseinheit (Text + Ort)"),
        ("unit_open311", "Organisationseinheit (wie über Open311 gemeldet: Leistung + Text)"),
        ("category", "Kategorie"),
    ):
        r = result[task]
        typer.echo(
            f"{name}: Genauigkeit {num(r['accuracy'], 3)}, Makro-F1 {num(r['macro_f1'], 3)}, "
            f"automatisch zugeordnet bei 95 % Präzision {pct(r['auto_share_at_95'])} "
            f"(erreichte Präzision {pct(r['precision_at_threshold'])})"
        )
    if "monthly_retraining" in result:
        r = result["monthly_retraining"]
        typer.echo(
            f"Monatlich neu trainiert: Organisationseinheit {num(r['unit_accuracy'], 3)}, "
            f"Kategorie {num(r['category_accuracy'], 3)}"
        )
    record_run("inbox", result, data)


@app.command("demo-inbox")
def demo_inbox(
    as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    embeddings: bool = typer.Option(
        True, "--embeddings/--no-embeddings", help="Satz-Embeddings nutzen (wie im Betrieb)."
    ),
) -> None:
    """Ganze Vorprüfung auf den 60 Demo-Eingängen mit bekannter Zuordnung (frische Datenbank)."""
    from rathaus.inbox.demo_eval import evaluate_demo_inbox

    result = evaluate_demo_inbox(embeddings=embeddings)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
        record_run("demo-inbox", result, DEMO_DATA)
        return
    typer.echo(
        f"Amt richtig (Top 1): {pct(result['unit_top1'])}, unter den Top 3: "
        f"{pct(result['unit_top3'])}; Leistung {pct(result['service_top1'])}; Anliegenart "
        f"{pct(result['request_type'])}; Dringlichkeit {pct(result['urgency'])}; automatisch "
        f"zugeordnet {result['auto_routed']} (davon richtig {result['auto_routed_correct']}); "
        f"markiert: {', '.join(sorted(result['flagged']))}."
    )
    record_run("demo-inbox", result, DEMO_DATA)


DEMO_DATA = "Musterstadt-Demo: 60 Eingänge mit bekannter Zuordnung, 420 historische Vorgänge"
DEFAULT_CATALOGUE = Path("../shared/data/knowledge/muenchen_services_de.json")


def _offline_settings():  # type: ignore[no-untyped-def]
    from rathaus.core.config import load_settings

    # An offline measurement needs only the model settings, not the server's secrets.
    return load_settings(mode="demo")


@app.command("retrieval")
def retrieval(
    data: Path = typer.Option(DEFAULT_CATALOGUE, "--data", help="Münchner Dienstleistungskatalog."),
    as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    limit: int | None = typer.Option(None, "--limit", help="Nur die ersten N Dienste (Probelauf)."),
) -> None:
    """Suche im Wissen: Katalog ohne meta.keywords indexieren, jedes Schlagwort als Anfrage."""
    from rathaus.ai.registry import get_embedder
    from rathaus.assistant.evaluation import evaluate_retrieval

    result = evaluate_retrieval(data, embedder=get_embedder(_offline_settings()), limit=limit)
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        record_run("retrieval", result, data)
        return
    typer.echo(
        f"{result['queries']} Anfragen auf {result['entries']} Diensten: recall@5 "
        f"{num(result['recall@5'], 3)}, MRR {num(result['mrr'], 3)}, p95 {num(result['p95_ms'])} ms "
        f"(davon Suche ohne Anfrage-Embedding {num(result['p95_search_ms'])} ms)."
    )
    record_run("retrieval", result, data)


@app.command("uebersetzung")
def uebersetzung(
    as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    modell: bool = typer.Option(
        False,
        "--modell",
        help="Auch das eingerichtete Sprachmodell dieselben Sätze übersetzen lassen und zählen, "
        "wie viele seiner Übersetzungen die Prüfung bestehen (mit --json jede Übersetzung).",
    ),
) -> None:
    """Prüfung übersetzter Antwortsätze: richtige, falsche und sinnverändernde Übersetzungen."""
    from rathaus.ai.registry import get_embedder, get_language_model
    from rathaus.assistant.multilingual import CHECKS_FILE, evaluate_checks

    settings = _offline_settings()
    model = get_language_model(settings, "buergerassistent") if modell else None
    if modell and model is None:
        typer.echo("Es ist kein Sprachmodell eingerichtet (RATHAUS_LLM__BACKEND).", err=True)
        raise typer.Exit(code=2)
    result = evaluate_checks(embedder=get_embedder(settings), model=model)
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        pairs = result["pairs"]
        labels = {
            "right": "richtige Übersetzungen",
            "other_sentence": "Übersetzungen eines anderen Satzes",
            "meaning_changed": "Übersetzungen mit verändertem Sinn",
        }
        typer.echo(
            f"{pairs} deutsche Sätze in {len(result['languages'])} Sprachen, Schwelle "
            f"{num(result['threshold'], 2)}:"
        )
        parts = [(label, result[key]) for key, label in labels.items()]
        if "model" in result:
            parts.append((f"Übersetzungen des Modells {result['model']['name']}", result["model"]))
        for label, part in parts:
            typer.echo(
                f"  {label}: angenommen {part['accepted']} von {pairs} (abgelehnt: unbrauchbar "
                f"{part['rejected_degenerate']}, falsche Sprache {part['rejected_language']}, "
                f"Zahlen {part['rejected_numbers']}, anderer Satz "
                f"{part['rejected_other_sentence']}, Ähnlichkeit {part['rejected_similarity']})"
            )
        if "model" in result:
            typer.echo("  Die Übersetzungen des Modells selbst zeigt --json.")
    record_run("uebersetzung", result, CHECKS_FILE.name)


@app.command("assistant")
def assistant(
    data: Path = typer.Option(DEFAULT_CATALOGUE, "--data", help="Münchner Dienstleistungskatalog."),
    as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    kalibrieren: bool = typer.Option(
        False, "--kalibrieren", help="Stattdessen die Enthaltungs-Kalibrierung neu anpassen."
    ),
    fragen_uebersetzen: str | None = typer.Option(
        None,
        "--fragen-uebersetzen",
        help="Fragen in anderen Sprachen für die Suche ins Deutsche übersetzen, auch bei "
        "extraktiven Antworten: 'modell' mit dem eingerichteten Sprachmodell, 'referenz' mit "
        "den von Hand übersetzten Fragen der Auswertung (Obergrenze einer guten Übersetzung).",
    ),
) -> None:
    """Antworten auf Bürgerfragen mit bekannter Antwort: richtige Quelle, Enthaltung, Belege."""
    from rathaus.ai.registry import get_language_model
    from rathaus.assistant.answer import AssistantKit
    from rathaus.assistant.evaluation import (
        ReferenceTranslations,
        calibrate,
        evaluate_assistant,
    )

    settings = _offline_settings()
    kit = AssistantKit.from_settings(settings)
    if fragen_uebersetzen == "modell":
        kit.question_model = get_language_model(settings, "buergerassistent")
        if kit.question_model is None:
            typer.echo("Es ist kein Sprachmodell eingerichtet (RATHAUS_LLM__BACKEND).", err=True)
            raise typer.Exit(code=2)
    elif fragen_uebersetzen == "referenz":
        kit.question_model = ReferenceTranslations()
        kit.question_model_reliable = True
    elif fragen_uebersetzen is not None:
        typer.echo("--fragen-uebersetzen kennt nur „modell“ und „referenz“.", err=True)
        raise typer.Exit(code=2)
    if kalibrieren:
        typer.echo(json.dumps(calibrate(data, embedder=kit.embedder), ensure_ascii=False))
        return
    result = evaluate_assistant(data, kit=kit)
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        record_run("assistant", result, data)
        return
    typer.echo(
        f"{result['answerable']} beantwortbare Fragen auf Deutsch: richtige Quelle "
        f"{pct(result['cites_right_service'])}, fälschlich enthalten "
        f"{pct(result['abstained_when_answerable'])}; {result['outside']} Fragen außerhalb: "
        f"enthalten {pct(result['abstained_when_outside'])}; Sätze ohne Beleg: "
        f"{result['unsupported_sentences']} von {result['answer_sentences']} ({result['mode']})."
    )
    other = result["other_languages"]
    typer.echo(
        f"{other['answerable']} beantwortbare Fragen in anderen Sprachen "
        f"({', '.join(other['by_language'])}): richtige Quelle "
        f"{pct(other['cites_right_service'])}, falscher Dienst {pct(other['wrong_service_shown'])}, "
        f"fälschlich enthalten {pct(other['abstained_when_answerable'])}; {other['outside']} "
        "außerhalb: enthalten "
        f"{pct(other['abstained_when_outside'])}; Sprache erkannt: "
        f"{pct(other['language_detected'])} aller Einzelfragen."
    )
    follow = result["follow_ups"]
    typer.echo(
        f"{follow['questions']} Folgefragen im Gespräch: richtige Quelle "
        f"{pct(follow['cites_right_service'])}, enthalten {pct(follow['abstained'])}."
    )
    if result["mode"] == "generiert":
        modes = result["answer_modes"]
        typer.echo(
            f"Antworten vom Sprachmodell: {modes['generiert']}, ersatzweise extraktiv (kein "
            f"belegter Satz des Modells): {modes['extraktiv']}."
        )
    record_run("assistant", result, data)
