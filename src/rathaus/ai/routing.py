"""Per-function routing over several model servers: the first usable server of a route answers.

``llm.routes`` names, per function (``zusammenfassung``, ``buergerassistent`` …), an ordered
list of servers; :func:`rathaus.ai.registry.get_language_model` builds a :class:`RoutedModel`
over them. A call goes to the first server that

1. the confidentiality level of the call allows (servers the policy allows come first; the
   gateway in front of each server still decides and refuses the others),
2. whose circuit breaker is not open (:mod:`rathaus.ai.breaker`: an open server is skipped
   without waiting for a time-out),

and moves on to the next one when a server fails (after its own retries). A stream moves on
only before its first piece: a half-delivered answer is never repeated elsewhere. When no server
of the route answers, the call raises :class:`ModelUnavailableError` with one German sentence
listing each server's reason, and the caller falls back to its path without a model (template
draft, extractive answer).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rathaus.ai.llm import ChatMessage, Completion, ModelUnavailableError

_END = object()


@dataclass(frozen=True)
class RouteMember:
    """One server of a route: its name in ``llm.servers`` and its model (behind the gateway)."""

    server: str
    model: Any

    @property
    def blocked(self) -> str | None:
        """Why the server's breaker refuses calls now, or None."""
        breaker = getattr(self.model, "breaker", None)
        if breaker is not None and not breaker.ready():
            return str(breaker.refusal())
        return None


class RoutedModel:
    """A :class:`~rathaus.ai.llm.LanguageModel` over an ordered route of servers.

    Errors a server's gateway raises before sending anything: ``skip`` (the policy refuses this
    server's location) moves on to the next server, and if every server refused, the first
    refusal is raised as it is; ``stop`` (a refusal that no other server changes: the tenant's
    quota, a locked tenant, an unreadable key) ends the call at once. ``prefer`` tells which
    members the current call may use first (the level's allowed locations). ``name``, ``model``, ``version`` and ``server`` are those of the server
    that answered the last call in this thread (before any call: the route's first server), so
    the call records and the decision record name the model really used.
    """

    def __init__(
        self,
        function: str,
        members: Sequence[RouteMember],
        *,
        skip: tuple[type[BaseException], ...] = (),
        stop: tuple[type[BaseException], ...] = (),
        prefer: Callable[[Any], bool] | None = None,
    ) -> None:
        if not members:
            raise ValueError("a route needs at least one server")
        self.function = function
        self.members = list(members)
        self._skip = skip
        self._stop = stop
        self._prefer = prefer
        self._last = threading.local()

    # what the call records read ------------------------------------------------------------------
    def _current(self) -> RouteMember:
        return getattr(self._last, "member", None) or self.members[0]

    @property
    def name(self) -> str:
        return str(self._current().model.name)

    @property
    def model(self) -> str:
        return str(self._current().model.model)

    @property
    def version(self) -> str:
        return str(self._current().model.version)

    @property
    def server(self) -> str:
        return self._current().server

    @property
    def servers(self) -> list[str]:
        return [m.server for m in self.members]

    # choosing --------------------------------------------------------------------------------------
    def _order(self) -> list[RouteMember]:
        if self._prefer is None:
            return list(self.members)
        first = [m for m in self.members if self._prefer(m.model)]
        return first + [m for m in self.members if m not in first]

    def _no_server(self, failures: list[tuple[str, BaseException | str]]) -> BaseException:
        refusals = [e for _, e in failures if isinstance(e, self._skip)]
        if refusals and len(refusals) == len(failures):
            return refusals[0]
        reasons = "; ".join(f"{server}: {_short(why)}" for server, why in failures)
        return ModelUnavailableError(
            f"Kein Modellserver der Route „{self.function}“ hat geantwortet ({reasons}). Bitte "
            "prüfen Sie die Modellserver (/healthz) oder llm.routes; bis dahin arbeitet die "
            "Funktion ohne Sprachmodell, wo sie das kann.",
            reason="kein Server erreichbar",
        )

    def _next_or_raise(
        self,
        failures: list[tuple[str, BaseException | str]],
        member: RouteMember,
        exc: ModelUnavailableError,
    ) -> None:
        if isinstance(exc, self._stop) and not isinstance(exc, self._skip):
            raise exc
        failures.append((member.server, exc))

    # the contract ----------------------------------------------------------------------------------
    def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_mode: bool = False,
    ) -> Completion:
        failures: list[tuple[str, BaseException | str]] = []
        for member in self._order():
            blocked = member.blocked
            if blocked is not None:
                failures.append((member.server, blocked))
                continue
            try:
                completion = member.model.complete(
                    messages, max_tokens=max_tokens, temperature=temperature, json_mode=json_mode
                )
            except ModelUnavailableError as exc:
                self._next_or_raise(failures, member, exc)
                continue
            self._last.member = member
            return completion
        raise self._no_server(failures)

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        """Chooses among the servers in the caller's context (its scope and level) even when
        the pieces are read later; fails over only until the first piece arrived."""
        return self._stream(
            self._order(), contextvars.copy_context(), messages, max_tokens, temperature
        )

    def _stream(
        self,
        order: list[RouteMember],
        context: contextvars.Context,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float,
    ) -> Iterator[str]:
        failures: list[tuple[str, BaseException | str]] = []
        for member in order:
            blocked = member.blocked
            if blocked is not None:
                failures.append((member.server, blocked))
                continue
            try:
                pieces = context.run(
                    member.model.stream, messages, max_tokens=max_tokens, temperature=temperature
                )
                first = context.run(next, pieces, _END)
            except ModelUnavailableError as exc:
                self._next_or_raise(failures, member, exc)
                continue
            self._last.member = member
            if first is _END:
                return
            yield first
            yield from pieces
            return
        raise self._no_server(failures)


def _short(why: BaseException | str) -> str:
    if isinstance(why, str):
        return why
    return str(getattr(why, "reason", None) or why)
