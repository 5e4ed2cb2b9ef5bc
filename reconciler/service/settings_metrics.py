"""The settings the alert rules compare against, exposed as gauges so that a rule compares series, not constants.

==========================================  =====================================================================
``schedule_interval_seconds``               the schedule's period (a cron schedule: its longest gap), without the
                                            quarantine's slowdown: "no successful run in 3 × the interval"
``drift_threshold{kind}``                   ``[thresholds] max_KIND``: above this count a kind of user action
                                            trips the safety gate (the group kinds' member limits count members,
                                            not the actions ``group_drift`` counts: not compared)
``max_error_ratio``                         ``[thresholds] max_error_ratio``: the share of failed writes that
                                            stops a run
``follower_enabled``                        1 when ``[incremental] enabled``: the System Log should be followed
``follower_lag_bound_seconds``              ``[incremental] max_gap``: a follower further behind than this is
                                            no longer trusted to have seen every change
==========================================  =====================================================================

A fleet's replica labels each with ``tenant``; every replica shows every tenant's (they come from the file).
The alert rules (``deploy/prometheus/alerts.yml``) and the runbook (``docs/alerts.md``) read them.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Gauge

from reconciler.config.model import Config
from reconciler.service.families import PREFIX, labelled
from reconciler.service.schedule import schedule_period_s


class SettingsMetrics:
    """The settings' gauges of one service (labels ``()``) or of a fleet's tenants (labels ``("tenant",)``)."""

    def __init__(self, registry: CollectorRegistry, labels: Sequence[str] = ()) -> None:
        names = list(labels)
        self.interval = Gauge(
            f"{PREFIX}_schedule_interval_seconds",
            "The schedule's period (cron: its longest gap), without the quarantine's slowdown.",
            names,
            registry=registry,
        )
        self.drift_threshold = Gauge(
            f"{PREFIX}_drift_threshold",
            "[thresholds] max_KIND: above this count of a kind the safety gate trips.",
            [*names, "kind"],
            registry=registry,
        )
        self.max_error_ratio = Gauge(
            f"{PREFIX}_max_error_ratio",
            "[thresholds] max_error_ratio: the share of failed writes that stops a run.",
            names,
            registry=registry,
        )
        self.follower_enabled = Gauge(
            f"{PREFIX}_follower_enabled", "1 when [incremental] enabled is true.", names, registry=registry
        )
        self.lag_bound = Gauge(
            f"{PREFIX}_follower_lag_bound_seconds",
            "[incremental] max_gap: the follower's lag beyond which it is no longer trusted.",
            names,
            registry=registry,
        )
        self._shown: dict[tuple[str, ...], Config] = {}

    def show(self, config: Config, *label_values: str) -> None:
        """Set the gauges of ``config`` (for the tenant ``label_values``); nothing to do when it has not changed."""
        if self._shown.get(label_values) is config:
            return
        self._shown[label_values] = config
        values = {
            self.interval: schedule_period_s(config.schedule),
            self.max_error_ratio: config.thresholds.max_error_ratio,
            self.follower_enabled: int(config.incremental.enabled),
            self.lag_bound: config.incremental.max_gap_s,
        }
        for gauge, value in values.items():
            labelled(gauge, label_values).set(value)
        for kind, limit in config.thresholds.limits.items():
            self.drift_threshold.labels(*label_values, kind).set(limit.count)
