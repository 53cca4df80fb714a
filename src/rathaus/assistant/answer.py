"""Answers to citizens' questions, grounded in the knowledge base.

Every answer sentence carries the numbers of the passages that support it; structured facts are
returned as a list; when the evidence is weak the assistant abstains and offers a person instead.
``stream`` yields the answer piece by piece (sources first, then sentence by sentence, each one
checked before it is shown); ``answer`` returns it whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from rathaus.core.config import AssistantSettings, Settings
from rathaus.core.errors import RathausError
from rathaus.core.models import Tenant


@dataclass
class AssistantKit:
    """What answering needs besides the database: built once per process from settings.

    ``language_model`` is None in extractive mode (see ``assistant.answer_mode``).
    """

    embedder: Any
    language_model: Any = None
    settings: AssistantSettings = field(default_factory=AssistantSettings)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, embedder: Any = "auto", language_model: Any = "auto"
    ) -> AssistantKit:
        from rathaus.ai import registry

        if embedder == "auto":
            embedder = registry.get_embedder(settings)
        if language_model == "auto":
            mode = settings.assistant.answer_mode
            generate = mode == "generiert" or (mode == "auto" and settings.llm.backend == "openai")
            language_model = registry.get_language_model(settings) if generate else None
        return cls(embedder=embedder, language_model=language_model, settings=settings.assistant)


class QuestionRejected(RathausError):
    """The question cannot be answered as asked (empty, too long …); the message says why."""


@dataclass
class Source:
    """A cited passage: ``n`` is the number shown in the answer ([1], [2] …)."""

    n: int
    entry_id: int
    chunk_key: str
    title: str
    url: str
    passage: str
    score: float


@dataclass
class Sentence:
    text: str
    sources: list[int]  # the ``n`` of each supporting Source


@dataclass
class Fact:
    key: str  # one of assistant.entries.FACTS
    label: str
    value: str | list[str]
    links: list[dict[str, str]] = field(default_factory=list)  # {"title", "url"}
    entry_id: int | None = None


@dataclass
class Handover:
    """Where a citizen can turn to a person; ``case_offer`` means a hand-over may be offered."""

    office: str
    phone: str
    email: str
    case_offer: bool = True


@dataclass
class Answer:
    question: str
    language: str  # language of the question (ISO 639-1)
    mode: str  # "extraktiv", "generiert" or "enthaltung"
    sentences: list[Sentence]
    sources: list[Source]
    facts: list[Fact]
    confidence: float
    abstained: bool
    easy_language: bool = False
    notes: list[str] = field(default_factory=list)  # e.g. "answered in German", demo quality
    model: str = ""
    handover: Handover | None = None

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["text"] = self.text
        return data


# ("sources", list[Source]) → ("sentence", Sentence)* → ("facts", list[Fact]) → ("done", Answer)
AnswerEvent = tuple[str, Any]


def answer(
    session: Session,
    *,
    tenant: Tenant,
    question: str,
    history: Sequence[str] = (),
    easy_language: bool = False,
    kit: AssistantKit,
) -> Answer:
    """The whole answer to ``question``; ``history`` holds the conversation's earlier questions
    (oldest first) so a follow-up like "Und was kostet das?" is understood."""
    result: Answer | None = None
    for kind, value in stream(
        session,
        tenant=tenant,
        question=question,
        history=history,
        easy_language=easy_language,
        kit=kit,
    ):
        if kind == "done":
            result = value
    assert result is not None
    return result


def stream(
    session: Session,
    *,
    tenant: Tenant,
    question: str,
    history: Sequence[str] = (),
    easy_language: bool = False,
    kit: AssistantKit,
) -> Iterator[AnswerEvent]:
    """Answer events in order; raises :class:`QuestionRejected` before the first event."""
    raise NotImplementedError
