"""Fixtures of the hardening tests: the web tests' real app, database and tenants."""

from __future__ import annotations

from tests.web.conftest import app, client, worlds  # noqa: F401 - fixtures used by the tests
