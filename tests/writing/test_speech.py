"""Transcription jobs: checks before queueing, progress, cancel, failures, minutes, tenants."""

from __future__ import annotations

import io
import os
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rathaus.ai.model_files import SPEECH_MODEL, assemble_bundle
from rathaus.ai.speech import Segment
from rathaus.core.config import Settings, load_settings
from rathaus.core.db import Database
from rathaus.core.errors import InvalidTransitionError, NotFoundError
from rathaus.core.models import MeetingMinutes, WritingJob, WritingJobStatus
from rathaus.core.storage import OriginalStore
from rathaus.writing import transcription as tx
from tests.factories import World, build_tenant

ROOT = Path(__file__).resolve().parents[2]
SENTENCE = (
    "Der Gemeinderat hat den Haushalt für das Jahr 2025 beschlossen. Die Sitzung beginnt um 18 Uhr."
)


def silent_wav(seconds: float, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV of silence, built with the standard library."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()


def espeak_wav(tmp_path: Path, text: str = SENTENCE) -> bytes:
    path = tmp_path / "satz.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-w", str(path), text], check=True)
    return path.read_bytes()


def whisper_models_dir() -> Path:
    """The models folder with the bundled Whisper base (assembled once; a no-op after setup)."""
    models_dir = Path(os.environ.get("RATHAUS_MODELS_DIR", ROOT / "var" / "models"))
    assemble_bundle(models_dir, SPEECH_MODEL)
    return models_dir


class FakeTranscriber:
    """Deterministic stand-in for plumbing tests: ``count`` segments of 2 s, optionally slow or
    failing after ``fail_after`` segments."""

    name = "fake"

    def __init__(self, count: int = 5, delay: float = 0.0, fail_after: int | None = None) -> None:
        self.count, self.delay, self.fail_after = count, delay, fail_after

    def duration(self, path: Path) -> float:
        return self.count * 2.0

    def transcribe(self, path: Path, *, language: str, on_progress=None) -> Iterator[Segment]:  # type: ignore[no-untyped-def]
        assert path.is_file()
        for i in range(self.count):
            if self.fail_after is not None and i == self.fail_after:
                raise RuntimeError("Rechenkern ausgefallen")
            time.sleep(self.delay)
            segment = Segment(i * 2.0, i * 2.0 + 2.0, f"Satz {i + 1}.")
            if on_progress is not None:
                on_progress(segment.end, self.count * 2.0)
            yield segment


def make_settings(db: Database, tmp_path: Path, **writing: Any) -> Settings:
    return load_settings(
        mode="demo",
        data_dir=tmp_path,
        database_url=db.url,
        queue={"backend": "memory"},
        writing=writing,
    )


@pytest.fixture
def world(db: Database) -> World:
    with db.session() as session:
        return build_tenant(session, "alpha")


@pytest.fixture
def other(db: Database, world: World) -> World:
    with db.session() as session:
        return build_tenant(session, "beta")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTranscriber:
    transcriber = FakeTranscriber()
    monkeypatch.setattr("rathaus.ai.speech.get_transcriber", lambda settings: transcriber)
    return transcriber


def start(db: Database, settings: Settings, world: World, data: bytes, name: str = "a.wav", **kw):  # type: ignore[no-untyped-def]
    with db.session() as session:
        job = tx.start_transcription(
            session,
            settings=settings,
            tenant_id=world.tenant.id,
            user_name="sb",
            filename=name,
            data=data,
            **kw,
        )
        return job.id


def load(db: Database, job_id: int) -> WritingJob:
    with db.session() as session:
        job = session.get(WritingJob, job_id)
        assert job is not None
        session.expunge(job)
        return job


def only_job(db: Database) -> WritingJob:
    with db.session() as session:
        jobs = session.query(WritingJob).all()
        assert len(jobs) == 1
        session.expunge(jobs[0])
        return jobs[0]


# -- refused input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("zufall.bin", os.urandom(50_000)),
        ("bescheid.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"),
        ("notiz.mp3", b"Kein Ton, nur Text."),
    ],
)
def test_not_audio_is_refused_job_failed_original_kept(
    db: Database, tmp_path: Path, world: World, fake: FakeTranscriber, name: str, data: bytes
) -> None:
    settings = make_settings(db, tmp_path)

    with pytest.raises(tx.TranscriptionInputError) as caught:
        start(db, settings, world, data, name)

    assert f"„{name}“ ist keine lesbare Audio- oder Videodatei" in caught.value.message
    job = only_job(db)
    assert caught.value.job_id == job.id
    assert job.status == WritingJobStatus.FEHLGESCHLAGEN
    assert job.error == caught.value.message
    assert OriginalStore(settings.originals_dir).get(world.tenant.id, job.original_sha256) == data


