"""`rathaus text transkribieren`: output formats, bad files, Strg+C keeps what was recognised."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rathaus.ai.speech import Segment
from rathaus.cli import app
from tests.writing.test_speech import FakeTranscriber, silent_wav


@pytest.fixture(autouse=True)
def demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RATHAUS_MODE", "demo")
    monkeypatch.setenv("RATHAUS_DATA_DIR", str(tmp_path))


def use(monkeypatch: pytest.MonkeyPatch, transcriber) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("rathaus.ai.speech.get_transcriber", lambda settings: transcriber)


def test_transcribes_to_srt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use(monkeypatch, FakeTranscriber(count=2))
    audio = tmp_path / "sitzung.wav"
    audio.write_bytes(silent_wav(4))

    result = CliRunner().invoke(app, ["text", "transkribieren", str(audio), "--format", "srt"])

    assert result.exit_code == 0, result.output
    assert "1\n00:00:00,000 --> 00:00:02,000\nSatz 1.\n" in result.stdout
    assert "Fertig: 2 Abschnitte aus 00:00:04 Aufnahme" in result.stderr


def test_bad_file_exits_2_with_german_message(tmp_path: Path) -> None:
    bad = tmp_path / "brief.pdf"
    bad.write_bytes(b"%PDF-1.4\n%%EOF\n")

    result = CliRunner().invoke(app, ["text", "transkribieren", str(bad)])
    missing = CliRunner().invoke(app, ["text", "transkribieren", str(tmp_path / "fehlt.wav")])
    wrong = CliRunner().invoke(app, ["text", "transkribieren", str(bad), "--format", "doc"])

    assert result.exit_code == 2
    assert "FEHLER: „brief.pdf“ ist keine lesbare Audio- oder Videodatei" in result.stderr
    assert missing.exit_code == 2 and "gibt es nicht" in missing.stderr
    assert wrong.exit_code == 2 and "Unbekanntes Format „doc“" in wrong.stderr


class Interrupted(FakeTranscriber):
    def transcribe(self, path, *, language, on_progress=None):  # type: ignore[no-untyped-def]
        yield Segment(0.0, 2.0, "Erster Satz.")
        yield Segment(2.0, 4.0, "Zweiter Satz.")
        raise KeyboardInterrupt


def test_ctrl_c_keeps_what_was_recognised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use(monkeypatch, Interrupted())
    audio = tmp_path / "lang.wav"
    audio.write_bytes(silent_wav(10))
    out = tmp_path / "ergebnis.json"

    result = CliRunner().invoke(
        app, ["text", "transkribieren", str(audio), "--format", "json", "--ausgabe", str(out)]
    )

    assert result.exit_code == 130
    assert "Abgebrochen bei 00:00:04 von 00:00:10: 2 bereits erkannte Abschnitte" in result.stderr
    assert '"text": "Zweiter Satz."' in out.read_text(encoding="utf-8")
