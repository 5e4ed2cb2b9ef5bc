"""Driving a System Log follower in a test: an org (emulator + SCIM tenant + store), a listener that keeps
what it is told, and polling until caught up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from reconciler.config import Config, load_config
from reconciler.models.runs import RunMode
from reconciler.run.follower import Follower
from reconciler.run.reconcile import reconcile
from reconciler.store import Store
from reconciler.store.tables import Run
from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta, all_users

MAX_POLLS = 10


@dataclass
class Heard:
    """A FollowListener that keeps what it is told."""

    polls: list[tuple[int, int, int, int, float]] = field(default_factory=list)
    repairs: list[float] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)

    def polled(self, read: int, ignored: int, acted: int, malformed: int, lag_s: float) -> None:
        self.polls.append((read, ignored, acted, malformed, lag_s))

    def repaired(self, seconds: float) -> None:
        self.repairs.append(seconds)

    def stopped(self, why: str) -> None:
        self.stops.append(why)

    def total(self, index: int) -> int:
        return sum(int(p[index]) for p in self.polls)


@dataclass
class Org:
    okta: Okta
    platform: httpx.Client
    config: Config
    store: Store
    user_ids: list[str]
    heard: Heard = field(default_factory=Heard)

    def by_external_id(self) -> dict[str, dict]:
        return {u.get("externalId"): u for u in all_users(self.platform)}

    def incremental_runs(self) -> list[Run]:
        return [r for r in self.store.recent_runs(100) if r.mode is RunMode.INCREMENTAL]


def make_org(okta: Okta, platform: httpx.Client, scim_url: str, state: Path, extra: str = "", users: int = 4) -> Org:
    """``users`` assigned in Okta (none on the platform yet), a config polling every second without second looks."""
    assigned = okta.emulator.add_assigned_users(okta.app_id, users)
    settings = f'[incremental]\npoll = "1s"\nrecheck_after = 0\n{extra}'
    config = load_config(
        write_local_config(state, okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN, settings)
    )
    return Org(okta, platform, config, Store(config.store.url), [u.id for u in assigned])


async def follow(org: Org, polls: int = MAX_POLLS, until: Callable[[], bool] | None = None) -> None:
    """Start (auditing first when there is no cursor), then poll until caught up (or ``until()`` holds)."""
    audit = lambda: reconcile(org.config, org.store, dry_run=False)  # noqa: E731
    async with Follower(org.config, org.store, audit, listener=org.heard) as follower:
        await follower.start()
        for _ in range(polls):
            result = await follower.poll_safely()
            if until is None and result.caught_up or until is not None and until():
                return
            if result.caught_up:
                await asyncio.sleep(0.2)
        raise AssertionError(f"not done after {polls} polls")