def test_too_long_recording_is_refused(
    db: Database, tmp_path: Path, world: World, fake: FakeTranscriber
) -> None:
    settings = make_settings(db, tmp_path, max_audio_hours=0.001)  # 3.6 s

    with pytest.raises(tx.TranscriptionInputError) as caught:
        start(db, settings, world, silent_wav(10), "sitzung.wav")

    assert caught.value.message.startswith("„sitzung.wav“ dauert 00:00:10 Stunden, erlaubt sind")
    assert "höchstens 0,001 Stunden" in caught.value.message
    job = only_job(db)
    assert job.status == WritingJobStatus.FEHLGESCHLAGEN and job.original_sha256


def test_too_big_file_is_refused_without_storing(
    db: Database, tmp_path: Path, world: World, fake: FakeTranscriber
) -> None:
    settings = make_settings(db, tmp_path, max_audio_mb=1)

    with pytest.raises(tx.TranscriptionInputError) as caught:
        start(db, settings, world, silent_wav(70, rate=8000))  # 1.1 MB

    assert caught.value.http_status == 413
    assert "ist größer als 1 MB" in caught.value.message
    job = only_job(db)
    assert job.status == WritingJobStatus.FEHLGESCHLAGEN and job.original_sha256 == ""


def test_minutes_of_another_tenant_is_not_found(
    db: Database, tmp_path: Path, world: World, other: World, fake: FakeTranscriber
) -> None:
    with db.session() as session:
        minutes = MeetingMinutes(tenant_id=other.tenant.id, title="Fremd")
        session.add(minutes)
        session.flush()
        minutes_id = minutes.id

    with pytest.raises(NotFoundError):
        start(db, make_settings(db, tmp_path), world, silent_wav(2), minutes_id=minutes_id)


# -- the job ------------------------------------------------------------------------------------


def test_job_runs_to_the_end_and_fills_the_minutes(
    db: Database, tmp_path: Path, world: World, fake: FakeTranscriber
) -> None:
    with db.session() as session:
        minutes = MeetingMinutes(tenant_id=world.tenant.id, title="Gemeinderat März")
        session.add(minutes)
        session.flush()
        minutes_id = minutes.id

    job_id = start(db, make_settings(db, tmp_path), world, silent_wav(10), minutes_id=minutes_id)

    job = load(db, job_id)
    assert job.status == WritingJobStatus.FERTIG
    assert job.progress == 1.0 and job.started_at and job.finished_at
    assert job.message.startswith("Fertig: 5 Abschnitte aus 00:00:10 Aufnahme.")
    assert job.result["model"] == "fake" and job.result["duration"] == 10.0
    assert job.result["segments"][0] == {"start": 0.0, "end": 2.0, "text": "Satz 1."}
    with db.session() as session:
        assert session.get(MeetingMinutes, minutes_id).transcript == job.result["segments"]


def test_cancel_while_running_keeps_partial_segments(
    db: Database, tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tx, "PROGRESS_INTERVAL_S", 0.0)
    monkeypatch.setattr(tx, "_enqueue", lambda session, settings, job: None)  # run it ourselves
    settings = make_settings(db, tmp_path)
    job_id = start(db, settings, world, silent_wav(10))
    assert load(db, job_id).status == WritingJobStatus.WARTET
    outcome: list[str] = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            tx.run_transcription(
                db,
                settings=settings,
                job_id=job_id,
                transcriber=FakeTranscriber(count=200, delay=0.05),
            )
        )
    )

    worker.start()
    deadline = time.monotonic() + 20
    seen: list[float] = []
    while time.monotonic() < deadline:
        job = load(db, job_id)
        seen.append(job.progress)
        if len(job.result.get("segments", [])) >= 3:
            break
        time.sleep(0.02)
    assert job.status == WritingJobStatus.LAEUFT
    assert job.message.startswith("Läuft: ")
    with db.session() as session:
        tx.cancel_job(session, tenant_id=world.tenant.id, job_id=job_id, user_name="sb")
    worker.join(timeout=20)

    job = load(db, job_id)
    assert outcome == ["abgebrochen"]
    assert job.status == WritingJobStatus.ABGEBROCHEN
    assert 3 <= len(job.result["segments"]) < 200
    assert 0 < job.progress < 1
    assert "bereits erkannte Abschnitte bleiben erhalten" in job.message
    assert seen == sorted(seen)  # progress only grows
    with db.session() as session:  # cancelling twice changes nothing
        again = tx.cancel_job(session, tenant_id=world.tenant.id, job_id=job_id)
        assert again.status == WritingJobStatus.ABGEBROCHEN


