"""Prometheus metrics of ``reconcile serve`` for one target; what every service's metrics share.

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
``http_request_duration_seconds{service}``  histogram  how long requests to ``okta`` and ``scim`` take
``okta_rate_limit{org,family}``             gauge      Okta's window for a rate-limit family
                                                       (``X-Rate-Limit-Limit`` of the latest answer)
``okta_rate_limit_remaining{org,family}``   gauge      what is left of it (``X-Rate-Limit-Remaining``)
==========================================  =========  =====================================================

The settings the alert rules compare against are in :mod:`reconciler.service.settings_metrics`.

With a file of ``[[tenants]]`` a replica serves
:class:`reconciler.service.fleet_metrics.FleetMetrics` instead, and its ``/healthz``
says whether it keeps looking for due tenants (:mod:`reconciler.service.health`).

A run is *successful* here when it read both sides whole and did what policy
allowed: succeeded, partial (some writes failed) or blocked (the safety gate
held writes back and alerted). A failed or interrupted run is not.

HTTP requests are counted and timed through :func:`reconciler.hooks.observe_http`, which
the Okta and SCIM clients call for every request they send (including retries
and Okta's OAuth token requests); a service registers :meth:`PrometheusMetrics.observe_http`
with :func:`reconciler.hooks.http_observer` while it serves, and :meth:`PrometheusMetrics.observe_rate_limit`
with :func:`reconciler.hooks.rate_limit_observer`.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from reconciler.models.groups import GroupActionKind
from reconciler.models.records import SUMMARY_KEYS
from reconciler.models.runs import SUCCESSFUL, RunStatus
from reconciler.service.families import PREFIX, each_status_from_zero
from reconciler.service.settings_metrics import SettingsMetrics

if TYPE_CHECKING:
    from reconciler.models.groups import GroupPlan
    from reconciler.models.records import Plan
    from reconciler.store import ActionRecord, GroupActionRecord

DRIFT_KINDS: Final = tuple(key for key in SUMMARY_KEYS if key != "in_sync")
DURATION_BUCKETS: Final = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
HTTP_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class PrometheusMetrics:
    """Metrics in a registry of their own (not prometheus_client's global one), with their HTTP request count."""

    http_requests: Counter

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "How long requests to Okta and to the SCIM platform take, answer read (or no answer).",
            ["service"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.rate_limit = Gauge(
            f"{PREFIX}_okta_rate_limit",
            "Okta's rate-limit window for a family of endpoints (X-Rate-Limit-Limit of the latest answer).",
            ["org", "family"],
            registry=r,
        )
        self.rate_limit_remaining = Gauge(
            f"{PREFIX}_okta_rate_limit_remaining",
            "What is left of Okta's rate-limit window (X-Rate-Limit-Remaining of the latest answer).",
            ["org", "family"],
            registry=r,
        )
        for service in ("okta", "scim"):
            self.http_duration.labels(service)

    def http_requests_counter(self, description: str) -> Counter:
        """``http_requests_total{service,status}``; made by each service where it stands in the exposition."""
        return Counter(f"{PREFIX}_http_requests", description, ["service", "status"], registry=self.registry)

    def run_duration_histogram(self, description: str) -> Histogram:
        return Histogram(
            f"{PREFIX}_run_duration_seconds", description, buckets=DURATION_BUCKETS, registry=self.registry
        )

    def observe_http(self, service: str, status: int | None, elapsed_s: float | None = None) -> None:
        """The :data:`reconciler.hooks.HttpObserver` that counts (and times) a request to ``service``."""
        self.http_requests.labels(service, "error" if status is None else str(status)).inc()
        if elapsed_s is not None:
            self.http_duration.labels(service).observe(elapsed_s)

    def observe_rate_limit(self, org: str, family: str, limit: int, remaining: int) -> None:
        """The :data:`reconciler.hooks.RateLimitObserver` that shows what is left of an Okta window."""
        self.rate_limit.labels(org, family).set(limit)
        self.rate_limit_remaining.labels(org, family).set(remaining)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ServiceMetrics(PrometheusMetrics):
    """The metrics of ``reconcile serve`` for one target (see the module's docstring)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
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
        self.http_requests = self.http_requests_counter(
            "HTTP requests sent to Okta and to the SCIM platform, by HTTP status ('error': no answer)."
        )
        self.duration = self.run_duration_histogram("Duration of reconcile runs.")
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
        self.settings = SettingsMetrics(r)
        each_status_from_zero(self.runs)

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
            self._planned(plan)
        if group_plan is not None:
            self._group_planned(group_plan)
        count_actions(self.actions, actions)
        count_actions(self.group_actions, group_actions)
        if status in SUCCESSFUL:
            self.last_success.set(ended_at if ended_at is not None else time.time())

    def actions_recorded(self, actions: Iterable[ActionRecord]) -> None:
        """Count the actions of a run that is not counted as one here (an incremental batch)."""
        count_actions(self.actions, actions)

    def _planned(self, plan: Plan) -> None:
        summary = plan.summary()
        for kind in DRIFT_KINDS:
            self.drift.labels(kind).set(summary[kind])
        self.in_sync.set(summary["in_sync"])

    def _group_planned(self, group_plan: GroupPlan) -> None:
        summary = group_plan.summary()
        for kind in GroupActionKind:
            if kind is not GroupActionKind.UNMANAGED:
                self.group_drift.labels(kind.value).set(summary[kind.value])


def count_actions(counter: Counter, records: Iterable[ActionRecord | GroupActionRecord], *labels: str) -> None:
    """Add recorded actions to ``counter`` by kind and outcome (after ``labels``: a fleet's tenant)."""
    outcomes = Tally((record.kind.value, record.status.value) for record in records)
    for (kind, outcome), count in outcomes.items():
        counter.labels(*labels, kind, outcome).inc(count)
