"""Rate limiting in one process: a sliding window of requests per client, and client keys.

The public endpoints count in counters every web process shares (:mod:`rathaus.web.limits`);
this window in the memory of one process is their fallback where nothing can be shared (an
in-memory database in tests) or the shared counters cannot be written (database down). With
several web workers each process then keeps its own window, so a client may make up to N
times the limit: still a brake against floods, not an exact quota.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most ``limit`` hits per ``window_s`` seconds and key; thread-safe.

    :meth:`hit` records a request and returns 0 when it is allowed, otherwise the whole
    seconds until the oldest hit in the window expires (for ``Retry-After``); a refused
    request is not counted. Keys that have been quiet for a window are forgotten, so memory
    stays bounded by the number of clients active in the last window.
    """

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sweep_every: int = 1000,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._sweep_every = sweep_every
        self._calls = 0

    def hit(self, key: str) -> int:
        """Count one request of ``key``; 0 if allowed, else seconds to wait."""
        with self._lock:
            now = self._clock()
            self._calls += 1
            if self._calls % self._sweep_every == 0:
                self._sweep(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window_s - now))
            hits.append(now)
            return 0

    def wait(self, key: str) -> int:
        """Seconds until ``key`` may go on (0: now), without counting a request."""
        with self._lock:
            now = self._clock()
            hits = self._hits.get(key)
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if not hits or len(hits) < self.limit:
                return 0
            return max(1, math.ceil(hits[0] + self.window_s - now))

    def record(self, key: str) -> None:
        """Count one event of ``key`` whatever the limit (a failed login, say)."""
        with self._lock:
            now = self._clock()
            self._calls += 1
            if self._calls % self._sweep_every == 0:
                self._sweep(now)
            hits = self._hits.setdefault(key, deque())
            hits.append(now)
            while len(hits) > self.limit or hits[0] <= now - self.window_s:
                hits.popleft()

    def _sweep(self, now: float) -> None:
        quiet = [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window_s]
        for key in quiet:
            del self._hits[key]

    def __len__(self) -> int:
        """Number of keys currently remembered."""
        return len(self._hits)


def client_key(host: str | None) -> str:
    """The rate-limit key of a client address: the address itself, for IPv6 its /64 network
    (one household or device usually holds a whole /64)."""
    if not host:
        return "unbekannt"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
