"""A real Chromium: a department head opens the Lagebild — Kennzahlen, a forecast of the
department's incoming volume and the process map of the own case log, keyboard only where it
matters; screenshots kept as artefacts."""

from __future__ import annotations

import datetime as dt

import pytest

from rathaus.core.models import Case, CaseEvent, CaseStatus
from tests.a11y import assert_accessible
from tests.browser.keyboard import login, press_on, tab_to
from tests.factories import PASSWORD, build_tenant
from tests.web.test_browser import ARTIFACTS, _serve, page  # noqa: F401 - shared fixture


@pytest.fixture
def insights_server(sqlite_db, tmp_path):
    """Stadt Alpha with 20 weeks of closed Ordnungsamt cases (more on Mondays); every fourth
    case is sent back once from „In Bearbeitung“ to „Zugewiesen“."""
    with sqlite_db.session() as session:
        world = build_tenant(session, "alpha", "Stadt Alpha")
        unit = world.units["OA"].id
        today = dt.datetime.now(dt.UTC).replace(hour=8, minute=0, second=0, microsecond=0)
        n = 0
        for back in range(140, 0, -1):
            day = today - dt.timedelta(days=back)
            if day.weekday() >= 5:
                continue
            for k in range(4 if day.weekday() == 0 else 2):
                n += 1
                received = day + dt.timedelta(hours=k)
                case = Case(
                    tenant_id=world.tenant.id,
                    reference=f"ALP-2026-{100 + n:06d}",
                    subject=f"Meldung {n}",
                    status=CaseStatus.ERLEDIGT,
                    org_unit_id=unit,
                    channel="email",
                    received_at=received,
                    closed_at=received + dt.timedelta(days=3),
                    due_at=received + dt.timedelta(days=5),
                )
                session.add(case)
                session.flush()
                steps = [
                    ("Eingang erfasst", "neu"),
                    ("Zugewiesen", "zugewiesen"),
                    ("In Bearbeitung", "in_bearbeitung"),
                ]
                if n % 4 == 0:  # every fourth case goes back once: rarer transitions on the map
                    steps += [("Zugewiesen", "zugewiesen"), ("In Bearbeitung", "in_bearbeitung")]
                for offset, (label, to) in enumerate([*steps, ("Erledigt", "erledigt")]):
                    session.add(
                        CaseEvent(
                            tenant_id=world.tenant.id,
                            case_id=case.id,
                            kind="created" if offset == 0 else "status",
                            activity=label,
                            to_status=to,
                            created_at=received + dt.timedelta(days=offset),
                        )
                    )
    yield from _serve(sqlite_db, tmp_path)


@pytest.mark.browser
def test_department_head_sees_figures_forecast_and_process_map(insights_server, page):  # noqa: F811
    server = insights_server
    page.goto(server + "/login")
    page.get_by_label("Benutzername").fill("leitung")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(server + "/")

    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Lagebild"
    ).click()
    page.wait_for_url(server + "/lagebild")
    assert page.get_by_role("heading", name="Kennzahlen", exact=True).is_visible()
    assert page.get_by_role("img", name="Eingang je Zeitabschnitt").is_visible()
    processing = page.locator(
        "section", has=page.get_by_role("heading", name="Bearbeitungszeiten", exact=False)
    )
    assert "Ordnungsamt" in processing.inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lagebild-kennzahlen.png"), full_page=True)

    subnav = page.get_by_role("navigation", name="Lagebild")
    subnav.get_by_role("link", name="Prognose").click()
    page.wait_for_url("**/lagebild/prognose**")
    page.get_by_role("button", name="Prognose anzeigen").press("Enter")
    page.wait_for_load_state()
    section = page.locator("section[aria-labelledby=prognose-h]")
    assert section.locator("svg[role=img]").first.is_visible()
    assert "MASE" in section.inner_text()  # the back-test error next to the forecast
    page.screenshot(path=str(ARTIFACTS / "lagebild-prognose.png"), full_page=True)

    subnav.get_by_role("link", name="Prozesse").click()
    page.wait_for_url("**/lagebild/prozesse")
    page.locator("main table a").first.click()
    page.wait_for_url("**/lagebild/prozesse/eigen**")
    node = page.locator(".pm-node", has_text="Zugewiesen").first
    node.focus()
    page.keyboard.press("Enter")
    details = page.get_by_label("Einzelheiten zur gewählten Aktivität")
    assert "Zugewiesen" in details.inner_text()
    page.screenshot(path=str(ARTIFACTS / "lagebild-prozesse.png"), full_page=True)
    assert page.console_errors == []  # type: ignore[attr-defined]


