"""The password before the further critical actions (ASVS 3.7.1): deleting a knowledge entry,
removing an Eingangsquelle, deleting a forecast data set (page and API), saving and removing a
retention rule, activating and rolling back a routing model, saving and switching routing rules,
changing the automatic routing of a unit. Nothing happens without it, what was typed stays,
failures are audited, and within the five minutes no password is asked again. Row buttons ask
on a card for that one item first (rathaus.web.reauth_step). Dry runs (testing a rule against
history) need no password."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from rathaus.core.models import (
    AuditEvent,
    InboxSource,
    InsightDataset,
    KnowledgeEntry,
    OrgUnit,
    RetentionRule,
    RoutingModelVersion,
    RoutingRule,
)
from rathaus.web import reauth
from rathaus.web.governance_privacy import RULE_GONE
from tests.factories import PASSWORD
from tests.web.conftest import csrf_of, login, signed_in_without_password
from tests.web.test_insights_forecast import series_csv

WRONG = "falsch-falsch-falsch"


def _events(db, kind: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """The audit trail's events of ``kind``: (actor, subject)."""
    with db.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.kind == kind))
        return [(e.actor, e.subject) for e in rows]


def _entry(db, worlds) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        entry = KnowledgeEntry(
            tenant_id=worlds["a"].tenant.id,
            source="test",
            external_id="hundesteuer",
            title="Hundesteuer anmelden",
            body="Hunde melden Sie im Bürgerbüro an.",
        )
        session.add(entry)
        session.commit()
        return entry.id


def _exists(db, model, row_id: int) -> bool:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.get(model, row_id) is not None


def test_knowledge_delete_asks_for_the_password_and_keeps_the_tick(client, db, worlds):
    entry_id = _entry(db, worlds)
    url = f"/wissen/{entry_id}/loeschen"
    login(client, "redaktion")
    token = csrf_of(client)
    page = client.get(f"/wissen/{entry_id}")
    assert (
        '<label for="l-passwort">' in page.text and 'autocomplete="current-password"' in page.text
    )

    # Without the tick the password is not even looked at.
    untick = client.post(url, data={"csrf_token": token, "passwort": PASSWORD})
    assert untick.status_code == 400 and _events(db, "reauth_confirmed") == []

    missing = client.post(url, data={"csrf_token": token, "bestaetigt": "1"})
    assert missing.status_code == 401 and reauth.MISSING in missing.text
    assert 'name="bestaetigt" value="1" required checked' in missing.text  # the tick stays
    assert 'aria-describedby="l-passwort-hinweis l-passwort-fehler"' in missing.text
    wrong = client.post(url, data={"csrf_token": token, "bestaetigt": "1", "passwort": WRONG})
    assert wrong.status_code == 401 and reauth.WRONG in wrong.text
    assert reauth.MARK_COOKIE not in wrong.headers.get("set-cookie", "")
    assert _exists(db, KnowledgeEntry, entry_id)
    assert _events(db, "reauth_failed") == [("redaktion", "wissenseintrag_loeschen")]

    done = client.post(url, data={"csrf_token": token, "bestaetigt": "1", "passwort": PASSWORD})
    assert done.status_code == 303 and done.headers["location"] == "/wissen?meldung=geloescht"
    assert reauth.MARK_COOKIE in done.headers["set-cookie"]
    assert not _exists(db, KnowledgeEntry, entry_id)
    assert _events(db, "reauth_confirmed") == [("redaktion", "wissenseintrag_loeschen")]


def _sources(db, worlds, *names: str) -> list[int]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        rows = [
            InboxSource(
                tenant_id=worlds["a"].tenant.id, kind="folder", name=n, settings={"path": "/x"}
            )
            for n in names
        ]
        session.add_all(rows)
        session.commit()
        return [r.id for r in rows]


