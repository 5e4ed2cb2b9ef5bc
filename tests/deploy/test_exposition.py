"""Every metric the dashboard's queries and the alert rules' expressions read is in the /metrics of real
``reconcile serve`` processes, one target's and a fleet replica's, scraped after a run of each."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from reconciler.testing.scim_server import RunningScimServer, free_loopback_port
from tests.conftest import Okta
from tests.deploy.metric_names import metric_names
from tests.deploy.test_dashboard import dashboard_exprs
from tests.service.test_service import service_config
from tests.support.fleet_lab import fleet_lab
from tests.support.service_process import ServiceProcess

RULES = Path(__file__).parents[2] / "deploy" / "prometheus" / "alerts.yml"
FLEET_ONLY = frozenset(
    {
        "reconciler_tenant_runs_total",
        "reconciler_tenant_drift",
        "reconciler_tenant_last_success_timestamp_seconds",
        "reconciler_leases_lost_total",
        "reconciler_runs_in_flight",
        "reconciler_tenants_followed",
    }
)
"""What only a fleet's replica has; every other name the board and rules read, one target's service has too."""


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def sample_names(text: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


async def scrape_after_a_run(port: int, ran: str, child: ServiceProcess) -> str:
    """/metrics once ``ran`` (a sample line's start) shows a finished run."""
    scraped = [""]

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

        async def has_run() -> bool:
            try:
                scraped[0] = (await http.get("/metrics")).text
            except httpx.TransportError:
                return False
            return any(line.startswith(ran) and not line.endswith(" 0.0") for line in scraped[0].splitlines())

        async def poll() -> None:
            while not await has_run():
                if child.process.poll() is not None:
                    raise AssertionError(f"the service exited:\n{child.log}")
                await asyncio.sleep(0.05)

        try:
            await asyncio.wait_for(poll(), 30)
        except TimeoutError:
            raise AssertionError(f"no run finished within 30 s:\n{child.log}") from None
    return scraped[0]


async def test_every_metric_the_dashboard_and_the_rules_read_is_exposed(
    tmp_path: Path, okta: Okta, scim_url: str, scim_server: RunningScimServer
) -> None:
    people = okta.emulator.add_assigned_users(okta.app_id, 3)
    group = okta.emulator.create_group("Engineering")
    okta.emulator.add_group_member(group.id, people[0].id)
    single_port, fleet_port = free_loopback_port(), free_loopback_port()
    listen, groups = f"127.0.0.1:{single_port}", f'[groups]\npush = ["{group.id}"]\n'
    (tmp_path / "one").mkdir()
    config = service_config(tmp_path / "one", okta, scim_url, interval="1h", metrics_listen=listen, extra=groups)
    with fleet_lab(tmp_path / "fleet", scim_server, f"sqlite:///{tmp_path / 'fleet.db'}", tenants=1, users=3) as lab:
        text = lab.config_path.read_text().replace('listen = ""', f'listen = "127.0.0.1:{fleet_port}"')
        lab.config_path.write_text(text.replace('interval = "4.0s"', 'interval = "1h"'))
        single = ServiceProcess(config)
        replica = lab.start_replica("r1")
        try:
            one, fleet = await asyncio.gather(
                scrape_after_a_run(single_port, 'reconciler_runs_total{status="succeeded"}', single),
                scrape_after_a_run(fleet_port, "reconciler_tenant_runs_total{", replica),
            )
        finally:
            single.close()
    one_names, fleet_names = sample_names(one), sample_names(fleet)

    read = {name for expr in dashboard_exprs() + rule_exprs() for name in metric_names(expr)}
    assert {"reconciler_runs_total", "reconciler_time_to_repair_seconds_bucket", "reconciler_leases_lost_total"} <= read
    assert read - (one_names | fleet_names) == set(), "read by the dashboard or the rules, exposed by neither"
    assert read - FLEET_ONLY - one_names == set(), "not in one target's /metrics"
    assert FLEET_ONLY <= fleet_names
    for text in (one, fleet):  # the new series carry what the run did, not just their names
        values = {
            (s.name, s.labels.get("service")): s.value for f in text_string_to_metric_families(text) for s in f.samples
        }
        assert values[("reconciler_http_request_duration_seconds_count", "okta")] >= 1
        assert values[("reconciler_http_request_duration_seconds_count", "scim")] >= 1
        remaining = [s for f in text_string_to_metric_families(text) for s in f.samples]
        assert any(s.name == "reconciler_okta_rate_limit_remaining" and s.value > 0 for s in remaining)
    for shared in ("reconciler_quarantined", "reconciler_schedule_interval_seconds", "reconciler_actions_total"):
        assert shared in one_names and shared in fleet_names  # one name for both: the rules read it once
