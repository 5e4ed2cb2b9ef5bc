"""Okta's System Log, followed the way Okta documents for polling (``GET /api/v1/logs``).

The first request says ``since``; every later one is the ``rel="next"`` link of the page before, kept
whole. In polling mode (no ``until``) Okta orders events by the time it persisted them, not by
``published``, so a late event still comes after the cursor instead of being skipped; a ``next`` link
is always present, even on an empty page, and the reader is caught up when a page is empty or its
next link carries the cursor it was asked with. ``filter`` selects event types by prefix: never the
app's id, which would drop the user and group events whose targets do not name the app.

An event that cannot be read (no uuid, no time, no type, targets of the wrong shape) is skipped and
counted, never fatal. A 403 (the credential lacks ``okta.logs.read``) raises :class:`LogAccessDenied`.
The log has a rate-limit bucket of its own at Okta, so its requests are paced in a budget of their
own (:func:`reconciler.okta.answers.rate_limit_family`): following it never spends the listings'.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from reconciler.errors import SourceError
from reconciler.models.events import LogEvent, LogTarget
from reconciler.okta.answers import LOGS_FAMILY, links_with_rel
from reconciler.okta.connection import Forbidden, OktaConnection

LOG_SCOPE = "okta.logs.read"
MAX_LIMIT = 1000
"""Okta's ceiling for ``limit`` on ``/api/v1/logs``."""
FOLLOWED_EVENT_PREFIXES = (
    "application.user_membership.",
    "application.provision.",
    "application.lifecycle.",
    "group.application_assignment.",
    "group.user_membership.",
    "user.lifecycle.",
    "user.account.update_profile",
    "user.account.update_primary_email",
)
"""The event types that can change what the app should hold (see :mod:`reconciler.plan.events`)."""


class LogAccessDenied(SourceError):
    """The credential may not read the System Log: the follower stays off; full audits go on."""


@dataclass(frozen=True, slots=True)
class LogPage:
    """One answer of the System Log."""

    events: tuple[LogEvent, ...]
    malformed: tuple[str, ...]
    """What could not be read, one line each (the event's uuid when it has one): skipped."""
    next_url: str
    """Where to poll next (Okta's ``rel="next"`` link, whole)."""
    caught_up: bool
    """No more events now: the page was empty, or its next link repeats the cursor it was asked with."""


def event_filter(prefixes: Iterable[str] = FOLLOWED_EVENT_PREFIXES) -> str:
    """Okta's ``filter`` for these event-type prefixes: ``eventType sw "a" or eventType sw "b"``."""
    return " or ".join(f"eventType sw {json.dumps(prefix)}" for prefix in prefixes)


def okta_time(moment: datetime) -> str:
    """``2026-12-05T23:00:00.000Z``: the form Okta's ``since`` takes (and its ``published`` has)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SystemLogReader:
    """Reads pages of the System Log over an Okta source's connection (its credential, pacing, retries)."""

    def __init__(self, connection: OktaConnection, *, limit: int = MAX_LIMIT, prefixes: Sequence[str] = ()) -> None:
        if not 1 <= limit <= MAX_LIMIT:
            raise SourceError(f"incremental.batch_limit must be between 1 and {MAX_LIMIT}, not {limit}")
        self.connection = connection
        self.limit = limit
        self.filter = event_filter(prefixes or FOLLOWED_EVENT_PREFIXES)
        self.requests = 0

    def start_url(self, since: datetime) -> str:
        """The first polling request: events Okta persisted from ``since`` on."""
        query = urlencode({"since": okta_time(since), "limit": self.limit, "filter": self.filter})
        return f"{self.connection.org_url}{LOGS_FAMILY}?{query}"

    async def page(self, url: str) -> LogPage:
        """One page at ``url`` (a start URL or a next link); SourceError when it cannot be read at all."""
        self.check_url(url)
        self.requests += 1
        try:
            body, headers = await self.connection.fetch(url, "the System Log")
        except Forbidden as denied:
            raise LogAccessDenied(f"{denied}; the follower stays off and full audits go on") from None
        self.connection.expect_listing(url, body)
        events, malformed = decode_events(body)
        next_url = self._next_link(url, headers)
        caught_up = not events and not malformed or _cursor(next_url) == _cursor(url)
        return LogPage(tuple(events), tuple(malformed), next_url, caught_up)

    def check_url(self, url: str) -> None:
        """A URL to poll must be this org's System Log: a stored or answered link pointing elsewhere is refused
        (the credential would be sent to it)."""
        org, asked = urlsplit(self.connection.org_url), urlsplit(url)
        if (asked.scheme, asked.netloc, asked.path) != (org.scheme, org.netloc, LOGS_FAMILY):
            raise SourceError(
                f"System Log link {url!r} is not {self.connection.org_url}{LOGS_FAMILY}: refused, as the credential "
                "would go with it; the stored cursor is dropped and polling restarts from the last event seen"
            )

    def _next_link(self, url: str, headers: Mapping[str, Any]) -> str:
        links = list(links_with_rel(headers, "next"))
        if not links:
            raise SourceError(
                f"Okta's System Log answered {url} without a next link, which a polling request always has: "
                "is something between here and Okta dropping the Link header?"
            )
        self.check_url(links[-1])
        return links[-1]


def _cursor(url: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get("after")
    return values[-1] if values else None


def decode_events(body: bytes | str) -> tuple[list[LogEvent], list[str]]:
    """The events of one page, and a line for each item that is not a usable event."""
    try:
        items = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise SourceError(f"Okta's System Log answered something that is not JSON: {error}") from None
    if not isinstance(items, list):
        raise SourceError("Okta's System Log answered a JSON value that is not a list of events")
    events, malformed = [], []
    for position, item in enumerate(items, start=1):
        try:
            events.append(decode_event(item))
        except ValueError as error:
            uuid = item.get("uuid") if isinstance(item, dict) else None
            malformed.append(f"event {uuid or f'#{position}'}: {error}")
    return events, malformed


def decode_event(item: object) -> LogEvent:
    """One event; ValueError naming the field when it lacks what the follower needs."""
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    uuid, event_type = _text(item, "uuid"), _text(item, "eventType")
    published = _time(_text(item, "published"))
    targets = item.get("target") or []
    if not isinstance(targets, list):
        raise ValueError("target is not a list")
    outcome = item.get("outcome") if isinstance(item.get("outcome"), dict) else {}
    transaction = item.get("transaction") if isinstance(item.get("transaction"), dict) else {}
    return LogEvent(
        uuid,
        published,
        event_type,
        tuple(_target(target) for target in targets),
        _optional_text(outcome.get("result")),
        _optional_text(transaction.get("type")),
    )


def _target(target: object) -> LogTarget:
    if not isinstance(target, dict):
        raise ValueError("a target is not a JSON object")
    return LogTarget(
        _text(target, "id", "target.id"),
        _text(target, "type", "target.type"),
        _optional_text(target.get("alternateId")),
        _optional_text(target.get("displayName")),
    )


def _text(item: Mapping[str, Any], key: str, name: str | None = None) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name or key} is missing or not a string")
    return value


def _optional_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"published {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"published {text!r} has no time zone")
    return moment
