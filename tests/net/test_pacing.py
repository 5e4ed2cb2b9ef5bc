"""Pacing: Okta's rate-limit budget and the adaptive cap on writes to the platform.

The clock and the sleeps are the only fakes: waiting out a real one-minute
window would make the suite slow. The budget's behaviour against the real
emulator is in test_okta_source.py.
"""

from __future__ import annotations

import asyncio
import email.utils

import pytest

from reconciler.net.pacing import RESET_MARGIN_S, AdaptiveLimit, RateLimitBudget, rate_limit_state


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def okta_headers(limit: int, remaining: int, reset_in_s: int, now: float) -> dict[str, str]:
    return {
        "X-Rate-Limit-Limit": str(limit),
        "X-Rate-Limit-Remaining": str(remaining),
        "X-Rate-Limit-Reset": str(int(now) + reset_in_s),
        "Date": email.utils.formatdate(now, usegmt=True),
    }


def test_rate_limit_state_reads_the_window_by_the_servers_clock() -> None:
    server_now = 1_700_000_000.0
    headers = okta_headers(600, 598, 42, server_now)

    state = rate_limit_state(headers, now=server_now + 3600)  # our clock an hour off: the Date header wins

    assert state is not None
    assert (state.limit, state.remaining, state.wait_until_reset_s) == (600, 598, 42.0)
    assert rate_limit_state({"X-Rate-Limit-Limit": "600"}) is None


async def test_the_budget_stops_at_its_share_of_the_window_and_waits_for_the_reset() -> None:
    time = FakeTime()
    budget = RateLimitBudget(0.5, sleep=time.sleep, clock=time.clock)
    server_now = 1_700_000_000.0

    budget.observe(okta_headers(10, 6, 30, server_now))  # 4 of 10 used: the share (5) is not reached
    await budget.acquire()
    assert time.slept == []

    budget.observe(okta_headers(10, 5, 30, server_now))  # 5 used: the next request would be the 6th
    time.now += 10  # ten seconds pass before the next request
    await budget.acquire()
    assert time.slept == [pytest.approx(30 - 10 + RESET_MARGIN_S)]

    await budget.acquire()  # the new window is unknown until the next answer: no second wait
    assert len(time.slept) == 1 and budget.waited_s == pytest.approx(21.0)


async def test_without_rate_limit_headers_the_budget_never_waits() -> None:
    time = FakeTime()
    budget = RateLimitBudget(0.5, sleep=time.sleep, clock=time.clock)
    budget.observe({"Content-Type": "application/json"})
    await budget.acquire()
    assert time.slept == []


@pytest.mark.parametrize(
    ("headers", "retry_after", "expected_wait"),
    [
        (okta_headers(10, 0, 12, 1_700_000_000.0), None, 12 + RESET_MARGIN_S),
        ({}, 7.0, 7.0),
        ({}, None, 60.0),
    ],
    ids=["until-the-reset", "retry-after", "a-minute"],
)
async def test_a_429_is_waited_out(headers: dict[str, str], retry_after: float | None, expected_wait: float) -> None:
    time = FakeTime()
    budget = RateLimitBudget(0.5, sleep=time.sleep, clock=time.clock)
    assert await budget.after_429(headers, retry_after) == pytest.approx(expected_wait)
    assert time.slept == [pytest.approx(expected_wait)]


def test_a_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        RateLimitBudget(0)


async def test_the_write_cap_halves_on_429_and_recovers_after_successes() -> None:
    limit = AdaptiveLimit(8, recover_after=3)

    limit.throttled(None)
    assert limit.limit == 4
    limit.throttled(None)
    limit.throttled(None)
    limit.throttled(None)
    assert limit.limit == 1 and limit.lowest == 1 and limit.throttles == 4

    for _ in range(3 * 10):
        limit.succeeded()
    assert limit.limit == 8  # back to the ceiling, and never above it


async def test_no_more_than_the_cap_are_in_flight() -> None:
    limit = AdaptiveLimit(3)
    in_flight = peak = 0

    async def write(number: int) -> None:
        nonlocal in_flight, peak
        async with limit:
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.001)
            if number == 5:
                limit.throttled(None)  # from here on one at a time
            in_flight -= 1

    await asyncio.gather(*(write(n) for n in range(30)))

    assert peak == 3
    assert limit.limit == 1


async def test_retry_after_holds_new_writes() -> None:
    limit = AdaptiveLimit(2)
    limit.throttled(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with limit:
        waited = loop.time() - started
    assert waited >= 0.18
