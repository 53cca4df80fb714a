"""Governance pages of the audit package: overview, Prüfprotokoll (list, chain check, signed
export), KI-Entscheidungen (list, rates, export, API), the record on the case page, human
approval of replies, permissions and tenant separation (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from rathaus.core import audit
from rathaus.core.models import AiSuggestion, AuditEvent, Message
from rathaus.core.storage import OriginalStore
from rathaus.governance import audit_log, decisions
from rathaus.inbox.pipeline import TriageKit, ingest
from rathaus.inbox.service import IncomingItem
from rathaus.web import governance_audit
from tests.governance.test_audit_chain import attacker
from tests.web.conftest import csrf_of, login


def _client(app) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app, follow_redirects=False)


def _seed(db, worlds) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Audit events and AI suggestions in both tenants; beta's are marked "beta-geheim"."""
    ids: dict[str, int] = {}
    with db.session() as session:
        for key, marker in (("a", "alpha-sichtbar"), ("b", "beta-geheim")):
            world = worlds[key]
            tenant_id = world.tenant.id
            audit.record(session, audit.Event(kind="login", actor=marker, tenant_id=tenant_id))
            audit.record(
                session,
                audit.Event(kind="settings", actor="admin", tenant_id=tenant_id,
                            data={"note": "<script>alert(1)</script>"}),
            )  # fmt: skip
            routing = decisions.suggest(
                session,
                tenant_id=tenant_id,
                case_id=world.cases["BA"].id,
                function="routing",
                backend="modell",
                model_version=f"{marker}-v3 <b>",
                output={"candidates": []},
                confidence=0.93,
                decision="automatisch",
            )
            reply = decisions.suggest(
                session,
                tenant_id=tenant_id,
                case_id=world.cases["BA"].id,
                function="reply",
                backend="vorlage",
                output={"text": "Guten Tag,\nwir prüfen das."},
            )
            session.flush()
            decisions.decide(
                session,
                reply,
                decision="bearbeitet",
                user=world.users["sb"],
                original_text="Guten Tag,\nwir prüfen das.",
                edited_text="Guten Tag,\nIhr Antrag ist genehmigt.",
            )
            ids[f"{key}_routing"] = routing.id
            ids[f"{key}_case"] = world.cases["BA"].id
    return ids


def test_overview_for_everyone_chain_status_for_auditors(
    app, client, worlds, db, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    _seed(db, worlds)
    login(client, "sb")
    page = client.get("/governance")
    assert page.status_code == 200
    assert "Was aufgezeichnet wird" in page.text and "Hash-Kette Ihrer Kommune" not in page.text
    assert 'href="/governance/protokoll"' not in page.text  # not in the sub-navigation either
    with _client(app) as dsb:
        login(dsb, "dsb")
        page = dsb.get("/governance").text
        assert "Hash-Kette Ihrer Kommune" in page and "<strong>Intakt:</strong>" in page
        assert "Antwortentwurf" in page and "100 %" in page  # rate incl. edits
        first = _first_id(db, worlds["a"].tenant.id)
        with attacker(db), db.engine.begin() as conn:
            conn.execute(update(AuditEvent).where(AuditEvent.id == first).values(actor="x"))
        page = dsb.get("/governance").text
        assert "<strong>Gebrochen:</strong>" in page and f"Nr. {first} (Position 1" in page
        monkeypatch.setattr(governance_audit, "LIVE_CHECK_LIMIT", 1)  # a long chain: on request
        page = dsb.get("/governance").text
        assert "Gebrochen" not in page and "Bitte im Prüfprotokoll „Kette prüfen“" in page


def _first_id(db, tenant_id: int) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(
            select(func.min(AuditEvent.id)).where(AuditEvent.tenant_id == tenant_id)
        )


@pytest.mark.parametrize(
    "path",
    [
        "/governance/protokoll",
        "/governance/entscheidungen",
        "/governance/entscheidungen/export?format=csv",
        "/governance/protokoll/export?format=jsonl",
        "/governance/protokoll/export/signatur?format=jsonl",
        "/api/v1/governance/entscheidungen",
    ],
)
def test_audit_pages_need_view_audit(client, worlds, path: str) -> None:  # type: ignore[no-untyped-def]
    login(client, "leitung")
    response = client.get(path)
    assert response.status_code == 403
    assert "beta-geheim" not in response.text and "alpha-sichtbar" not in response.text


def test_protokoll_list_check_and_signed_export(app, client, worlds, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _seed(db, worlds)
    login(client, "dsb")
    page = client.get("/governance/protokoll")
    assert page.status_code == 200
    assert "alpha-sichtbar" in page.text and "beta-geheim" not in page.text
    assert "&lt;script&gt;" in page.text and "<script>alert" not in page.text
    filtered = client.get("/governance/protokoll?art=ki_entscheidung").text
    assert "ki_entscheidung" in filtered and "alpha-sichtbar" not in filtered
    bad = client.get("/governance/protokoll?von=31.02.2026")
    assert bad.status_code == 422 and "kein gültiges Datum" in bad.text

    assert client.post("/governance/protokoll/pruefen").status_code == 403  # no CSRF token
    with db.session() as session:
        in_chain = audit.verify(session, worlds["a"].tenant.id).checked
    checked = client.post("/governance/protokoll/pruefen", data={"csrf_token": csrf_of(client)})
    assert checked.status_code == 200
    assert in_chain >= 3 and f"Kette intakt:</strong> {in_chain} Einträge" in checked.text
    with db.session() as session:
        last = session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "pruefprotokoll_geprueft")
        ).one()
        assert (last.actor, last.tenant_id, last.data["ok"]) == ("dsb", worlds["a"].tenant.id, True)

    page = client.get("/governance/protokoll").text
    max_id = int(re.search(r"bis_nr=(\d+)", page).group(1))
    secret = app.state.settings.secret_key.get_secret_value()
    for fmt in ("jsonl", "csv"):
        export = client.get(f"/governance/protokoll/export?format={fmt}&bis_nr={max_id}")
        assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
        sig = client.get(f"/governance/protokoll/export/signatur?format={fmt}&bis_nr={max_id}")
        assert sig.status_code == 200
        # an entry appended between the two downloads does not spoil the pair
        with db.session() as session:
            audit.record(
                session, audit.Event(kind="later", actor="x", tenant_id=worlds["a"].tenant.id)
            )
        path = tmp_path / f"protokoll.{fmt}"
        path.write_bytes(export.content)
        audit_log.signature_path(path).write_bytes(sig.content)
        result = audit_log.check_export(path, secret_key=secret)
        with db.session() as session:
            expected = session.scalar(
                select(func.count(AuditEvent.id)).where(
                    AuditEvent.tenant_id == worlds["a"].tenant.id, AuditEvent.id <= max_id
                )
            )
        assert result.rows == expected > in_chain and result.complete_from_start
        assert b"beta-geheim" not in export.content and b"later" not in export.content


