"""`rathaus text transkribieren`: speech-to-text of a recording on the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rathaus.core.errors import RathausError

FORMAT_HELP = "Ausgabeformat: text (mit Zeitmarken), srt, vtt (WebVTT) oder json."


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"FEHLER: {message}", err=True)
    return typer.Exit(code)


def transkribieren(
    datei: Annotated[Path, typer.Argument(help="Aufnahme (Audio oder Video).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)] = "text",
    sprache: Annotated[
        str | None, typer.Option("--sprache", help="Sprache der Aufnahme (Standard: de).")
    ] = None,
    ausgabe: Annotated[
        Path | None,
        typer.Option("--ausgabe", "-o", help="In diese Datei schreiben statt auf die Konsole."),
    ] = None,
) -> None:
    """Schreibt eine Aufnahme mit Whisper ab (im Vordergrund, mit Fortschrittsbalken).

    Strg+C hält an und gibt das bis dahin Erkannte aus (Exit-Code 130). Eine Datei, die keine
    lesbare Aufnahme ist, endet mit Exit-Code 2 und einer deutschen Meldung.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from rathaus.ai.speech import Segment, get_transcriber
    from rathaus.core.config import load_settings
    from rathaus.writing.transcription import FORMATS, check_audio_file, clock, format_segments

    if fmt not in FORMATS:
        raise _fail(f"Unbekanntes Format „{fmt}“. Erlaubt sind: {', '.join(FORMATS)}.", 2)
    if not datei.is_file():
        raise _fail(f"Die Datei {datei} gibt es nicht.", 2)
    try:
        settings = load_settings()
        duration = check_audio_file(datei, settings=settings, label=datei.name)
        transcriber = get_transcriber(settings)
    except RathausError as exc:
        raise _fail(exc.message, getattr(exc, "exit_code", 1)) from None
    language = sprache or settings.writing.speech_language

    segments: list[Segment] = []
    interrupted = False
    console = Console(stderr=True)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f} %"),
        TextColumn("{task.fields[where]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(
            f"Transkribiere {datei.name}", total=duration, where=f"0:00:00 / {clock(duration)}"
        )

        def on_progress(done: float, total: float) -> None:
            progress.update(task, completed=done, where=f"{clock(done)} / {clock(total)}")

        try:
            for segment in transcriber.transcribe(
                datei, language=language, on_progress=on_progress
            ):
                segments.append(segment)
        except KeyboardInterrupt:
            interrupted = True
        except RathausError as exc:
            raise _fail(exc.message, getattr(exc, "exit_code", 1)) from None

    text = format_segments(segments, fmt)
    if ausgabe is not None:
        ausgabe.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    done = segments[-1].end if segments else 0.0
    where = f" nach {ausgabe}" if ausgabe is not None else ""
    if interrupted:
        typer.echo(
            f"Abgebrochen bei {clock(done)} von {clock(duration)}: {len(segments)} bereits "
            f"erkannte Abschnitte ausgegeben{where}.",
            err=True,
        )
        raise typer.Exit(130)
    typer.echo(
        f"Fertig: {len(segments)} Abschnitte aus {clock(duration)} Aufnahme{where}. "
        "Entwurfsqualität – bitte prüfen.",
        err=True,
    )


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add this file's commands to ``rathaus text``."""
    app.command("transkribieren")(transkribieren)
