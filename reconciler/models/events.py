"""Okta System Log events, as the follower reads them: only what deciding who is affected needs.

Okta's ``LogEvent`` carries much more (actor, client, debugContext…); the follower reads the event's
identity and time, its type, its targets and its outcome, and reconciles against Okta's current state,
never against an event's payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class LogTarget:
    """One entity an event acted on: a ``User`` (00u…), an ``AppInstance`` (0oa…), a ``UserGroup`` (00g…),
    an ``AppUser``…"""

    id: str
    type: str
    alternate_id: str | None = None
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class LogEvent:
    uuid: str
    published: datetime
    """When Okta says the change happened (timezone-aware)."""
    event_type: str
    """``application.user_membership.add``, ``user.lifecycle.deactivate``…"""
    targets: tuple[LogTarget, ...] = ()
    outcome: str | None = None
    """``SUCCESS``, ``FAILURE``, ``SKIPPED``…; None when the event says none."""
    transaction_type: str | None = None
    """``WEB`` (a request) or ``JOB`` (a background job, e.g. a group assignment's fan-out)."""

    def target_ids(self, target_type: str) -> list[str]:
        """The ids of the targets of one type, in the event's order."""
        return [target.id for target in self.targets if target.type == target_type]
