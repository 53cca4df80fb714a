"""The Posteingang pages: upload, queues, the case review with decisions and replies, rules and
model versions, and who may do what. Items really go through the triage (memory queue, real
embedder), so each test triages as few as it can."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
import zipfile
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select
from starlette.datastructures import Headers, UploadFile

from rathaus.core.models import (
    AiSuggestion,
    AuditEvent,
    Case,
    CaseEvent,
    CaseStatus,
    Document,
    Message,
    OrgUnit,
    RoutingModelVersion,
    RoutingRule,
    Service,
    utcnow,
)
from rathaus.core.storage import OriginalStore
from rathaus.web.inbox_views import CHUNK, read_upload
from tests.factories import PASSWORD
from tests.web.conftest import csrf_of, demo_app, login

LETTER = (
    "Sehr geehrte Damen und Herren,\n"
    "in der Hauptstraße 5 ist jede Nacht Lärm bis 3 Uhr. Bitte schreiten Sie ein.\n"
    "Mit freundlichen Grüßen\nErika Mustermann\n"
).encode()


@pytest.fixture
def app(db, tmp_path):  # type: ignore[no-untyped-def]
    return demo_app(
        db,
        tmp_path,
        inbox={"max_upload_mb": 1, "max_files_per_upload": 5, "retrain_after_corrections": 1},
    )


@pytest.fixture
def world(worlds, db):  # type: ignore[no-untyped-def]
    """The two test tenants, with unit descriptions and one service per Amt in alpha."""
    with db.session() as session:
        units = {code: session.get(OrgUnit, u.id) for code, u in worlds["a"].units.items()}
        units["BA"].description = "Personalausweis, Reisepass, Meldebescheinigung, Umzug"
        units["OA"].description = "Lärm, Ruhestörung, Falschparker, öffentliche Ordnung"
        tenant_id = worlds["a"].tenant.id
        session.add_all(
            [
                Service(
                    tenant_id=tenant_id,
                    code="ausweis",
                    name="Personalausweis beantragen",
                    keywords="Personalausweis, Ausweis",
                    org_unit_id=units["BA"].id,
                ),
                Service(
                    tenant_id=tenant_id,
                    code="laerm",
                    name="Lärmbelästigung melden",
                    keywords="Lärm, Ruhestörung",
                    org_unit_id=units["OA"].id,
                    sla_working_days=5,
                ),
            ]
        )
    return worlds


def _upload(client, *, files=(), text="", token=None):  # type: ignore[no-untyped-def]
    return client.post(
        "/posteingang/hochladen",
        data={"csrf_token": token or csrf_of(client), "text": text},
        files=[("dateien", f) for f in files] or None,
    )


def _case_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'href="/vorgaenge/(\d+)"', page)]


def _eml() -> bytes:
    message = EmailMessage()
    message["From"] = "Erika Mustermann <erika@example.org>"
    message["To"] = "poststelle@alpha.example"
    message["Subject"] = "Widerspruch gegen den Gebührenbescheid"
    message.set_content("Sehr geehrte Damen und Herren,\nhiermit lege ich Widerspruch ein.")
    return message.as_bytes()


def _docx(text: str) -> bytes:
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            "<?xml version='1.0'?><Types xmlns='http://schemas.openxmlformats.org/package/2006/"
            "content-types'><Override PartName='/word/document.xml' ContentType='application/"
            "vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml'/></Types>",
        )
        archive.writestr(
            "word/document.xml",
            f"<?xml version='1.0' encoding='UTF-8'?><w:document xmlns:w='{w}'><w:body><w:p><w:r>"
            f"<w:t>{text}</w:t></w:r></w:p></w:body></w:document>",
        )
    return buffer.getvalue()


# -- upload -------------------------------------------------------------------------------------


def test_upload_several_files_duplicates_and_a_too_big_one(client, world, db, app):
    login(client, "leitung")  # Fachbereichsleitung: may distribute (triage)
    response = _upload(
        client,
        files=[
            ("brief.txt", LETTER, "text/plain"),
            ("mail.eml", _eml(), "message/rfc822"),
            ("scan.pdf", b"%PDF-" + b"0" * (1024 * 1024), "application/pdf"),  # over 1 MB
            ("kopie.txt", LETTER, "text/plain"),  # the same bytes again
        ],
    )
    assert response.status_code == 200, response.text
    page = response.text
    assert "„scan.pdf“ ist größer als 1 MB und wurde nicht angenommen" in page
    assert page.count("bereits vorhanden") == 1
    with db.session() as session:
        cases = session.scalars(select(Case).where(Case.id.in_(select(Document.case_id)))).all()
        assert len(cases) == 2  # brief.txt (= kopie.txt) and the e-mail; not the big file
        by_file = {c.documents[0].filename: c for c in cases}
        assert set(by_file) == {"brief.txt", "mail.eml"}
        assert all(c.triaged_at is not None for c in cases)  # queued after the commit, run
        assert by_file["mail.eml"].subject == "Widerspruch gegen den Gebührenbescheid"
        assert by_file["mail.eml"].request_type == "Widerspruch"
        letter = by_file["brief.txt"]
        assert set(_case_ids(page)) == {c.id for c in cases}
        store = OriginalStore(app.state.settings.originals_dir)
        assert store.get(letter.tenant_id, letter.documents[0].sha256) == LETTER
    # the letter's case: the text beside the original, with personal data marked
    view = client.get(f"/vorgaenge/{letter.id}").text
    assert '<mark class="pii pii-person" data-kind="Name">Erika Mustermann</mark>' in view
    # the same file in a later upload: the existing case, said so, no second case
    again = _upload(client, files=[("nochmal.txt", LETTER, "text/plain")])
    assert "bereits vorhanden" in again.text and letter.reference in again.text
    with db.session() as session:
        assert (
            session.scalar(select(func.count(Case.id)).where(Case.id.in_(select(Document.case_id))))
            == 2
        )


def test_upload_of_a_docx_and_too_many_files(client, world, db):
    login(client, "admin")
    files = [("antrag.docx", _docx("Antrag auf einen Personalausweis"), "application/zip")]
    files += [(f"leer{i}.txt", b"", "text/plain") for i in range(5)]  # 6 files, 5 allowed
    page = _upload(client, files=files).text
    assert "„leer0.txt“ ist leer" in page
    assert "höchstens 5 Dateien auf einmal" in page and "leer4.txt" in page
    with db.session() as session:
        case = session.scalar(select(Case).where(Case.id.in_(select(Document.case_id))))
        assert case is not None and "Personalausweis" in case.documents[0].extracted_text


def test_read_upload_stops_at_the_limit():
    class Counting(io.BytesIO):
        read_bytes = 0

        def read(self, size: int = -1) -> bytes:
            chunk = super().read(size)
            Counting.read_bytes += len(chunk)
            return chunk

    data = Counting(b"x" * (10 * CHUNK))
    upload = UploadFile(data, filename="../../etc/gross.bin", headers=Headers({}))
    result = asyncio.run(read_upload(upload, max_bytes=CHUNK + 1))
    assert result.too_big and result.data is None and result.filename == "gross.bin"
    assert Counting.read_bytes <= 2 * CHUNK  # not the whole 10 MB
    announced = UploadFile(io.BytesIO(b"x"), size=5 * CHUNK, filename="a.pdf")
    assert asyncio.run(read_upload(announced, max_bytes=CHUNK)).too_big  # refused unread


def test_upload_needs_permission_csrf_and_input(client, world):
    login(client, "dsb")  # Datenschutz: no case work
    assert client.get("/posteingang/hochladen").status_code == 403
    client.cookies.clear()
    login(client, "sb")
    assert client.get("/posteingang/hochladen").status_code == 200
    refused = client.post("/posteingang/hochladen", files=[("dateien", ("a.txt", b"x"))])
    assert refused.status_code == 403 and "CSRF" in refused.text
    empty = _upload(client)
    assert empty.status_code == 400
    assert "mindestens eine Datei" in empty.text


# -- queues -------------------------------------------------------------------------------------


def test_queue_shows_counts_sla_flags_and_suggestions(client, world, db):
    a = world["a"]
    now = utcnow()
    with db.session() as session:
        overdue = Case(
            tenant_id=a.tenant.id,
            reference="ALP-2026-000101",
            subject="Lange liegengeblieben",
            status=CaseStatus.ZUGEWIESEN,
            org_unit_id=a.units["BA"].id,
            due_at=now - dt.timedelta(days=10),
            needs_review_reason="Mögliches Duplikat von ALP-2026-000001 (Ähnlichkeit 98%).",
        )
        urgent = Case(
            tenant_id=a.tenant.id,
            reference="ALP-2026-000102",
            subject="Gasgeruch im Treppenhaus",
            status=CaseStatus.ZUGEWIESEN,
            org_unit_id=a.units["BA"].id,
            urgency="kritisch",
            request_type="Meldung",
            due_at=now + dt.timedelta(days=20),
        )
        open_one = Case(
            tenant_id=a.tenant.id,
            reference="ALP-2026-000103",
            subject="Noch zu verteilen",
            status=CaseStatus.TRIAGE,
            urgency="hoch",
        )
        session.add_all([overdue, urgent, open_one])
        session.flush()
        session.add(
            AiSuggestion(
                tenant_id=a.tenant.id,
                case_id=open_one.id,
                function="routing",
                backend="ähnlichkeit",
                output={
                    "candidates": [
                        {
                            "org_unit_id": a.units["OA"].id,
                            "unit_code": "OA",
                            "unit_name": "Ordnungsamt",
                            "probability": 0.81,
                            "source": "ähnlichkeit",
                        }
                    ]
                },
                confidence=0.81,
            )
        )
    login(client, "admin")
    page = client.get("/posteingang").text
    assert "Triage (noch nicht zugeordnet)" in page
    assert re.search(r'<span class="num">3</span> <span class="label">Bürgeramt</span>', page)
    assert re.search(r'<span class="num">2</span> <span class="label">Triage', page)
    assert "Arbeitstage überfällig" in page and 'class="sla sla-ueberfaellig"' in page
    assert "Prüfhinweis: </span>Mögliches Duplikat von ALP-2026-000001" in page
    assert "Vorschlag: Ordnungsamt (81 %)" in page
    assert (
        page.index("ALP-2026-000102")
        < page.index("ALP-2026-000103")
        < page.index("ALP-2026-000101")
    )  # kritisch, hoch, then the rest
    only_critical = client.get("/posteingang?dringlichkeit=kritisch").text
    assert "ALP-2026-000102" in only_critical and "ALP-2026-000101" not in only_critical
    flagged = client.get("/posteingang?markiert=1").text
    assert "ALP-2026-000101" in flagged and "ALP-2026-000102" not in flagged
    triage = client.get("/posteingang?triage=1").text
    assert "ALP-2026-000103" in triage and "ALP-2026-000102" not in triage
    client.cookies.clear()
    login(client, "sb")  # Bürgeramt only, no triage
    own = client.get("/posteingang?triage=1").text
    assert "Triage (noch nicht zugeordnet)" not in own
    assert "ALP-2026-000101" in own and "ALP-2026-000103" not in own


# -- the case review ----------------------------------------------------------------------------


def test_case_view_marks_personal_data_and_escapes_the_letter(client, world, db):
    login(client, "leitung")
    text = (
        "Sehr geehrte Damen und Herren,\n"
        "bitte erstatten Sie 120,50 € auf mein Konto DE89 3704 0044 0532 0130 00.\n"
        '<script>alert("x")</script><img src=x onerror=alert(1)>\n'
        "Mit freundlichen Grüßen\nErika Mustermann"
    )
    result = _upload(client, text=text)
    (case_id,) = _case_ids(result.text)
    page = client.get(f"/vorgaenge/{case_id}")
    assert page.status_code == 200
    assert '<mark class="pii pii-iban" data-kind="IBAN">DE89 3704 0044 0532 0130 00</mark>' in (
        page.text
    )
    assert '<mark class="feld feld-betrag" data-kind="Betrag">120,50 €</mark>' in page.text
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert "Erkannte Angaben" in page.text and "Zuständigkeit" in page.text
    assert "Ähnlichkeit" in page.text  # day one: suggestions by similarity, with their source
    with db.session() as session:
        document = session.scalar(select(Document).where(Document.case_id == case_id))
        assert document is not None
    original = client.get(f"/vorgaenge/{case_id}/dokumente/{document.id}?ansicht=1")
    assert original.status_code == 200 and original.content == text.encode()
    assert original.headers["content-disposition"].startswith("attachment;")  # text: never inline
    assert original.headers["content-type"].startswith("text/plain")
    assert "sandbox" in original.headers["content-security-policy"]
    client.cookies.clear()
    login(client, "sb")  # Bürgeramt only: the unassigned case does not exist for them
    assert client.get(f"/vorgaenge/{case_id}").status_code == 404
    assert client.get(f"/vorgaenge/{case_id}/dokumente/{document.id}").status_code == 404


def test_case_view_names_the_language_of_the_item(client, world):
    """The triage recognises the language; the case page names it in German."""
    login(client, "admin")
    token = csrf_of(client)
    english = _upload(
        client,
        text="Dear Sir or Madam, my residence permit expires next month. Which documents do I "
        "need to renew it?",
        token=token,
    )
    (english_id,) = _case_ids(english.text)
    page = client.get(f"/vorgaenge/{english_id}").text
    assert "<dt>Sprache</dt><dd>Englisch <span" in page and "automatisch erkannt" in page
    german = _upload(client, text=LETTER.decode(), token=token)
    (german_id,) = _case_ids(german.text)
    assert "<dt>Sprache</dt><dd>Deutsch</dd>" in client.get(f"/vorgaenge/{german_id}").text


def test_case_view_says_whether_the_triage_is_pending_or_never_ran(client, world):
    """A new case waits for its triage; a case taken over already routed (import, direct
    assignment) never gets one, and the page must not promise it."""
    login(client, "sb")
    page = client.get(f"/vorgaenge/{world['a'].cases['BA'].id}").text
    assert "ohne automatische Vorprüfung übernommen" in page
    assert "Vorprüfung läuft noch" not in page
    client.cookies.clear()
    login(client, "leitung")  # may triage: sees the case no unit has yet
    page = client.get(f"/vorgaenge/{world['a'].cases['unrouted'].id}").text
    assert "Die Vorprüfung läuft noch" in page
    assert "ohne automatische Vorprüfung" not in page


def test_routing_accept_correct_and_reply(client, world, db):
    a = world["a"]
    login(client, "admin")
    token = csrf_of(client)
    result = _upload(client, text=LETTER.decode(), token=token)
    (case_id,) = _case_ids(result.text)
    with db.session() as session:
        suggestion = session.scalar(
            select(AiSuggestion).where(
                AiSuggestion.case_id == case_id, AiSuggestion.function == "routing"
            )
        )
        top = suggestion.output["candidates"][0]
    page = client.get(f"/vorgaenge/{case_id}").text
    assert f"Übernehmen: {top['unit_name']}" in page
    accepted = client.post(
        f"/vorgaenge/{case_id}/zuordnung", data={"csrf_token": token, "aktion": "uebernehmen"}
    )
    assert accepted.status_code == 303
    with db.session() as session:
        suggestion = session.get(AiSuggestion, suggestion.id)
        case = session.get(Case, case_id)
        assert suggestion.decision == "angenommen" and suggestion.decided_by_id is not None
        assert case.org_unit_id == top["org_unit_id"] and case.status == CaseStatus.ZUGEWIESEN
    # a service of another Amt is refused with a German message
    laerm = next(s for s in _services(db) if s.code == "laerm")
    ausweis = next(s for s in _services(db) if s.code == "ausweis")
    wrong = client.post(
        f"/vorgaenge/{case_id}/zuordnung",
        data={
            "csrf_token": token,
            "aktion": "zuordnen",
            "org_unit_id": a.units["BA"].id,
            "service_id": laerm.id,
        },
    )
    assert wrong.status_code == 400 and "gehört nicht zu" in wrong.text
    target, service = (
        (a.units["OA"], laerm) if top["unit_code"] == "BA" else (a.units["BA"], ausweis)
    )
    corrected = client.post(
        f"/vorgaenge/{case_id}/zuordnung",
        data={
            "csrf_token": token,
            "aktion": "zuordnen",
            "org_unit_id": target.id,
            "service_id": service.id,
            "notiz": "gehört woanders hin",
        },
    )
    assert corrected.status_code == 303
    with db.session() as session:
        suggestion = session.get(AiSuggestion, suggestion.id)
        case = session.get(Case, case_id)
        assert suggestion.decision == "korrigiert"
        assert suggestion.final["org_unit_id"] == target.id
        assert suggestion.final["note"] == "gehört woanders hin"
        assert case.org_unit_id == target.id and case.service_id == service.id
        assert case.due_at is not None  # the SLA clock runs from the service
        routed = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == "routed")
        ).all()
        assert [e.data["how"] for e in routed][0] == "angenommen" and len(routed) == 2
        draft = session.scalar(
            select(Message).where(Message.case_id == case_id, Message.direction == "out")
        )
    page = client.get(f"/vorgaenge/{case_id}?meldung=entschieden").text
    assert "Die Zuordnung wurde gespeichert." in page
    assert "Entscheidung:</strong> " in page and "von Admin" in page
    # the reply: save the edited draft, then approve it
    saved = client.post(
        f"/vorgaenge/{case_id}/antworten/{draft.id}",
        data={"csrf_token": token, "text": "Sehr geehrte Frau Mustermann,\nwir kümmern uns."},
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("#antwort")
    approved = client.post(
        f"/vorgaenge/{case_id}/antworten/{draft.id}",
        data={
            "csrf_token": token,
            "text": "Sehr geehrte Frau Mustermann,\nerledigt.",
            "aktion": "freigeben",
        },
    )
    assert approved.status_code == 303
    with db.session() as session:
        message = session.get(Message, draft.id)
        assert message.status == "freigegeben" and message.body.endswith("erledigt.")
        # The correction replaced the untouched first draft; the newest one was edited.
        replies = session.scalars(
            select(AiSuggestion)
            .where(AiSuggestion.case_id == case_id, AiSuggestion.function == "reply")
            .order_by(AiSuggestion.id)
        ).all()
        assert [r.decision for r in replies][:-1] in ([], ["ersetzt"])
        assert replies[-1].decision == "bearbeitet" and replies[-1].final["diff"]
        activities = [e.activity for e in session.get(Case, case_id).events]
        assert "Antwortentwurf bearbeitet" in activities and "Antwort freigegeben" in activities
    page = client.get(f"/vorgaenge/{case_id}").text
    assert "Freigegeben von Admin" in page and f'id="antwort-{draft.id}"' not in page
    again = client.post(
        f"/vorgaenge/{case_id}/antworten/{draft.id}",
        data={"csrf_token": token, "text": "Noch einmal ändern"},
    )
    assert again.status_code == 400 and "bereits freigegeben" in again.text


def _services(db):  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalars(select(Service)).all()


# -- rules --------------------------------------------------------------------------------------


def _decided_history(db, world, per_unit: int = 3):  # type: ignore[no-untyped-def]
    """Decided cases: Bürgeramt about passports, Ordnungsamt about noise (newest last)."""
    a = world["a"]
    start = utcnow() - dt.timedelta(days=200)
    texts = {
        "BA": [
            "Mein Personalausweis ist abgelaufen, ich brauche einen neuen Ausweis.",
            "Termin für einen Reisepass und den Personalausweis meiner Tochter.",
            "Meldebescheinigung nach dem Umzug in die Gartenstraße benötigt.",
        ],
        "OA": [
            "Lärm und laute Musik beim Nachbarn jede Nacht, Ruhestörung.",
            "Falschparker blockieren seit Tagen die Feuerwehrzufahrt.",
            "Ruhestörung durch Baulärm am Sonntag in der Hauptstraße.",
        ],
    }
    with db.session() as session:
        n = 0
        for i in range(per_unit):
            for code in ("BA", "OA"):
                n += 1
                case = Case(
                    tenant_id=a.tenant.id,
                    reference=f"ALP-2025-{n:06d}",
                    subject=texts[code][i % 3].split(",")[0],
                    status=CaseStatus.ERLEDIGT,
                    org_unit_id=a.units[code].id,
                    received_at=start + dt.timedelta(days=n),
                )
                session.add(case)
                session.flush()
                session.add(
                    Message(
                        tenant_id=a.tenant.id,
                        case_id=case.id,
                        direction="in",
                        body=f"{texts[code][i % 3]} Vorgang {n}.",
                    )
                )


def test_rules_create_edit_test_and_deactivate(client, world, db):
    _decided_history(db, world)
    a = world["a"]
    login(client, "admin")
    token = csrf_of(client)
    assert "Noch keine Regeln" in client.get("/posteingang/regeln").text
    form = {
        "csrf_token": token,
        "name": "Lärm",
        "keywords": "Lärm, Ruhestörung",
        "pattern": "",
        "scope": "text",
        "org_unit_id": a.units["OA"].id,
        "service_id": "",
        "priority": "10",
    }
    broken = client.post("/posteingang/regeln", data={**form, "keywords": "", "pattern": "(["})
    assert broken.status_code == 400 and "Das Suchmuster ist ungültig" in broken.text
    empty = client.post("/posteingang/regeln", data={**form, "keywords": "", "name": ""})
    assert "Bitte geben Sie der Regel einen Namen." in empty.text
    assert "Eine Regel braucht Stichwörter oder ein Suchmuster." in empty.text
    tested = client.post("/posteingang/regeln", data={**form, "aktion": "testen"})
    assert tested.status_code == 200
    assert "Die Regel trifft auf <strong>2</strong> zu" in tested.text
    assert "Genauigkeit 100 %" in tested.text
    with db.session() as session:
        assert session.scalar(select(func.count(RoutingRule.id))) == 0  # testing saves nothing
    created = client.post("/posteingang/regeln", data={**form, "passwort": PASSWORD})
    assert created.status_code == 303
    rule_url = created.headers["location"].split("?")[0]
    # edit: now to the wrong Amt; the test shows the hits as wrong
    edited = client.post(rule_url, data={**form, "org_unit_id": a.units["BA"].id})
    assert edited.status_code == 303
    wrong = client.get(rule_url + "?testen=1").text
    assert "Treffer bei einem anderen Amt" in wrong and "Genauigkeit 0 %" in wrong
    off = client.post(rule_url + "/aktiv", data={"csrf_token": token, "aktiv": "0"})
    assert off.status_code == 303
    listing = client.get(off.headers["location"]).text
    assert "jetzt inaktiv" in listing and "inaktiv</td>" in listing
    with db.session() as session:
        rule = session.scalar(select(RoutingRule))
        assert rule.is_active is False and rule.org_unit_id == a.units["BA"].id
        kinds = session.scalars(
            select(AuditEvent.kind).where(AuditEvent.subject.like("routing_rule:%"))
        ).all()
        assert kinds == ["routing_rule_created", "routing_rule_changed", "routing_rule_deactivated"]
    # another tenant's rule does not exist here
    client.cookies.clear()
    login(client, "admin", tenant="beta")
    assert client.get(rule_url).status_code == 404


# -- model versions -----------------------------------------------------------------------------


def test_models_train_rollback_activate_and_automatic_routing(client, world, db):
    a = world["a"]
    login(client, "admin")
    token = csrf_of(client)
    too_few = client.post("/posteingang/modelle/trainieren", data={"csrf_token": token})
    assert "Zu wenige entschiedene Vorgänge" in client.get(too_few.headers["location"]).text
    _decided_history(db, world, per_unit=12)  # 24 decided cases, two Ämter
    for _ in range(2):
        trained = client.post("/posteingang/modelle/trainieren", data={"csrf_token": token})
        assert trained.status_code == 303
    with db.session() as session:
        versions = {v.version: v for v in session.scalars(select(RoutingModelVersion))}
        assert set(versions) == {1, 2}, versions
        assert versions[2].status == "live" and versions[1].status == "abgelöst"
    page = client.get("/posteingang/modelle").text
    assert "v2" in page and "bestanden" in page and "manuell" in page
    back = client.post(
        "/posteingang/modelle/zurueckrollen", data={"csrf_token": token, "passwort": PASSWORD}
    )
    assert back.status_code == 303
    assert "vorherige Modellversion ist wieder live" in client.get(back.headers["location"]).text
    with db.session() as session:
        live = session.scalar(
            select(RoutingModelVersion).where(RoutingModelVersion.status == "live")
        )
        assert live.version == 1
    assert (
        client.post("/posteingang/modelle/2/aktivieren", data={"csrf_token": token}).status_code
        == 303
    )
    # automatic routing per unit, every change audited
    units = [a.units["BA"], a.units["OA"], a.units["OA-GW"]]
    data = {
        "csrf_token": token,
        "einheit": [u.id for u in units],
        "schwelle": ["90", "", ""],
        "automatisch": [a.units["BA"].id],
    }
    assert client.post("/posteingang/modelle/einheiten", data=data).status_code == 303
    refused = client.post(
        "/posteingang/modelle/einheiten", data={**data, "schwelle": ["30", "", ""]}
    )
    assert refused.status_code == 400 and "zwischen 50 und 100 %" in refused.text
    with db.session() as session:
        ba = session.get(OrgUnit, a.units["BA"].id)
        assert ba.auto_route_enabled and ba.auto_route_threshold == 0.9
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == a.tenant.id)
        ).all()
        kinds = [e.kind for e in events]
        assert kinds.count("auto_routing_changed") == 1
        assert {"routing_model_rollback", "routing_model_activated"} <= set(kinds)
        change = next(e for e in events if e.kind == "auto_routing_changed")
        assert change.data["after"] == {"auto_route_enabled": True, "threshold": 0.9}
    # a new item is routed by the live model; the case shows its decisive words
    result = _upload(
        client, text="Mein Personalausweis ist verloren, bitte einen neuen Ausweis.", token=token
    )
    (case_id,) = _case_ids(result.text)
    page = client.get(f"/vorgaenge/{case_id}").text
    assert "Modell" in page and "Entscheidende Wörter" in page
    assert re.search(r'<span class="word">(personalausweis|ausweis)</span>', page), page
    with db.session() as session:
        routing = session.scalar(
            select(AiSuggestion).where(
                AiSuggestion.case_id == case_id, AiSuggestion.function == "routing"
            )
        )
        assert routing.output["decisive_words"]["model"] == "routing-v2"
        # one correction (retrain_after_corrections = 1) starts a new training
        assert session.scalar(select(func.count(RoutingModelVersion.id))) == 2
    target = (
        a.units["OA"] if routing.output["candidates"][0]["unit_code"] != "OA" else a.units["BA"]
    )
    client.post(
        f"/vorgaenge/{case_id}/zuordnung",
        data={"csrf_token": token, "aktion": "zuordnen", "org_unit_id": target.id},
    )
    with db.session() as session:
        newest = session.scalar(select(RoutingModelVersion).order_by(RoutingModelVersion.id.desc()))
        assert newest.version == 3 and newest.trigger == "korrekturen"


# -- permissions --------------------------------------------------------------------------------


def test_case_workers_may_not_manage_rules_or_models(client, world):
    login(client, "sb")
    token = csrf_of(client)
    for url in ("/posteingang/regeln", "/posteingang/modelle"):
        assert client.get(url).status_code == 403
    for url in (
        "/posteingang/regeln",
        "/posteingang/modelle/trainieren",
        "/posteingang/modelle/zurueckrollen",
        "/posteingang/modelle/einheiten",
    ):
        assert client.post(url, data={"csrf_token": token}).status_code == 403, url
    other = world["a"].cases["OA-GW"]  # another department's case
    assert client.get(f"/vorgaenge/{other.id}").status_code == 404
    decided = client.post(
        f"/vorgaenge/{other.id}/zuordnung",
        data={"csrf_token": token, "aktion": "zuordnen", "org_unit_id": world["a"].units["BA"].id},
    )
    assert decided.status_code == 404
    own = world["a"].cases["BA"]
    assert client.get(f"/vorgaenge/{own.id}").status_code == 200
    nav = client.get("/posteingang").text
    assert 'href="/posteingang/regeln"' not in nav and ">Posteingang</a>" in nav
