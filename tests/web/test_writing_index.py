"""The Schreibassistenz start page: reachable for writing roles only, links every function."""

from __future__ import annotations

import pytest

from rathaus.web.writing_views import FUNCTIONS
from tests.web.conftest import login


def test_start_page_lists_every_function_for_writing_roles(client, worlds) -> None:
    login(client, "sb")
    page = client.get("/texte")
    assert page.status_code == 200
    for href, name, _ in FUNCTIONS:
        assert f'href="{href}"' in page.text and name in page.text
    assert 'href="/texte"' in client.get("/").text


@pytest.mark.parametrize("username", ["dsb"])
def test_start_page_is_refused_without_the_writing_permission(client, worlds, username) -> None:
    login(client, username)
    assert client.get("/texte").status_code == 403
    assert 'href="/texte"' not in client.get("/").text


def test_case_page_offers_summary_and_letter(client, worlds) -> None:
    case = worlds["a"].cases["BA"]
    login(client, "sb")
    page = client.get(f"/vorgaenge/{case.id}").text
    assert f'href="/texte/zusammenfassung/vorgang/{case.id}"' in page
    assert f'href="/texte/brief?vorgang={case.reference}"' in page
    assert client.get(f"/texte/zusammenfassung/vorgang/{case.id}").status_code == 200
    assert client.get(f"/texte/brief?vorgang={case.reference}").status_code == 200
