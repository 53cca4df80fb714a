"""Measures the Niederschrift detectors on real council data: the ``result`` texts of the
Karlsruhe OParl meetings (vote/decision detection against a hand-labelled table of every result
wording) and the agenda assignment on transcripts built from the real agendas."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rathaus.writing.minutes import structure
from rathaus.writing.minutes_extract import Sentence, detect_vote, sentences_of
from rathaus.writing.oparl import meeting_from_object, read_meetings_file

# Hand-labelled meaning of each result wording in the Karlsruhe data: (outcome, how) with
# outcome None = no decision was taken, "?" = ambiguous, not scored; how = einstimmig,
# mehrheitlich or "". Written by reading the wordings, not by running the detector.
GOLD: dict[str, tuple[str | None, str]] = {
    "Kenntnisnahme": ("zur Kenntnis genommen", ""),
    "einstimmig zugestimmt": ("angenommen", "einstimmig"),
    "einstimmig beschlossen": ("angenommen", "einstimmig"),
    "mehrheitlich beschlossen": ("angenommen", "mehrheitlich"),
    "mehrheitlich abgelehnt": ("abgelehnt", "mehrheitlich"),
    "erledigt": ("erledigt", ""),
    "mehrheitlich zugestimmt": ("angenommen", "mehrheitlich"),
    "verwiesen in Fachausschuss": ("verwiesen", ""),
    "mit Stellungnahme einverstanden": ("angenommen", ""),
    "Beratung im Fachgremium/Arbeitskreis": (None, ""),
    "vorberaten ohne Änderungen": (None, ""),
    "erledigt durch Stellungnahme der Verwaltung": ("erledigt", ""),
    "vertagt": ("vertagt", ""),
    "keine Abstimmung": (None, ""),
    "Zustimmung": ("angenommen", ""),
    "verwiesen in den Gemeinderat": ("verwiesen", ""),
    "Stellungnahme zur Kenntnis genommen": ("zur Kenntnis genommen", ""),
    "keine Mitteilungen": (None, ""),
    "Zugestimmt zu geändertem Beschlusstext": ("angenommen", ""),
    "einverstanden": ("angenommen", ""),
    "Antrag ist erledigt": ("erledigt", ""),
    "mehrheitlich zugestimmt zu geändertem Beschlusstext": ("angenommen", "mehrheitlich"),
    "zurückgezogen": ("zurückgezogen", ""),
    "teilweise zugestimmt": ("angenommen", ""),
    "Beschlossen mit geändertem Beschlusstext": ("angenommen", ""),
    "gewählt": ("angenommen", ""),
    "verwiesen in Planungsausschuss": ("verwiesen", ""),
    "Aushang im Foyer": (None, ""),
    "einstimmig abgelehnt": ("abgelehnt", "einstimmig"),
    "Antrag zurückgezogen": ("zurückgezogen", ""),
    "verwiesen in Sozialausschuss": ("verwiesen", ""),
    "siehe Dokument Abstimmungsergebnisse": ("?", ""),
    "mehrheitlich zugestimmt zu geändertem Antrag": ("angenommen", "mehrheitlich"),
    "teilweise abgelehnt": ("?", ""),
    "abgelehnt": ("abgelehnt", ""),
    "verwiesen in den Jugendhilfeausschuss": ("verwiesen", ""),
    "verwiesen in Personalausschuss": ("verwiesen", ""),
    "einstimmig zugestimmt zum modifizierten Antrag": ("angenommen", "einstimmig"),
    "verwiesen an Kulturausschuss": ("verwiesen", ""),
    "Verwiesen in Ausschuss für Umwelt und Gesundheit": ("verwiesen", ""),
    "vorberaten mit Änderungen": (None, ""),
    "verwiesen in Ausschuss für öffentliche Einrichtungen": ("verwiesen", ""),
    "genehmigt": ("angenommen", ""),
    "abgesetzt": ("vertagt", ""),
    "verwiesen in Wirtschaftsförderungsausschuss": ("verwiesen", ""),
    "verwiesen an Schulbeirat": ("verwiesen", ""),
    "keine": (None, ""),
    "in Beschlussvorlage übernommen": ("?", ""),
    "bei Stimmengleichheit abgelehnt": ("abgelehnt", ""),
    "Weiterbehandlung im Planungsausschuss": ("verwiesen", ""),
    "nicht zur Abstimmung gestellt": (None, ""),
    "Stimmengleichheit - abgelehnt": ("abgelehnt", ""),
    "weitere Beratung im Hauptausschuss": ("verwiesen", ""),
    "zur Kenntnis genommen + mehrheitliche Zustimmung": ("?", ""),
    "Wiedervorlage erbeten": ("vertagt", ""),
    "angehalten": ("?", ""),
}
_GOLD_PREFIXES = (("verwiesen ", "verwiesen"), ("Weiterbehandlung im ", "verwiesen"))


def gold_of(result: str) -> tuple[str | None, str] | None:
    """The hand label of a result wording; ``None`` when the table has none."""
    if result in GOLD:
        return GOLD[result]
    for prefix, outcome in _GOLD_PREFIXES:
        if result.startswith(prefix):
            return (outcome, "")
    if result.startswith("erledigt durch"):
        return ("erledigt", "")
    return None


@dataclass
class EvalReport:
    meetings: int = 0
    items_with_result: int = 0
    scored: int = 0
    outcome_correct: int = 0
    how_correct: int = 0
    decision_found: int = 0  # of scored items whose gold says a decision was taken
    decision_expected: int = 0
    false_decision: int = 0  # a decision detected where gold says none
    no_decision_expected: int = 0
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)
    assign_meetings: int = 0
    assign_sentences: int = 0
    assign_correct_number: int = 0  # transitions with „Tagesordnungspunkt N“
    assign_correct_name: int = 0  # transitions by the item's name only
    item_outcome_correct: int = 0  # after assignment: the item's vote matches its result
    item_outcome_scored: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["confusions"] = [[g, d, n] for (g, d), n in self.confusions.most_common(15)]
        return data


def _how(vote: Any) -> str:
    if vote is None:
        return ""
    return "einstimmig" if vote.unanimous else "mehrheitlich" if vote.majority else ""


def evaluate(
    path: Path, *, max_meetings: int | None = None, assign_meetings: int = 200
) -> EvalReport:
    """Run both measurements over a meetings file (JSONL of OParl meetings)."""
    report = EvalReport()
    for obj in read_meetings_file(path):
        if max_meetings is not None and report.meetings >= max_meetings:
            break
        report.meetings += 1
        meeting = meeting_from_object(obj)
        for item in meeting.agenda:
            if not item.result:
                continue
            report.items_with_result += 1
            gold = gold_of(item.result)
            if gold is None or gold[0] == "?":
                continue
            report.scored += 1
            sentence = Sentence(
                0, f"Ergebnis zu Tagesordnungspunkt {item.number}: {item.result}.", None, None
            )
            vote = detect_vote(sentence)
            got = vote.outcome if vote else None
            if gold[0] is None:
                report.no_decision_expected += 1
                report.false_decision += got is not None
            else:
                report.decision_expected += 1
                report.decision_found += got is not None
            if got == gold[0]:
                report.outcome_correct += 1
            else:
                report.confusions[(str(gold[0]), str(got))] += 1
            report.how_correct += _how(vote) == gold[1]
        if report.assign_meetings < assign_meetings and len(meeting.agenda) >= 3:
            report.assign_meetings += 1
            _assignment_check(meeting.agenda, report)
    return report


_FILLER = (
    "Gibt es dazu Wortmeldungen aus dem Gremium?",
    "Die Verwaltung hat die Unterlagen rechtzeitig verschickt und steht für Fragen bereit.",
)


def _assignment_check(agenda: list[Any], report: EvalReport) -> None:
    """Transcripts from a real agenda: once with „Wir kommen zu Tagesordnungspunkt N: …“, once
    with only the item's name („Als Nächstes beraten wir über …“); each item with filler and,
    when known, its result. Counts sentences landing on the right item."""
    for by_number in (True, False):
        segments: list[dict[str, Any]] = []
        truth: list[int] = []
        for index, item in enumerate(agenda):
            opener = (
                f"Wir kommen zu Tagesordnungspunkt {item.number}: {item.name}."
                if by_number
                else f"Als Nächstes beraten wir über das Thema {item.name}."
            )
            lines = [opener, *_FILLER]
            if item.result:
                lines.append(f"Ergebnis: {item.result}.")
            for line in lines:
                segment = {"start": None, "end": None, "text": line}
                segments.append(segment)
                # an item name may hold several sentences: one truth entry per sentence
                truth.extend([index] * len(sentences_of([segment])))
        result = structure(agenda=agenda, transcript=segments, summary_sentences=1)
        owner: dict[int, int] = {}
        for index, item in enumerate(result["items"]):
            for sentence_index in item["sentences"]:
                owner[sentence_index] = index
        correct = sum(owner.get(i) == t for i, t in enumerate(truth))
        if by_number:
            report.assign_sentences += len(truth)
            report.assign_correct_number += correct
            for item, built in zip(agenda, result["items"], strict=True):
                gold = gold_of(item.result) if item.result else None
                if gold is None or gold[0] in ("?", None):
                    continue
                report.item_outcome_scored += 1
                outcomes = [v["outcome"] for v in built["votes"]]
                report.item_outcome_correct += bool(outcomes) and outcomes[-1] == gold[0]
        else:
            report.assign_correct_name += correct


def format_report(report: EvalReport) -> str:
    def pct(part: int, whole: int) -> str:
        return f"{100 * part / whole:.1f} %" if whole else "–"

    lines = [
        f"Sitzungen: {report.meetings}; Tagesordnungspunkte mit Ergebnis: "
        f"{report.items_with_result}; davon bewertet (eindeutig handbeschriftet): {report.scored}",
        f"Ergebnis richtig erkannt: {report.outcome_correct}/{report.scored} "
        f"({pct(report.outcome_correct, report.scored)})",
        f"Einstimmig/mehrheitlich richtig: {report.how_correct}/{report.scored} "
        f"({pct(report.how_correct, report.scored)})",
        f"Beschluss gefunden, wo einer gefasst wurde: {report.decision_found}/"
        f"{report.decision_expected} ({pct(report.decision_found, report.decision_expected)})",
        f"Fälschlich ein Beschluss, wo keiner gefasst wurde: {report.false_decision}/"
        f"{report.no_decision_expected} "
        f"({pct(report.false_decision, report.no_decision_expected)})",
        f"Zuordnung zur Tagesordnung ({report.assign_meetings} Sitzungen, "
        f"{report.assign_sentences} Sätze): mit „Tagesordnungspunkt N“ "
        f"{pct(report.assign_correct_number, report.assign_sentences)}, nur über den Namen "
        f"{pct(report.assign_correct_name, report.assign_sentences)}",
        f"Ergebnis je Punkt nach der Zuordnung richtig: {report.item_outcome_correct}/"
        f"{report.item_outcome_scored} "
        f"({pct(report.item_outcome_correct, report.item_outcome_scored)})",
    ]
    if report.confusions:
        lines.append(
            "Häufigste Fehler (erwartet → erkannt): "
            + "; ".join(f"{g} → {d} ({n})" for (g, d), n in report.confusions.most_common(8))
        )
    return "\n".join(lines)