def test_cancel_before_start_and_after_finish(
    db: Database, tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tx, "_enqueue", lambda session, settings, job: None)
    settings = make_settings(db, tmp_path)
    waiting = start(db, settings, world, silent_wav(4))
    with db.session() as session:
        job = tx.cancel_job(session, tenant_id=world.tenant.id, job_id=waiting)
        assert job.status == WritingJobStatus.ABGEBROCHEN
    # a worker that takes the job later leaves it alone
    assert tx.run_transcription(db, settings=settings, job_id=waiting) == "abgebrochen"

    done = start(db, settings, world, silent_wav(4))
    tx.run_transcription(db, settings=settings, job_id=done, transcriber=FakeTranscriber(2))
    with db.session() as session, pytest.raises(InvalidTransitionError, match="bereits fertig"):
        tx.cancel_job(session, tenant_id=world.tenant.id, job_id=done)


def test_failure_is_reported_in_german_with_partial_segments(
    db: Database, tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = FakeTranscriber(count=5, fail_after=3)
    monkeypatch.setattr("rathaus.ai.speech.get_transcriber", lambda settings: failing)

    job_id = start(db, make_settings(db, tmp_path), world, silent_wav(10))

    job = load(db, job_id)
    assert job.status == WritingJobStatus.FEHLGESCHLAGEN
    assert job.error.startswith("Die Spracherkennung ist mit einem internen Fehler abgebrochen")
    assert "(RuntimeError)" in job.error
    assert [s["text"] for s in job.result["segments"]] == ["Satz 1.", "Satz 2.", "Satz 3."]


def test_get_job_is_tenant_scoped(
    db: Database, tmp_path: Path, world: World, other: World, fake: FakeTranscriber
) -> None:
    job_id = start(db, make_settings(db, tmp_path), world, silent_wav(4))
    with db.session() as session:
        assert tx.get_job(session, tenant_id=world.tenant.id, job_id=job_id).id == job_id
        with pytest.raises(NotFoundError, match=f"Den Auftrag {job_id} gibt es"):
            tx.get_job(session, tenant_id=other.tenant.id, job_id=job_id)
        with pytest.raises(NotFoundError):
            tx.cancel_job(session, tenant_id=other.tenant.id, job_id=job_id)


def test_export_formats() -> None:
    segments = [{"start": 0.0, "end": 2.5, "text": "Guten Abend."}, Segment(3661.2, 3663.0, "Ja.")]

    assert tx.format_segments(segments, "text") == "[00:00:00] Guten Abend.\n[01:01:01] Ja.\n"
    assert tx.format_segments(segments, "srt") == (
        "1\n00:00:00,000 --> 00:00:02,500\nGuten Abend.\n\n2\n01:01:01,200 --> 01:01:03,000\nJa.\n"
    )
    assert tx.format_segments(segments, "vtt").startswith(
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nGuten Abend.\n"
    )
    assert '"text": "Ja."' in tx.format_segments(segments, "json")
    with pytest.raises(tx.TranscriptionInputError, match="Unbekanntes Format „doc“"):
        tx.format_segments(segments, "doc")


# -- the real model -----------------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.slow
def test_bundled_whisper_transcribes_a_recording_through_the_job(
    db: Database, tmp_path: Path, world: World
) -> None:
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        database_url=db.url,
        queue={"backend": "memory"},
        models_dir=whisper_models_dir(),
    )

    job_id = start(db, settings, world, espeak_wav(tmp_path), "satz.wav")

    job = load(db, job_id)
    assert job.status == WritingJobStatus.FERTIG, job.error
    assert job.result["model"] == "whisper-base"
    text = " ".join(s["text"] for s in job.result["segments"]).lower()
    for word in ("haushalt", "sitzung", "18", "uhr"):
        assert word in text, text
