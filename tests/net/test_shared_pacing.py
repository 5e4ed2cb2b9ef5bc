"""The shared window count's arithmetic (reconciler/net/shared_pacing.py): pure, on a fake clock."""

from __future__ import annotations

import time
from pathlib import Path

from reconciler.net.pacing import RESET_MARGIN_S, RateLimitState
from reconciler.net.shared_pacing import (
    CLAIM_AT_ONCE,
    PROBE_TIMEOUT_S,
    PROBE_WAIT_S,
    UNKNOWN_WINDOW_S,
    SharedRateLimitBudget,
    WindowCount,
    claim,
    claim_up_to,
    exhaust,
    observe,
    release,
)
from reconciler.store import Store

NOW = 1_000_000.0


def test_an_unknown_org_lets_one_request_find_out_and_the_others_wait_for_it() -> None:
    first, wait = claim(None, 0.5, NOW)
    assert (first.used, wait) == (1, 0.0)
    same, wait = claim(first, 0.5, NOW + 0.01)
    assert (same, wait) == (first, PROBE_WAIT_S)


def test_a_probe_that_got_no_word_of_the_window_gives_its_claim_back_and_the_next_goes_at_once() -> None:
    """A refused connection, or an answer without X-Rate-Limit headers: waiting PROBE_TIMEOUT_S would only stall."""
    first, _ = claim(None, 0.5, NOW)
    given_back = release(first, NOW + 0.1)
    assert given_back.used == 0
    second, wait = claim(given_back, 0.5, NOW + 0.1)
    assert (second.used, wait) == (1, 0.0)


def test_once_the_window_is_told_a_claim_stays_spent() -> None:
    """The request may have reached Okta: only the probe of an untold window is given back."""
    count, _ = claim(None, 0.5, NOW)
    count = observe(count, RateLimitState(limit=10, remaining=9, wait_until_reset_s=30.0), NOW + 0.1)
    count, _ = claim(count, 0.5, NOW + 0.2)
    assert release(count, NOW + 0.3) == count


def test_the_share_of_the_window_is_claimed_then_everyone_waits_for_its_reset() -> None:
    count, _ = claim(None, 0.5, NOW)
    count = observe(count, RateLimitState(limit=10, remaining=9, wait_until_reset_s=30.0), NOW + 0.1)
    assert (count.limit, count.used, count.resets_at) == (10, 1, NOW + 0.1 + 30.0 + RESET_MARGIN_S)
    for _ in range(4):  # 5 of 10 at share 0.5
        count, wait = claim(count, 0.5, NOW + 1)
        assert wait == 0.0
    refused, wait = claim(count, 0.5, NOW + 1)
    assert refused.used == 5 and wait == count.resets_at - (NOW + 1)
    assert count.resets_at is not None
    after, wait = claim(count, 0.5, count.resets_at)
    assert (after.used, after.limit, after.resets_at, wait) == (1, 10, None, 0.0)  # a new window, same limit


def test_what_okta_says_was_spent_counts_when_it_is_more_than_was_claimed() -> None:
    count = WindowCount(limit=10, used=1, resets_at=NOW + 30, opened_at=NOW)
    seen = observe(count, RateLimitState(limit=10, remaining=2, wait_until_reset_s=29.0 - RESET_MARGIN_S), NOW)
    assert seen.used == 8  # another integration spent the rest
    late = observe(seen, RateLimitState(limit=10, remaining=9, wait_until_reset_s=0.0), NOW - 10)
    assert late == seen  # an answer from an earlier window changes nothing


def test_a_429_spends_the_window_for_everyone() -> None:
    count = WindowCount(limit=10, used=1, resets_at=NOW + 30, opened_at=NOW)
    spent = exhaust(count, RateLimitState(limit=10, remaining=0, wait_until_reset_s=20.0), 21.0, NOW)
    assert spent.used == 10 and claim(spent, 1.0, NOW + 1)[1] > 0
    blind = exhaust(None, None, 60.0, NOW)
    assert blind.resets_at == NOW + 60.0 and claim(blind, 1.0, NOW + 1)[1] > 0


def test_a_window_no_answer_told_is_started_afresh_and_a_lost_probe_soon() -> None:
    known, _ = claim(WindowCount(limit=2, used=0, resets_at=None, opened_at=NOW), 0.5, NOW)
    assert claim(known, 0.5, NOW + UNKNOWN_WINDOW_S - 1)[1] > 0
    assert claim(known, 0.5, NOW + UNKNOWN_WINDOW_S) == (WindowCount(2, 1, None, NOW + UNKNOWN_WINDOW_S), 0.0)
    probe, _ = claim(None, 0.5, NOW)  # cancelled before its answer came: never observed
    assert claim(probe, 0.5, NOW + PROBE_TIMEOUT_S - 1)[1] == PROBE_WAIT_S
    assert claim(probe, 0.5, NOW + PROBE_TIMEOUT_S) == (WindowCount(None, 1, None, NOW + PROBE_TIMEOUT_S), 0.0)


def test_once_the_window_is_told_requests_are_claimed_a_few_at_once_within_the_share() -> None:
    count, granted, _ = claim_up_to(None, 0.5, NOW, CLAIM_AT_ONCE)
    assert (count.used, granted) == (1, 1), "an untold window: one request goes to find out"
    count = observe(count, RateLimitState(limit=14, remaining=13, wait_until_reset_s=30.0), NOW + 0.1)
    count, granted, wait = claim_up_to(count, 0.5, NOW + 0.2, CLAIM_AT_ONCE)
    assert (count.used, granted, wait) == (1 + CLAIM_AT_ONCE, CLAIM_AT_ONCE, 0.0)
    count, granted, _ = claim_up_to(count, 0.5, NOW + 0.3, CLAIM_AT_ONCE)
    assert (count.used, granted) == (7, 1), "never past the share: 7 of 14"
    _, granted, wait = claim_up_to(count, 0.5, NOW + 0.4, CLAIM_AT_ONCE)
    assert granted == 0 and wait > 0


async def test_a_budget_spends_what_it_claimed_before_claiming_again_in_the_store(tmp_path: Path) -> None:
    """One store transaction per CLAIM_AT_ONCE requests, not per request (each is an Okta page on the critical path)."""
    org, family = "https://acme.okta.com", "/api/v1/apps"
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        budget = SharedRateLimitBudget(store.rate_ledger(org), family, 0.5)

        def used() -> int:
            window = store.rate_window(org, family)
            assert window is not None
            return window.used

        await budget.acquire()
        budget.observe(_headers(limit=600, remaining=599))
        seen = []
        for _ in range(2 * CLAIM_AT_ONCE):
            await budget.acquire()
            seen.append(used())
        assert seen == [1 + CLAIM_AT_ONCE] * CLAIM_AT_ONCE + [1 + 2 * CLAIM_AT_ONCE] * CLAIM_AT_ONCE


def _headers(*, limit: int, remaining: int) -> dict[str, str]:
    return {
        "X-Rate-Limit-Limit": str(limit),
        "X-Rate-Limit-Remaining": str(remaining),
        "X-Rate-Limit-Reset": str(int(time.time()) + 60),
    }
