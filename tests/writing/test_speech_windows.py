"""Long recordings are decoded and transcribed in windows: cut in pauses, no gap and no overlap,
timestamps continuous across windows, the same samples as whole-file decoding."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from rathaus.ai import speech
from rathaus.ai.model_files import SPEECH_MODEL
from tests.writing.test_speech import whisper_models_dir

RATE = 16_000
SENTENCES = [
    "Tagesordnungspunkt eins: Genehmigung der Niederschrift.",
    "Der Kämmerer erläutert den Haushalt für das Jahr 2026.",
    "Frau Müller fragt nach den Kosten der Sanierung der Grundschule.",
    "Der Antrag wird mit zwölf Ja-Stimmen angenommen.",
    "Die nächste Sitzung findet im März statt.",
]


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.astype(np.int16).tobytes())
    return path


def bursts(seconds: float, rate: int = RATE) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Tone bursts of 1.7 s with 0.6 s of silence between them; and the silent stretches."""
    t = np.arange(int(1.7 * rate)) / rate
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    pause = np.zeros(int(0.6 * rate), dtype=np.int16)
    parts, gaps, at = [], [], 0.0
    while at < seconds:
        parts += [tone, pause]
        gaps.append((at + 1.7, at + 2.3))
        at += 2.3
    return np.concatenate(parts), gaps


def test_windows_cover_the_recording_without_gap_or_overlap_and_cut_in_pauses(tmp_path):
    samples, gaps = bursts(60.0)
    path = write_wav(tmp_path / "toene.wav", samples)
    windows = list(speech.audio_windows(path, window_s=10.0, search_s=4.0))
    assert len(windows) >= 4
    position = 0.0
    for start, chunk in windows:
        assert chunk.dtype == np.float32
        assert start == pytest.approx(position, abs=1e-9)  # no gap, no overlap
        position = start + len(chunk) / RATE
    assert position == pytest.approx(len(samples) / RATE, abs=0.01)
    for start, chunk in windows[:-1]:
        assert 10.0 <= len(chunk) / RATE <= 14.0
        cut = start + len(chunk) / RATE
        assert any(a <= cut <= b for a, b in gaps), f"cut at {cut:.2f} s is not in a pause"
    # the same samples as decoding the whole file at once (faster-whisper's decoder)
    from faster_whisper.audio import decode_audio

    whole = decode_audio(str(path), sampling_rate=RATE)
    joined = np.concatenate([chunk for _, chunk in windows])
    assert len(joined) == len(whole) and np.allclose(joined, whole, atol=1e-4)


def test_other_rates_and_stereo_are_resampled_to_16_khz_mono(tmp_path):
    samples, _ = bursts(12.0, rate=44_100)
    path = tmp_path / "cd.wav"
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(44_100)
        handle.writeframes(np.repeat(samples, 2).tobytes())  # the same on both channels
    windows = list(speech.audio_windows(path, window_s=5.0, search_s=2.0))
    total = sum(len(c) for _, c in windows) / RATE
    assert total == pytest.approx(len(samples) / 44_100, abs=0.05)
    assert 0.15 < max(float(np.abs(c).max()) for _, c in windows) < 0.5  # 8000 / 32768


def test_a_file_that_is_not_audio_is_refused_in_german(tmp_path):
    path = tmp_path / "kein.wav"
    path.write_bytes(b"RIFF0000WAVEfmt " + bytes(200))
    with pytest.raises(speech.AudioError) as info:
        list(speech.audio_windows(path))
    assert "keine lesbare Audio" in info.value.message


def espeak_recording(folder: Path, repeats: int) -> tuple[Path, list[tuple[int, float, float]]]:
    """German sentences by espeak-ng with 0.8 s pauses, resampled to 16 kHz mono; and where each
    sentence is: (its index in SENTENCES, start second, end second)."""
    pieces, spans, at = [], [], 0
    for n in range(repeats):
        for i, sentence in enumerate(SENTENCES):
            out = folder / f"s{n}_{i}.wav"
            subprocess.run(["espeak-ng", "-v", "de", "-s", "150", "-w", str(out), sentence],
                           check=True)  # fmt: skip
            with wave.open(str(out), "rb") as handle:
                rate = handle.getframerate()
                data = np.frombuffer(handle.readframes(handle.getnframes()), dtype=np.int16)
            index = np.linspace(0, len(data) - 1, int(len(data) * RATE / rate))
            spoken = np.interp(index, np.arange(len(data)), data).astype(np.int16)
            spans.append((i, at / RATE, (at + len(spoken)) / RATE))
            pieces += [spoken, np.zeros(int(0.8 * RATE), dtype=np.int16)]
            at += len(spoken) + int(0.8 * RATE)
    return write_wav(folder / "sitzung.wav", np.concatenate(pieces)), spans


@pytest.mark.model
@pytest.mark.slow
def test_bundled_whisper_in_windows_keeps_timestamps_continuous(tmp_path):
    path, spans = espeak_recording(tmp_path, repeats=2)
    total = speech.probe_audio(path).duration
    first_cut = next(iter(speech.audio_windows(path, window_s=12.0)))[1].size / RATE
    assert first_cut < total - 10  # the recording really is transcribed in two windows
    model_dir = SPEECH_MODEL.path(whisper_models_dir())
    windowed = speech.WhisperTranscriber(model_dir, threads=2, window_s=12.0)
    seen: list[tuple[float, float]] = []
    segments = list(windowed.transcribe(path, language="de",
                                        on_progress=lambda d, t: seen.append((d, t))))  # fmt: skip
    assert len(segments) >= 6
    starts = [s.start for s in segments]
    assert starts == sorted(starts) and segments[-1].end <= total + 0.01
    assert all(s.end >= s.start for s in segments)
    # times count from the start of the recording in every window: a segment with a word of a
    # sentence lies where that sentence was spoken, also after the first cut
    keywords = {"haushalt": 1, "müller": 2, "antrag": 3, "märz": 4}
    checked = 0
    for segment in segments:
        for word, index in keywords.items():
            if word in segment.text.lower():
                checked += 1
                assert any(
                    a - 1.5 <= segment.start <= b + 1.5 for i, a, b in spans if i == index
                ), (segment, word)
    assert checked >= 6
    assert sum(1 for s in segments if s.start > first_cut) >= 3
    assert seen[-1] == (pytest.approx(total, abs=0.05), total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    text = " ".join(s.text for s in segments).lower()
    for word in ("haushalt", "müller", "antrag", "märz"):
        assert text.count(word) >= 2, text  # every sentence of both rounds, none lost at a cut
