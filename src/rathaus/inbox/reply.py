"""Reply drafts: a template per service (or per request type) filled with the case's fields.

A draft is always only a draft (:class:`Message` with ``status="entwurf"``): a person edits and
approves it. With ``inbox.llm_reply_drafts`` and a configured language model, the template draft
is rewritten by the model, restricted to the facts given; if the model fails, the template draft
stays. The model's text is checked before it is used (:func:`invented_facts`): an amount, date,
number or Aktenzeichen that is neither in the template draft nor in the facts makes the
pipeline keep the template draft and flag the case (:class:`DraftCheckError`).

Placeholders (``{name}``) that a template may use are listed in :data:`PLACEHOLDERS`; unknown
ones are left visible as ``[name?]`` so a reviewer sees what is missing.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from typing import Any

from rathaus.ai.llm import ModelUnavailableError
from rathaus.core.models import Case, OrgUnit, Service, Tenant

MAX_TOKENS = 600  # a reply letter (the bundled model wrote about 110 tokens for one in tests)
_ECHOED_FENCE = re.compile(
    r"<<<\s*(?:ENTWURF|BRIEF|ANTWORT)\s*\n(?P<body>.*?)(?:\n\s*(?:ENTWURF|BRIEF|ANTWORT)\s*>>>|$)",
    re.DOTALL,
)
_DELIMITER = re.compile(r"^\s*(?:<<<\s*[A-ZÄÖÜ]+|[A-ZÄÖÜ]+\s*>>>)\s*$\n?", re.MULTILINE)
_REFERENCE = re.compile(r"\b[A-ZÄÖÜ]{1,10}-\d{4}-\d{3,}\b")


class DraftCheckError(ModelUnavailableError):
    """The model's draft names facts that the case does not contain; the template draft is used
    and the case flagged (the pipeline treats it like an unusable model answer)."""


PLACEHOLDERS = {
    "anrede": "Anrede mit Namen, z. B. „Sehr geehrte/r Frau/Herr …“ oder „Guten Tag“",
    "name": "Name der absendenden Person",
    "aktenzeichen": "Aktenzeichen des Vorgangs",
    "betreff": "Betreff des Eingangs",
    "eingang": "Eingangsdatum",
    "frist": "erste erkannte Frist im Schreiben",
    "bearbeitung_bis": "Ziel-Erledigungsdatum (SLA)",
    "leistung": "Name der Leistung",
    "gebuehren": "Gebühren der Leistung",
    "unterlagen": "erforderliche Unterlagen",
    "online": "Link zum Online-Dienst",
    "amt": "zuständiges Amt",
    "amt_telefon": "Telefon des Amts",
    "amt_email": "E-Mail des Amts",
    "oeffnungszeiten": "Öffnungszeiten des Amts",
    "kommune": "Name der Kommune",
}

_BY_TYPE = {
    "Widerspruch": (
        "wir bestätigen den Eingang Ihres Widerspruchs vom {eingang}. Wir prüfen den Bescheid "
        "erneut und teilen Ihnen das Ergebnis schriftlich mit. Die Einlegung des Widerspruchs "
        "wahrt die Frist."
    ),
    "Beschwerde": (
        "vielen Dank für Ihre Nachricht vom {eingang}. Wir bedauern die Unannehmlichkeiten, gehen "
        "Ihrem Hinweis nach und melden uns, sobald wir den Sachverhalt geklärt haben."
    ),
    "Meldung": (
        "vielen Dank für Ihre Meldung vom {eingang}. Wir haben sie an {amt} weitergegeben und "
        "kümmern uns darum."
    ),
    "Rechnung": (
        "Ihre Rechnung vom {eingang} ist bei uns eingegangen und wird sachlich und rechnerisch "
        "geprüft."
    ),
    "Anfrage": (
        "vielen Dank für Ihre Anfrage vom {eingang}. Wir beantworten sie so bald wie möglich."
    ),
    "Antrag": "Ihr Antrag vom {eingang} ist bei uns eingegangen.",
}


class _Fill(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return f"[{key}?]"


def _date(value: dt.datetime | dt.date | None) -> str:
    return value.strftime("%d.%m.%Y") if value else ""


def values_for(
    case: Case, tenant: Tenant, unit: OrgUnit | None, service: Service | None
) -> dict[str, str]:
    fields: dict[str, Any] = case.fields or {}
    extracted = fields.get("extracted") or {}
    sender = extracted.get("sender") or {}
    name = (sender.get("name") or case.sender_name or "").strip()
    deadlines = extracted.get("deadlines") or []
    frist = ""
    if deadlines:
        frist = dt.date.fromisoformat(deadlines[0]["date"]).strftime("%d.%m.%Y")
    return {
        "anrede": f"Guten Tag {name}".strip() if name else "Sehr geehrte Damen und Herren",
        "name": name,
        "aktenzeichen": case.reference,
        "betreff": case.subject,
        "eingang": _date(case.received_at),
        "frist": frist,
        "bearbeitung_bis": _date(case.due_at),
        "leistung": service.name if service else "",
        "gebuehren": service.fees if service else "",
        "unterlagen": service.required_documents if service else "",
        "online": service.online_url if service else "",
        "amt": unit.name if unit else tenant.name,
        "amt_telefon": (unit.phone if unit else "") or tenant.phone,
        "amt_email": (unit.email if unit else "") or tenant.email,
        "oeffnungszeiten": unit.opening_hours if unit else "",
        "kommune": tenant.name,
    }


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with ``{placeholder}`` replaced; braces that are not placeholders stay."""
    result = []
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        result.append(literal)
        if name is not None:
            result.append(values.get(name) or ("" if name in PLACEHOLDERS else f"[{name}?]"))
    return "".join(result)


