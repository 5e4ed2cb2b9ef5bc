"""The emulator's app-user listing costs the same per page whatever the number of users.

Benchmarks serve 100,000 users from it, so a page must not cost O(N) (sorting
or filtering the whole listing) nor re-serialise unchanged app users. The cost
check compares timings taken side by side in one run, never against a clock;
the cache checks count the JSON the emulator keeps.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import aiohttp
import pytest

from reconciler.testing.okta import OktaEmulator, run_okta_emulator

API_TOKEN = "00emulator-speed-token"
SMALL, LARGE = 2_000, 20_000
PAGES = 10
ROUNDS = 5


FIXED_TIME = 1_780_000_000.0
"""Every org's clock, so identical orgs answer identical JSON."""


class ServedApp:
    """An emulator with ``count`` directly assigned users, served on 127.0.0.1."""

    def __init__(self, count: int) -> None:
        self.emulator = OktaEmulator(seed=count, api_tokens=[API_TOKEN], rate_limit=1_000_000, clock=lambda: FIXED_TIME)
        self.app_id = self.emulator.create_app().id
        self.emulator.add_assigned_users(self.app_id, count)
        listed = self.emulator.listed_user_ids(self.app_id)
        self.cursors = [listed[index * (count // PAGES)] for index in range(PAGES)]
        self.url = ""

    async def read_page(self, http: aiohttp.ClientSession, limit: int, after: str | None) -> float:
        """Seconds spent reading one page with expand=user."""
        params = {"limit": str(limit), "expand": "user", **({"after": after} if after else {})}
        started = time.perf_counter()
        async with http.get(f"{self.url}/api/v1/apps/{self.app_id}/users", params=params) as response:
            assert response.status == 200
            await response.read()
        return time.perf_counter() - started

    async def read_body(self, http: aiohttp.ClientSession, limit: int, after: str) -> bytes:
        """One page's body with expand=user."""
        params = {"limit": str(limit), "expand": "user", "after": after}
        async with http.get(f"{self.url}/api/v1/apps/{self.app_id}/users", params=params) as response:
            assert response.status == 200
            return await response.read()

    async def read_pages(self, http: aiohttp.ClientSession, limit: int) -> float:
        """Seconds spent reading the page after each cursor."""
        return sum([await self.read_page(http, limit, cursor) for cursor in self.cursors])


@pytest.fixture(scope="module")
def served_apps() -> tuple[ServedApp, ServedApp]:
    return ServedApp(SMALL), ServedApp(LARGE)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"SSWS {API_TOKEN}"}) as session:
        yield session


async def test_page_cost_does_not_grow_with_the_number_of_users(
    served_apps: tuple[ServedApp, ServedApp], http: aiohttp.ClientSession
) -> None:
    """Small pages, so a cost proportional to N (20,000 vs 2,000 users) would dominate them."""
    async with AsyncExitStack() as stack:
        for served in served_apps:
            served.url = await stack.enter_async_context(run_okta_emulator(served.emulator))
            await served.read_pages(http, limit=20)  # warm: the listing and these app users
        best = {served: float("inf") for served in served_apps}
        for _ in range(ROUNDS):  # interleaved, so a busy machine slows both alike
            for served in served_apps:
                best[served] = min(best[served], await served.read_pages(http, limit=20))

    small, large = served_apps
    assert best[large] / best[small] < 3, (best[small], best[large])


async def test_a_page_read_again_is_served_from_the_kept_json(
    served_apps: tuple[ServedApp, ServedApp], http: aiohttp.ClientSession
) -> None:
    """The first read of a 500-user page keeps its app users' JSON; reading it again renders none anew.

    Counted rather than timed: the time a cached read saves is a share of a page's cost that depends on the
    machine (the HTTP transfer stays), so a ratio of timings fails on some machines and proves nothing.
    """
    served = served_apps[1]
    cursor = served.cursors[PAGES // 2]
    before = served.emulator.kept_app_user_bodies(served.app_id)
    async with run_okta_emulator(served.emulator) as served.url:
        first = await served.read_body(http, 500, cursor)
        kept = served.emulator.kept_app_user_bodies(served.app_id)
        again = await served.read_body(http, 500, cursor)

    assert kept == before + 500
    assert served.emulator.kept_app_user_bodies(served.app_id) == kept
    assert again == first


async def test_warm_listing_keeps_what_a_first_read_serves(http: aiohttp.ClientSession) -> None:
    """After ``warm_listing`` with the URL clients use, a first read renders no app user and answers exactly
    what an identical org that was not warmed answers."""
    warmed, cold = ServedApp(SMALL), ServedApp(SMALL)
    async with AsyncExitStack() as stack:
        for served in (warmed, cold):
            served.url = await stack.enter_async_context(run_okta_emulator(served.emulator))
        warmed.emulator.warm_listing(warmed.app_id, warmed.url + "/")
        kept = warmed.emulator.kept_app_user_bodies(warmed.app_id)
        first_warmed = await warmed.read_body(http, 500, warmed.cursors[PAGES // 2])
        first_cold = await cold.read_body(http, 500, cold.cursors[PAGES // 2])

    assert kept == SMALL
    assert warmed.emulator.kept_app_user_bodies(warmed.app_id) == SMALL
    assert first_warmed == first_cold.replace(cold.url.encode(), warmed.url.encode())
