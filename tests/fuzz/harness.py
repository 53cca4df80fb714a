"""Running one fuzz input: a hard per-input time limit, and the verdict on what came back.

A target's ``call`` returns a :class:`Result` (the input was taken, maybe with notes and errors
meant for people) or raises one of the target's own error types (the input was refused). The
verdict is a failure when the call raised anything else (a crash), ran past the time limit
(a hang), produced a user-facing text that is not clear German (a raw library message, a
traceback, an empty text), or broke a target's own check (:class:`Broken`: an HTTP 500, an
original that was not kept, a server that stopped answering).
"""

from __future__ import annotations

import re
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from rathaus.core.errors import RathausError

DEFAULT_LIMIT_S = 10.0
FAILURES = ("crash", "hang", "message", "broken")


class InputTimeout(BaseException):  # noqa: N818 - not an Exception: `except Exception` in the code under test must not swallow it
    """Raised into the running input when its time is up."""


class Broken(Exception):  # noqa: N818 - a verdict, not an error of the code under test
    """A target's own check failed (German text kept out: this is the fuzzer speaking)."""


@dataclass
class Result:
    """What came back for an input: ``texts`` are what people get to read (warnings, row
    errors); ``refusal`` is set when the input was kept but could not be read (an inbox file
    whose extraction failed: its German reason)."""

    texts: list[str] = field(default_factory=list)
    refusal: str | None = None


@dataclass
class Target:
    """One entry point: how to build its inputs, how to feed one, and what a refusal is.

    ``setup(workdir)`` builds what the calls share (a database, an app) once; ``call(context,
    value)`` feeds one input. ``refusals`` are the error types with a German ``message``.
    ``weight`` is the target's share of the examples of a run; ``limit_s`` the time limit per
    input (files that go through OCR get more).
    """

    name: str
    entry: str
    strategy: Callable[[], st.SearchStrategy[Any]]
    call: Callable[[Any, Any], Result]
    setup: Callable[[Any], Any] = lambda _workdir: None
    refusals: tuple[type[BaseException], ...] = (RathausError,)
    weight: float = 1.0
    limit_s: float = DEFAULT_LIMIT_S


@dataclass
class Verdict:
    status: str  # ok, rejected, crash, hang, message, broken
    detail: str
    seconds: float

    @property
    def failed(self) -> bool:
        return self.status in FAILURES


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`InputTimeout` in this thread after ``seconds`` (main thread only; elsewhere
    the elapsed time is still checked afterwards)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def fire(_signum: int, _frame: Any) -> None:
        raise InputTimeout

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def judge(target: Target, context: Any, value: Any, limit_s: float | None = None) -> Verdict:
    """Feed ``value`` to ``target`` within its time limit and say what happened."""
    limit = limit_s or target.limit_s
    started = time.perf_counter()
    try:
        with time_limit(limit):
            result = target.call(context, value)
    except InputTimeout:
        return Verdict("hang", f"länger als {limit:g} s", time.perf_counter() - started)
    except Broken as exc:
        return Verdict("broken", str(exc), time.perf_counter() - started)
    except target.refusals as exc:
        seconds = time.perf_counter() - started
        message = getattr(exc, "message", None) or getattr(exc, "description", None) or str(exc)
        problem = german_problem(message)
        if problem:
            return Verdict("message", f"{problem}: {message[:300]!r}", seconds)
        return Verdict("rejected", message, seconds)
    except Exception as exc:  # noqa: BLE001 - that is the finding
        frames = traceback.extract_tb(exc.__traceback__)
        where = next(
            (
                f"{f.filename.split('src/')[-1]}:{f.lineno}"
                for f in reversed(frames)
                if "rathaus" in f.filename
            ),
            "?",
        )
        return Verdict(
            "crash", f"{type(exc).__name__} at {where}: {exc}"[:400], time.perf_counter() - started
        )
    seconds = time.perf_counter() - started
    if seconds > limit:
        return Verdict("hang", f"{seconds:.1f} s > {limit:g} s", seconds)
    for text in result.texts:
        problem = german_problem(text)
        if problem:
            return Verdict("message", f"{problem}: {text[:300]!r}", seconds)
    if result.refusal:
        return Verdict("rejected", result.refusal, seconds)
    return Verdict("ok", "", seconds)


# -- is it clear German? ---------------------------------------------------------------------------

_QUOTED = re.compile(r"„[^“]*“|\"[^\"]*\"|'[^']*'|«[^»]*»|`[^`]*`|\([^()]*(?:https?|/|\\)[^()]*\)")
_GERMAN = re.compile(
    r"\b(der|die|das|den|dem|des|ist|sind|nicht|kein|keine|keinen|bitte|Bitte|Datei|Zeile|Feld|"
    r"und|oder|mit|ohne|per|bei|nach|aus|vom|zum|zur|ein|eine|einen|fehlt|gibt|wird|wurde|wurden|"
    r"Sie|im|für|zu|als|auf|von|Seite|Seiten|Anhang|Text|Zeichen|Angabe)\b|[äöüÄÖÜß]"
)
_ENGLISH = re.compile(
    r"\b(the|is|are|not|of|with|expected|expecting|invalid|error|unexpected|object|has no|cannot|"
    r"could not|must be|unsupported|got|than|line \d+ column|char \d+|well-formed|token|attribute|"
    r"NoneType|Traceback|exception)\b",
    re.IGNORECASE,
)


def german_problem(text: str) -> str | None:
    """Why ``text`` is not a clear German message for people, or ``None`` when it is one.

    Quoted parts („…“, "…", (…/…)) are the user's own data and are not judged.
    """
    if not text or not text.strip():
        return "leere Meldung"
    if "Traceback" in text or 'File "' in text:
        return "Traceback"
    plain = _QUOTED.sub(" ", text)
    english = _ENGLISH.search(plain)
    if english:
        return f"englischer Bibliothekstext ({english.group(0)!r})"
    if not _GERMAN.search(plain):
        return "kein deutscher Satz"
    return None


def distinct(messages: Iterable[str], limit: int = 12) -> list[str]:
    """The distinct messages with numbers and quoted data blanked, most common first."""
    counts: dict[str, int] = {}
    for message in messages:
        key = re.sub(r"\d+", "N", _QUOTED.sub("„…“", message))[:160]
        counts[key] = counts.get(key, 0) + 1
    return [f"{n}× {m}" for m, n in sorted(counts.items(), key=lambda kv: -kv[1])[:limit]]
