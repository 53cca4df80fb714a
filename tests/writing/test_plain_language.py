"""Leichte Sprache: each rule on crafted sentences (positive and negative), sentence splitting,
the Schweregrad, readability, the facts check, the rewrite loop and the DEplain evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from rathaus.ai.llm import Completion, ModelUnavailableError
from rathaus.writing.facts import new_facts
from rathaus.writing.plain_eval import DEFAULT_DATA, evaluate_checker, evaluate_rewrite, sari
from rathaus.writing.plain_language import check, readability, split_sentences
from rathaus.writing.plain_rewrite import DRAFT_LABEL, NoModelError, rewrite
from rathaus.writing.plain_rules import split_compound

DATA = Path(__file__).resolve().parents[2] / DEFAULT_DATA


def codes(text: str) -> set[str]:
    return {f.code for s in check(text).sentences for f in s.findings}


@pytest.mark.parametrize(
    ("code", "bad", "good"),
    [
        (
            "satzlaenge",
            "Wenn Sie am Montag in das neue Bürgerbüro im Rathaus kommen, bringen Sie bitte "
            "Ihren alten Ausweis und ein aktuelles Foto mit.",
            "Bringen Sie Ihren Ausweis mit.",
        ),
        ("mehrere_aussagen", "Sie bekommen Geld, weil Sie wenig verdienen.", "Sie bekommen Geld."),
        ("mehrere_aussagen", "Das ist der Antrag, den Sie brauchen.", "Sie brauchen den Antrag."),
        (
            "mehrere_aussagen",
            "Wir prüfen den Antrag und wir schreiben Ihnen.",
            "Wir schreiben Ihnen.",
        ),
        ("passiv", "Der Antrag wird vom Amt geprüft.", "Das Amt prüft den Antrag."),
        ("passiv", "Der Brief wurde gestern verschickt.", "Wir haben den Brief gestern geschickt."),
        ("verneinung", "Sie dürfen nicht parken.", "Sie dürfen hier halten."),
        ("verneinung", "Sie brauchen keinen Termin.", "Sie können einfach kommen."),
        ("genitiv", "Das ist das Haus des Bürgermeisters.", "Das ist das Haus vom Bürgermeister."),
        ("genitiv", "Wegen Bauarbeiten ist die Straße zu.", "Die Straße ist zu."),
        ("konjunktiv", "Es wäre gut, wenn Sie kommen.", "Bitte kommen Sie."),
        (
            "konjunktiv",
            "Sie könnten den Antrag online stellen.",
            "Sie können den Antrag online stellen.",
        ),
        (
            "abkuerzung",
            "Bringen Sie z. B. Ihren Pass mit.",
            "Bringen Sie zum Beispiel Ihren Pass mit.",
        ),
        ("abkuerzung", "Das steht in § 3 Abs. 2.", "Das steht im Gesetz."),
        ("zahlwort", "Das kostet sieben Euro.", "Das kostet 7 Euro."),
        (
            "langes_wort",
            "Bringen Sie die Geburtsurkunde mit.",
            "Bringen Sie die Geburts·urkunde mit.",
        ),
        (
            "schweres_wort",
            "Bitte legen Sie unverzüglich Widerspruch ein.",
            "Bitte schreiben Sie uns sofort.",
        ),
        ("schweres_wort", "Die Infrastruktur ist relevant.", "Die Straßen sind wichtig."),
        ("sonderzeichen", "Die Gebühr steigt um 5 %.", "Die Gebühr steigt ein wenig."),
        ("sonderzeichen", "Kommen Sie (mit Ausweis) vorbei.", "Kommen Sie mit Ausweis vorbei."),
        ("genitiv", "Das ist das Ende der Straße.", "Das ist das Ende von der Straße."),
        ("fuerwort", "Er bringt den Antrag morgen.", "Herr Berger bringt den Antrag morgen."),
        ("fuerwort", "Die Kinder spielen mit ihren Freunden.", "Die Kinder spielen mit Freunden."),
        # the polite "Sie"/"Ihr" is no pronoun to replace
        ("fuerwort", "Die Schule ist neu. Wir zeigen sie Ihnen.", "Bringen Sie Ihren Ausweis mit."),
        ("vergangenheit", "Die Stadt gab allen Kindern Geld.", "Die Stadt hat allen Geld gegeben."),
        ("vergangenheit", "Das Amt war zu.", "Wir warten auf die bekannte Frau mit roten Haaren."),
        # capitalised inside a sentence it is a noun; after "ist" "entstanden" is the perfect
        ("vergangenheit", "Sie kamen mit dem Bus.", "Die Schiffe bringen Waren aus aller Welt."),
        ("vergangenheit", "Dort entstanden neue Häuser.", "Dort ist ein Park entstanden."),
        ("gehobenes_wort", "Der Antrag ist bereits da.", "Der Antrag ist schon da."),
        # "so genannte" in two words is "sogenannte"; the participle "so genannt" is not
        ("gehobenes_wort", "Das ist die so genannte Umweltzone.", "Wir haben das Kind so genannt."),
        # the first word of a sentence is capitalised, but it is no noun before "der"
        ("genitiv", "Die Hälfte der Menschen kommt.", "Zu der Zeit waren die Straßen leer."),
        ("genitiv", "Das Ende der Straße ist nah.", "Nur der Tod kann uns trennen."),
        # a participle after a comma belongs to another clause: no passive
        (
            "passiv",
            "Der Antrag wird vom Amt geprüft, wenn Sie ihn abgeben.",
            "Müsli wird immer beliebter, wenn man den Umsatz betrachtet.",
        ),
        (
            "mehrere_aussagen",
            "Seitdem die Straße offen ist, kommen mehr Gäste.",
            "Seitdem ist die Straße offen.",
        ),
    ],
)
def test_rule_positive_and_negative(code, bad, good):
    assert code in codes(bad), check(bad).to_dict()
    assert code not in codes(good), check(good).to_dict()


def test_findings_carry_label_explanation_span_and_suggestion():
    report = check("Das kostet sieben Euro.")
    (finding,) = report.sentences[0].findings
    assert finding.label == "Zahl als Wort"
    assert finding.span == "sieben"
    assert "7" in (finding.suggestion or "")
    assert report.sentences[0].text[finding.start : finding.end] == "sieben"


def test_future_tense_is_not_passive():
    assert "passiv" not in codes("Wir werden Ihnen morgen schreiben.")


def test_sentence_length_threshold_is_configurable():
    from rathaus.writing.plain_language import RuleConfig

    text = "Bitte bringen Sie Ihren Ausweis und ein Foto mit."
    assert "satzlaenge" not in {f.code for f in check(text).sentences[0].findings}
    short = check(text, config=RuleConfig(max_words=5))
    assert "satzlaenge" in {f.code for f in short.sentences[0].findings}


def test_sentence_split_knows_abbreviations_and_ordinals():
    text = (
        "Bringen Sie z. B. Ihren Pass mit. Im 19. Jahrhundert gab es das Amt noch nicht. "
        "Der Termin ist am 3. Mai. Fragen Sie Dr. Berger! Rufen Sie an?\n- Ausweis\n- Foto"
    )
    sentences = [s.text for s in split_sentences(text)]
    assert sentences == [
        "Bringen Sie z. B. Ihren Pass mit.",
        "Im 19. Jahrhundert gab es das Amt noch nicht.",
        "Der Termin ist am 3. Mai.",
        "Fragen Sie Dr. Berger!",
        "Rufen Sie an?",
        "Ausweis",
        "Foto",
    ]


def test_a_period_without_space_still_ends_a_sentence():
    text = (
        "Das ist neu (seit 2020).Immer mehr Menschen kommen.Die Stadt hilft. Siehe www.rathaus.de."
    )
    assert [s.text for s in split_sentences(text)] == [
        "Das ist neu (seit 2020).",
        "Immer mehr Menschen kommen.",
        "Die Stadt hilft.",
        "Siehe www.rathaus.de.",
    ]


def test_new_rules_explain_in_german_with_a_suggestion():
    report = check("Er ging bereits nach Hause.")
    found = {f.code: f for s in report.sentences for f in s.findings}
    assert set(found) == {"fuerwort", "vergangenheit", "gehobenes_wort"}
    assert found["vergangenheit"].suggestion == "Im Perfekt schreiben: „ist gegangen“."
    assert "schon" in (found["gehobenes_wort"].suggestion or "")
    assert found["fuerwort"].label == "Fürwort" and "Nomen" in found["fuerwort"].explanation


def test_text_severity_counts_the_hardest_sentence_per_rule():
    from rathaus.writing.plain_language import PER_LETTER, PER_SYLLABLE, PER_SYLLABLE_PER_WORD

    text = "Sie könnten z. B. morgen kommen. Es wäre gut. Das Amt ist offen."
    report = check(text)
    worst = {"konjunktiv": 1, "abkuerzung": 1}
    weights = {f.code: f.weight for s in report.sentences for f in s.findings}
    syllables = [s.syllables for s in report.sentences]
    words = sum(s.letter_words for s in report.sentences)
    expected = (
        sum(weights[c] * n for c, n in worst.items())
        + PER_SYLLABLE * max(syllables)
        + PER_SYLLABLE_PER_WORD * sum(syllables) / words
        + PER_LETTER * max(s.letters for s in report.sentences)
    )
    assert report.severity == pytest.approx(expected)
    assert report.sentences[0].letters == len("SiekönntenzBmorgenkommen")
    # one hard sentence is not averaged away by plain ones after it
    hard = "Aufgrund der Sanierung wäre eine Vorsprache nur nach vorheriger Terminvereinbarung möglich."
    plain = " Das Amt ist offen. Sie können kommen. Wir helfen Ihnen."
    assert check(hard + plain).severity > check(hard).severity - 1.0


def test_letters_break_a_tie_between_otherwise_equal_versions():
    # same rules, same syllables: only the shorter word differs
    longer = check("Viele Autos tuckern jeden Tag über die Straßen.")
    shorter = check("Viele Autos fahren jeden Tag über die Straßen.")
    assert longer.sentences[0].syllables == shorter.sentences[0].syllables
    assert shorter.severity < longer.severity < shorter.severity + 0.01
    # it never outweighs a syllable: "Oase" (3 syllables, 4 letters) is harder than "Strauch"
    assert check("Das ist der Strauch.").severity < check("Das ist die Oase.").severity


def test_compound_splitter_suggests_mediopunkt():
    assert split_compound("Geburtsurkunde") == ["Geburts", "Urkunde"]
    assert split_compound("Verwaltungsgebäude") == ["Verwaltungs", "Gebäude"]
    assert split_compound("Haus") == ["Haus"]
    (finding,) = check("Das Verwaltungsgebäude ist offen.").sentences[0].findings
    assert "Verwaltungs·gebäude" in finding.suggestion


def test_severity_prefers_the_plain_version():
    hard = (
        "Aufgrund der Sanierung des Verwaltungsgebäudes wäre eine persönliche Vorsprache nur "
        "nach vorheriger Terminvereinbarung möglich, sofern keine Ausnahme genehmigt wurde."
    )
    plain = "Das Rathaus wird neu gemacht. Bitte machen Sie vorher einen Termin. Rufen Sie uns an."
    assert check(plain).severity < check(hard).severity
    assert check("").severity == 0.0


def test_segments_cover_the_sentence_and_mark_findings():
    sentence = check("Sie dürfen nicht parken.").sentences[0]
    parts = sentence.segments()
    assert "".join(p for p, _ in parts) == sentence.text
    assert ("nicht", ["verneinung"]) in parts


def test_readability_in_plausible_ranges():
    plain = readability("Das ist ein Haus. Es ist rot. Wir wohnen hier.")
    hard = readability(
        "Die Inanspruchnahme kommunaler Dienstleistungen setzt grundsätzlich eine vorherige "
        "elektronische Terminvereinbarung über das Bürgerserviceportal voraus."
    )
    assert 60 <= plain.flesch_amstad <= 121
    assert hard.flesch_amstad < 30 < plain.flesch_amstad
    # the formula is linear: very plain text goes below 4 (even below 0), hard text towards 15
    assert -10 < plain.wiener_sachtextformel < 4 < 10 < hard.wiener_sachtextformel <= 20
    assert plain.sentences == 3


# -- facts -----------------------------------------------------------------------------------

SOURCE = (
    "Mit Bescheid vom 03.05.2024 setzt die Stadt Musterstadt eine Gebühr von 1.471,60 € fest. "
    "Frau Schneider vom Bürgeramt beantwortet Ihre Fragen bis zum 31. Mai. Es gibt drei Termine."
)


def test_reordered_same_facts_pass():
    output = (
        "Es gibt 3 Termine. Frau Schneider beantwortet Ihre Fragen. Sie zahlen 1.471,60 Euro. "
        "Das steht im Brief vom 3. Mai 2024. Sie haben Zeit bis 31.05."
    )
    assert new_facts(SOURCE, output) == []


@pytest.mark.parametrize(
    ("output", "kind", "text"),
    [
        ("Es gibt 4 Termine.", "zahl", "4"),
        ("Zahlen Sie bis zum 12.06.2024.", "datum", "12.06.2024"),
        ("Zahlen Sie bis zum 15. Juni.", "datum", "15. Juni"),
        ("Sie zahlen 1.471,60 €. Dazu kommen 25,00 €.", "betrag", "25,00 €"),
        ("Herr Meier hilft Ihnen.", "name", "Meier"),
    ],
)
def test_new_facts_are_caught(output, kind, text):
    found = [(f.kind, f.text) for f in new_facts(SOURCE, output)]
    assert (kind, text) in found


@pytest.mark.parametrize(
    ("source", "output", "new"),
    [
        ("Die deutschen Behörden prüfen das.", "Die Behörden in Deutschland prüfen das.", []),
        ("Die österreichischen Ämter helfen.", "Die Ämter in Österreich helfen.", []),
        ("Die bayerischen Ämter helfen.", "Die Ämter in Bayern helfen.", []),
        ("Die französischen Ämter helfen.", "Die Ämter in Frankreich helfen.", ["Frankreich"]),
        ("Frau Berg hilft Ihnen.", "Herr Berger hilft Ihnen.", ["Berger"]),
        ("Die neuen Regeln gelten.", "Die Regeln aus Neuland gelten.", ["Neuland"]),
        # the adjective of a place the source names, before a noun
        ("Die Bürger in Konstanz melden.", "Der Konstanzer Bürger meldet.", []),
        ("Das Amt in München hilft.", "Das Münchner Amt hilft.", []),
        ("Das Amt in Bremen hilft.", "Das Bremer Amt hilft.", []),
        ("Das Amt in Karlsruhe hilft.", "Das Karlsruher Amt hilft.", []),
        ("Das Amt in Konstanz hilft.", "Das Ulmer Amt hilft.", ["Ulmer"]),
        ("Frau Berg hilft Ihnen.", "Es hilft Ihnen Anna Berger.", ["Anna", "Berger"]),
        ("Frau Berg hilft Ihnen.", "Es hilft Ihnen Herr Berger Junior.", ["Berger", "Junior"]),
    ],
)
def test_a_place_named_by_its_adjective_in_the_source_is_not_new(source, output, new):
    assert [f.text for f in new_facts(source, output) if f.kind == "name"] == new


def test_new_amount_in_german_format_is_caught():
    found = new_facts("Die Gebühr beträgt 25 Euro.", "Die Gebühr beträgt 1.471,60 €.")
    assert [(f.kind, f.text) for f in found] == [("betrag", "1.471,60 €")]


# -- rewrite loop ----------------------------------------------------------------------------


class FakeModel:
    """Plays back fixed drafts (plumbing test only); records what it was asked."""

    name = "fake"
    model = "fake-1"
    version = "1"

    def __init__(self, drafts: list[str]) -> None:
        self.drafts = list(drafts)
        self.calls: list[list] = []

    def complete(self, messages, *, max_tokens=512, temperature=0.0, json_mode=False):
        self.calls.append(list(messages))
        return Completion(text=self.drafts.pop(0), model=self.model)

    def stream(self, messages, *, max_tokens=512, temperature=0.0):  # pragma: no cover
        yield self.complete(messages).text


def test_loop_flags_added_facts_and_keeps_the_best_clean_draft():
    source = "Die Gebühr von 30 Euro muss bis zum 1. Juli bezahlt werden, weil sonst Mahngebühren anfallen."
    drafts = [
        "Sie müssen 30 Euro bezahlen, weil es sonst teurer wird, und zwar bis zum 1. Juli.",
        "Sie müssen 30 Euro bezahlen. Vergessen Sie den 1. Juli nicht.",
        "Sie zahlen 30 Euro. Bis zum 1. Juli. Sonst kostet es 45 Euro.",  # adds a fact, simplest
    ]
    model = FakeModel(drafts)
    result = rewrite(source, model=model, max_rounds=3)
    assert len(result.drafts) == 3
    assert [f.text for f in result.drafts[2].added_facts] == ["45 Euro"]
    assert result.drafts[2].report.severity < result.drafts[1].report.severity
    assert result.best.round == 2 and result.facts_ok
    assert result.label == DRAFT_LABEL and result.model == "fake-1" and not result.demo_quality
    # the system prompt says the text is data; later rounds carry the checker's findings
    assert "keine Anweisung" in model.calls[0][0].content
    assert "Mehr als eine Aussage" in model.calls[1][-1].content
    assert "Verneinung" in model.calls[2][-1].content and len(model.calls) == 3


def test_loop_never_presents_a_fact_adding_draft_as_clean():
    model = FakeModel(["Sie zahlen 99 Euro.", "Sie zahlen 98 Euro."])
    result = rewrite("Sie zahlen die Gebühr.", model=model, max_rounds=2)
    assert not result.facts_ok
    assert result.best.added_facts
    assert any("nicht im Originaltext" in n for n in result.notes)
    assert result.to_dict()["facts_ok"] is False


def test_sentences_that_add_a_fact_are_removed_and_named():
    """When every round adds a fact, the best draft loses exactly the sentences carrying one;
    the rest is the model's own wording, clean, and the removed sentences are named."""
    source = "Die Gebühr von 30 Euro muss bis zum 1. Juli bezahlt werden."
    model = FakeModel(
        [
            "Sie zahlen 30 Euro. Das Amt hat 45 Mitarbeiter. Zahlen Sie bis zum 1. Juli.",
            "Sie zahlen 30 Euro bis zum 1. Juli. Frau Berger hilft Ihnen gern.",
        ]
    )
    result = rewrite(source, model=model, max_rounds=2)
    assert result.facts_ok and not result.best.added_facts
    assert len(result.drafts) == 2 and all(d.added_facts for d in result.drafts)
    assert result.best.removed in (
        ["Das Amt hat 45 Mitarbeiter."],
        ["Frau Berger hilft Ihnen gern."],
    )
    assert "45" not in result.text and "Berger" not in result.text
    assert "30 Euro" in result.text
    assert any(
        n.startswith("Entfernt: 1 Satz") and result.best.removed[0] in n for n in result.notes
    )
    assert result.to_dict()["removed_sentences"] == result.best.removed

    # one sentence per line, as Leichte Sprache is written: the other lines stay as they were
    listed = FakeModel(
        ["Sie zahlen 30 Euro.\n- Das Amt hat 45 Mitarbeiter.\nZahlen Sie bis zum 1. Juli."]
    )
    result = rewrite(source, model=listed, max_rounds=1)
    assert result.text == "Sie zahlen 30 Euro.\nZahlen Sie bis zum 1. Juli."
    assert result.best.removed == ["Das Amt hat 45 Mitarbeiter."] and result.facts_ok


