"""Prometheus metrics of one replica of a fleet (``reconcile serve`` with ``[[tenants]]``).

Per tenant, from the store (every replica shows the whole fleet, whichever
replica ran the tenant): ``tenant_last_success_timestamp_seconds{tenant}``,
``tenant_consecutive_failures{tenant}``, ``tenant_consecutive_interrupted{tenant}`` (runs in a row that died
with their replica), ``tenant_running{tenant}``. Per tenant,
from this replica's own runs: ``tenant_runs_total{tenant,status}``,
``tenant_drift{tenant,kind}`` (user and group kinds) and ``actions_total{tenant,kind,outcome}`` (the user
actions its scheduled runs recorded); ``quarantined{tenant}`` (1 while quarantined, for either reason:
:func:`reconciler.service.schedule.tenant_quarantined`); ``leases_lost_total{tenant,lease}`` (a ``run`` cancelled,
or a ``follow``-ing stopped, because its lock's database session ended under it); the settings the alert rules
compare against (:mod:`reconciler.service.settings_metrics`). The replica's own:
``runs_in_flight`` (the run leases it holds), ``claims_total{outcome}`` (started; busy: another replica
took it first; not_due: another replica had just run it; quarantined: its
runs kept dying with their replica; suspect_waits: it runs only alone),
``run_duration_seconds`` and ``http_requests_total{service,status}``. The System Log followers
(:mod:`reconciler.service.follow_metrics`), each labelled ``tenant``, for the tenants this replica follows, and
``tenants_followed``: how many it follows now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

from reconciler.config.model import Config, fingerprint
from reconciler.models.groups import GroupActionKind
from reconciler.models.runs import RunStatus
from reconciler.service.families import PREFIX, each_status_from_zero
from reconciler.service.follow_metrics import FollowMetrics
from reconciler.service.metrics import PrometheusMetrics, count_actions
from reconciler.service.schedule import tenant_name, tenant_quarantined
from reconciler.service.settings_metrics import SettingsMetrics

if TYPE_CHECKING:
    from reconciler.run.outcome import RunOutcome
    from reconciler.store import ActionRecord, TenantState


class FleetMetrics(PrometheusMetrics):
    """A replica's metrics for a file of tenants (see the module's docstring)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.runs = Counter(
            f"{PREFIX}_tenant_runs",
            "Runs this replica finished, by tenant and status.",
            ["tenant", "status"],
            registry=r,
        )
        self.drift = Gauge(
            f"{PREFIX}_tenant_drift",
            "Drift found by the tenant's last plan here, by kind.",
            ["tenant", "kind"],
            registry=r,
        )
        self.last_success = Gauge(
            f"{PREFIX}_tenant_last_success_timestamp_seconds",
            "When the tenant's last successful run ended, by any replica (Unix time; 0 before any).",
            ["tenant"],
            registry=r,
        )
        self.consecutive_failures = Gauge(
            f"{PREFIX}_tenant_consecutive_failures", "The tenant's failed runs in a row.", ["tenant"], registry=r
        )
        self.consecutive_interrupted = Gauge(
            f"{PREFIX}_tenant_consecutive_interrupted",
            "The tenant's runs in a row that died with their replica (a crash, an OOM kill).",
            ["tenant"],
            registry=r,
        )
        self.tenant_running = Gauge(
            f"{PREFIX}_tenant_running", "1 while a run of the tenant is recorded running.", ["tenant"], registry=r
        )
        self.in_flight = Gauge(f"{PREFIX}_runs_in_flight", "Tenant runs this replica is doing now.", registry=r)
        self.claims = Counter(
            f"{PREFIX}_claims", "Attempts to claim a due tenant, by outcome.", ["outcome"], registry=r
        )
        self.duration = self.run_duration_histogram("Duration of this replica's runs.")
        self.http_requests = self.http_requests_counter(
            "HTTP requests sent to Okta and to the SCIM platforms, by HTTP status ('error': no answer)."
        )
        self._seen: set[str] = set()
        self.follow = FollowMetrics(r, ["tenant"])
        self.followed = Gauge(
            f"{PREFIX}_tenants_followed", "Tenants whose System Log this replica follows now.", registry=r
        )
        self.actions = Counter(
            f"{PREFIX}_actions",
            "User actions this replica's runs recorded, by tenant, kind and outcome.",
            ["tenant", "kind", "outcome"],
            registry=r,
        )
        self.quarantined = Gauge(
            f"{PREFIX}_quarantined",
            "1 while the tenant is quarantined (failed runs, or runs that died with their replica, in a row).",
            ["tenant"],
            registry=r,
        )
        self.leases_lost = Counter(
            f"{PREFIX}_leases_lost",
            "Leases this replica lost under a run (run) or a follower (follow): the lock's database session ended.",
            ["tenant", "lease"],
            registry=r,
        )
        self.settings = SettingsMetrics(r, ["tenant"])
        for outcome in ("started", "busy", "not_due", "quarantined", "suspect_waits"):
            self.claims.labels(outcome)

    def tenants_seen(self, tenants: Iterable[Config], states: Mapping[str, TenantState]) -> None:
        """Refresh the per-tenant gauges from the store's view (see :meth:`reconciler.store.Store.tenant_states`)."""
        for config in tenants:
            name = tenant_name(config)
            state = states.get(fingerprint(config))
            self.settings.show(config, name)
            if state is None:
                continue
            if name not in self._seen:
                self._seen.add(name)  # each status from 0, so that the first blocked run shows as an increase
                each_status_from_zero(self.runs, name)
                for lease in ("run", "follow"):
                    self.leases_lost.labels(name, lease)
            self.quarantined.labels(name).set(int(tenant_quarantined(state, config.thresholds)))
            success = state.last_success_at
            self.last_success.labels(name).set(success.timestamp() if success is not None else 0)
            self.consecutive_failures.labels(name).set(state.consecutive_failures)
            self.consecutive_interrupted.labels(name).set(state.consecutive_crashes)
            running = state.latest is not None and state.latest.status is RunStatus.RUNNING
            self.tenant_running.labels(name).set(int(running))

    def run_finished(
        self,
        tenant: str,
        status: RunStatus,
        duration_s: float,
        outcome: RunOutcome | None,
        actions: Iterable[ActionRecord] = (),
    ) -> None:
        self.runs.labels(tenant, status.value).inc()
        count_actions(self.actions, actions, tenant)
        self.duration.observe(duration_s)
        if outcome is not None and outcome.plan is not None:
            self._drift(tenant, outcome.plan.summary(), leave_out=("in_sync",))
        if outcome is not None and outcome.group_plan is not None:
            self._drift(tenant, outcome.group_plan.summary(), leave_out=("in_sync", GroupActionKind.UNMANAGED.value))

    def _drift(self, tenant: str, summary: Mapping[str, int], leave_out: tuple[str, ...]) -> None:
        for kind, count in summary.items():
            if kind not in leave_out:
                self.drift.labels(tenant, kind).set(count)
