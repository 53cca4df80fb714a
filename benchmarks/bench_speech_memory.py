"""Speech-to-text memory: peak RSS for a long recording, whole-file decoding against windows.

    .venv/bin/python benchmarks/bench_speech_memory.py --minuten 60
    .venv/bin/python benchmarks/bench_speech_memory.py --datei sitzung.mp3

Audio: a recording of ``--minuten`` minutes built from German sentences spoken by
``espeak-ng -v de`` (one minute of speech with short pauses, then silence, every
``--abstand`` minutes; silence is skipped by the VAD, which keeps the run short), or a file.
Each way runs in a fresh process, after the Whisper model was loaded there:

- baseline ``ganz``: what Rathaus did before: ``WhisperModel.transcribe(path)``, which decodes
  the whole file to 16 kHz float32 first (faster-whisper's ``decode_audio``);
- ``fenster``: :class:`rathaus.ai.speech.WhisperTranscriber`, which decodes and transcribes
  window by window (``WINDOW_S``).

Prints JSON per way: peak RSS of the process (``ru_maxrss``), RSS after loading the model, the
difference, seconds, segments and real-time factor (seconds per second of audio transcribed);
and the load average. ``--bis-minute`` stops both ways after that minute of the recording, so
a long recording of continuous speech can be measured in minutes: whole-file decoding reaches
its peak before the first segment (it decodes, runs the VAD and computes the features of the
whole recording first), and every window is the same size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_speech import espeak_speech  # noqa: E402


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def long_recording(folder: Path, minutes: float, every: float) -> Path:
    """``minutes`` of 16 kHz mono: a minute of espeak speech every ``every`` minutes."""
    speech = espeak_speech(folder, 60.0)
    with wave.open(str(speech), "rb") as handle:
        rate = handle.getframerate()
        spoken = handle.readframes(handle.getnframes())
    out = folder / "lang.wav"
    silence = b"\0\0" * int(rate * max(0.0, every * 60 - len(spoken) / 2 / rate))
    written = 0.0
    with wave.open(str(out), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        while written < minutes * 60:
            handle.writeframes(spoken + silence)
            written += (len(spoken) + len(silence)) / 2 / rate
    return out


def measure(
    way: str,
    audio: Path,
    model_dir: Path,
    threads: int,
    until_s: float | None = None,
    window_s: float | None = None,
) -> dict[str, object]:
    """Run one way in this process and report its memory and time (up to the first segment
    that ends after ``until_s`` seconds of the recording, if given)."""
    from rathaus.ai.speech import WhisperTranscriber, probe_audio

    seconds = probe_audio(audio).duration
    transcriber = WhisperTranscriber(model_dir, threads=threads)
    if window_s:
        transcriber.window_s = window_s
    model = transcriber._loaded()
    loaded = _rss_mb()
    started = time.perf_counter()
    if way == "ganz":
        found, _ = model.transcribe(str(audio), language="de", beam_size=5, vad_filter=True)
    else:
        found = transcriber.transcribe(audio, language="de")
    segments, reached = 0, 0.0
    for segment in found:
        segments, reached = segments + 1, float(segment.end)
        if until_s is not None and reached > until_s:
            break
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "way": way,
        "audio_s": round(seconds, 1),
        "rss_model_loaded_mb": round(loaded, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_minus_model_mb": round(peak - loaded, 1),
        "transcribe_s": round(elapsed, 1),
        "segments": segments,
        "transcribed_until_s": round(reached, 1),
        "rtf": round(elapsed / max(reached, 1e-6), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datei", type=Path, help="eigene Aufnahme statt espeak-ng")
    parser.add_argument("--minuten", type=float, default=60.0, help="Länge der Aufnahme")
    parser.add_argument("--abstand", type=float, default=10.0, help="Minuten zwischen Reden")
    parser.add_argument(
        "--bis-minute",
        type=float,
        help="nach dieser Minute der Aufnahme aufhören (die Spitze ist dann erreicht: der ganze "
        "Weg dekodiert und berechnet die Merkmale vor dem ersten Abschnitt, Fenster sind gleich "
        "groß); ohne: bis zum Ende",
    )
    parser.add_argument("--fenster-sekunden", type=float, help="Fensterlänge (Standard: WINDOW_S)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modell", type=Path, help="Whisper-Ordner (Standard: mitgeliefert)")
    parser.add_argument("--weg", choices=("ganz", "fenster"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    os.environ.setdefault("RATHAUS_MODE", "demo")
    if args.weg:  # the child process: one way
        until = args.bis_minute * 60 if args.bis_minute else None
        result = measure(
            args.weg, args.datei, args.modell, args.threads, until, args.fenster_sekunden
        )
        print(json.dumps(result))
        return

    from rathaus.ai.speech import WINDOW_S, speech_model_dir
    from rathaus.core.config import load_settings

    model_dir = args.modell or speech_model_dir(load_settings())
    with tempfile.TemporaryDirectory(prefix="rathaus-bench-") as folder:
        audio = args.datei or long_recording(Path(folder), args.minuten, args.abstand)
        results = []
        for way in ("ganz", "fenster"):
            command = [sys.executable, __file__, "--weg", way, "--datei", str(audio),
                       "--modell", str(model_dir), "--threads", str(args.threads)]  # fmt: skip
            if args.bis_minute:
                command += ["--bis-minute", str(args.bis_minute)]
            if args.fenster_sekunden:
                command += ["--fenster-sekunden", str(args.fenster_sekunden)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    ganz, fenster = results
    made = f"espeak-ng -v de, {args.minuten:g} min, alle {args.abstand:g} min 1 min Rede"
    print(
        json.dumps(
            {
                "audio": str(args.datei) if args.datei else made,
                "window_s": args.fenster_sekunden or WINDOW_S,
                "until_minute": args.bis_minute,
                "baseline_whole_file": ganz,
                "windows": fenster,
                "peak_ratio_windows_vs_whole": round(
                    fenster["peak_rss_mb"] / max(ganz["peak_rss_mb"], 1e-6), 3
                ),
                "loadavg": Path("/proc/loadavg").read_text(encoding="ascii").split()[:3],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
