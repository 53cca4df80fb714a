"""The web fixtures (the real app on a real database) for the regression tests of the HTTP paths."""

from tests.web.conftest import app, client, worlds  # noqa: F401 - fixtures, used by name
