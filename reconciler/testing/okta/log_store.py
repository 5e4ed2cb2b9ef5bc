"""The System Log's events in the order Okta persisted them, and the two ways ``GET /api/v1/logs`` reads them.

An event is *published* when the change happens and *persisted* (visible) ``delay`` later; with a delay,
events are persisted out of ``published`` order, as at Okta. A **polling** request (no ``until``) reads by
persistence time after its cursor, so a late event still comes after it; a **bounded** request
(``since`` + ``until``) reads by ``published`` and so misses an event persisted after it read that span.
Cursors are opaque to clients: base64url of the position (``p``: persistence time and sequence; ``b``:
published time and sequence). Events older than the retention (90 days at Okta) are not served.
"""

from __future__ import annotations

import base64
import bisect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.testing.okta.errors import OktaHTTPError, okta_error

RETENTION_S = 90 * 86400
"""Okta keeps System Log events 90 days."""
Position = tuple[float, int]
"""Where a cursor points: (persistence or published time, sequence); the next page starts after it."""
EventTypeMatch = Callable[[str | None], bool]


@dataclass(order=True)
class StoredEvent:
    visible_at: float
    sequence: int
    published: float = field(compare=False)
    event_type: str | None = field(compare=False)
    body: bytes = field(compare=False)

    def matches(self, match: EventTypeMatch | None, keywords: list[str]) -> bool:
        if match is not None and not match(self.event_type):
            return False
        text = self.body.decode(errors="replace").lower() if keywords else ""
        return all(keyword in text for keyword in keywords)


@dataclass
class Query:
    """What one request selects: how many events at most, of which types, with which keywords (``q``)."""

    limit: int
    match: EventTypeMatch | None = None
    keywords: list[str] = field(default_factory=list)


class EventStore:
    """Every event, kept sorted by persistence time (guarded by the org's lock)."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.delay_s = 0.0
        self.retention_s: float = RETENTION_S
        self._sequence = 0

    def add(self, event: dict[str, Any] | bytes, published: float, delay_s: float | None = None) -> StoredEvent:
        """Store one event, persisted ``delay_s`` (default: the store's delay) after ``published``."""
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        event_type = _event_type(event)
        self._sequence += 1
        delay = self.delay_s if delay_s is None else delay_s
        stored = StoredEvent(published + delay, self._sequence, published, event_type, body)
        bisect.insort(self.events, stored)
        return stored

    def polling(self, start: Position, query: Query, now: float) -> tuple[list[bytes], Position]:
        """Events persisted after ``start`` (and by ``now``), and the cursor of the next request."""
        page: list[bytes] = []
        position = start
        index = bisect.bisect_right(self.events, start, key=lambda event: (event.visible_at, event.sequence))
        for event in self.events[index:]:
            if len(page) >= query.limit or event.visible_at > now:
                break
            if self._kept(event, now) and event.matches(query.match, query.keywords):
                page.append(event.body)
                position = (event.visible_at, event.sequence)
        return page, position

    def bounded(
        self, since: float, until: float, after: Position | None, query: Query, now: float, *, descending: bool
    ) -> tuple[list[bytes], Position | None]:
        """Events published in [since, until) and persisted by ``now``, by ``published``; the next cursor while
        more remain."""
        chosen = sorted(
            (
                event
                for event in self.events
                if event.visible_at <= now and since <= event.published < until and self._kept(event, now)
                if event.matches(query.match, query.keywords)
            ),
            key=lambda event: (event.published, event.sequence),
            reverse=descending,
        )
        if after is not None:
            chosen = [event for event in chosen if _beyond((event.published, event.sequence), after, descending)]
        page = chosen[: query.limit]
        more = len(chosen) > query.limit and page
        return [event.body for event in page], (page[-1].published, page[-1].sequence) if more else None

    def _kept(self, event: StoredEvent, now: float) -> bool:
        return event.published >= now - self.retention_s


def _beyond(position: Position, after: Position, descending: bool) -> bool:
    return position < after if descending else position > after


def encode_cursor(mode: str, position: Position) -> str:
    """An opaque ``after`` value (``mode``: ``p`` polling, ``b`` bounded)."""
    raw = json.dumps([mode, position[0], position[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(mode: str, cursor: str) -> Position:
    """The position an ``after`` value names; 400 E0000001 when it is not one of this kind's cursors."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, moment, sequence = json.loads(raw)
        if kind == mode and isinstance(moment, int | float) and isinstance(sequence, int):
            return float(moment), sequence
    except (ValueError, TypeError):
        pass
    cause = 'after: not a cursor this request\'s next link gave; follow the rel="next" link as it is'
    raise OktaHTTPError(400, okta_error("E0000001", "Api validation failed: after", [cause]))


def _event_type(event: dict[str, Any] | bytes) -> str | None:
    """The ``eventType`` an event's filter sees (None for one that has none, however malformed)."""
    if isinstance(event, bytes):
        try:
            event = json.loads(event)
        except ValueError:
            return None
    value = event.get("eventType") if isinstance(event, dict) else None
    return value if isinstance(value, str) else None
