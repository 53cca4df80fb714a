"""Accessibility checks for the browser tests: axe-core (vendored from npm by ``make setup``) run
in the real page against the WCAG 2.1 A and AA rules, plus a screenshot kept as a test artefact.

Use ``assert_accessible(page, "inbox-queue")`` after the page (or an HTMX swap) has settled.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / "src" / "rathaus" / "web" / "static" / "vendor" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def wait_for_js(target, expression: str, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until the JavaScript ``expression`` is truthy in ``target`` (a page or a frame).

    Playwright's ``wait_for_function`` evaluates its predicate with ``eval`` inside the page,
    which our CSP (``script-src 'self'``, no ``unsafe-eval``) refuses now and then (a race in
    Chromium, microsoft/playwright#36982). ``evaluate`` goes through the DevTools protocol and
    is not subject to the CSP, so this polls with it."""
    deadline = time.monotonic() + timeout_s
    while not target.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"Nach {timeout_s:.0f} s noch nicht erfüllt: {expression}")
        time.sleep(0.05)


def axe_violations(page) -> list[dict]:  # type: ignore[no-untyped-def]
    """Run axe-core in ``page`` and return its WCAG 2.1 A/AA violations (empty when clean)."""
    if not AXE.is_file():
        raise AssertionError(f"axe-core fehlt ({AXE}); bitte `make setup` ausführen.")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, so the page's CSP (script-src 'self') stays on.
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags},
                                               resultTypes: ['violations']});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => ({target: n.target, html: n.html.slice(0, 200),
                                                      summary: n.failureSummary}))
            }));
        }""",
        WCAG_TAGS,
    )
    return list(result)


def describe(violations: list[dict]) -> str:
    return json.dumps(violations, ensure_ascii=False, indent=1)


def assert_accessible(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Screenshot the page as ``test-artifacts/screenshots/<name>.png``, then require that axe-core
    finds no WCAG 2.1 A/AA violation in it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    violations = axe_violations(page)
    assert not violations, f"axe-core: {len(violations)} Verstöße auf {name}:\n" + describe(
        violations
    )


class PageAudit:
    """Checks page after page of one journey and reports every page's violations together at
    the end, so that one faulty page does not hide the next: ``audit.visit(url, name)`` or, after
    a form or an HTMX swap, ``audit.check(name)``; then ``audit.assert_clean()``."""

    def __init__(self, page) -> None:  # type: ignore[no-untyped-def]
        self.page = page
        self.failures: list[str] = []
        self.checked: list[str] = []
        self.refusals = 0

    def check(self, name: str) -> None:
        self.checked.append(name)
        try:
            assert_accessible(self.page, name)
        except AssertionError as exc:
            self.failures.append(str(exc))

    def visit(self, url: str, name: str, status: int = 200) -> None:
        """Open ``url`` (answered with ``status``: a 4xx page shows a refusal) and check it."""
        response = self.page.goto(url)
        assert response is not None and response.status == status, (
            f"{url}: HTTP {response and response.status}, erwartet {status}"
        )
        if status >= 400:
            self.refused()
        self.check(name)

    def refused(self) -> None:
        """Bad input sent on purpose: the browser may log the refusal (HTTP 4xx) as a console
        error; ``assert_clean`` accepts one such message per refusal, and nothing else."""
        self.refusals += 1

    def unexpected_console_errors(self) -> list[str]:
        errors = list(getattr(self.page, "console_errors", []))
        refused = [e for e in errors if "the server responded with a status of 4" in e]
        others = [e for e in errors if e not in refused]
        return others + (refused if len(refused) > self.refusals else [])

    def assert_clean(self) -> None:
        """No axe violation on any page checked, and no console error (e.g. a CSP violation)."""
        assert not self.failures, "\n\n".join(self.failures)
        assert not self.unexpected_console_errors(), self.unexpected_console_errors()
