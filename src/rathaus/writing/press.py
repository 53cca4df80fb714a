"""Press releases from key points: headline, lead, body, quote, contact, and a short post.

Two ways, both only drafts: :func:`from_key_points` assembles the key points into the usual
sections without a language model and without adding anything; :func:`generate` lets a
configured model write the text and then checks it with :func:`_new_facts`: every number, date,
amount and name in the output must occur in the key points, otherwise the generated text is
flagged and the assembled version stays the one to use.

What the person downloads is the version on the page as they edited it: :func:`form_values`
puts a version into the page's fields, :func:`release_from_form` reads it back for
:func:`to_docx` and :meth:`PressRelease.text`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from rathaus.core.errors import RathausError
from rathaus.writing.templates import german_date

SOCIAL_LIMIT = 280
MAX_FACTS = 40
MAX_FIELD = 4000

LOCAL_BACKEND = "local"


class PressInputError(RathausError):
    """The key points are incomplete or cannot be read."""

    exit_code = 2
    http_status = 422


@dataclass
class KeyPoints:
    """What the press office enters. ``wer``…``warum`` answer the W-questions of the lead."""

    thema: str
    fakten: list[str] = field(default_factory=list)
    wer: str = ""
    was: str = ""
    wann: str = ""
    wo: str = ""
    warum: str = ""
    zitat: str = ""
    sprecher: str = ""
    kontakt: str = ""
    ort: str = ""
    datum: dt.date | None = None

    def validate(self) -> None:
        errors = []
        if not self.thema.strip():
            errors.append("Bitte ein Thema angeben.")
        if not self.fakten and not self.was.strip():
            errors.append("Bitte mindestens einen Fakt (eine Zeile je Stichpunkt) angeben.")
        if len(self.fakten) > MAX_FACTS:
            errors.append(f"Höchstens {MAX_FACTS} Stichpunkte.")
        if self.zitat.strip() and not self.sprecher.strip():
            errors.append("Bitte zum Zitat angeben, wer es sagt (Name und Funktion).")
        for name in ("thema", "wer", "was", "wann", "wo", "warum", "zitat", "sprecher", "kontakt"):
            if len(getattr(self, name)) > MAX_FIELD:
                errors.append(f"Das Feld „{name}“ ist zu lang (höchstens {MAX_FIELD} Zeichen).")
        if errors:
            raise PressInputError("Die Stichpunkte sind unvollständig: " + " ".join(errors))

    def source_text(self) -> str:
        """Everything the press release may draw on, for the fact check."""
        parts = [self.thema, self.wer, self.was, self.wann, self.wo, self.warum, self.zitat]
        parts += [self.sprecher, self.kontakt, self.ort, *self.fakten]
        if self.datum:
            parts += [german_date(self.datum), self.datum.strftime("%d.%m.%Y")]
        return "\n".join(p for p in parts if p)


@dataclass
class PressRelease:
    headline: str
    dateline: str
    lead: str
    body: list[str]
    quote: str
    contact: str
    social: str
    label: str
    model: str = ""
    hints: list[str] = field(default_factory=list)
    new_facts: list[str] = field(default_factory=list)

    def warning(self) -> str:
        """The note on new facts that goes into every export of a generated version."""
        if not self.new_facts:
            return ""
        return (
            "Achtung: Angaben, die nicht in den Stichpunkten stehen: "
            + ", ".join(self.new_facts)
            + ". Bitte vor der Veröffentlichung prüfen."
        )

    def text(self) -> str:
        parts = [self.label, *([self.warning()] if self.new_facts else [])]
        parts += ["", self.headline, "", f"{self.dateline} {self.lead}".strip()]
        parts += ["", *(p for para in self.body for p in (para, ""))]
        if self.quote:
            parts += [self.quote, ""]
        if self.contact:
            parts += ["Pressekontakt", self.contact, ""]
        parts += ["Kurzfassung für soziale Medien", self.social]
        return "\n".join(parts).strip() + "\n"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- reading key points ------------------------------------------------------------------------

_KEYS = {
    "thema": "thema", "überschrift": "thema", "titel": "thema",
    "wer": "wer", "was": "was", "wann": "wann", "wo": "wo", "warum": "warum",
    "zitat": "zitat", "sprecher": "sprecher", "sprecherin": "sprecher", "von": "sprecher",
    "kontakt": "kontakt", "pressekontakt": "kontakt", "ort": "ort", "datum": "datum",
    "fakten": "fakten", "stichpunkte": "fakten",
}  # fmt: skip


def parse_date(value: str) -> dt.date:
    value = value.strip()
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise PressInputError(
        f"Das Datum „{value}“ ist ungültig. Bitte TT.MM.JJJJ oder JJJJ-MM-TT schreiben."
    )


def key_points_from_mapping(data: dict[str, Any]) -> KeyPoints:
    facts = data.get("fakten") or []
    if isinstance(facts, str):
        facts = facts.splitlines()
    if not isinstance(facts, list):
        raise PressInputError("„fakten“ muss eine Liste von Stichpunkten sein.")
    raw_date = data.get("datum")
    return KeyPoints(
        thema=str(data.get("thema") or ""),
        fakten=[_clean_bullet(str(f)) for f in facts if _clean_bullet(str(f))],
        **{k: str(data.get(k) or "") for k in ("wer", "was", "wann", "wo", "warum")},
        zitat=str(data.get("zitat") or ""),
        sprecher=str(data.get("sprecher") or ""),
        kontakt=str(data.get("kontakt") or ""),
        ort=str(data.get("ort") or ""),
        datum=parse_date(str(raw_date)) if raw_date else None,
    )


def parse_key_points(text: str) -> KeyPoints:
    """Key points from a file: JSON, or lines ``Thema: …``, ``Fakten:`` with ``- …`` bullets,
    ``Kontakt:`` with the following lines."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise PressInputError(f"Die JSON-Datei lässt sich nicht lesen: {exc}.") from exc
        return key_points_from_mapping({str(k).lower(): v for k, v in data.items()})
    data: dict[str, Any] = {"fakten": []}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        head, sep, rest = line.partition(":")
        key = _KEYS.get(head.strip().lower()) if sep and not line.startswith(("-", "*")) else None
        if key:
            current = key
            if key == "fakten":
                if rest.strip():
                    data["fakten"].append(rest.strip())
            else:
                data[key] = rest.strip()
            continue
        if current == "fakten" or line.startswith(("-", "*", "•")):
            data["fakten"].append(line)
        elif current in ("kontakt", "zitat", "warum", "was"):
            data[current] = (data.get(current, "") + "\n" + line).strip()
        else:
            raise PressInputError(
                f"Die Zeile „{line[:80]}“ gehört zu keinem Feld. Erlaubt sind Thema, Wer, Was, "
                "Wann, Wo, Warum, Fakten (mit „- “ je Stichpunkt), Zitat, Sprecher, Kontakt, "
                "Ort, Datum."
            )
    return key_points_from_mapping(data)


