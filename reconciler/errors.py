"""The errors a run can end with. Each carries a message fit to show a user."""

from __future__ import annotations


class ReconcileError(Exception):
    """Base of every error the reconciler reports to its user."""


class ConfigError(ReconcileError):
    """The configuration is unusable; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class SourceError(ReconcileError):
    """Reading Okta failed; the run stops before planning."""


class TargetError(ReconcileError):
    """A SCIM request failed (after retries, where it is retryable)."""

    def __init__(self, message: str, status: int | None = None, scim_type: str | None = None) -> None:
        self.status = status
        self.scim_type = scim_type
        super().__init__(message)


class TargetConflict(TargetError):
    """The platform answered 409: the resource is already there."""


class TargetNotFound(TargetError):
    """The platform answered 404 for a resource we expected."""