def test_a_later_draft_is_repaired_when_the_one_with_fewest_added_facts_cannot_be():
    """The draft with the fewest added facts has no sentence without one; another draft keeps
    a clean sentence once its fact-adding sentences are cut: that one is shown, clean."""
    source = "Die Gebühr von 30 Euro muss bis zum 1. Juli bezahlt werden."
    model = FakeModel(
        [
            "Sie zahlen 31 Euro bis zum 1. Juli.",  # one added fact, nothing left without it
            "Sie zahlen 30 Euro bis zum 1. Juli. Das Amt hat 45 Mitarbeiter. Es ist 8 Uhr.",
        ]
    )
    result = rewrite(source, model=model, max_rounds=2)
    assert [len(d.added_facts) for d in result.drafts] == [1, 2]
    assert result.facts_ok and result.best.round == 2
    assert result.text == "Sie zahlen 30 Euro bis zum 1. Juli."
    assert result.best.removed == ["Das Amt hat 45 Mitarbeiter.", "Es ist 8 Uhr."]


def test_without_model_a_german_message():
    with pytest.raises(NoModelError, match="kein Sprachmodell eingerichtet"):
        rewrite("Ein Text.", model=None)


@pytest.mark.model
@pytest.mark.slow
def test_rewrite_with_the_bundled_model(local_llm):
    result = rewrite(
        "Der Antrag muss bis zum 30. Juni schriftlich beim Bürgeramt eingereicht werden.",
        model=local_llm,
        max_rounds=1,
        max_tokens=120,
    )
    assert result.text.strip()
    assert result.demo_quality and result.backend == "local"
    assert result.label == DRAFT_LABEL
    assert any("Demo-Qualität" in n for n in result.notes)
    assert result.facts_ok == (not result.best.added_facts)


