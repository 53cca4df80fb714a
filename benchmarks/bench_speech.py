"""Speech-to-text speed: real-time factor of Whisper base on 2 CPU threads, against decoding alone.

    .venv/bin/python benchmarks/bench_speech.py               # ~60 s of German speech (espeak-ng)
    .venv/bin/python benchmarks/bench_speech.py --datei aufnahme.mp3 --threads 2

Audio: German council-meeting sentences spoken by ``espeak-ng -v de`` at run time (about 60 s
with short pauses), or a recording you pass with ``--datei``. In the same run:

- baseline: decoding the file to 16 kHz mono (faster-whisper's ``decode_audio``, PyAV);
- Rathaus: :class:`rathaus.ai.speech.WhisperTranscriber` (int8, ``--threads`` CPU threads, VAD,
  beam size 5) over the whole file, after the model was loaded once (load time printed apart).

Real-time factor (RTF) = transcription seconds / audio seconds; the target is ≤ 0.35 on 2 cores.
Prints JSON with the RTF, the seconds and the ratio transcription / decoding.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

SENTENCES = [
    "Die Sitzung des Gemeinderats wird um achtzehn Uhr eröffnet.",
    "Der Bürgermeister begrüßt die Mitglieder und stellt die Beschlussfähigkeit fest.",
    "Tagesordnungspunkt eins: Genehmigung der Niederschrift der letzten Sitzung.",
    "Tagesordnungspunkt zwei: Haushaltssatzung und Haushaltsplan für das Jahr 2026.",
    "Der Kämmerer erläutert die Erträge und Aufwendungen des Ergebnishaushalts.",
    "Die Grundsteuer soll unverändert bleiben, die Gewerbesteuer ebenfalls.",
    "Frau Müller fragt nach den Kosten für die Sanierung der Grundschule.",
    "Die Verwaltung schätzt die Kosten auf 1,2 Millionen Euro.",
    "Der Antrag wird mit zwölf Ja-Stimmen bei drei Gegenstimmen angenommen.",
    "Tagesordnungspunkt drei: Bebauungsplan Lindenstraße, Aufstellungsbeschluss.",
    "Herr Schmidt regt an, die Anwohner frühzeitig zu beteiligen.",
    "Der Gemeinderat beschließt einstimmig, den Bebauungsplan aufzustellen.",
    "Unter Verschiedenes informiert die Verwaltung über den Winterdienst.",
    "Die nächste Sitzung findet am vierzehnten März statt.",
    "Der Bürgermeister schließt die öffentliche Sitzung um zwanzig Uhr fünfzehn.",
]


def espeak_speech(folder: Path, seconds: float) -> Path:
    """German speech of at least ``seconds`` (sentences repeated), as one WAV file."""
    parts: list[bytes] = []
    params = None
    total = 0.0
    index = 0
    while total < seconds:
        path = folder / f"satz{index}.wav"
        text = SENTENCES[index % len(SENTENCES)]
        subprocess.run(["espeak-ng", "-v", "de", "-s", "150", "-w", str(path), text], check=True)
        with wave.open(str(path), "rb") as handle:
            params = handle.getparams()
            frames = handle.readframes(handle.getnframes())
        pause = b"\0\0" * int(params.framerate * 0.6)  # 0.6 s silence between sentences
        parts.append(frames + pause)
        total += (len(frames) + len(pause)) / 2 / params.framerate
        index += 1
    assert params is not None
    out = folder / "rede.wav"
    with wave.open(str(out), "wb") as handle:
        handle.setparams(params)
        handle.writeframes(b"".join(parts))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datei", type=Path, help="eigene Aufnahme statt espeak-ng")
    parser.add_argument("--sekunden", type=float, default=60.0, help="Länge der espeak-Rede")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modell", type=Path, help="Whisper-Ordner (Standard: mitgeliefert)")
    args = parser.parse_args()

    os.environ.setdefault("RATHAUS_MODE", "demo")
    from faster_whisper.audio import decode_audio

    from rathaus.ai.speech import WhisperTranscriber, probe_audio, speech_model_dir
    from rathaus.core.config import load_settings

    model_dir = args.modell or speech_model_dir(load_settings())
    with tempfile.TemporaryDirectory(prefix="rathaus-bench-") as folder:
        audio = args.datei or espeak_speech(Path(folder), args.sekunden)
        seconds = probe_audio(audio).duration

        started = time.perf_counter()
        decode_audio(str(audio), sampling_rate=16000)
        decode_s = time.perf_counter() - started

        transcriber = WhisperTranscriber(model_dir, threads=args.threads)
        started = time.perf_counter()
        transcriber._loaded()
        load_s = time.perf_counter() - started

        started = time.perf_counter()
        segments = list(transcriber.transcribe(audio, language="de"))
        transcribe_s = time.perf_counter() - started

    rtf = transcribe_s / seconds
    print(
        json.dumps(
            {
                "audio": str(args.datei) if args.datei else "espeak-ng -v de",
                "audio_s": round(seconds, 1),
                "threads": args.threads,
                "model": str(model_dir),
                "model_load_s": round(load_s, 2),
                "baseline_decode_s": round(decode_s, 3),
                "transcribe_s": round(transcribe_s, 2),
                "segments": len(segments),
                "rtf": round(rtf, 3),
                "rtf_target": 0.35,
                "rtf_ok": rtf <= 0.35,
                "ratio_transcribe_vs_decode": round(transcribe_s / max(decode_s, 1e-6), 1),
                "first_segments": [s.text for s in segments[:3]],
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
