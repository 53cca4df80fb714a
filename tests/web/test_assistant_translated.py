"""A question in another language with a model server that translates: the API returns each
translated sentence with its checked German sentence and language, the page without script
and the page in a real Chromium mark the translation's language and show the German wording
(the model is a plumbing fake; search, support check and translation check run for real)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from rathaus.assistant.answer import AssistantKit
from rathaus.core.config import AssistantSettings
from rathaus.core.models import AssistantTurn
from tests.a11y import assert_accessible
from tests.assistant.test_multilingual import TranslatingModel
from tests.assistant.test_service import EMBEDDER, add_knowledge
from tests.factories import build_tenant
from tests.web.conftest import demo_app
from tests.web.test_browser import page, serve_in_thread  # noqa: F401 - the page fixture

ASK = "/api/v1/assistant/ask"
QUESTION = "What do I need for an ID card?"
QUESTION_DE = "Was brauche ich für einen Personalausweis?"
PHOTO_DE = (
    "Für den Personalausweis brauchen Sie ein aktuelles biometrisches Passfoto und Ihren "
    "bisherigen Ausweis."
)
PHOTO_EN = "For the ID card you need a current biometric passport photo and your previous ID card."


def _kit() -> AssistantKit:
    model = TranslatingModel({QUESTION: QUESTION_DE, PHOTO_DE: PHOTO_EN}, f"{PHOTO_DE} [1]")
    settings = AssistantSettings(abstain_below=0.0)
    return AssistantKit(
        embedder=EMBEDDER, language_model=model, translator=model, settings=settings
    )


@pytest.fixture
def translating(app, db, worlds):  # type: ignore[no-untyped-def]
    with db.session() as session:
        for world in worlds.values():
            add_knowledge(session, world.tenant.id, EMBEDDER)
    app.state.assistant_kit = _kit()
    return app


def test_the_api_returns_the_translation_with_its_german_sentence(translating, client, db):
    response = client.post(ASK, json={"question": QUESTION, "stream": True})
    assert response.status_code == 200
    events = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    streamed = [e["sentence"] for e in events if e["event"] == "sentence"]
    assert streamed == [
        {
            "text": PHOTO_EN,
            "sources": streamed[0]["sources"],
            "language": "en",
            "original": PHOTO_DE,
        }
    ]
    answer = events[-1]["answer"]
    assert answer["language"] == "en" and answer["searched_as"] == QUESTION_DE
    assert any("Maßgeblich ist der deutsche Wortlaut" in n for n in answer["notes"])
    with db.session() as session:
        stored = session.scalars(select(AssistantTurn)).one().answer
    assert stored["sentences"][0]["original"] == PHOTO_DE and stored["searched_as"] == QUESTION_DE
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "original" in schema["SentenceOut"]["properties"]


def test_the_page_without_script_marks_the_language_and_shows_the_german_wording(
    translating, client
):
    response = client.post("/assistent", data={"question": QUESTION, "kommune": "alpha"})
    assert response.status_code == 200
    assert f'<span class="sentence" lang="en">{PHOTO_EN}' in response.text
    assert "Deutscher Wortlaut (maßgeblich)" in response.text
    assert f'<p lang="de">{PHOTO_DE} </p>' in response.text
    # the facts keep their German values; their labels are in English too
    assert '<dt>Gebühren <span class="label-local" lang="en">· Fees</span></dt>' in response.text


@pytest.fixture
def translating_server(sqlite_db, tmp_path):  # type: ignore[no-untyped-def]
    with sqlite_db.session() as session:
        world = build_tenant(session, "alpha", "Stadt Alpha")
        add_knowledge(session, world.tenant.id, EMBEDDER)
    app = demo_app(sqlite_db, tmp_path)
    app.state.assistant_kit = _kit()
    yield from serve_in_thread(app)


@pytest.mark.browser
def test_a_translated_answer_in_a_real_browser(translating_server, page):  # noqa: F811
    page.goto(translating_server + "/assistent")
    page.locator("#frage").fill(QUESTION)
    page.keyboard.press("Enter")
    answer = page.locator(".answer").first
    answer.locator(".feedback").wait_for(timeout=60_000)
    sentence = answer.locator(".sentence").first
    assert sentence.get_attribute("lang") == "en"
    assert sentence.inner_text().startswith(PHOTO_EN)
    wording = answer.locator("details.german-wording")
    assert wording.locator("summary").inner_text() == "Deutscher Wortlaut (maßgeblich)"
    wording.locator("summary").click()
    assert wording.locator("p[lang=de]").inner_text() == PHOTO_DE
    fees = answer.locator("dl.facts dt", has_text="Gebühren")
    assert fees.locator(".label-local").get_attribute("lang") == "en"
    assert fees.inner_text() == "Gebühren · Fees"
    assert_accessible(page, "assistent-uebersetzt")