def test_decision_record_page_rates_export_and_api(client, worlds, db) -> None:  # type: ignore[no-untyped-def]
    ids = _seed(db, worlds)
    login(client, "admin")
    page = client.get("/governance/entscheidungen")
    assert page.status_code == 200
    assert "alpha-sichtbar-v3 &lt;b&gt;" in page.text and "beta-geheim" not in page.text
    assert "automatisch angewendet" in page.text and "bearbeitet angenommen" in page.text
    assert "+Ihr Antrag ist genehmigt." in page.text
    only = client.get("/governance/entscheidungen?funktion=routing&entscheidung=automatisch").text
    assert "Antwortentwurf</td>" not in only and "Zuständigkeit</td>" in only
    assert client.get("/governance/entscheidungen?entscheidung=egal").status_code == 400

    csv = client.get("/governance/entscheidungen/export?format=csv")
    assert csv.status_code == 200 and "alpha-sichtbar-v3" in csv.text
    assert "beta-geheim" not in csv.text
    xlsx = client.get("/governance/entscheidungen/export?format=xlsx&funktion=reply")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"

    api = client.get("/api/v1/governance/entscheidungen").json()
    assert api["total"] == 2 and {i["id"] for i in api["items"]} >= {ids["a_routing"]}
    assert all("beta" not in (i["model_version"] or "") for i in api["items"])
    reply = next(i for i in api["items"] if i["function"] == "reply")
    assert reply["decided_by"] and reply["diff"]
    rates = {r["function"]: r for r in api["rates"]}
    assert rates["routing"]["counts"] == {"automatisch": 1}
    assert rates["routing"]["acceptance"] is None and rates["reply"]["acceptance_with_edits"] == 1.0

    assert client.post("/api/v1/governance/protokoll/pruefen").status_code == 403
    check = client.post(
        "/api/v1/governance/protokoll/pruefen", headers={"X-CSRF-Token": csrf_of(client)}
    )
    assert check.status_code == 200
    assert check.json()["ok"] is True and check.json()["chain"] == "alpha"


