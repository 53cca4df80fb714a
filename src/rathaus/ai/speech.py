"""Speech-to-text behind a small contract: Whisper (faster-whisper, int8 on the CPU) and probing.

:class:`Transcriber` is the contract a backend implements; :class:`WhisperTranscriber` runs the
bundled Whisper base (or a faster-whisper model folder from the settings). :func:`probe_audio`
tells with PyAV whether a file is audio at all and how long it is, before anything is queued.
faster-whisper, CTranslate2 and PyAV are imported inside the functions that need them, so
importing this module (and the web app or the CLI) loads no model library.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rathaus.ai.model_files import SPEECH_MODEL, assemble_bundle, bundle_is_current
from rathaus.core.errors import ConfigError, RathausError

if TYPE_CHECKING:
    from rathaus.core.config import Settings

log = logging.getLogger(__name__)

# Called with (seconds transcribed so far, total seconds of the recording).
ProgressCallback = Callable[[float, float], None]

# PyAV reports container durations in microseconds (FFmpeg's AV_TIME_BASE).
_AV_TIME_BASE = 1_000_000
# Whisper hears 16 kHz mono. A recording is decoded and transcribed in windows of about
# WINDOW_S seconds, each cut at the quietest QUIET_S stretch of the CUT_SEARCH_S seconds after
# it, so no word is split and memory stays that of one window however long the recording is
# (faster-whisper's VAD and features grow with the audio they get; docs/speech.md has figures).
SAMPLE_RATE = 16_000
WINDOW_S = 600.0
CUT_SEARCH_S = 30.0
QUIET_S = 0.4


class AudioError(RathausError):
    """A file is not a recording Rathaus can transcribe (no audio, unreadable, broken)."""

    exit_code = 2


class SpeechModelError(RathausError):
    """The speech model cannot be found or loaded."""


@dataclass(frozen=True)
class Segment:
    """One transcribed stretch of speech; ``start`` and ``end`` in seconds from the beginning."""

    start: float
    end: float
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True)
class AudioInfo:
    """What :func:`probe_audio` found: duration in seconds and the audio stream's format."""

    duration: float
    codec: str
    sample_rate: int
    channels: int
    container: str


class Transcriber(Protocol):
    """Contract of a speech-to-text backend.

    ``transcribe`` yields segments in time order while it works (lazily: each segment as soon as
    it is decoded, so a caller can stop between segments) and calls ``on_progress`` with the
    seconds done and the total after each one. ``duration`` is the length of a recording in
    seconds. Both raise :class:`AudioError` (German) for a file that is not readable audio.
    """

    name: str

    def transcribe(
        self, path: Path, *, language: str, on_progress: ProgressCallback | None = None
    ) -> Iterator[Segment]: ...

    def duration(self, path: Path) -> float: ...


def _not_audio(label: str) -> AudioError:
    return AudioError(
        f"„{label}“ ist keine lesbare Audio- oder Videodatei. Bitte eine Aufnahme als WAV, "
        "MP3, M4A, OGG, OPUS, FLAC, WebM oder MP4 hochladen."
    )


def probe_audio(path: Path, *, label: str | None = None) -> AudioInfo:
    """Open ``path`` with PyAV, check it holds a decodable audio stream, and measure it.

    ``label`` names the file in messages (default: the file name). A file without an audio
    stream, one FFmpeg cannot read, or one whose first audio frame does not decode raises
    :class:`AudioError`. Without a duration in the header the audio is decoded to count it.
    """
    import av

    label = label or path.name
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise _not_audio(label) from None
    try:
        if not container.streams.audio:
            if not container.streams.video:
                raise _not_audio(label)
            raise AudioError(
                f"„{label}“ enthält keine Tonspur. Bitte eine Aufnahme mit Ton hochladen."
            )
        stream = container.streams.audio[0]
        # Garbage can pass the format probe with low confidence: one frame must decode.
        try:
            first = next(iter(container.decode(stream)), None)
        except (av.FFmpegError, ValueError):
            first = None
        if first is None:
            raise _not_audio(label)
        duration = _header_duration(container, stream)
        if duration is None:
            duration = _decoded_duration(path, label)
        return AudioInfo(
            duration=round(duration, 3),
            codec=stream.codec_context.name or "",
            sample_rate=int(stream.codec_context.sample_rate or 0),
            channels=int(stream.codec_context.channels or 0),
            container=container.format.name or "",
        )
    finally:
        container.close()


