"""Where the System Log follower stands in Okta's log: its cursor, as the store keeps it between polls.

Plain data, so that the run and the service can pass it around without the store's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

RECENT_UUIDS_KEPT: Final = 5_000
"""The newest event uuids a cursor keeps (the store drops older ones): events read again within the overlap
window, or in a page fetched twice, are recognised by their uuid. 5,000 is five full pages of the log."""


@dataclass(frozen=True, slots=True)
class LogCursor:
    """One target's place in its Okta org's System Log."""

    next_url: str | None
    """The whole ``rel="next"`` link last checkpointed (Okta's opaque cursor in its ``after``); None: restart from
    ``high_water`` minus the overlap."""
    high_water: datetime | None
    """The highest ``published`` of the events read so far (timezone-aware); None before any."""
    recent_uuids: tuple[str, ...]
    """The uuids of the latest events read, oldest first (at most :data:`RECENT_UUIDS_KEPT` are kept)."""
    updated_at: datetime
    """When this cursor was saved."""
    last_ok_at: datetime | None
    """When a poll last succeeded; None if none has."""
