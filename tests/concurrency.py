"""Helpers for tests that run the same work in several threads at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import IntegrityError


@contextmanager
def refused_statements(engine: Engine) -> Iterator[list[str]]:
    """The statements a unique (or other integrity) constraint refused while the body ran."""
    seen: list[str] = []

    def on_error(context: Any) -> None:
        if isinstance(context.sqlalchemy_exception, IntegrityError):
            seen.append(str(context.original_exception))

    event.listen(engine, "handle_error", on_error)
    try:
        yield seen
    finally:
        event.remove(engine, "handle_error", on_error)


def in_parallel(work: Callable[[int], None], workers: int, *, timeout: float = 300) -> None:
    """``work(0)`` … ``work(workers - 1)`` in threads that start together; fails the test if one
    raised or did not finish within ``timeout`` seconds."""
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            start.wait()
            work(worker)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "the parallel workers did not finish"
    assert not errors, errors