def _stroke_width(page, name: str) -> float:  # type: ignore[no-untyped-def]  # noqa: F811
    """The drawn border of the process-map box of activity ``name`` (its focus indicator)."""
    box = page.locator(".pm-node", has_text=name).first.locator("rect")
    return float(box.evaluate("r => parseFloat(getComputedStyle(r).strokeWidth)"))


@pytest.mark.browser
def test_forecast_and_process_map_by_keyboard_only(insights_server, page):  # noqa: F811
    """Forecast and process map without a mouse: Tab, Shift+Tab, arrow keys, Enter, Space,
    Escape; every stop on the way shows its focus (tests/browser/keyboard.py)."""
    server = insights_server
    login(page, server, "leitung", PASSWORD)
    press_on(page, "Lagebild", exact=True)
    page.wait_for_url(server + "/lagebild")
    press_on(page, "Prognose", exact=True)
    page.wait_for_url("**/lagebild/prognose")
    tab_to(page, "#horizont")
    horizon = int(page.locator("#horizont").input_value())
    page.keyboard.press("ArrowUp")  # one day more
    assert int(page.locator("#horizont").input_value()) == horizon + 1
    press_on(page, "Prognose anzeigen")
    section = page.locator("section[aria-labelledby=prognose-h]")
    section.wait_for()
    assert f"{horizon + 1} Tage" in section.get_by_role("heading", level=2).inner_text()
    assert section.get_by_role("img").first.is_visible()
    assert "MASE" in section.inner_text()

    press_on(page, "Prozesse", exact=True)
    page.wait_for_url("**/lagebild/prozesse")
    press_on(page, "Eigenes Vorgangsprotokoll")
    page.wait_for_url("**/lagebild/prozesse/eigen**")
    page.wait_for_load_state("load")  # process-map.js is deferred
    details = page.get_by_label("Einzelheiten zur gewählten Aktivität")

    before = _stroke_width(page, "Zugewiesen")
    tab_to(page, "Zugewiesen, ")
    assert _stroke_width(page, "Zugewiesen") > before, "focused box shows no focus indicator"
    page.keyboard.press("Enter")
    assert "Zugewiesen" in details.get_by_role("heading", level=3).inner_text()
    assert "Ausgehende Übergänge (1)" in details.inner_text()  # only to „In Bearbeitung“
    node = page.get_by_role("button", name="Zugewiesen, ", exact=False)
    assert node.get_attribute("aria-pressed") == "true"

    tab_to(page, "In Bearbeitung, ")
    page.keyboard.press("Space")
    assert "In Bearbeitung" in details.get_by_role("heading", level=3).inner_text()
    assert node.get_attribute("aria-pressed") == "false"
    page.keyboard.press("Escape")
    assert "Keine Aktivität gewählt" in details.inner_text()

    tab_to(page, "#pm-slider", back=True)  # the slider hides rare transitions
    shown = page.locator("#pm-slider-value").inner_text()
    assert page.locator(".pm-edge.pm-hidden").count() == 0
    page.keyboard.press("ArrowRight")  # only the most frequent transitions stay
    assert page.locator("#pm-slider-value").inner_text() != shown
    hidden = page.locator(".pm-edge.pm-hidden")
    assert hidden.count() >= 1 and page.locator(".pm-edge:not(.pm-hidden)").count() >= 1
    assert_accessible(page, "tastatur-lagebild-prozesse")
    assert page.console_errors == []  # type: ignore[attr-defined]