# -- evaluation ------------------------------------------------------------------------------


def test_sari_rewards_the_reference_and_punishes_copying():
    source = "Die Inanspruchnahme der Leistung setzt einen Antrag voraus."
    reference = "Sie brauchen einen Antrag für die Leistung."
    assert sari(source, reference, [reference]) > sari(source, source, [reference])
    assert 0 <= sari(source, source, [reference]) <= 100


@pytest.mark.skipif(not DATA.is_file(), reason=f"DEplain-web fehlt: {DATA} (shared/data)")
def test_checker_ranks_deplain_simplifications_as_simpler():
    result = evaluate_checker(DATA, with_readability=False)
    assert result["pairs"] == 767
    # Measured 0.830 (all), 0.829 tuning half, 0.832 held-out half; target 0.85 not reached.
    assert result["pairwise"] >= 0.825
    assert result["pairwise_detail"]["held_out_half"]["share"] >= 0.825
    assert result["pairwise"] > result["baseline_naive"]
    v = result["violations_per_sentence"]
    assert v["simplification"]["violations_per_sentence"] < v["original"]["violations_per_sentence"]


class TimesOutOnce(FakeModel):
    """The first call runs into the model's time limit, later calls play back drafts."""

    def complete(self, messages, *, max_tokens=512, temperature=0.0, json_mode=False):
        if not self.calls:
            self.calls.append(list(messages))
            raise ModelUnavailableError("Zeitlimit", reason="timeout")
        return super().complete(messages, max_tokens=max_tokens, temperature=temperature)


