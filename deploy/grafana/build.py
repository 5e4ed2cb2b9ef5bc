"""Writes okta-reconciler.json, the Grafana dashboard of ``reconcile serve``, from code (``make dashboards``).

Built with grafana-foundation-sdk (the ``dashboards`` extra), which types every panel and option as Grafana 11.6
reads them. Every query reads both expositions: one target's service (no ``tenant`` label: the tenant variable's
"All" is ``.*``, which matches an absent label) and a fleet's replicas (``reconciler_tenant_*`` and ``tenant``
labels). tests/deploy/test_dashboard.py checks that the committed JSON is what this script writes, and that every
metric it names is in a real ``/metrics``.

    python deploy/grafana/build.py            # rewrite the JSON
    python deploy/grafana/build.py --check    # exit 1 if the committed JSON is stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard as DashboardBuilder
from grafana_foundation_sdk.builders.dashboard import DatasourceVariable, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableOption, VariableRefresh, VariableSort

OUT = Path(__file__).with_name("okta-reconciler.json")
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
T = 'tenant=~"$tenant"'
"""Every query's tenant filter: on one target's series (no tenant label) only "All" (``.*``) matches."""


def query(expr: str, legend: str, ref: str = "A") -> Dataquery:
    return Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)


def series(title: str, description: str, unit: str, *queries: Dataquery) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE)
    panel = panel.height(8).span(12).min(0)
    for q in queries:
        panel = panel.with_target(q)
    return panel


def single_stat(title: str, description: str, unit: str, *queries: Dataquery) -> stat.Panel:
    panel = stat.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE).height(5).span(8)
    for q in queries:
        panel = panel.with_target(q)
    return panel


def runs_row() -> list:
    return [
        Row("Runs"),
        series(
            "Run outcomes",
            "Finished full runs by status, per interval (succeeded, partial, blocked, failed, interrupted…).",
            "short",
            query(f"sum by (status) (increase(reconciler_runs_total{{{T}}}[$__rate_interval]))", "{{status}}"),
            query(
                f"sum by (tenant, status) (increase(reconciler_tenant_runs_total{{{T}}}[$__rate_interval]))",
                "{{tenant}} {{status}}",
                "B",
            ),
        ),
        series(
            "Drift by kind",
            "What the last plan found, by action kind: users, and groups with [groups].",
            "short",
            query(f"sum by (kind) (reconciler_drift{{{T}}})", "{{kind}}"),
            query(f"sum by (kind) (reconciler_group_drift{{{T}}})", "group {{kind}}", "B"),
            query(f"max by (tenant, kind) (reconciler_tenant_drift{{{T}}})", "{{tenant}} {{kind}}", "C"),
        ),
        series(
            "Actions applied and failed",
            "Recorded user actions per interval, by kind and outcome.",
            "short",
            query(
                f'sum by (kind, outcome) (increase(reconciler_actions_total{{{T},outcome=~"succeeded|failed"}}'
                "[$__rate_interval]))",
                "{{kind}} {{outcome}}",
            ),
        ),
        series(
            "Time since the last successful run, against 3 × the interval",
            "The ReconcilerNoSuccessfulRun alert fires when the first line crosses the second.",
            "s",
            query(f"time() - (reconciler_last_success_timestamp_seconds{{{T}}} > 0)", "since last success"),
            query(
                f"time() - max by (tenant) (reconciler_tenant_last_success_timestamp_seconds{{{T}}} > 0)",
                "{{tenant}} since last success",
                "B",
            ),
            query(f"3 * max by (tenant) (reconciler_schedule_interval_seconds{{{T}}})", "{{tenant}} 3 × interval", "C"),
        ),
        single_stat(
            "Safety stops",
            "Runs the safety gate blocked in the dashboard's time range (full runs and System Log batches).",
            "short",
            query(f'sum(increase(reconciler_runs_total{{{T},status="blocked"}}[$__range])) or vector(0)', "one target"),
            query(
                f'sum(increase(reconciler_tenant_runs_total{{{T},status="blocked"}}[$__range]))'
                f' + sum(increase(reconciler_incremental_runs_total{{{T},status="blocked"}}[$__range]))',
                "fleet and batches",
                "B",
            ),
        ),
        single_stat(
            "Quarantined",
            "Targets running on the slower quarantine interval now.",
            "short",
            query(f"sum(reconciler_quarantined{{{T}}})", "quarantined"),
        ),
        single_stat(
            "Leases lost",
            "Run and follow leases lost under a replica in the time range (the lock's database session ended).",
            "short",
            query(f"sum(increase(reconciler_leases_lost_total{{{T}}}[$__range]))", "lost"),
        ),
    ]


def repair_row() -> list:
    buckets = f"sum by (le) (rate(reconciler_time_to_repair_seconds_bucket{{{T}}}[$__rate_interval]))"
    return [
        Row("Time to revoke and repair (System Log follower)"),
        series(
            "Time to repair",
            "From Okta publishing a change (a deactivation, an unassignment…) to the platform confirming its "
            "repair. All kinds of repair together: `reconcile report` splits deactivations out.",
            "s",
            query(f"histogram_quantile(0.5, {buckets})", "p50"),
            query(f"histogram_quantile(0.95, {buckets})", "p95", "B"),
            query(f"histogram_quantile(0.99, {buckets})", "p99", "C"),
        ),
        series(
            "Follower lag, against its bound",
            "How far behind Okta's System Log the follower is; [incremental] max_gap is its bound.",
            "s",
            query(f"max by (tenant) (reconciler_follower_lag_seconds{{{T}}})", "{{tenant}} lag"),
            query(f"max by (tenant) (reconciler_follower_lag_bound_seconds{{{T}}})", "{{tenant}} bound", "B"),
        ),
    ]


def http_row() -> list:
    latency = "sum by (service, le) (rate(reconciler_http_request_duration_seconds_bucket[$__rate_interval]))"
    return [
        Row("Okta and the platform"),
        series(
            "Okta rate budget left",
            "What is left of each Okta rate-limit window (X-Rate-Limit-Remaining / X-Rate-Limit-Limit), by org "
            "and family of endpoints.",
            "percentunit",
            query(
                "min by (org, family) (reconciler_okta_rate_limit_remaining / reconciler_okta_rate_limit)",
                "{{org}} {{family}}",
            ),
        ),
        series(
            "429 answers",
            "Requests answered 429 (Too Many Requests), by side, per interval.",
            "short",
            query(
                'sum by (service) (increase(reconciler_http_requests_total{status="429"}[$__rate_interval]))',
                "{{service}}",
            ),
        ),
        series(
            "HTTP latency per side",
            "Request duration to Okta and to the SCIM platform, answer read.",
            "s",
            query(f"histogram_quantile(0.5, {latency})", "{{service}} p50"),
            query(f"histogram_quantile(0.95, {latency})", "{{service}} p95", "B"),
        ),
        series(
            "Lease holders per replica",
            "A fleet's replicas: the run leases each holds (runs in flight) and the follow leases (tenants "
            "whose System Log it follows).",
            "short",
            query("sum by (instance) (reconciler_runs_in_flight)", "{{instance}} runs"),
            query("sum by (instance) (reconciler_tenants_followed)", "{{instance}} follows", "B"),
        ),
    ]


def dashboard() -> DashboardBuilder:
    board = (
        DashboardBuilder("okta-reconciler")
        .uid("okta-reconciler")
        .description("reconcile serve: runs, drift, actions, safety stops, time to repair, Okta and SCIM traffic.")
        .tags(["okta-reconciler", "generated"])
        .refresh("1m")
        .time("now-24h", "now")
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            QueryVariable("tenant")
            .label("Tenant")
            .datasource(DATASOURCE)
            .query("label_values(reconciler_schedule_interval_seconds, tenant)")
            .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(VariableOption(selected=True, text="All", value="$__all"))
        )
    )
    for row in (runs_row(), repair_row(), http_row()):
        for panel in row:
            board = board.with_row(panel) if isinstance(panel, Row) else board.with_panel(panel)
    return board


def dashboard_json() -> str:
    return json.dumps(json.loads(JSONEncoder(sort_keys=True, indent=2).encode(dashboard().build())), indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = dashboard_json()
    if "--check" in argv:
        if OUT.read_text() != text:
            print(f"{OUT} is stale: run `make dashboards`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
