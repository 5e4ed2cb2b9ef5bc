"""``GET /api/v1/logs`` with Okta's polling semantics: cursors, limit, filter, late events, limits and refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from reconciler.testing.okta import TOKEN_PATH, OktaEmulator, run_okta_emulator
from tests.testing.okta.helpers import API_TOKEN, Org, assertion, post_token
from tests.testing.okta.log_helpers import an_hour_ago, follow, get_page, logs_url, okta_time

T0 = 1_800_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def clocked() -> AsyncIterator[tuple[Org, FakeClock]]:
    clock = FakeClock()
    clock.now = T0 - 60
    emulator = OktaEmulator(seed=3, api_tokens=[API_TOKEN], clock=clock)
    app = emulator.create_app()
    clock.now = T0
    async with run_okta_emulator(emulator) as url:
        yield Org(emulator, url, app.id), clock


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


async def test_polling_pages_with_next_links_and_an_empty_page_keeps_its_cursor(
    org: Org, http: aiohttp.ClientSession
) -> None:
    for number in range(5):
        org.emulator.create_group(f"group {number}")
    wanted = 'eventType sw "group."'

    status, first, links = await get_page(http, logs_url(org.url, since=an_hour_ago(), limit=2, filter=wanted))
    assert status == 200 and [event["displayMessage"] for event in first] == ["Create Okta group"] * 2
    assert set(links) == {"self", "next"}
    next_query = query_of(links["next"])
    assert (next_query["limit"], next_query["filter"], "since" in next_query) == (["2"], [wanted], False)

    rest, last_next = await follow(http, links["next"])
    assert len(rest) == 3
    status, empty, empty_links = await get_page(http, last_next)
    assert (status, empty) == (200, [])
    assert query_of(empty_links["next"])["after"] == query_of(last_next)["after"]

    org.emulator.create_group("late comer")
    _, newer, _ = await get_page(http, last_next)
    assert [event["target"][0]["displayName"] for event in newer] == ["late comer"]


async def test_filter_on_event_types(org: Org, http: aiohttp.ClientSession) -> None:
    user = org.emulator.create_user(login="ken@example.com", first_name="Ken", last_name="T")
    org.emulator.assign_user(org.app_id, user.id)
    org.emulator.set_user_status(user.id, "SUSPENDED")
    cases = {
        'eventType eq "user.lifecycle.suspend"': ["user.lifecycle.suspend"],
        'eventType sw "user.lifecycle."': [
            "user.lifecycle.create",
            "user.lifecycle.activate",
            "user.lifecycle.suspend",
        ],
        '(eventType eq "user.lifecycle.create" or eventType sw "application.user_membership.")': [
            "user.lifecycle.create",
            "application.user_membership.add",
        ],
        'eventType eq "user.lifecycle.delete.completed"': [],
    }
    for wanted, types in cases.items():
        events, _ = await follow(http, logs_url(org.url, since=an_hour_ago(), filter=wanted))
        assert [event["eventType"] for event in events] == types, wanted

    _, limited, _ = await get_page(http, logs_url(org.url, since=an_hour_ago(), limit=0))
    assert limited == []


async def test_a_follower_sees_late_events_that_since_until_paging_misses(clocked: tuple[Org, FakeClock]) -> None:
    org, clock = clocked
    async with aiohttp.ClientSession(headers={"Authorization": f"SSWS {API_TOKEN}"}) as http:
        _, _, links = await get_page(http, logs_url(org.url, since=okta_time(T0)))
        follower_next = links["next"]

        clock.now = T0 + 1
        org.emulator.set_log_delay(10)
        late = org.emulator.create_group("published first, persisted late")
        clock.now = T0 + 2
        org.emulator.set_log_delay(0)
        org.emulator.create_group("published second, persisted at once")

        clock.now = T0 + 5
        _, page, links = await get_page(http, follower_next)
        assert [event["target"][0]["displayName"] for event in page] == ["published second, persisted at once"]
        follower_next = links["next"]
        _, window, _ = await get_page(http, logs_url(org.url, since=okta_time(T0), until=okta_time(T0 + 5)))
        assert [event["target"][0]["displayName"] for event in window] == ["published second, persisted at once"]

        clock.now = T0 + 20
        _, page, _ = await get_page(http, follower_next)
        assert [event["target"][0]["id"] for event in page] == [late.id]
        assert page[0]["published"] == okta_time(T0 + 1)
        _, next_window, _ = await get_page(http, logs_url(org.url, since=okta_time(T0 + 5), until=okta_time(T0 + 20)))
        assert next_window == []


async def test_bounded_requests_order_by_published_and_stop_when_done(clocked: tuple[Org, FakeClock]) -> None:
    org, clock = clocked
    for number in range(3):
        clock.now = T0 + number
        org.emulator.create_group(f"g{number}")
    clock.now = T0 + 10
    bounded = logs_url(org.url, since=okta_time(T0), until=okta_time(T0 + 10), limit=2, sortOrder="DESCENDING")
    async with aiohttp.ClientSession(headers={"Authorization": f"SSWS {API_TOKEN}"}) as http:
        _, first, links = await get_page(http, bounded)
        _, second, last_links = await get_page(http, links["next"])
        _, polling_descending, _ = await get_page(http, logs_url(org.url, sortOrder="DESCENDING"))
    assert [e["target"][0]["displayName"] for e in first + second] == ["g2", "g1", "g0"]
    assert "next" not in last_links
    assert polling_descending["errorCauses"][0]["errorSummary"].startswith("sortOrder: DESCENDING needs")


async def test_retention_and_the_180_day_bound(clocked: tuple[Org, FakeClock]) -> None:
    org, clock = clocked
    org.emulator.create_group("old")
    clock.now = T0 + 91 * 86400
    org.emulator.create_group("recent")
    async with aiohttp.ClientSession(headers={"Authorization": f"SSWS {API_TOKEN}"}) as http:
        events, _ = await follow(http, logs_url(org.url, since=okta_time(T0 - 1)))
        status, refused, _ = await get_page(http, logs_url(org.url, since=okta_time(clock.now - 181 * 86400)))
    assert [event["target"][0]["displayName"] for event in events] == ["recent"]
    assert (status, refused["errorCode"]) == (400, "E0000053")


async def test_bad_requests_are_400s_naming_the_parameter(org: Org, http: aiohttp.ClientSession) -> None:
    since = an_hour_ago()
    cases = {
        "filter and": ({"filter": 'eventType eq "a" and eventType eq "b"'}, "E0000031", "filter"),
        "filter published": ({"filter": 'published gt "2026-01-01T00:00:00Z"'}, "E0000031", "published"),
        "filter attribute": ({"filter": 'target.id eq "0oa1"'}, "E0000031", "filter"),
        "filter unclosed": ({"filter": '(eventType eq "a"'}, "E0000031", "parenthesis"),
        "limit over": ({"limit": "1001"}, "E0000001", "limit"),
        "limit negative": ({"limit": "-1"}, "E0000001", "limit"),
        "limit text": ({"limit": "many"}, "E0000001", "limit"),
        "since": ({"since": "yesterday"}, "E0000001", "since"),
        "after": ({"after": "not-a-cursor"}, "E0000001", "after"),
        "sortOrder": ({"sortOrder": "UP"}, "E0000001", "sortOrder"),
    }
    for case, (params, code, named) in cases.items():
        status, body, _ = await get_page(http, logs_url(org.url, **{"since": since, **params}))
        assert (status, body["errorCode"]) == (400, code), case
        assert named in body["errorCauses"][0]["errorSummary"], case


async def test_the_logs_bucket_is_its_own(org: Org, http: aiohttp.ClientSession) -> None:
    org.emulator.set_rate_limit(2, "/api/v1/logs")
    statuses = [(await get_page(http, logs_url(org.url)))[0] for _ in range(3)]
    async with http.get(logs_url(org.url)) as limited:
        body = await limited.json()
        headers = limited.headers
    async with http.get(f"{org.url}/api/v1/apps/{org.app_id}") as apps:
        assert apps.status == 200
    assert statuses == [200, 200, 429]
    assert (body["errorCode"], headers["X-Rate-Limit-Limit"], headers["X-Rate-Limit-Remaining"]) == (
        "E0000047",
        "2",
        "0",
    )
    fresh = OktaEmulator(api_tokens=[API_TOKEN])
    async with run_okta_emulator(fresh) as url, http.get(logs_url(url)) as response:
        assert response.headers["X-Rate-Limit-Limit"] == "120"


async def test_reading_logs_needs_the_scope_and_the_permission(
    org: Org, http: aiohttp.ClientSession, private_key: rsa.RSAPrivateKey
) -> None:
    audience = org.url + TOKEN_PATH
    client_id = org.emulator.register_client(private_key.public_key(), ["okta.apps.read", "okta.logs.read"])
    _, apps_only = await post_token(org.url, assertion(private_key, client_id, audience), scope="okta.apps.read")
    _, with_logs = await post_token(org.url, assertion(private_key, client_id, audience), scope="okta.logs.read")
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {apps_only['access_token']}"}
        async with session.get(logs_url(org.url), headers=headers) as denied:
            assert (denied.status, (await denied.json())["errorCode"]) == (403, "E0000006")
            assert 'scope="okta.logs.read"' in denied.headers["WWW-Authenticate"]
        headers = {"Authorization": f"Bearer {with_logs['access_token']}"}
        async with session.get(logs_url(org.url), headers=headers) as allowed:
            assert allowed.status == 200

    org.emulator.deny_logs()
    status, body, _ = await get_page(http, logs_url(org.url))
    assert (status, body["errorCode"]) == (403, "E0000006")