def test_source_removal_asks_on_a_card_and_not_again_within_the_window(client, db, worlds):
    scanner, post = _sources(db, worlds, "Scanner", "Poststelle")
    login(client, "admin")
    token = csrf_of(client)
    listing = client.get("/posteingang/quellen").text
    assert 'name="passwort"' not in listing  # no password field in every row
    assert f'action="/posteingang/quellen/{scanner}/entfernen#quelle-entfernen"' in listing

    card = client.post(f"/posteingang/quellen/{scanner}/entfernen", data={"csrf_token": token})
    assert card.status_code == 401 and "Quelle „Scanner“ entfernen" in card.text
    assert '<label for="quelle-entfernen-passwort">' in card.text
    assert 'name="schritt" value="bestaetigen"' in card.text
    # The first step is a question, not an error: nothing was typed yet.
    assert reauth.MISSING not in card.text and 'aria-invalid="true"' not in card.text
    assert _exists(db, InboxSource, scanner)

    sent = {"csrf_token": token, "schritt": "bestaetigen"}
    empty = client.post(f"/posteingang/quellen/{scanner}/entfernen", data=sent)
    assert empty.status_code == 401 and reauth.MISSING in empty.text
    assert (
        'aria-describedby="quelle-entfernen-passwort-hinweis quelle-entfernen-passwort-fehler"'
        in (empty.text)
    )
    wrong = client.post(
        f"/posteingang/quellen/{scanner}/entfernen", data=sent | {"passwort": WRONG}
    )
    assert wrong.status_code == 401 and reauth.WRONG in wrong.text
    assert _exists(db, InboxSource, scanner)

    done = client.post(
        f"/posteingang/quellen/{scanner}/entfernen", data=sent | {"passwort": PASSWORD}
    )
    assert done.status_code == 303 and not _exists(db, InboxSource, scanner)
    # Within the five minutes the row's button removes at once.
    again = client.post(f"/posteingang/quellen/{post}/entfernen", data={"csrf_token": token})
    assert again.status_code == 303 and not _exists(db, InboxSource, post)
    assert _events(db, "reauth_confirmed") == [("admin", "eingangsquelle_entfernen")]
    assert _events(db, "reauth_failed") == [("admin", "eingangsquelle_entfernen")]
    removed = sorted(subject for _, subject in _events(db, "inbox_source_removed"))
    assert removed == ["inbox_source:Poststelle", "inbox_source:Scanner"]


