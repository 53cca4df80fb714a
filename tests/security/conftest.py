"""The web fixtures (real app, real database, two tenants) shared with the security tests."""

from __future__ import annotations

from tests.web.conftest import app, client, worlds  # noqa: F401 - fixtures used by these tests
