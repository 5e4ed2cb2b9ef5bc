"""The emulator's app-user listing costs the same per page whatever the number of users.

Benchmarks serve 100,000 users from it, so a page must not cost O(N) (sorting
or filtering the whole listing) nor re-serialise unchanged app users. Both
checks compare timings taken side by side in one run, never against a clock.
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
WARM_PAIRS = 3


class ServedApp:
    """An emulator with ``count`` directly assigned users, served on 127.0.0.1."""

    def __init__(self, count: int) -> None:
        self.emulator = OktaEmulator(seed=count, api_tokens=[API_TOKEN], rate_limit=1_000_000)
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


async def test_a_page_read_again_costs_far_less_than_its_first_read(
    served_apps: tuple[ServedApp, ServedApp], http: aiohttp.ClientSession
) -> None:
    """The second read of a 500-user page serves the app users' JSON from the cache."""
    served = served_apps[1]
    cursor = served.cursors[PAGES // 2]
    async with run_okta_emulator(served.emulator) as served.url:
        first = await served.read_page(http, 500, cursor)
        again = min([await served.read_page(http, 500, cursor) for _ in range(ROUNDS)])

    assert again < first / 3, (first, again)


async def test_warm_listing_makes_a_first_read_cheap(http: aiohttp.ClientSession) -> None:
    """Identical orgs, half of them warmed: a warmed org's first read of a 500-user page costs far less.

    A first read happens once per org, so the best of a few pairs is compared, read in turn: one sample
    each would fail whenever the machine stalls during the warmed read.
    """
    pairs = [(ServedApp(SMALL), ServedApp(SMALL)) for _ in range(WARM_PAIRS)]
    firsts_warmed, firsts_cold = [], []
    async with AsyncExitStack() as stack:
        for warmed, cold in pairs:
            for served in (warmed, cold):
                served.url = await stack.enter_async_context(run_okta_emulator(served.emulator))
            warmed.emulator.warm_listing(warmed.app_id, warmed.url + "/")
            firsts_warmed.append(await warmed.read_page(http, 500, warmed.cursors[PAGES // 2]))
            firsts_cold.append(await cold.read_page(http, 500, cold.cursors[PAGES // 2]))

    assert min(firsts_warmed) < min(firsts_cold) / 3, (firsts_warmed, firsts_cold)
