"""A real Chromium (Debian package, driven by Playwright): login, start page, and a case worker's
journey through the Posteingang (upload, triaged case, correction in one action, reply)."""

from __future__ import annotations

import os
import threading
import time

import pytest
import uvicorn

from rathaus.core.config import load_settings
from rathaus.core.models import Service
from rathaus.web.app import create_app
from tests.a11y import ARTIFACTS, assert_accessible
from tests.factories import PASSWORD, build_tenant, free_port

CHROMIUM = os.environ.get("RATHAUS_CHROMIUM", "/usr/bin/chromium")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _serve(sqlite_db, tmp_path, **overrides):  # type: ignore[no-untyped-def]
    """Run the app on a free port in a thread (jobs: memory queue, the same SQLite file);
    ``overrides`` are further settings (for example a language model that is down)."""
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        database_url=sqlite_db.url,
        default_tenant="alpha",
        queue={"backend": "memory"},
        **overrides,
    )
    yield from serve_in_thread(create_app(settings, database=sqlite_db))


def serve_in_thread(app, **tls: str):  # type: ignore[no-untyped-def]
    """Serve ``app`` with uvicorn on a free port in a thread; yields its base URL (https when
    ``tls`` names ``ssl_certfile`` and ``ssl_keyfile``) and stops the server afterwards."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **tls)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def live_server(sqlite_db, tmp_path):
    with sqlite_db.session() as session:
        build_tenant(session, "alpha", "Stadt Alpha")
    yield from _serve(sqlite_db, tmp_path)


@pytest.fixture
def inbox_server(sqlite_db, tmp_path):
    """Stadt Alpha with unit descriptions and a service per Amt, so suggestions have substance."""
    with sqlite_db.session() as session:
        world = build_tenant(session, "alpha", "Stadt Alpha")
        world.units["BA"].description = "Personalausweis, Reisepass, Meldebescheinigung"
        world.units["OA"].description = "Lärm, Ruhestörung, Falschparker"
        world.units["OA-GW"].description = "Gewerbeanmeldung, Gaststättenerlaubnis"
        session.add(
            Service(
                tenant_id=world.tenant.id,
                code="laerm",
                name="Lärmbelästigung melden",
                keywords="Lärm, Ruhestörung",
                org_unit_id=world.units["OA"].id,
                reply_template="vielen Dank für Ihre Meldung. Wir prüfen den Sachverhalt.",
            )
        )
    yield from _serve(sqlite_db, tmp_path)


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        context = browser.new_context(locale="de-DE")
        pg = context.new_page()
        errors: list[str] = []
        # A page the server answers with an error status (a 404 page, a form sent back with a
        # 422) is shown on purpose; Chromium logs it as a failed load, which is no error here.
        error_pages: set[str] = set()

        def response(r) -> None:  # type: ignore[no-untyped-def]
            if r.request.resource_type == "document" and r.status >= 400:
                error_pages.add(r.url.partition("#")[0])

        def console(m) -> None:  # type: ignore[no-untyped-def]
            shown = m.text.startswith("Failed to load resource: the server responded with a status")
            # A form's action may end in #fragment (to scroll to the answer): not part of it.
            url = (m.location.get("url") or "").partition("#")[0]
            if m.type == "error" and not (shown and url in error_pages):
                errors.append(m.text)

        pg.on("response", response)
        pg.on("console", console)
        pg.console_errors = errors  # type: ignore[attr-defined]
        yield pg
        context.close()
        browser.close()


@pytest.mark.browser
def test_login_and_start_page_in_chromium(live_server, page):
    page.goto(live_server + "/")
    assert page.url.startswith(live_server + "/login")
    assert_accessible(page, "login")
    # keyboard only: the field has focus, Tab moves to the password, Enter submits
    page.get_by_label("Benutzername").fill("sb")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(live_server + "/")
    assert page.get_by_role("heading", level=1).inner_text() == "Guten Tag, Sb"
    assert page.get_by_role("navigation", name="Hauptnavigation").is_visible()
    assert page.evaluate("typeof window.htmx") == "object", "vendored htmx did not load"
    assert_accessible(page, "start")
    page.get_by_role("link", name="Vorgänge").click()
    page.wait_for_url(live_server + "/vorgaenge")
    assert page.get_by_role("link", name="ALP-2026-000001").is_visible()
    page.get_by_role("button", name="Abmelden").click()
    page.wait_for_url(live_server + "/login")
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.mark.browser
def test_wrong_password_shows_german_error(live_server, page):
    page.goto(live_server + "/login")
    page.get_by_label("Benutzername").fill("sb")
    page.get_by_label("Passwort").fill("falsch")
    page.get_by_role("button", name="Anmelden").click()
    assert "Benutzername oder Passwort ist falsch" in page.get_by_role("alert").inner_text()


@pytest.mark.browser
def test_case_worker_uploads_corrects_and_approves_in_chromium(inbox_server, page, tmp_path):
    letter = tmp_path / "beschwerde.txt"
    letter.write_text(
        "Sehr geehrte Damen und Herren,\nseit Wochen ist nachts Lärm aus der Gaststätte in der "
        "Hauptstraße 5. Ich bitte um Abhilfe.\nMit freundlichen Grüßen\nErika Mustermann",
        encoding="utf-8",
    )
    page.goto(inbox_server + "/login")
    page.get_by_label("Benutzername").fill("leitung")  # Fachbereichsleitung: distributes items
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(inbox_server + "/")
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Posteingang"
    ).click()
    page.wait_for_url(inbox_server + "/posteingang")
    page.get_by_role("link", name="Eingänge hochladen").click()
    page.wait_for_url(inbox_server + "/posteingang/hochladen")
    page.wait_for_load_state("load")  # upload.js is attached (it is deferred)
    assert_accessible(page, "vorgang-hochladen")

    # drag and drop (upload.js) fills the file input; a synthetic drop shows it works
    page.evaluate(
        """() => {
          const data = new DataTransfer();
          data.items.add(new File(["Hallo"], "gezogen.txt", {type: "text/plain"}));
          document.querySelector("[data-dropzone]").dispatchEvent(
            new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }"""
    )
    assert page.get_by_label("Dateien auswählen").evaluate("input => input.files.length") == 1
    assert "gezogen.txt" in page.locator("[data-file-list]").inner_text()
    assert_accessible(page, "vorgang-hochladen-auswahl")
    # the plain file input (drag and drop only fills the same input; this replaces the drop)
    page.get_by_label("Dateien auswählen").set_input_files(str(letter))
    assert page.locator("[data-file-list]").inner_text().startswith("beschwerde.txt")
    page.get_by_role("button", name="Hochladen und vorprüfen").click()
    page.wait_for_url(inbox_server + "/posteingang/hochladen")
    assert page.evaluate("document.activeElement.id") == "h-ergebnis"  # focus on the result
    results = page.locator(".upload-results")
    assert "angenommen" in results.inner_text()
    assert_accessible(page, "vorgang-hochgeladen")
    results.get_by_role("link").first.click()  # the new Aktenzeichen: triaged already

    page.wait_for_url("**/vorgaenge/*")
    routing = page.locator("#zustaendigkeit")
    assert routing.get_by_role("table").is_visible()
    suggested = page.get_by_label("Amt").input_value()
    accept = routing.get_by_role("button", name="Übernehmen:")
    assert accept.is_visible()
    assert_accessible(page, "vorgang-vorgeprueft")
    # correct in one action: another Amt in the leader's own area, no service
    target = (
        "Gewerbe"
        if suggested
        == page.get_by_label("Amt").locator("option", has_text="Ordnungsamt").get_attribute("value")
        else "Ordnungsamt"
    )
    page.get_by_label("Amt").select_option(label=target)
    page.get_by_label("Leistung (optional)").select_option(value="")
    routing.get_by_role("button", name="Zuordnen", exact=True).click()
    page.wait_for_url("**/vorgaenge/*?meldung=entschieden*")
    assert "Die Zuordnung wurde gespeichert." in page.get_by_role("status").first.inner_text()
    decision = page.locator(".decision").inner_text()
    assert "korrigiert" in decision and target in decision
    assert_accessible(page, "vorgang-zugeordnet")

    draft = page.locator("#antwort textarea")
    draft.fill(draft.input_value() + "\n\nPS: Wir melden uns bis Freitag (geprüft).")
    page.get_by_role("button", name="Freigeben").click()
    page.wait_for_url("**/vorgaenge/*?meldung=freigegeben*")
    reply = page.locator("#antwort").inner_text()
    assert "Freigegeben von Leitung" in reply and "(geprüft)" in reply
    assert page.locator("#antwort textarea").count() == 0
    assert_accessible(page, "vorgang-entschieden")
    assert (ARTIFACTS / "vorgang-entschieden.png").stat().st_size > 10_000
    assert page.console_errors == []  # type: ignore[attr-defined]  # e.g. no CSP violations
