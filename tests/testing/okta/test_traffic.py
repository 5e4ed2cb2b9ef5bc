"""Around every request: rate limits, faults, latency, the request log, and the runners."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import aiohttp
import pytest

from reconciler.testing.okta import FaultKind, OktaEmulator, okta_emulator_in_thread, run_okta_emulator
from tests.testing.okta.helpers import API_TOKEN, Org, page_links

# -- rate limits --------------------------------------------------------------


async def test_rate_limit_headers_and_429(http: aiohttp.ClientSession) -> None:
    now = [1_700_000_000.0]
    emulator = OktaEmulator(api_tokens=[API_TOKEN], clock=lambda: now[0])
    app = emulator.create_app()
    user = emulator.create_user(login="a@example.com", first_name="A", last_name="B")
    emulator.set_rate_limit(2, bucket="/api/v1/apps")
    async with run_okta_emulator(emulator) as url:
        users_url = f"{url}/api/v1/apps/{app.id}/users"
        remaining = []
        for _ in range(2):
            async with http.get(users_url) as response:
                remaining.append(response.headers["X-Rate-Limit-Remaining"])
        async with http.get(users_url) as limited:
            body = await limited.json()
        async with http.get(f"{url}/api/v1/users/{user.id}") as other_bucket:
            assert other_bucket.status == 200
        now[0] += 61
        async with http.get(users_url) as after_window:
            assert after_window.status == 200

    assert remaining == ["1", "0"]
    assert limited.status == 429
    assert (body["errorCode"], body["errorSummary"]) == (
        "E0000047",
        "API call exceeded rate limit due to too many requests.",
    )
    assert limited.headers["X-Rate-Limit-Limit"] == "2"
    assert limited.headers["X-Rate-Limit-Remaining"] == "0"
    assert limited.headers["X-Rate-Limit-Reset"] == str(1_700_000_000 + 60)
    assert limited.headers["Date"]


# -- faults, latency, request log ---------------------------------------------


async def test_nth_request_fault_and_request_log(org: Org, http: aiohttp.ClientSession) -> None:
    rule = org.emulator.inject_fault("/api/v1/apps/*/users", status=500, nth=2)
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"

    statuses = []
    for _ in range(3):
        async with http.get(users_url, params={"limit": "5"}) as response:
            statuses.append(response.status)
            if response.status == 500:
                assert (await response.json())["errorCode"] == "E0000009"
                assert "X-Rate-Limit-Reset" in response.headers

    assert statuses == [200, 500, 200]
    assert (rule.seen, rule.fired) == (3, 1)
    assert [(r.status, r.query, r.auth_scheme) for r in org.emulator.requests] == [
        (200, {"limit": "5"}, "SSWS"),
        (500, {"limit": "5"}, "SSWS"),
        (200, {"limit": "5"}, "SSWS"),
    ]
    assert org.emulator.request_count("/api/v1/apps/*/users", method="GET") == 3


async def test_fault_without_date_and_rate_limit_headers(org: Org, http: aiohttp.ClientSession) -> None:
    org.emulator.inject_fault("/api/v1/apps/*", status=503, rate_limit_headers=False)

    async with http.get(f"{org.url}/api/v1/apps/{org.app_id}/users") as response:
        body = await response.json()

    assert response.status == 503
    assert body["errorSummary"] == "Service Unavailable"
    assert "Date" not in response.headers
    assert not [name for name in response.headers if name.lower().startswith("x-rate-limit")]


async def test_dropped_connection_and_non_json_answers(org: Org, http: aiohttp.ClientSession) -> None:
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"
    org.emulator.inject_fault("/api/v1/apps/*/users", kind=FaultKind.DROP, times=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.get(users_url):
            pass
    org.emulator.clear_faults()
    org.emulator.inject_fault("/api/v1/apps/*/users", kind=FaultKind.NON_JSON, status=200)

    async with http.get(users_url) as response:
        assert (response.status, response.content_type) == (200, "text/html")
        assert (await response.text()).startswith("<html>")
    assert [r.status for r in org.emulator.requests] == [None, None, 200]


async def test_truncated_and_reset_answers(org: Org, http: aiohttp.ClientSession) -> None:
    org.emulator.add_assigned_users(org.app_id, 3)
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"
    async with http.get(users_url) as response:
        whole = await response.read()
    org.emulator.inject_fault("/api/v1/apps/*/users", kind=FaultKind.TRUNCATED)

    async with http.get(users_url) as response:
        assert (response.status, response.content_type) == (200, "application/json")
        cut = await response.read()
    assert cut == whole[: len(whole) // 2] and int(response.headers["Content-Length"]) == len(cut)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)

    org.emulator.inject_fault("/api/v1/apps/*/users", kind=FaultKind.RESET, keep_bytes=10)
    async with http.get(users_url) as response:
        assert response.status == 200 and int(response.headers["Content-Length"]) == len(whole)
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert [r.status for r in org.emulator.requests] == [200, 200, None]


async def test_a_delay_beyond_the_client_timeout_is_a_read_timeout(org: Org, http: aiohttp.ClientSession) -> None:
    rule = org.emulator.inject_fault("/api/v1/apps/*/users", kind=FaultKind.DELAY, delay_s=0.5)
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"

    with pytest.raises(TimeoutError):
        async with http.get(users_url, timeout=aiohttp.ClientTimeout(total=0.1)):
            pass
    async with http.get(users_url, timeout=aiohttp.ClientTimeout(total=5)) as response:
        assert response.status == 200  # the rule fired once
    assert (rule.seen, rule.fired) == (2, 1)


async def test_a_token_revoked_between_pages(org: Org, http: aiohttp.ClientSession) -> None:
    """A CALL fault runs its action after answering: here the first page is served, the second refused."""
    org.emulator.add_assigned_users(org.app_id, 3)
    org.emulator.inject_fault(
        "/api/v1/apps/*/users", kind=FaultKind.CALL, action=lambda: org.emulator.revoke_api_token(API_TOKEN)
    )
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"

    async with http.get(users_url, params={"limit": "2"}) as first:
        assert first.status == 200 and len(await first.json()) == 2
        next_url = next(link for link in page_links(first) if 'rel="next"' in link)[1:].partition(">")[0]
    async with http.get(next_url) as second:
        assert second.status == 401
        assert (await second.json())["errorCode"] == "E0000011"
    with pytest.raises(ValueError, match="needs an action"):
        org.emulator.inject_fault("/api/v1/apps/*/users", kind=FaultKind.CALL)


async def test_latency_delays_answers(org: Org, http: aiohttp.ClientSession) -> None:
    org.emulator.set_latency(150)
    started = time.perf_counter()
    async with http.get(f"{org.url}/api/v1/apps/{org.app_id}") as response:
        assert response.status == 200
    assert time.perf_counter() - started >= 0.15


# -- runners ------------------------------------------------------------------


def test_thread_runner_serves_sync_callers() -> None:
    emulator = OktaEmulator(api_tokens=[API_TOKEN])
    app = emulator.create_app()

    with okta_emulator_in_thread(emulator) as url:
        assert url.startswith("http://127.0.0.1:")
        emulator.add_assigned_users(app.id, 2)  # changed while the server thread runs
        request = urllib.request.Request(
            f"{url}/api/v1/apps/{app.id}/users", headers={"Authorization": f"SSWS {API_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            listed = json.load(response)

    assert [app_user["id"] for app_user in listed] == emulator.listed_user_ids(app.id)
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        urllib.request.urlopen(f"{url}/api/v1/apps/{app.id}", timeout=2)