def test_rewrite_evaluation_keeps_going_when_the_model_misses_one_pair(tmp_path):
    data = tmp_path / "paare.csv"
    data.write_text(
        "pair_id,original,simplification,license\n"
        "1,Die Gebühr wird am 3. Mai erhoben.,Sie zahlen am 3. Mai.,CC BY 4.0\n"
        "3,Der Antrag wird von der Stadt geprüft.,Die Stadt prüft den Antrag.,CC BY 4.0\n"
        "5,Die Stadt hat 12 Bäume gepflanzt.,Die Stadt pflanzt Bäume.,CC BY 4.0\n",
        encoding="utf-8",
    )
    model = TimesOutOnce(["Die Stadt prüft den Antrag.", "Die Stadt pflanzt 13 Bäume."])
    result = evaluate_rewrite(data, model=model, limit=3)
    assert [f["pair_id"] for f in result["failed"]] == ["1"]
    assert result["pairs"] == 2
    assert result["facts_preserved"] == 0.5  # "13" is new, the other draft is clean
    assert result["facts_violations"] == [{"pair_id": "5", "added_facts": ["13"]}]

    with pytest.raises(ModelUnavailableError):
        evaluate_rewrite(data, model=_Down(), limit=3)


class _Down(FakeModel):
    def __init__(self) -> None:
        super().__init__([])

    def complete(self, messages, *, max_tokens=512, temperature=0.0, json_mode=False):
        raise ModelUnavailableError("Server nicht erreichbar", reason="unreachable")