def _clean_bullet(line: str) -> str:
    return line.strip().lstrip("-*•–").strip()


# -- the assembled version ---------------------------------------------------------------------


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in '.!?…“"' else text + "."


def _lead(points: KeyPoints) -> tuple[str, list[str]]:
    hints = []
    missing = [q for q in ("wer", "was", "wann", "wo") if not getattr(points, q).strip()]
    if missing:
        hints.append(
            "Im Vorspann fehlen Angaben zu: "
            + ", ".join(f"{q.title()}?" for q in missing)
            + " Bitte ergänzen, statt sie erfinden zu lassen."
        )
    core = " ".join(
        p.strip().rstrip(".") for p in (points.wer, points.was, points.wann, points.wo) if p.strip()
    )
    first = _sentence(core) if points.was.strip() else _sentence(points.fakten[0])
    lead = [first]
    if points.warum.strip():
        lead.append(_sentence(f"Hintergrund: {points.warum.strip()}"))
    return " ".join(lead), hints


def _body(points: KeyPoints, lead: str) -> list[str]:
    sentences = [_sentence(f) for f in points.fakten]
    sentences = [s for s in sentences if s and s not in lead]
    return [" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]


def _quote(points: KeyPoints) -> str:
    if not points.zitat.strip():
        return ""
    quote = points.zitat.strip().strip('„“"')
    if quote[-1] not in ".!?":
        quote += "."
    return f"„{quote}“, sagt {points.sprecher.strip()}."


_STOP = {
    "der", "die", "das", "und", "oder", "in", "im", "am", "an", "auf", "für", "mit", "von",
    "vom", "zum", "zur", "des", "den", "dem", "ein", "eine", "einer", "neue", "neuer", "neues",
    "startet", "beginnt", "wird", "ist", "sind", "bei", "bis", "ab", "nach", "über", "unter",
}  # fmt: skip


def hashtags(topic: str, extra: str = "", limit: int = 3) -> list[str]:
    """Hashtags from the topic's content words (and the place), without duplicates."""
    tags: list[str] = []
    for word in re.findall(r"[\wÄÖÜäöüß]+", f"{topic} {extra}"):
        if len(word) < 4 or word.lower() in _STOP or word.isdigit():
            continue
        tag = "#" + word[0].upper() + word[1:]
        if tag.lower() not in (t.lower() for t in tags):
            tags.append(tag)
        if len(tags) == limit:
            break
    return tags


def social_post(headline: str, lead: str, tags: list[str], limit: int = SOCIAL_LIMIT) -> str:
    """A post of at most ``limit`` characters: headline, the lead's first sentence, hashtags."""
    suffix = (" " + " ".join(tags)) if tags else ""
    first = re.split(r"(?<=[.!?])\s", lead, maxsplit=1)[0]
    text = f"{headline}: {first}" if first and first != headline else headline
    room = limit - len(suffix)
    if len(text) > room:
        cut = text[: max(0, room - 1)]
        cut = cut.rsplit(" ", 1)[0] if " " in cut else cut
        text = cut.rstrip(" ,;:") + "…"
    return (text + suffix)[:limit]


def _dateline(points: KeyPoints, place: str) -> str:
    when = german_date(points.datum or dt.date.today())
    where = points.ort.strip() or place
    return f"{where}, {when} –" if where else f"{when} –"


def from_key_points(points: KeyPoints, *, place: str = "") -> PressRelease:
    """The press release assembled from the key points, without a model and without additions."""
    points.validate()
    headline = " ".join(points.thema.split())
    lead, hints = _lead(points)
    if not points.kontakt.strip():
        hints.append("Der Pressekontakt fehlt; bitte Name, Telefon und E-Mail angeben.")
    if not points.zitat.strip():
        hints.append("Ein Zitat (mit Name und Funktion) macht die Mitteilung lebendiger.")
    tags = hashtags(headline, points.ort or place)
    return PressRelease(
        headline=headline,
        dateline=_dateline(points, place),
        lead=lead,
        body=_body(points, lead),
        quote=_quote(points),
        contact=points.kontakt.strip(),
        social=social_post(headline, lead, tags),
        label="Entwurf – aus den Stichpunkten zusammengesetzt (ohne Sprachmodell)",
        hints=hints,
    )


# -- the generated version ---------------------------------------------------------------------

_MONTHS = {
    "januar": 1, "februar": 2, "märz": 3, "april": 4, "mai": 5, "juni": 6, "juli": 7,
    "august": 8, "september": 9, "oktober": 10, "november": 11, "dezember": 12,
}  # fmt: skip
_NUMBER = re.compile(r"\d+")
_NAME_RUN = re.compile(r"\b([A-ZÄÖÜ][a-zäöüß]+(?:[ -][A-ZÄÖÜ][a-zäöüß]+)+)")


def _numbers(text: str) -> set[str]:
    """Digit runs, also those of a date written with a month name (March → 3)."""
    found = {n.lstrip("0") or "0" for n in _NUMBER.findall(text)}
    for word in re.findall(r"[A-Za-zÄÖÜäöüß]+", text):
        month = _MONTHS.get(word.lower())
        if month:
            found.add(str(month))
    return found


def _joined_numbers(text: str) -> set[str]:
    """Numbers with their separators removed (``4.200`` and ``4200`` are the same)."""
    return {re.sub(r"\D", "", m).lstrip("0") or "0" for m in re.findall(r"\d[\d.,  ]*\d|\d", text)}


def _new_facts(source: str, output: str) -> list[str]:
    """Numbers, dates, amounts and names in ``output`` that ``source`` does not contain.

    Numbers are compared digit run by digit run, so ``1.471,60 €`` matches ``1471,60 Euro``
    and ``21. März 2026`` matches ``21.03.2026``. A name is a run of two or more capitalised
    words inside a sentence ("Maria Muster", "Glasfaser Nord GmbH" counts by its words); it is
    new when one of its words does not occur in the source.
    """
    found: dict[str, None] = {}
    known = _numbers(source)
    joined = _joined_numbers(source)
    for match in re.finditer(r"\d[\d.,  ]*\d|\d", output):
        token = match.group(0)
        runs = {n.lstrip("0") or "0" for n in _NUMBER.findall(token)}
        whole = re.sub(r"\D", "", token).lstrip("0") or "0"
        if not runs <= known and whole not in joined:
            found.setdefault(token.strip(" .,"), None)
    source_words = {w.lower() for w in re.findall(r"[\wÄÖÜäöüß]+", source)}
    for sentence in re.split(r"(?<=[.!?:])\s+|\n+", output):
        words = sentence.split()
        for match in _NAME_RUN.finditer(" ".join(words[1:])):
            name = match.group(1)
            parts = re.split(r"[ -]", name)
            if any(p.lower() not in source_words for p in parts):
                found.setdefault(name, None)
    return list(found)


# Kept under this name for callers that expect the public spelling.
new_facts = _new_facts


def model_label(backend: str, model: str) -> str:
    label = f"Entwurf – erzeugt mit dem Sprachmodell {model}"
    if backend == LOCAL_BACKEND:
        label += " (Demo-Qualität: das mitgelieferte kleine Modell ist schwach in deutscher Prosa)"
    return label + "; bitte prüfen und freigeben."


def _prompt(points: KeyPoints) -> list[Any]:
    from rathaus.ai.llm import ChatMessage
    from rathaus.governance.injection import data_rule, fence

    facts = "\n".join(f"- {f}" for f in points.fakten)
    w = "\n".join(
        f"{k.title()}: {getattr(points, k)}"
        for k in ("wer", "was", "wann", "wo", "warum")
        if getattr(points, k).strip()
    )
    return [
        ChatMessage(
            "system",
            "Du schreibst Pressemitteilungen einer deutschen Stadtverwaltung: sachlich, klar, "
            "in ganzen Sätzen. Verwende ausschließlich die Stichpunkte; erfinde keine Zahlen, "
            "Daten, Beträge, Namen oder Zitate. "
            "Antworte nur mit: erste Zeile Überschrift, dann ein Vorspann-Absatz (Wer, was, "
            "wann, wo, warum), dann zwei bis drei Absätze Text. Kein Zitat, kein Kontakt. "
            + data_rule("STICHPUNKTE"),
        ),
        ChatMessage(
            "user", fence(f"Thema: {points.thema}\n{w}\nStichpunkte:\n{facts}", "STICHPUNKTE")
        ),
    ]


def generate(
    points: KeyPoints, model: Any, *, place: str = "", max_tokens: int = 700
) -> tuple[PressRelease, PressRelease]:
    """(generated, assembled): the model's version, checked, and the assembled one.

    Quote and contact are always taken verbatim from the key points. If the generated text
    contains new facts they are listed in ``new_facts`` and a hint says to use the assembled
    version. Raises :class:`rathaus.ai.llm.ModelUnavailableError` when the model fails.
    """
    assembled = from_key_points(points, place=place)
    completion = model.complete(_prompt(points), max_tokens=max_tokens, temperature=0.2)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", completion.text.strip()) if p.strip()]
    if len(paragraphs) == 1:
        paragraphs = [p.strip() for p in completion.text.strip().splitlines() if p.strip()]
    if not paragraphs:
        raise PressInputError("Das Sprachmodell hat keinen Text geliefert. Bitte erneut versuchen.")
    headline = paragraphs[0].lstrip("#* ").strip()
    lead = paragraphs[1] if len(paragraphs) > 1 else ""
    body = paragraphs[2:]
    added = _new_facts(points.source_text() + "\n" + assembled.dateline, completion.text)
    hints = list(assembled.hints)
    if added:
        hints.insert(
            0,
            "Der erzeugte Text enthält Angaben, die nicht in den Stichpunkten stehen: "
            + ", ".join(added)
            + ". Bitte die zusammengesetzte Fassung verwenden oder die Angaben prüfen.",
        )
    generated = PressRelease(
        headline=headline,
        dateline=assembled.dateline,
        lead=lead,
        body=body,
        quote=assembled.quote,
        contact=assembled.contact,
        social=social_post(headline, lead or assembled.lead, hashtags(points.thema, points.ort)),
        label=model_label(getattr(model, "name", ""), completion.model or model.model),
        model=completion.model or model.model,
        hints=hints,
        new_facts=added,
    )
    return generated, assembled


# -- the version the user downloads -------------------------------------------------------------

# Form fields of an (edited) version on the page and the PressRelease attribute each fills.
# (Names differ from the key points' fields, which the same form carries along.)
FORM_FIELDS = {
    "kennzeichnung": "label", "ueberschrift": "headline", "ortszeile": "dateline",
    "vorspann": "lead", "absaetze": "body", "zitatzeile": "quote", "pressekontakt": "contact",
    "kurzfassung": "social", "modell": "model", "neue_fakten": "new_facts",
}  # fmt: skip
MAX_BODY = 5 * MAX_FIELD


def form_values(release: PressRelease) -> dict[str, str]:
    """The release as the fields of the page's download form (paragraphs by blank lines)."""
    values = {name: getattr(release, attr) for name, attr in FORM_FIELDS.items()}
    values["absaetze"] = "\n\n".join(release.body)
    values["neue_fakten"] = "\n".join(release.new_facts)
    return values


def release_from_form(data: Any, *, check: bool = True) -> PressRelease:
    """The version as the person sees and edited it on the page (:func:`form_values`), for the
    download. Paragraphs of the text are separated by blank lines. Facts the model added stay
    flagged only while they are still in the text. Raises :class:`PressInputError` (German)
    without a headline or with a post longer than :data:`SOCIAL_LIMIT` (with ``check=False``
    the version is returned anyway, to show it again with the message)."""

    def value(name: str) -> str:
        text = str(data.get(name) or "").replace("\r\n", "\n").replace("\r", "\n")
        return text.strip()

    errors = []
    for name in FORM_FIELDS:
        limit = MAX_BODY if name == "absaetze" else MAX_FIELD
        if len(value(name)) > limit:
            errors.append(f"Das Feld „{name}“ ist zu lang (höchstens {limit} Zeichen).")
    if not value("ueberschrift"):
        errors.append("Bitte eine Überschrift angeben.")
    social = value("kurzfassung")
    if len(social) > SOCIAL_LIMIT:
        errors.append(
            f"Die Kurzfassung für soziale Medien hat {len(social)} Zeichen, höchstens "
            f"{SOCIAL_LIMIT} passen in einen Beitrag. Bitte kürzen."
        )
    if errors and check:
        raise PressInputError("Die Fassung lässt sich so nicht herunterladen: " + " ".join(errors))
    release = PressRelease(
        headline=value("ueberschrift"),
        dateline=value("ortszeile"),
        lead=value("vorspann"),
        body=[p.strip() for p in re.split(r"\n\s*\n", value("absaetze")) if p.strip()],
        quote=value("zitatzeile"),
        contact=value("pressekontakt"),
        social=social,
        label=value("kennzeichnung") or "Entwurf",
        model=value("modell"),
    )
    flagged = [f.strip() for f in value("neue_fakten").splitlines() if f.strip()]
    shown = release.text()
    release.new_facts = [f for f in flagged if f in shown]
    return release


# -- export ------------------------------------------------------------------------------------


def to_docx(release: PressRelease) -> bytes:
    """The release as a Word document, section by section, with the post for social media."""
    from docx import Document
    from docx.shared import Pt

    doc = Document()
    doc.styles["Normal"].font.name = "Arial"
    doc.styles["Normal"].font.size = Pt(11)
    label = doc.add_paragraph()
    label.add_run(release.label).italic = True
    if release.new_facts:
        doc.add_paragraph().add_run(release.warning()).bold = True
    doc.add_paragraph("Pressemitteilung").runs[0].bold = True
    doc.add_heading(release.headline, level=1)
    lead = doc.add_paragraph()
    lead.add_run(f"{release.dateline} ").bold = True
    lead.add_run(release.lead).bold = True
    for paragraph in release.body:
        doc.add_paragraph(paragraph)
    if release.quote:
        doc.add_paragraph(release.quote)
    if release.contact:
        doc.add_heading("Pressekontakt", level=2)
        for line in release.contact.splitlines():
            doc.add_paragraph(line)
    doc.add_heading("Kurzfassung für soziale Medien", level=2)
    doc.add_paragraph(release.social)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()