def template_draft(
    case: Case, tenant: Tenant, unit: OrgUnit | None, service: Service | None
) -> str:
    """The draft from the service's template, or from the request type's standard text."""
    values = values_for(case, tenant, unit, service)
    if service is not None and service.reply_template.strip():
        body = fill(service.reply_template, values)
    else:
        body = fill(_BY_TYPE.get(case.request_type or "", _BY_TYPE["Anfrage"]), values)
        if service is not None:
            details = []
            if service.required_documents:
                details.append(f"Bitte halten Sie bereit: {service.required_documents}.")
            if service.fees:
                details.append(f"Gebühren: {service.fees}.")
            if service.online_url:
                details.append(f"Online erledigen: {service.online_url}")
            if details:
                body += "\n\n" + "\n".join(details)
    closing = [
        "",
        "Bei Rückfragen erreichen Sie uns unter "
        + " oder ".join(p for p in (values["amt_telefon"], values["amt_email"]) if p)
        + "."
        if values["amt_telefon"] or values["amt_email"]
        else "",
        "",
        "Mit freundlichen Grüßen",
        f"{values['amt']}",
        tenant.name,
    ]
    head = [f"{values['anrede']},", ""]
    ref = f"Ihr Schreiben vom {values['eingang']} – unser Zeichen {case.reference}"
    return "\n".join([ref, "", *head, body, *[c for c in closing if c is not None]]).strip()


def improve_with_model(model: Any, draft: str, facts: dict[str, str]) -> str:
    """Let a language model polish the draft, using only the facts given; returns the model's
    text, or raises :class:`rathaus.ai.llm.ModelUnavailableError`."""
    from rathaus.ai.llm import ChatMessage
    from rathaus.governance.injection import data_rule, fence

    facts_text = "\n".join(f"- {k}: {v}" for k, v in facts.items() if v)
    messages = [
        ChatMessage(
            "system",
            "Du schreibst Antwortentwürfe einer deutschen Stadtverwaltung: höflich, klar, kurz, "
            "ohne Versprechen und ohne Fakten, die nicht unten stehen. Antworte nur mit dem Brief. "
            + data_rule("FAKTEN")
            + " "
            + data_rule("ENTWURF"),
        ),
        ChatMessage(
            "user",
            f"Fakten:\n{fence(facts_text, 'FAKTEN')}\n\nEntwurf:\n{fence(draft, 'ENTWURF')}\n\n"
            "Verbessere den Entwurf.",
        ),
    ]
    completion = model.complete(messages, max_tokens=MAX_TOKENS, temperature=0.2)
    text = letter_of(completion.text)
    if not text:
        return draft
    invented = invented_facts(text, draft=draft, facts=facts)
    if invented:
        raise DraftCheckError(
            "Der Entwurf des Sprachmodells nannte Angaben, die nicht im Vorgang stehen ("
            + ", ".join(invented[:5])
            + "); verwendet wird der Entwurf aus der Vorlage."
        )
    return text


def letter_of(answer: str) -> str:
    """The letter in a model's answer, without the prompt's delimiters and the remarks around.

    Small models often repeat the fence they were given (``<<<ENTWURF`` … ``ENTWURF>>>``) and
    add a remark after it ("Diese Version ist korrekt und verständlich."): only what is inside
    is the letter. Stray delimiters of the prompt never reach the draft."""
    text = answer.strip()
    match = _ECHOED_FENCE.search(text)
    if match:
        text = match.group("body")
    text = _DELIMITER.sub("", text)
    return text.strip()


def invented_facts(text: str, *, draft: str, facts: dict[str, str]) -> list[str]:
    """Amounts, dates, numbers and Aktenzeichen in ``text`` that neither ``draft`` nor the
    ``facts`` contain, as German labels ("Datum 12.12.2026"); empty when nothing was added.

    Names are not checked here: a polished letter uses words the template does not, and the
    name heuristic of :mod:`rathaus.writing.facts` would flag them."""
    from rathaus.writing.facts import KIND_LABELS, new_facts

    source = draft + "\n" + "\n".join(v for v in facts.values() if v)
    found = [
        f"{KIND_LABELS[fact.kind]} {fact.text}"
        for fact in new_facts(source, text)
        if fact.kind != "name"
    ]
    for reference in _REFERENCE.findall(text):
        if reference not in source:
            found.insert(0, f"Aktenzeichen {reference}")
    return list(dict.fromkeys(found))
