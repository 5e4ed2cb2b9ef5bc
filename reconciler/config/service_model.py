"""The tables of ``reconcile serve``: ``[schedule]``, ``[metrics]`` and ``[service]``. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from reconciler.config.connections_model import MAX_CONCURRENCY
from reconciler.config.keys import ValueType, duration, flag, integer, setting, text

CRONTAB: Final = ValueType(
    "crontab",
    'A 5-field crontab expression (minute hour day month weekday), e.g. ``"*/30 * * * *"``, read as cron(8) '
    "reads it: weekday 0 or 7 is Sunday, and when both the day and the weekday are restricted (neither starts "
    'with ``*``) a day matches if either does: ``"0 3 1 * 1"`` runs on the 1st and on every Monday.',
)


ADDRESS: Final = ValueType("host:port", 'A host and a port, e.g. ``"127.0.0.1:9464"``; an IPv6 host in brackets.')


@dataclass(frozen=True)
class ScheduleConfig:
    """When ``reconcile serve`` runs: every ``interval``, or on a ``cron`` expression; runs never overlap."""

    interval_s: float = setting(
        duration("interval", "Run this often (or on ``cron`` instead: set only one of them)."), default=1800.0
    )
    cron: str | None = setting(
        text("cron", "A 5-field crontab expression to run on instead of ``interval``.", CRONTAB), default=None
    )
    jitter_s: float = setting(
        duration(
            "jitter",
            "Each run starts up to this much later, so that deployments do not hit Okta at once; 0 turns it off.",
            zero="no jitter",
        ),
        default=60.0,
    )
    run_at_start: bool = setting(flag("run_at_start", "Run once as soon as the service starts."), default=True)
    stop_timeout_s: float = setting(
        duration(
            "stop_timeout",
            "On SIGTERM, the in-flight run's writes get this long to finish; then it is recorded as "
            '"interrupted" (the next run converges from live state). 0: no grace, they are cancelled at once.',
            zero="no grace",
        ),
        default=30.0,
    )


@dataclass(frozen=True)
class MetricsConfig:
    """Prometheus ``/metrics`` and ``/healthz`` of ``reconcile serve``."""

    listen: str | None = setting(
        text(
            "listen",
            'The host:port to listen on; ``""`` turns it off. ``/healthz`` answers 200 while the last successful '
            "run is not older than 3 × the interval.",
            ADDRESS,
        ),
        default="127.0.0.1:9464",
    )
    """None: turned off."""

    @property
    def address(self) -> tuple[str, int] | None:
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class ServiceConfig:
    """How one ``reconcile serve`` replica of a file of ``[[tenants]]`` works; only with ``[[tenants]]``.

    Replicas share the work through the store, with no coordinator: every ``tick`` a replica claims
    the tenants that are due, most overdue first, up to ``concurrency`` at once.
    """

    concurrency: int = setting(
        integer("concurrency", 1, MAX_CONCURRENCY, "Tenant runs one replica does at once."), default=4
    )
    tick_s: float = setting(duration("tick", "How often a replica looks for tenants that are due."), default=5.0)
    replica: str | None = setting(
        text(
            "replica",
            "Its name in ``reconcile status``, kept with every run: 1 to 128 printable characters. Default: "
            "the host name and pid. A file shared by every host is better without it: ``reconcile serve "
            "--replica NAME`` names each replica.",
        ),
        default=None,
    )
    """None: the host name and pid, chosen elsewhere."""


_REPLICA_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")


def valid_replica_name(name: str) -> bool:
    """1 to 128 printable characters: it is shown in ``reconcile status`` and kept with every run."""
    return bool(_REPLICA_NAME.match(name))
