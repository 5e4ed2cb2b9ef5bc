"""Servers that page as they please: a cap below what they announce, ``count`` ignored, short pages anywhere.

Each listing must come out whole and each user be read exactly once: the fault
server records every user it sends, so a user sent twice (an overlapping page)
shows as twice, and a user never sent shows as missing.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.models.records import ActionKind
from reconciler.models.runs import RunStatus
from reconciler.run.reconcile import reconcile
from reconciler.store import Store
from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta
from tests.scim.test_scim_target import reader_for
from tests.support.scim_fault_server import FaultServer, scim_user

ANNOUNCES_50 = {"filter": {"supported": True, "maxResults": 50}}


def _users(count: int) -> list[dict]:
    return [scim_user(i) for i in range(1, count + 1)]


def _ids(count: int) -> list[str]:
    return [f"id-{i}" for i in range(1, count + 1)]


def _asked(server: FaultServer) -> list[tuple[int, int]]:
    return sorted((int(r.query["startIndex"]), int(r.query["count"])) for r in server.seen("GET", "/Users"))


def _read_twice(server: FaultServer) -> list[str]:
    return [user_id for user_id, times in Counter(server.served).items() if times > 1]


async def test_a_server_capping_pages_below_the_max_results_it_announces_is_read_whole_once() -> None:
    async with FaultServer(users=_users(95), page_cap=20, service_provider_config=ANNOUNCES_50) as server:
        async with reader_for(server.base_url, page_size=100, read_concurrency=4) as reader:
            listed = await reader.list_users()
    assert [u.scim_id for u in listed] == _ids(95)
    assert _read_twice(server) == [] and sorted(server.served) == sorted(_ids(95))
    assert _asked(server) == [(1, 50), (21, 20), (41, 20), (61, 20), (81, 20)]


@pytest.mark.parametrize("fixed_page", [25, 7], ids=["more-than-asked", "fewer-than-asked"])
async def test_a_server_ignoring_count_is_read_whole_once(fixed_page: int) -> None:
    async with FaultServer(users=_users(95), fixed_page=fixed_page) as server:
        async with reader_for(server.base_url, page_size=10, read_concurrency=4) as reader:
            listed = await reader.list_users()
    assert [u.scim_id for u in listed] == _ids(95)
    assert _read_twice(server) == [], "a user was read twice: pages overlapped"
    assert len(server.seen("GET", "/Users")) == math.ceil(95 / fixed_page)


async def test_short_pages_anywhere_are_filled_from_the_first_missing_user_and_nothing_is_read_twice() -> None:
    async with FaultServer(users=_users(60), short_pages={11: 4, 31: 7, 51: 1}) as server:
        async with reader_for(server.base_url, page_size=10, read_concurrency=4) as reader:
            listed = await reader.list_users()
    assert [u.scim_id for u in listed] == _ids(60)
    assert _read_twice(server) == []
    assert _asked(server) == [(1, 10), (11, 10), (15, 6), (21, 10), (31, 10), (38, 3), (41, 10), (51, 10), (52, 9)]


async def test_a_short_first_page_sets_the_step_without_overlapping_fuller_pages() -> None:
    """The first page alone comes back short; the server would give full pages after it."""
    async with FaultServer(users=_users(30), short_pages={1: 4}) as server:
        async with reader_for(server.base_url, page_size=10, read_concurrency=4) as reader:
            listed = await reader.list_users()
    assert [u.scim_id for u in listed] == _ids(30)
    assert _read_twice(server) == []


async def test_the_planner_sees_every_user_of_a_server_ignoring_count(okta: Okta, tmp_path: Path) -> None:
    """A dry run on a server answering 25 users to pages of 10: every platform user is in the plan, once."""
    async with FaultServer(users=_users(95), fixed_page=25) as server:
        path = write_local_config(tmp_path, okta.org_url, okta.app_id, server.base_url, OKTA_TOKEN, SCIM_TOKEN)
        path.write_text(path.read_text().replace("[scim]\n", "[scim]\npage_size = 10\n"))
        config = load_config(path)
        with Store(config.store.url) as store:
            outcome = await reconcile(config, store, dry_run=True)
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert outcome.plan is not None
    unmanaged = [a.scim_id for a in outcome.plan.actions if a.kind is ActionKind.UNMANAGED]
    assert sorted(unmanaged) == sorted(_ids(95))
    assert _read_twice(server) == [] and len(server.seen("GET", "/Users")) == 4
