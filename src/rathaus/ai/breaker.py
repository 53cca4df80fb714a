"""Circuit breakers and concurrency limits for model servers, shared by all threads of a process.

Why: a model server that is down costs every call its full time-out (and retries). After a few
failures in a row the breaker opens and calls fail at once with a German message, so a triage job
or a citizen's question falls back to its non-model path immediately; after a cool-down one
trial request shows whether the server is back.

One breaker per server and process (:func:`breaker_for`), found by key, so every model object
built for the same server (the web app builds some per request) shares it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CLOSED = "geschlossen"
OPEN = "offen"
HALF_OPEN = "halboffen"


@dataclass(frozen=True)
class BreakerState:
    """What ``/healthz`` shows of a breaker."""

    key: str
    state: str
    failures: int
    last_error: str | None
    retry_in_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "zustand": self.state,
            "fehler_in_folge": self.failures,
            "letzter_fehler": self.last_error,
            "naechster_versuch_in_s": self.retry_in_s,
        }


class CircuitBreaker:
    """closed → open after ``failures`` failed requests in a row → half-open after ``cooldown_s``.

    - closed: every request passes; a success resets the count.
    - open: :meth:`acquire` refuses at once until the cool-down has passed.
    - half-open: exactly one trial request passes (:meth:`acquire` returns True once); its
      success closes the breaker, its failure opens it for another cool-down. A trial that
      reports nothing within ``cooldown_s`` (an abandoned stream) lets the next one try.

    Thread-safe. ``clock`` (seconds, monotonic) may be replaced, e.g. by a test that lets a
    cool-down pass without waiting.
    """

    def __init__(
        self,
        key: str,
        *,
        failures: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_since: float | None = None
        self._last_error: str | None = None

    def configure(self, *, failures: int, cooldown_s: float) -> None:
        with self._lock:
            self.threshold, self.cooldown_s = failures, cooldown_s

    def _state(self, now: float) -> str:
        if self._opened_at is None:
            return CLOSED
        if now - self._opened_at < self.cooldown_s:
            return OPEN
        return HALF_OPEN

    def _trial_running(self, now: float) -> bool:
        return self._trial_since is not None and now - self._trial_since < self.cooldown_s

    def ready(self) -> bool:
        """Whether a request could pass now (takes no trial): a router asks before choosing."""
        with self._lock:
            now = self.clock()
            state = self._state(now)
            return state == CLOSED or (state == HALF_OPEN and not self._trial_running(now))

    def acquire(self) -> bool:
        """Whether this request may go to the server now; in half-open, it becomes the trial."""
        with self._lock:
            now = self.clock()
            state = self._state(now)
            if state == CLOSED:
                return True
            if state == OPEN or self._trial_running(now):
                return False
            self._trial_since = now
            return True

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_since = None

    def failure(self, reason: str) -> None:
        with self._lock:
            now = self.clock()
            self._failures += 1
            self._last_error = reason
            trial = self._trial_since is not None
            self._trial_since = None
            if trial or self._failures >= self.threshold:
                self._opened_at = now

    def release(self) -> None:
        """A request that ended without saying anything about the server (aborted by the
        caller): a trial it held is given back, so the next call may try."""
        with self._lock:
            self._trial_since = None

    def snapshot(self) -> BreakerState:
        with self._lock:
            now = self.clock()
            state = self._state(now)
            retry = None
            if state == OPEN and self._opened_at is not None:
                retry = max(0.0, math.ceil(self._opened_at + self.cooldown_s - now))
            return BreakerState(self.key, state, self._failures, self._last_error, retry)

    def refusal(self) -> str:
        """Why a request is refused now, in German (for the error message)."""
        state = self.snapshot()
        wait = (
            f"nächster Versuch in {state.retry_in_s:g} s"
            if state.retry_in_s is not None
            else "ein Probeaufruf läuft gerade"
        )
        last = f", zuletzt: {state.last_error}" if state.last_error else ""
        return f"vorübergehend gesperrt nach {state.failures} Fehlversuchen in Folge{last}; {wait}"


_BREAKERS: dict[str, CircuitBreaker] = {}
_LIMITS: dict[str, tuple[int, threading.BoundedSemaphore]] = {}
_REGISTRY_LOCK = threading.Lock()


def breaker_for(key: str, *, failures: int, cooldown_s: float) -> CircuitBreaker:
    """The process's breaker for ``key`` (created on first use; thresholds follow the settings)."""
    with _REGISTRY_LOCK:
        breaker = _BREAKERS.get(key)
        if breaker is None:
            breaker = _BREAKERS[key] = CircuitBreaker(key, failures=failures, cooldown_s=cooldown_s)
    breaker.configure(failures=failures, cooldown_s=cooldown_s)
    return breaker


def existing_breaker(key: str) -> CircuitBreaker | None:
    """The breaker for ``key`` if this process has used the server yet (for ``/healthz``)."""
    with _REGISTRY_LOCK:
        return _BREAKERS.get(key)


def limit_for(key: str, size: int) -> threading.BoundedSemaphore:
    """The process's semaphore bounding parallel requests to the server ``key``."""
    with _REGISTRY_LOCK:
        found = _LIMITS.get(key)
        if found is None or found[0] != size:
            found = _LIMITS[key] = (size, threading.BoundedSemaphore(size))
        return found[1]


def server_key(kind: str, name: str, base_url: str) -> str:
    """One breaker per function kind, server name and address."""
    return f"{kind}:{name}:{base_url.rstrip('/')}"
