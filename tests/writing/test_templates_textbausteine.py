"""Textbausteine: placeholder syntax, rendering with visible gaps, department scoping."""

from __future__ import annotations

import datetime as dt

import pytest

from rathaus.core.errors import NotFoundError, PermissionDeniedError
from rathaus.core.models import Tenant
from rathaus.writing import templates as tb
from tests.factories import build_tenant


def test_syntax_errors_are_german_and_specific():
    assert tb.syntax_errors("Ihr Zeichen {{aktenzeichen}} vom {{datum}}") == []
    errors = tb.syntax_errors("Hallo {{name} und {{xyz}} und {frist}")
    joined = " ".join(errors)
    assert "nicht geschlossen" in joined
    assert "{{frist}}" in joined  # single braces are pointed out
    assert tb.syntax_errors("{{xyz}}")[0].startswith(
        "Text: Den Platzhalter „{{xyz}}“ gibt es nicht"
    )
    assert "ungültig" in tb.syntax_errors("{{Groß Schreibung}}")[0]


def test_render_marks_gaps_and_unknown_names():
    result = tb.render_text(
        "AZ {{aktenzeichen}}, Frist {{ frist }}, {{geheim}}", {"aktenzeichen": "MS-1", "frist": ""}
    )
    assert result.text == "AZ MS-1, Frist [[frist fehlt]], [[geheim unbekannt]]"
    assert result.missing == ["frist"]
    assert result.unknown == ["geheim"]
    assert not result.complete


def test_values_for_case_take_the_citizen_and_the_deadline(db):
    with db.session() as session:
        world = build_tenant(session, "alpha")
        case = world.cases["BA"]
        case.fields = {
            "extracted": {
                "sender": {"name": "Jörg Müller", "address": "Lindenweg 3, 12345 Alpha"},
                "deadlines": [{"date": "2026-11-21"}],
            }
        }
        values = tb.values_for_case(
            case, world.tenant, user=world.users["sb"], today=dt.date(2026, 3, 1)
        )
    assert values["name"] == "Jörg Müller"
    assert values["anrede"] == "Guten Tag Jörg Müller"
    assert values["frist"] == "21. November 2026"
    assert values["datum"] == "1. März 2026"
    assert values["amt"] == "Bürgeramt"
    assert values["kommune"] == "Stadt Alpha"
    assert values["aktenzeichen"] == case.reference


def test_department_scoping_and_management_rights(db):
    with db.session() as session:
        world = build_tenant(session, "alpha")
        other = build_tenant(session, "beta")
        admin, leitung, sb = (world.users[k] for k in ("admin", "leitung", "sb"))
        general = tb.create(
            session, user=admin, data=tb.TemplateData(name="Allgemein", body="Text {{name}}")
        )
        ordnung = tb.create(
            session,
            user=leitung,
            data=tb.TemplateData(
                name="Gewerbe", body="Gewerbe {{aktenzeichen}}", org_unit_id=world.units["OA-GW"].id
            ),
        )
        foreign = tb.create(
            session, user=other.users["admin"], data=tb.TemplateData(name="Fremd", body="x")
        )
        # sb works in the Bürgeramt: sees the general one, not the Ordnungsamt's
        names = [t.name for t in tb.list_templates(session, user=sb)]
        assert names == ["Allgemein"]
        assert {t.name for t in tb.list_templates(session, user=leitung)} == {
            "Allgemein",
            "Gewerbe",
        }
        with pytest.raises(NotFoundError):
            tb.get(session, user=sb, template_id=ordnung.id)
        with pytest.raises(NotFoundError):
            tb.get(session, user=admin, template_id=foreign.id)
        # a case worker may use but not change; a head only within their units
        with pytest.raises(PermissionDeniedError):
            tb.update(
                session,
                user=sb,
                template_id=general.id,
                data=tb.TemplateData(name="X", body="y"),
            )
        with pytest.raises(PermissionDeniedError):
            tb.create(session, user=leitung, data=tb.TemplateData(name="Alle", body="y"))
        with pytest.raises(tb.TemplateInvalidError) as info:
            tb.create(
                session,
                user=admin,
                data=tb.TemplateData(name="Kaputt", body="{{aktenzeichen"),
            )
        assert "nicht geschlossen" in info.value.message
        tb.delete(session, user=leitung, template_id=ordnung.id)
        assert [t.name for t in tb.list_templates(session, user=leitung)] == ["Allgemein"]


def test_demo_seed_is_idempotent_and_valid(db):
    with db.session() as session:
        world = build_tenant(session, "alpha")
        tenant = session.get(Tenant, world.tenant.id)
        first = tb.seed_demo(session, tenant)
        assert first == len(tb.DEMO_TEMPLATES)
        assert tb.seed_demo(session, tenant) == 0
    for row in tb.DEMO_TEMPLATES:
        assert tb.syntax_errors(row["body"]) == [], row["name"]
        assert tb.syntax_errors(row["subject"]) == [], row["name"]
