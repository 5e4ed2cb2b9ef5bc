"""One Okta org's rate budget, shared by the replicas through the store: three spend what one would.

Three replicas (:class:`reconciler.service.fleet.Replica`, each with a Store of its own on one SQLite file, as
three processes would have) each claim one of three tenants whose apps live in one emulated Okta org, whose
limit is two requests per one-second window: with ``rate_limit_share = 0.5`` the fleet may spend one request
per window. Counted at the emulator: no 429, and no window that let more through than the share.
"""

from __future__ import annotations

import math
from pathlib import Path

from reconciler.config import load_fleet
from reconciler.models.runs import RunStatus
from reconciler.service.fleet import Replica
from reconciler.store import Store
from reconciler.testing.scim_server import RunningScimServer
from tests.support.fleet_lab import fleet_lab
from tests.support.service_process import eventually

LIMIT = 2
SHARE = 0.5
APPS = "/api/v1/apps"


async def test_three_replicas_on_one_org_spend_one_share_of_its_rate_limit_and_meet_no_429(
    tmp_path: Path, scim_server: RunningScimServer
) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    with fleet_lab(
        tmp_path,
        scim_server,
        url,
        tenants=3,
        users=2,
        interval_s=3600.0,
        concurrency=1,
        rate_limit=LIMIT,
        rate_limit_window_s=1.0,
    ) as lab:
        fleet = load_fleet(lab.config_path, lab.environment)
        assert {(t.okta.org_url, t.okta.rate_limit_share) for t in fleet.tenants} == {(lab.org_url, SHARE)}
        stores = [Store(url, replica=f"replica-{n}") for n in (1, 2, 3)]
        try:
            replicas = [Replica(fleet, store) for store in stores]
            claimed = [replica.dispatch() for replica in replicas]  # each takes the tenant the others hold not
            await eventually(lambda: not any(r.running for r in replicas), 60, "the three runs to end")
            runs = stores[0].recent_runs(10)
        finally:
            for store in stores:
                store.close()
        statuses = [r.status for r in lab.emulator.requests if r.path.startswith(APPS)]
        windows = [bucket for name, bucket in lab.emulator.rate_limit_windows if name == APPS]

    assert sorted(map(len, claimed)) == [1, 1, 1], claimed
    assert sorted(r.status for r in runs) == [RunStatus.SUCCEEDED] * 3, [(r.tenant, r.error) for r in runs]
    assert statuses and 429 not in statuses, statuses
    share = math.floor(LIMIT * SHARE)
    assert all(bucket.used <= share for bucket in windows), [bucket.used for bucket in windows]
    assert sum(bucket.used for bucket in windows) == len(statuses)
