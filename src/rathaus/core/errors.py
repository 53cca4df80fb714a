"""User-displayable errors: one clear German sentence that says what to do next."""

from __future__ import annotations


class RathausError(Exception):
    """Base class of every error a user may see; ``message`` is German and complete."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(RathausError):
    """A setting is missing, malformed or unsafe."""

    exit_code = 2


class DatabaseUnavailableError(RathausError):
    """The database cannot be reached or is not migrated."""


class NotFoundError(RathausError):
    """A requested object does not exist in the caller's tenant."""


class PermissionDeniedError(RathausError):
    """The caller's roles do not allow the action."""


class InvalidTransitionError(RathausError):
    """A case status change that the status machine does not allow."""
