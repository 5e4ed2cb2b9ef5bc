"""Reading System Log answers: usable events kept, unusable ones skipped with a reason, never fatal."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from reconciler.errors import SourceError
from reconciler.okta.log import decode_events, event_filter, okta_time

GOOD = {
    "uuid": "dc9fd3c0-598c-11ef-8478-2b7584bf8d5a",
    "published": "2026-12-05T12:00:01.123Z",
    "eventType": "application.user_membership.add",
    "outcome": {"result": "SUCCESS"},
    "transaction": {"type": "JOB", "id": "abc"},
    "target": [
        {"id": "00u00000000000000001", "type": "User", "alternateId": "a@example.com", "displayName": "A"},
        {"id": "0oa00000000000000app", "type": "AppInstance"},
    ],
}


def test_an_event_keeps_what_the_follower_reads() -> None:
    (event,), malformed = decode_events(json.dumps([GOOD]))
    assert not malformed
    assert event.published == datetime(2026, 12, 5, 12, 0, 1, 123000, tzinfo=UTC)
    assert event.target_ids("User") == ["00u00000000000000001"] and event.target_ids("AppInstance") == [
        "0oa00000000000000app"
    ]
    assert (event.outcome, event.transaction_type) == ("SUCCESS", "JOB")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"uuid": None}, "uuid"),
        ({"published": "yesterday"}, "published"),
        ({"published": "2026-12-05T12:00:01"}, "no time zone"),
        ({"eventType": 7}, "eventType"),
        ({"target": {"id": "x"}}, "target"),
        ({"target": [{"type": "User"}]}, "target.id"),
    ],
)
def test_an_unusable_event_is_skipped_with_what_is_wrong(change: dict[str, object], named: str) -> None:
    events, malformed = decode_events(json.dumps([GOOD | change, GOOD | {"uuid": "second"}]))
    assert [e.uuid for e in events] == ["second"]
    assert len(malformed) == 1 and named in malformed[0]


def test_an_answer_that_is_no_list_of_events_fails_the_page() -> None:
    for body in ("<html>", '{"errorCode": "E0000001"}'):
        with pytest.raises(SourceError):
            decode_events(body)


def test_the_filter_selects_prefixes_and_since_is_okta_time() -> None:
    assert event_filter(["user.lifecycle.", "group.user_membership."]) == (
        'eventType sw "user.lifecycle." or eventType sw "group.user_membership."'
    )
    assert okta_time(datetime(2026, 12, 5, 12, 0, tzinfo=UTC)) == "2026-12-05T12:00:00.000Z"
