"""Prometheus metrics and ``/healthz`` for ``reconcile serve``, served from the service's own event loop.

Metrics (all prefixed ``reconciler_``):

==========================================  =========  =====================================================
``runs_total{status}``                      counter    finished runs by status (succeeded, partial, failed,
                                                       blocked, interrupted, ...)
``drift{kind}``                             gauge      what the last plan found, by action kind
``in_sync_users``                           gauge      users the last plan found in sync
``actions_total{kind,outcome}``             counter    recorded actions by kind and outcome (succeeded,
                                                       failed, skipped, interrupted), read from the store
``group_drift{kind}``                       gauge      what the last group plan found (with ``[groups]``)
``group_actions_total{kind,outcome}``       counter    recorded group actions by kind and outcome
``http_requests_total{service,status}``     counter    requests to ``okta`` and ``scim`` by HTTP status;
                                                       ``error`` when no answer came (refused, timeout)
``run_duration_seconds``                    histogram  how long runs take
``last_success_timestamp_seconds``          gauge      when the last successful run ended (Unix time)
``consecutive_failures``                    gauge      failed runs in a row for the target
``quarantined``                             gauge      1 while the service runs on the slower quarantine
                                                       interval
==========================================  =========  =====================================================

With a file of ``[[tenants]]`` a replica serves :class:`FleetMetrics` instead: the
same names per tenant (``tenant_runs_total{tenant,status}``, ``tenant_drift{tenant,kind}``,
``tenant_last_success_timestamp_seconds{tenant}``, ``tenant_consecutive_failures{tenant}``,
``tenant_running{tenant}``) and the replica's own (``runs_in_flight``, ``claims_total{outcome}``,
``run_duration_seconds``, ``http_requests_total``); its ``/healthz`` says whether it keeps
looking for due tenants (:class:`reconciler.fleet.ReplicaHealth`).

A run is *successful* here when it read both sides whole and did what policy
allowed: succeeded, partial (some writes failed) or blocked (the safety gate
held writes back and alerted). A failed or interrupted run is not.

HTTP requests are counted through :func:`observe_http`, which the Okta and
SCIM clients call for every request they send (including retries and Okta's
OAuth token requests); it does nothing until a service registers an observer.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from reconciler.models.groups import GroupActionKind
from reconciler.models.records import SUMMARY_KEYS
from reconciler.models.runs import SUCCESSFUL, RunStatus

if TYPE_CHECKING:
    from reconciler.config.model import Config
    from reconciler.models.groups import GroupPlan
    from reconciler.models.records import Plan
    from reconciler.run.outcome import RunOutcome
    from reconciler.store import ActionRecord, GroupActionRecord, TenantState

log = logging.getLogger(__name__)

PREFIX: Final = "reconciler"
STALE_AFTER_INTERVALS: Final = 3
"""``/healthz`` fails once the last successful run is older than this many schedule intervals."""
DRIFT_KINDS: Final = tuple(key for key in SUMMARY_KEYS if key != "in_sync")
DURATION_BUCKETS: Final = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)

# --- HTTP request counting: a hook the clients call --------------------------------------------


# --- the metrics -------------------------------------------------------------------------------


class ServiceMetrics:
    """The service's metrics, in a registry of their own (not prometheus_client's global one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter(f"{PREFIX}_runs", "Finished reconcile runs by status.", ["status"], registry=r)
        self.drift = Gauge(f"{PREFIX}_drift", "Drift found by the last plan, by action kind.", ["kind"], registry=r)
        self.in_sync = Gauge(f"{PREFIX}_in_sync_users", "Users the last plan found in sync.", registry=r)
        self.actions = Counter(
            f"{PREFIX}_actions", "Recorded actions by kind and outcome.", ["kind", "outcome"], registry=r
        )
        self.group_drift = Gauge(
            f"{PREFIX}_group_drift", "Group drift found by the last plan, by group action kind.", ["kind"], registry=r
        )
        self.group_actions = Counter(
            f"{PREFIX}_group_actions", "Recorded group actions by kind and outcome.", ["kind", "outcome"], registry=r
        )
        self.http_requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests sent to Okta and to the SCIM platform, by HTTP status ('error': no answer).",
            ["service", "status"],
            registry=r,
        )
        self.duration = Histogram(
            f"{PREFIX}_run_duration_seconds", "Duration of reconcile runs.", buckets=DURATION_BUCKETS, registry=r
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "When the last successful run ended (Unix time; 0 before any).",
            registry=r,
        )
        self.consecutive_failures = Gauge(
            f"{PREFIX}_consecutive_failures", "Failed runs in a row for the target.", registry=r
        )
        self.quarantined = Gauge(
            f"{PREFIX}_quarantined", "1 while the service runs on the slower quarantine interval.", registry=r
        )
        for status in RunStatus:
            if status is not RunStatus.RUNNING:
                self.runs.labels(status.value)

    def observe_http(self, service: str, status: int | None) -> None:
        self.http_requests.labels(service, "error" if status is None else str(status)).inc()

    def run_finished(
        self,
        status: RunStatus,
        duration_s: float,
        plan: Plan | None = None,
        actions: Iterable[ActionRecord] = (),
        ended_at: float | None = None,
        *,
        group_plan: GroupPlan | None = None,
        group_actions: Iterable[GroupActionRecord] = (),
    ) -> None:
        """Count one finished run; ``plan`` and ``group_plan`` (when made) replace the drift gauges."""
        self.runs.labels(status.value).inc()
        self.duration.observe(duration_s)
        if plan is not None:
            summary = plan.summary()
            for kind in DRIFT_KINDS:
                self.drift.labels(kind).set(summary[kind])
            self.in_sync.set(summary["in_sync"])
        outcomes = Tally((record.kind.value, record.status.value) for record in actions)
        for (kind, outcome), count in outcomes.items():
            self.actions.labels(kind, outcome).inc(count)
        if group_plan is not None:
            group_summary = group_plan.summary()
            for kind in GroupActionKind:
                if kind is not GroupActionKind.UNMANAGED:
                    self.group_drift.labels(kind.value).set(group_summary[kind.value])
        group_outcomes = Tally((record.kind.value, record.status.value) for record in group_actions)
        for (kind, outcome), count in group_outcomes.items():
            self.group_actions.labels(kind, outcome).inc(count)
        if status in SUCCESSFUL:
            self.last_success.set(ended_at if ended_at is not None else time.time())

    def render(self) -> bytes:
        return generate_latest(self.registry)