def _header_duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0:
            return seconds
    if container.duration is not None and container.duration > 0:
        return container.duration / _AV_TIME_BASE
    return None


def _decoded_duration(path: Path, label: str) -> float:
    import av

    samples, rate = 0, 0
    try:
        with av.open(str(path), mode="r") as container:
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                samples += frame.samples
                rate = frame.sample_rate or rate
    except (av.FFmpegError, ValueError):
        raise _not_audio(label) from None
    if not rate:
        raise _not_audio(label)
    return samples / rate


def _quiet_cut(samples: Any, start: int, stop: int, rate: int = SAMPLE_RATE) -> int:
    """The sample index in ``[start, stop)`` in the middle of the quietest ``QUIET_S`` stretch
    (lowest mean energy), where a window can end without cutting a word."""
    import numpy as np

    step = max(1, rate // 20)  # energy per 50 ms
    region = samples[start:stop].astype(np.float32)
    count = len(region) // step
    if count == 0:
        return stop
    energy = np.square(region[: count * step]).reshape(count, step).mean(axis=1)
    width = max(1, min(count, round(QUIET_S * rate / step)))
    smoothed = np.convolve(energy, np.ones(width) / width, mode="valid")
    best = int(np.argmin(smoothed))
    return start + (best + width // 2) * step


def _decoded_blocks(path: Path, label: str, rate: int) -> Iterator[Any]:
    """The recording as 16-bit mono blocks of about ten seconds at ``rate`` (numpy int16),
    decoded only as they are needed. A packet FFmpeg calls invalid data is skipped (as a player
    does); a file that cannot be read raises :class:`AudioError`."""
    import av

    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise _not_audio(label) from None
    with container:
        if not container.streams.audio:
            raise _not_audio(label)
        stream = container.streams.audio[0]
        resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=rate)
        fifo = av.audio.fifo.AudioFifo()

        def resampled(frame: Any) -> Iterator[Any]:
            for out in resampler.resample(frame):
                yield out.to_ndarray().reshape(-1)

        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue
                for frame in frames:
                    frame.pts = None  # the FIFO checks timestamps; gaps in them do not matter
                    fifo.write(frame)
                if fifo.samples >= (stream.codec_context.sample_rate or 48_000) * 10:
                    yield from resampled(fifo.read())
        except av.FFmpegError:
            raise _not_audio(label) from None
        if fifo.samples:
            yield from resampled(fifo.read())
        yield from resampled(None)  # what the resampler still holds


def audio_windows(
    path: Path,
    *,
    label: str | None = None,
    window_s: float = WINDOW_S,
    search_s: float = CUT_SEARCH_S,
    rate: int = SAMPLE_RATE,
) -> Iterator[tuple[float, Any]]:
    """``(start in seconds, float32 samples)`` windows of the recording at 16 kHz mono.

    Each window is ``window_s`` to ``window_s + search_s`` long and ends in the quietest moment
    of its last ``search_s`` seconds (:func:`_quiet_cut`); the next one starts exactly there, so
    the windows cover the recording without gap or overlap. Only one window (plus the blocks
    decoded for the search) is held in memory at a time.
    """
    import numpy as np

    label = label or path.name
    target = int((window_s + search_s) * rate)
    pending: list[Any] = []
    held = 0
    start = 0  # samples already handed out

    def as_float(samples: Any) -> Any:
        window = samples.astype(np.float32)
        window *= 1 / 32768  # in place: one float copy of the window, not two
        return window

    for block in _decoded_blocks(path, label, rate):
        pending.append(block)
        held += len(block)
        while held >= target:
            joined = np.concatenate(pending)
            pending.clear()
            cut = _quiet_cut(joined, int(window_s * rate), target, rate)
            window = as_float(joined[:cut])
            rest = joined[cut:].copy()
            del joined  # only the float window is held while the caller transcribes it
            offset, start = start / rate, start + cut
            pending, held = [rest], len(rest)
            yield offset, window
            del window
    if held:
        yield start / rate, as_float(np.concatenate(pending))


class WhisperTranscriber:
    """Whisper through faster-whisper (CTranslate2, int8, CPU); the model loads on first use.

    ``model_path`` is a faster-whisper model folder (``model.bin``, ``config.json``,
    ``tokenizer.json``, ``vocabulary.*``). Silence is skipped with the Silero VAD that ships with
    faster-whisper (``vad_filter``), which keeps Whisper from inventing text in pauses; the
    timestamps stay those of the original recording.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int = 2,
        beam_size: int = 5,
        vad_filter: bool = True,
        name: str = "whisper-base",
        window_s: float = WINDOW_S,
    ) -> None:
        self.model_path = Path(model_path)
        self.window_s = window_s
        self.threads = threads
        self.beam_size = beam_size
        self.vad_filter = vad_filter
        self.name = name
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                from faster_whisper import WhisperModel

                if not (self.model_path / "model.bin").is_file():
                    raise SpeechModelError(
                        f"Im Ordner {self.model_path} liegt kein Whisper-Modell (model.bin "
                        "fehlt). Bitte `rathaus models assemble` ausführen oder "
                        "RATHAUS_WRITING__SPEECH_MODEL_PATH korrigieren."
                    )
                try:
                    self._model = WhisperModel(
                        str(self.model_path),
                        device="cpu",
                        compute_type="int8",
                        cpu_threads=self.threads,
                        num_workers=1,
                    )
                except (RuntimeError, ValueError, OSError) as exc:
                    raise SpeechModelError(
                        f"Das Whisper-Modell in {self.model_path} lässt sich nicht laden "
                        f"({exc}). Bitte die Dateien mit `rathaus models files` prüfen."
                    ) from exc
                log.info("Whisper-Modell geladen: %s (%d Threads)", self.model_path, self.threads)
            return self._model

    def duration(self, path: Path) -> float:
        return probe_audio(path).duration

    def transcribe(
        self, path: Path, *, language: str = "de", on_progress: ProgressCallback | None = None
    ) -> Iterator[Segment]:
        """Segments of the whole recording, decoded and transcribed window by window
        (:func:`audio_windows`): times count from the start of the recording, memory stays that
        of one window. Each window starts without a prompt: handing the previous window's last
        words on as ``initial_prompt`` made Whisper base write fewer, much longer segments."""
        model = self._loaded()
        total = probe_audio(path).duration
        for offset, samples in audio_windows(path, window_s=self.window_s):
            found, _ = model.transcribe(
                samples,
                language=language or None,
                beam_size=self.beam_size,
                vad_filter=self.vad_filter,
            )
            window_end = offset + len(samples) / SAMPLE_RATE
            del samples
            for segment in found:
                text = segment.text.strip()
                start = offset + float(segment.start)
                end = min(offset + float(segment.end), window_end, total or window_end)
                if on_progress is not None:
                    on_progress(end, total)
                if text:
                    yield Segment(round(start, 2), round(max(start, end), 2), text)
            if on_progress is not None:
                on_progress(min(window_end, total or window_end), total)


_CACHE: dict[tuple[str, int], WhisperTranscriber] = {}
_CACHE_LOCK = threading.Lock()


def speech_model_dir(settings: Settings) -> Path:
    """The Whisper model folder: the configured one, or the bundled Whisper base (assembled and
    checked on first use if needed)."""
    configured = settings.writing.speech_model_path
    if configured is not None:
        path = Path(configured)
        if not path.is_dir():
            raise ConfigError(
                f"RATHAUS_WRITING__SPEECH_MODEL_PATH zeigt auf {path}, dort ist kein Ordner. "
                "Bitte den Ordner eines faster-whisper-Modells angeben oder die Einstellung "
                "leeren (dann gilt das mitgelieferte Whisper base)."
            )
        return path
    if bundle_is_current(SPEECH_MODEL, settings.models_dir):
        return SPEECH_MODEL.path(settings.models_dir)
    return assemble_bundle(settings.models_dir, SPEECH_MODEL)


def get_transcriber(settings: Settings) -> Transcriber:
    """The configured transcriber, one per model folder and thread count in this process (the
    model is loaded once, on its first transcription)."""
    path = speech_model_dir(settings)
    key = (str(path.resolve()), settings.writing.speech_threads)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is None:
            name = "whisper-base" if settings.writing.speech_model_path is None else path.name
            found = WhisperTranscriber(path, threads=settings.writing.speech_threads, name=name)
            _CACHE[key] = found
        return found