def test_case_page_shows_every_suggestion_and_automatic_action(client, worlds, db) -> None:  # type: ignore[no-untyped-def]
    ids = _seed(db, worlds)
    login(client, "admin")
    page = client.get(f"/vorgaenge/{ids['a_case']}").text
    section = page.split('id="h-ki"', 1)[1].split("</section>", 1)[0]
    assert "KI-Vorschläge und Entscheidungen" in page
    assert "<strong>automatisch angewendet</strong>" in section and "ohne Person" in section
    assert "93 %" in section and "alpha-sichtbar-v3 &lt;b&gt;" in section
    assert "bearbeitet angenommen" in section and "+Ihr Antrag ist genehmigt." in section
    assert "beta-geheim" not in page
    # another tenant's case is not there at all
    assert client.get(f"/vorgaenge/{ids['b_case']}").status_code == 404


def test_no_reply_reaches_a_citizen_without_a_person(app, client, worlds, db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Triage only ever writes drafts, also where automatic routing is switched on; only a
    person with the right to edit cases releases one, with the session's CSRF token."""
    alpha = worlds["a"]
    kit = TriageKit(store=OriginalStore(tmp_path / "o"), data_dir=tmp_path, secret_key="k" * 32)
    with db.session() as session:
        for unit in alpha.units.values():
            unit = session.merge(unit)
            unit.auto_route_enabled, unit.auto_route_threshold = True, 0.0
        text = "Guten Tag, mein Personalausweis ist abgelaufen. Erika Mustermann"
        case = ingest(
            session,
            tenant=session.merge(alpha.tenant),
            item=IncomingItem("email", text.encode(), "mail.txt", "text/plain", body=text),
            kit=kit,
        ).case
        case_id = case.id
        drafts = session.scalars(
            select(Message).where(Message.case_id == case_id, Message.direction == "out")
        ).all()
        assert [(m.status, m.approved_by_id, m.sent_at) for m in drafts] == [
            ("entwurf", None, None)
        ]
        draft_id = drafts[0].id
        reply = session.scalars(
            select(AiSuggestion).where(
                AiSuggestion.case_id == case_id, AiSuggestion.function == "reply"
            )
        ).one()
        assert reply.decision is None
    # the data protection officer sees governance but may not release replies
    with _client(app) as dsb:
        login(dsb, "dsb")
        refused = dsb.post(
            f"/vorgaenge/{case_id}/antworten/{draft_id}",
            data={"csrf_token": csrf_of(dsb), "text": "Freigabe?", "aktion": "freigeben"},
        )
        assert refused.status_code in (403, 404)
    login(client, "admin")
    forged = client.post(
        f"/vorgaenge/{case_id}/antworten/{draft_id}",
        data={"text": "ohne Token", "aktion": "freigeben"},
    )
    assert forged.status_code == 403
    with db.session() as session:
        assert session.get(Message, draft_id).status == "entwurf"
    released = client.post(
        f"/vorgaenge/{case_id}/antworten/{draft_id}",
        data={
            "csrf_token": csrf_of(client),
            "text": "Guten Tag,\nerledigt.",
            "aktion": "freigeben",
        },
    )
    assert released.status_code == 303
    with db.session() as session:
        message = session.get(Message, draft_id)
        assert message.status == "freigegeben"
        assert message.approved_by_id == alpha.users["admin"].id
        reply = session.get(AiSuggestion, reply.id)
        assert reply.decision == "bearbeitet" and reply.decided_by_id == alpha.users["admin"].id
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.subject == f"ai_suggestion:{reply.id}")
        ).one()
        assert event.actor == "admin" and "erledigt" not in str(event.data)
    page = client.get(f"/vorgaenge/{case_id}").text
    assert "bearbeitet angenommen" in page.split('id="h-ki"', 1)[1]


def test_a_case_summary_is_recorded_and_shown_on_the_case(client, worlds, db) -> None:  # type: ignore[no-untyped-def]
    case_id = worlds["a"].cases["BA"].id
    login(client, "admin")
    response = client.post(
        f"/api/v1/texte/zusammenfassung/vorgang/{case_id}",
        json={"sentences": 2},
        headers={"X-CSRF-Token": csrf_of(client)},
    )
    assert response.status_code == 200, response.text
    with db.session() as session:
        (suggestion,) = session.scalars(
            select(AiSuggestion).where(AiSuggestion.function == "zusammenfassung")
        ).all()
        assert (suggestion.case_id, suggestion.tenant_id) == (case_id, worlds["a"].tenant.id)
        assert suggestion.backend == "extraktiv" and len(suggestion.input_sha256) == 64
        assert suggestion.output["sentences"] == [s["text"] for s in response.json()["sentences"]]
    section = client.get(f"/vorgaenge/{case_id}").text.split('id="h-ki"', 1)[1]
    assert "Zusammenfassung" in section.split("</section>", 1)[0]