class FleetMetrics:
    """A replica's metrics for a file of tenants (``reconcile serve`` with ``[[tenants]]``).

    Per tenant, from the store (every replica shows the whole fleet, whichever
    replica ran the tenant): ``tenant_last_success_timestamp_seconds``,
    ``tenant_consecutive_failures``, ``tenant_running``. Per tenant, from this
    replica's own runs: ``tenant_runs_total{tenant,status}`` and
    ``tenant_drift{tenant,kind}`` (user and group kinds). The replica's own:
    ``runs_in_flight``, ``claims_total{outcome}`` (started; busy: another replica
    took it first; not_due: another replica had just run it),
    ``run_duration_seconds`` and ``http_requests_total{service,status}``.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
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
        self.tenant_running = Gauge(
            f"{PREFIX}_tenant_running", "1 while a run of the tenant is recorded running.", ["tenant"], registry=r
        )
        self.in_flight = Gauge(f"{PREFIX}_runs_in_flight", "Tenant runs this replica is doing now.", registry=r)
        self.claims = Counter(
            f"{PREFIX}_claims", "Attempts to claim a due tenant, by outcome.", ["outcome"], registry=r
        )
        self.duration = Histogram(
            f"{PREFIX}_run_duration_seconds", "Duration of this replica's runs.", buckets=DURATION_BUCKETS, registry=r
        )
        self.http_requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests sent to Okta and to the SCIM platforms, by HTTP status ('error': no answer).",
            ["service", "status"],
            registry=r,
        )
        for outcome in ("started", "busy", "not_due"):
            self.claims.labels(outcome)

    def observe_http(self, service: str, status: int | None) -> None:
        self.http_requests.labels(service, "error" if status is None else str(status)).inc()

    def tenants_seen(self, tenants: Iterable[Config], states: Mapping[str, TenantState]) -> None:
        """Refresh the per-tenant gauges from the store's view (see :meth:`reconciler.store.Store.tenant_states`)."""
        from reconciler.config.model import fingerprint

        for config in tenants:
            name = config.tenant or config.okta.app_id
            state = states.get(fingerprint(config))
            if state is None:
                continue
            success = state.last_success_at
            self.last_success.labels(name).set(success.timestamp() if success is not None else 0)
            self.consecutive_failures.labels(name).set(state.consecutive_failures)
            running = state.latest is not None and state.latest.status is RunStatus.RUNNING
            self.tenant_running.labels(name).set(int(running))

    def run_finished(self, tenant: str, status: RunStatus, duration_s: float, outcome: RunOutcome | None) -> None:
        self.runs.labels(tenant, status.value).inc()
        self.duration.observe(duration_s)
        if outcome is not None and outcome.plan is not None:
            for kind, count in outcome.plan.summary().items():
                if kind != "in_sync":
                    self.drift.labels(tenant, kind).set(count)
        if outcome is not None and outcome.group_plan is not None:
            for kind, count in outcome.group_plan.summary().items():
                if kind not in ("in_sync", GroupActionKind.UNMANAGED.value):
                    self.drift.labels(tenant, kind).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


# --- health ------------------------------------------------------------------------------------


@dataclass
class Health:
    """``/healthz``: healthy while the last successful run is not older than 3 × the schedule's interval.

    Before any successful run, the service's start counts instead: a service
    that just started is given three intervals to succeed once.
    """

    interval_s: float
    """The schedule's interval (for a cron schedule, the longest gap between two runs)."""
    started_at: float = field(default_factory=time.time)
    last_success_at: float | None = None
    clock: Callable[[], float] = time.time

    def check(self) -> tuple[bool, str]:
        """(healthy, one line saying why)."""
        now = self.clock()
        limit = STALE_AFTER_INTERVALS * self.interval_s
        if self.last_success_at is None:
            age = now - self.started_at
            what = f"no successful run yet; the service started {_age(age)} ago"
        else:
            age = now - self.last_success_at
            what = f"last successful run ended {_age(age)} ago ({_utc(self.last_success_at)})"
        if age > limit:
            return False, f"stale: {what}, more than {STALE_AFTER_INTERVALS} x the {_age(self.interval_s)} interval"
        return True, f"ok: {what}"


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{round(seconds / 3600, 1):g} h"


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the HTTP endpoint -------------------------------------------------------------------------


class Rendered(Protocol):
    def render(self) -> bytes: ...


class HealthCheck(Protocol):
    def check(self) -> tuple[bool, str]: ...


class MetricsServer:
    """``GET /metrics`` (Prometheus text format) and ``GET /healthz`` on exactly ``host:port``."""

    def __init__(self, metrics: Rendered, health: HealthCheck, host: str, port: int) -> None:
        self.metrics, self.health = metrics, health
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen; raises OSError when the address cannot be bound (in use, not local)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port, reuse_address=True).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [tuple(a[:2]) for a in self._runner.addresses] if self._runner else []  # type: ignore[misc]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        healthy, why = self.health.check()
        return web.Response(status=200 if healthy else 503, text=why + "\n")
