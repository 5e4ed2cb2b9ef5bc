"""Following the emulator's System Log the way Okta documents it: since once, then the next link."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.errors import SourceError
from reconciler.okta.log import LogAccessDenied, SystemLogReader
from reconciler.okta.source import OktaSource
from reconciler.secret import Secret
from tests.conftest import OKTA_TOKEN, Okta


async def follow(okta: Okta, limit: int = 1000, pages: int = 10) -> tuple[list[str], list[bool], SystemLogReader]:
    """Event types read, and each page's caught_up, polling from an hour ago."""
    async with OktaSource(org_url=okta.org_url, app_id=okta.app_id, auth="api_token", token=Secret(OKTA_TOKEN)) as src:
        reader = SystemLogReader(src.connection, limit=limit)
        url = reader.start_url(datetime.now(UTC) - timedelta(hours=1))
        types, caught_up = [], []
        for _ in range(pages):
            page = await reader.page(url)
            types += [e.event_type for e in page.events]
            caught_up.append(page.caught_up)
            url = page.next_url
            if page.caught_up:
                break
        return types, caught_up, reader


def test_events_come_in_order_filtered_to_what_the_follower_reads(okta: Okta) -> None:
    user = okta.emulator.create_user(login="ada@example.com", first_name="Ada", last_name="Lovelace")
    okta.emulator.assign_user(okta.app_id, user.id)
    okta.emulator.set_user_status(user.id, "SUSPENDED")
    types, caught_up, _ = asyncio.run(follow(okta))
    assert types == [
        "application.lifecycle.create",
        "user.lifecycle.create",
        "user.lifecycle.activate",
        "application.user_membership.add",
        "user.lifecycle.suspend",
    ]
    assert caught_up[-1]


def test_small_pages_follow_next_links_until_an_empty_page(okta: Okta) -> None:
    for n in range(5):
        okta.emulator.create_user(login=f"user{n}@example.com", first_name="U", last_name=str(n))
    types, caught_up, reader = asyncio.run(follow(okta, limit=3))
    assert len(types) == 1 + 5 * 2 and caught_up[-1] and not any(caught_up[:-1])
    assert reader.requests == len(caught_up)


def test_a_token_without_log_access_is_told_the_scope(okta: Okta) -> None:
    okta.emulator.deny_logs()
    with pytest.raises(LogAccessDenied, match=r"okta\.logs\.read.*full audits go on"):
        asyncio.run(follow(okta))


def test_a_link_off_the_org_is_never_followed(okta: Okta) -> None:
    async def poll_elsewhere() -> None:
        async with OktaSource(
            org_url=okta.org_url, app_id=okta.app_id, auth="api_token", token=Secret(OKTA_TOKEN)
        ) as src:
            await SystemLogReader(src.connection).page("http://127.0.0.1:9/api/v1/logs?after=x")

    with pytest.raises(SourceError, match="refused, as the credential would go with it"):
        asyncio.run(poll_elsewhere())
