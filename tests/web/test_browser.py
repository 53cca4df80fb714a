"""A real Chromium (Debian package, driven by Playwright) logs in and opens the start page."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from rathaus.core.config import load_settings
from rathaus.web.app import create_app
from tests.factories import PASSWORD, build_tenant, free_port

CHROMIUM = os.environ.get("RATHAUS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def live_server(sqlite_db, tmp_path):
    with sqlite_db.session() as session:
        build_tenant(session, "alpha", "Stadt Alpha")
    settings = load_settings(
        mode="demo", data_dir=tmp_path, default_tenant="alpha", queue={"backend": "memory"}
    )
    app = create_app(settings, database=sqlite_db)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        context = browser.new_context(locale="de-DE")
        pg = context.new_page()
        errors: list[str] = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.console_errors = errors  # type: ignore[attr-defined]
        yield pg
        context.close()
        browser.close()


@pytest.mark.browser
def test_login_and_start_page_in_chromium(live_server, page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(live_server + "/")
    assert page.url.startswith(live_server + "/login")
    page.screenshot(path=str(ARTIFACTS / "login.png"), full_page=True)
    # keyboard only: the field has focus, Tab moves to the password, Enter submits
    page.get_by_label("Benutzername").fill("sb")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(live_server + "/")
    assert page.get_by_role("heading", level=1).inner_text() == "Guten Tag, Sb"
    assert page.get_by_role("navigation", name="Hauptnavigation").is_visible()
    assert page.evaluate("typeof window.htmx") == "object", "vendored htmx did not load"
    page.screenshot(path=str(ARTIFACTS / "start.png"), full_page=True)
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