def _dataset_ids(db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return {d.name: d.id for d in session.scalars(select(InsightDataset))}


def test_forecast_data_sets_in_the_page_and_the_api(client, db, worlds):
    login(client, "leitung")
    token = csrf_of(client)
    for name in ("Eins", "Zwei"):
        sent = client.post(
            "/lagebild/prognose/import",
            data={"csrf_token": token, "name": name},
            files={"datei": (f"{name}.csv", series_csv(), "text/csv")},
        )
        assert sent.status_code == 303
    ids = _dataset_ids(db)
    api = f"/api/v1/lagebild/prognose/datensaetze/{ids['Eins']}"
    headers = {"X-CSRF-Token": token}

    card = client.post(
        f"/lagebild/prognose/datensatz/{ids['Eins']}/loeschen", data={"csrf_token": token}
    )
    assert card.status_code == 401 and "Datensatz „Eins“ löschen" in card.text
    assert '<label for="datensatz-loeschen-passwort">' in card.text

    # The API takes the same staff session, so it asks as well (JSON field "passwort").
    bare = client.request("DELETE", api, headers=headers)
    assert bare.status_code == 401 and bare.json()["detail"] == reauth.MISSING
    wrong = client.request("DELETE", api, headers=headers, json={"passwort": WRONG})
    assert wrong.status_code == 401 and wrong.json()["detail"] == reauth.WRONG
    unknown = client.request(
        "DELETE", "/api/v1/lagebild/prognose/datensaetze/999999", headers=headers, json={}
    )
    assert unknown.status_code == 404  # before the password: no attempt spent
    assert set(_dataset_ids(db)) == {"Eins", "Zwei"}

    gone = client.request("DELETE", api, headers=headers, json={"passwort": PASSWORD})
    assert gone.status_code == 204 and reauth.MARK_COOKIE in gone.headers["set-cookie"]
    page = client.post(
        f"/lagebild/prognose/datensatz/{ids['Zwei']}/loeschen", data={"csrf_token": token}
    )
    assert page.status_code == 303  # confirmed a moment ago (through the API)
    assert _dataset_ids(db) == {}
    assert _events(db, "reauth_confirmed") == [("leitung", "prognose_datensatz_loeschen")]
    assert _events(db, "reauth_failed") == [("leitung", "prognose_datensatz_loeschen")]


BASE = "/governance/datenschutz"


def test_retention_rules_saved_and_removed_after_the_password(client, db, worlds, monkeypatch):
    login(client, "dsb")
    token = csrf_of(client)
    form = {"csrf_token": token, "ziel": "vorgang", "art": "Beschwerde", "tage": "90",
            "aktion": "anonymisieren", "aktiv": "1"}  # fmt: skip
    refused = client.post(f"{BASE}/regeln", data=form)
    assert refused.status_code == 401 and reauth.MISSING in refused.text
    # What was typed is still in the form, the error is tied to the field.
    assert 'name="tage" min="1" max="36500" required value="90"' in refused.text
    assert '<option value="Beschwerde" selected>' in refused.text
    assert '<option value="anonymisieren" selected>' in refused.text
    assert 'id="regel-passwort-fehler"' in refused.text
    with db.session() as session:
        assert session.scalar(select(RetentionRule)) is None

    saved = client.post(f"{BASE}/regeln", data=form | {"passwort": PASSWORD})
    assert saved.status_code == 303
    gone = client.post(
        f"{BASE}/regeln/entfernen", data={"csrf_token": token, "ziel": "vorgang", "art": "Antrag"}
    )
    assert gone.status_code == 404 and RULE_GONE in gone.text

    now = reauth._now()
    monkeypatch.setattr(reauth, "_now", lambda: now + reauth.WINDOW_S + 1)
    remove = {"csrf_token": token, "ziel": "vorgang", "art": "Beschwerde"}
    card = client.post(f"{BASE}/regeln/entfernen", data=remove)
    assert card.status_code == 401 and "Aufbewahrungsregel entfernen" in card.text
    assert "„Vorgänge (Beschwerde): 90 Tage, anonymisieren“" in card.text
    assert '<input type="hidden" name="art" value="Beschwerde">' in card.text
    with db.session() as session:
        assert session.scalar(select(RetentionRule)) is not None
    # A spelling the rules accept does not get around the password.
    upper = client.post(f"{BASE}/regeln/entfernen", data=remove | {"ziel": " VORGANG "})
    assert upper.status_code == 401
    done = client.post(
        f"{BASE}/regeln/entfernen", data=remove | {"schritt": "bestaetigen", "passwort": PASSWORD}
    )
    assert done.status_code == 303
    with db.session() as session:
        assert session.scalar(select(RetentionRule)) is None
    assert [s for _, s in _events(db, "reauth_confirmed")] == [
        "aufbewahrungsregel_speichern",
        "aufbewahrungsregel_entfernen",
    ]


def _versions(db, worlds) -> None:  # type: ignore[no-untyped-def]
    """v1 was live before v2 (both with files): v2 can be rolled back to v1."""
    earlier = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    with db.session() as session:
        for number, status in ((1, "abgelöst"), (2, "live")):
            session.add(
                RoutingModelVersion(
                    tenant_id=worlds["a"].tenant.id,
                    version=number,
                    status=status,
                    file_path=f"modelle/v{number}",
                    metrics={
                        "tasks": ["org_unit"],
                        "accuracy": 0.9,
                        "live_accuracy": None,
                        "live_version": None,
                        "held_out": 10,
                        "thresholds": {},
                        "gate": "bestanden",
                    },  # fmt: skip
                    activated_at=earlier + dt.timedelta(days=number),
                )
            )
        session.commit()


def _live(db) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(
            select(RoutingModelVersion.version).where(RoutingModelVersion.status == "live")
        )


def test_model_rollback_and_activation_need_the_password(client, db, worlds):
    _versions(db, worlds)
    login(client, "admin")
    token = csrf_of(client)
    unknown = client.post("/posteingang/modelle/9/aktivieren", data={"csrf_token": token})
    assert unknown.status_code == 404 and _events(db, "reauth_failed") == []

    card = client.post("/posteingang/modelle/zurueckrollen", data={"csrf_token": token})
    assert card.status_code == 401 and "Auf die vorherige Modellversion zurückrollen" in card.text
    assert (
        "v2 wird abgelöst" in card.text and '<label for="modell-bestaetigen-passwort">' in card.text
    )
    assert _live(db) == 2
    sent = {"csrf_token": token, "schritt": "bestaetigen"}
    wrong = client.post("/posteingang/modelle/zurueckrollen", data=sent | {"passwort": WRONG})
    assert wrong.status_code == 401 and reauth.WRONG in wrong.text and _live(db) == 2
    back = client.post("/posteingang/modelle/zurueckrollen", data=sent | {"passwort": PASSWORD})
    assert back.status_code == 303 and _live(db) == 1

    again = client.post("/posteingang/modelle/2/aktivieren", data={"csrf_token": token})
    assert again.status_code == 303 and _live(db) == 2  # within the five minutes
    assert _events(db, "reauth_confirmed") == [("admin", "zuordnungsmodell_zurueckrollen")]
    with db.session() as session:
        kinds = set(session.scalars(select(AuditEvent.kind)))
    assert {"routing_model_rollback", "routing_model_activated"} <= kinds


def _field_error(page: str, field: str) -> str:
    """The error shown at the password field of the form or card ``field``."""
    found = re.search(rf'id="{field}-passwort-fehler">([^<]+)<', page)
    assert found is not None, f"kein Fehler am Passwortfeld „{field}“"
    return found.group(1)


def test_accounts_without_password_are_told_what_they_can_do(client, db, worlds):
    entry_id = _entry(db, worlds)
    (source,) = _sources(db, worlds, "Scanner")
    token = signed_in_without_password(client, db, "redaktion")
    knowledge = client.post(
        f"/wissen/{entry_id}/loeschen", data={"csrf_token": token, "bestaetigt": "1"}
    )
    # No command deletes an entry: no pointer to one, but what the account can do instead.
    assert knowledge.status_code == 403 and "aus der Veröffentlichung" in knowledge.text
    assert "Kommandozeile" not in _field_error(knowledge.text, "l")

    client.cookies.clear()
    token = signed_in_without_password(client, db, "admin")
    removal = client.post(f"/posteingang/quellen/{source}/entfernen", data={"csrf_token": token})
    assert removal.status_code == 403 and "rathaus inbox quelle-entfernen" in removal.text
    assert "Anmeldedienst (SSO)" in removal.text
    assert _exists(db, KnowledgeEntry, entry_id) and _exists(db, InboxSource, source)
    assert [s for _, s in _events(db, "reauth_failed")] == [
        "wissenseintrag_loeschen",
        "eingangsquelle_entfernen",
    ]


def _rules(db) -> list[tuple[str, str, bool]]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return [(r.name, r.keywords, r.is_active) for r in session.scalars(select(RoutingRule))]


def test_routing_rules_need_the_password_but_their_test_does_not(client, db, worlds, monkeypatch):
    oa = worlds["a"].units["OA"].id
    login(client, "admin")
    token = csrf_of(client)
    form = {"csrf_token": token, "name": "Lärm", "keywords": "Lärm, Ruhestörung", "pattern": "",
            "scope": "text", "org_unit_id": oa, "service_id": "", "priority": "10"}  # fmt: skip

    # The test against history is a dry run: no password, nothing saved.
    tested = client.post("/posteingang/regeln", data=form | {"aktion": "testen"})
    assert tested.status_code == 200 and "Test gegen die bisherigen Vorgänge" in tested.text
    # Input that would not be saved anyway is named without asking for the password.
    empty = client.post("/posteingang/regeln", data=form | {"name": ""})
    assert empty.status_code == 400 and "Bitte geben Sie der Regel einen Namen." in empty.text
    assert _events(db, "reauth_failed") == [] and _rules(db) == []

    refused = client.post("/posteingang/regeln", data=form)
    assert refused.status_code == 401 and reauth.MISSING in refused.text
    # What was typed stays in the form, the error is tied to the field.
    assert 'name="keywords" maxlength="2000" value="Lärm, Ruhestörung"' in refused.text
    assert f'<option value="{oa}" selected>' in refused.text
    assert 'id="regel-passwort-fehler"' in refused.text
    wrong = client.post("/posteingang/regeln", data=form | {"passwort": WRONG})
    assert wrong.status_code == 401 and reauth.WRONG in wrong.text and _rules(db) == []

    saved = client.post("/posteingang/regeln", data=form | {"passwort": PASSWORD})
    assert saved.status_code == 303 and reauth.MARK_COOKIE in saved.headers["set-cookie"]
    rule_url = saved.headers["location"].split("?")[0]
    assert _rules(db) == [("Lärm", "Lärm, Ruhestörung", True)]

    now = reauth._now()
    monkeypatch.setattr(reauth, "_now", lambda: now + reauth.WINDOW_S + 1)
    changed = client.post(rule_url, data=form | {"keywords": "Lärm*"})
    assert changed.status_code == 401 and 'value="Lärm*"' in changed.text
    assert _rules(db) == [("Lärm", "Lärm, Ruhestörung", True)]

    listing = client.get("/posteingang/regeln").text
    assert listing.count('name="passwort"') == 1  # the form's field, none in the rows
    assert f'action="{rule_url}/aktiv#regel-umschalten"' in listing
    card = client.post(f"{rule_url}/aktiv", data={"csrf_token": token, "aktiv": "0"})
    assert card.status_code == 401 and "Regel „Lärm“ deaktivieren" in card.text
    assert '<input type="hidden" name="aktiv" value="0">' in card.text
    assert '<label for="regel-umschalten-passwort">' in card.text
    assert reauth.MISSING not in card.text  # the first step is a question, not an error
    sent = {"csrf_token": token, "aktiv": "0", "schritt": "bestaetigen"}
    empty_card = client.post(f"{rule_url}/aktiv", data=sent)
    assert empty_card.status_code == 401 and reauth.MISSING in empty_card.text
    assert _rules(db) == [("Lärm", "Lärm, Ruhestörung", True)]
    off = client.post(f"{rule_url}/aktiv", data=sent | {"passwort": PASSWORD})
    assert off.status_code == 303 and _rules(db) == [("Lärm", "Lärm, Ruhestörung", False)]
    # Within the five minutes the form saves at once.
    again = client.post(rule_url, data=form | {"keywords": "Lärm*"})
    assert again.status_code == 303 and _rules(db) == [("Lärm", "Lärm*", False)]
    assert [s for _, s in _events(db, "reauth_confirmed")] == [
        "zuordnungsregel_speichern",
        "zuordnungsregel_deaktivieren",
    ]
    assert [s for _, s in _events(db, "reauth_failed")] == ["zuordnungsregel_speichern"]


def _auto(db, unit_id: int) -> tuple[bool, float | None]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        unit = session.get(OrgUnit, unit_id)
        return unit.auto_route_enabled, unit.auto_route_threshold


def test_automatic_routing_release_needs_the_password(client, db, worlds):
    units = [worlds["a"].units[code].id for code in ("BA", "OA", "OA-GW")]
    ba = units[0]
    login(client, "admin")
    token = csrf_of(client)
    page = client.get("/posteingang/modelle").text
    assert '<label for="einheiten-passwort">' in page
    url = "/posteingang/modelle/einheiten"
    stored = {"csrf_token": token, "einheit": units, "schwelle": ["", "", ""]}
    # Saved as it is, nothing changes: no password needed.
    same = client.post(url, data=stored)
    assert same.status_code == 303 and _events(db, "reauth_failed") == []

    release = stored | {"schwelle": ["90", "", ""], "automatisch": [ba]}
    refused = client.post(url, data=release)
    assert refused.status_code == 401 and reauth.MISSING in refused.text
    # What was typed stays: the tick and the threshold.
    assert f'name="automatisch" value="{ba}" checked>' in refused.text
    assert f'id="schwelle-{ba}" name="schwelle" inputmode="decimal" class="short" value="90"' in (
        refused.text
    )
    assert 'id="einheiten-passwort-fehler"' in refused.text
    wrong = client.post(url, data=release | {"passwort": WRONG})
    assert wrong.status_code == 401 and reauth.WRONG in wrong.text
    assert _auto(db, ba) == (False, None)
    too_low = client.post(url, data=release | {"schwelle": ["30", "", ""]})
    assert too_low.status_code == 400 and "zwischen 50 und 100 %" in too_low.text

    done = client.post(url, data=release | {"passwort": PASSWORD})
    assert done.status_code == 303 and _auto(db, ba) == (True, 0.9)
    assert _events(db, "reauth_confirmed") == [("admin", "automatische_zuordnung_aendern")]
    assert _events(db, "reauth_failed") == [("admin", "automatische_zuordnung_aendern")]
    assert _events(db, "auto_routing_changed") == [("admin", "org_unit:BA")]


def test_routing_changes_without_a_password_point_to_a_colleague(client, db, worlds):
    """An account without a password (SSO switched off) cannot confirm; no command does this
    on the server, so the error names what it can do instead."""
    oa = worlds["a"].units["OA"].id
    with db.session() as session:
        rule = RoutingRule(
            tenant_id=worlds["a"].tenant.id, name="Lärm", keywords="Lärm", org_unit_id=oa
        )
        session.add(rule)
        session.commit()
        rule_id = rule.id
    token = signed_in_without_password(client, db, "admin")
    toggle = client.post(
        f"/posteingang/regeln/{rule_id}/aktiv", data={"csrf_token": token, "aktiv": "0"}
    )
    assert toggle.status_code == 403 and "Person mit denselben Rechten" in toggle.text
    assert "Kommandozeile" not in _field_error(toggle.text, "regel-umschalten")
    units = client.post(
        "/posteingang/modelle/einheiten",
        data={"csrf_token": token, "einheit": [oa], "schwelle": [""], "automatisch": [oa]},
    )
    assert units.status_code == 403 and 'id="einheiten-passwort-fehler"' in units.text
    assert _rules(db) == [("Lärm", "Lärm", True)] and _auto(db, oa) == (False, None)
