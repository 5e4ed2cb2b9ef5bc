"""The configuration's model: one frozen dataclass per TOML table, with its defaults. Pure: no I/O, no parsing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal
from urllib.parse import urlsplit, urlunsplit

from reconciler.config.mapping import (
    SourceSpec,
)
from reconciler.errors import ConfigError
from reconciler.net.limits import (
    DEFAULT_MAX_RESPONSE_BYTES,
)
from reconciler.secret import Secret

DEFAULT_SCOPES: Final = ("okta.apps.read", "okta.users.read", "okta.groups.read")


DEFAULT_STORE_URL: Final = "sqlite:///reconciler.db"
"""A SQLite file ``reconciler.db`` in the current directory."""


MAX_PAGE_SIZE: Final = 1000


OktaAuth = Literal["api_token", "private_key"]


UnmanagedPolicy = Literal["report", "deactivate"]


SuspendedPolicy = Literal["deactivate", "keep"]


@dataclass(frozen=True)
class OktaConfig:
    org_url: str
    app_id: str
    auth: OktaAuth
    token: Secret | None = None
    """The SSWS API token, with ``auth = "api_token"``."""
    client_id: str | None = None
    private_key: Secret | None = None
    """The PEM or JWK text read from ``private_key_file``, with ``auth = "private_key"``."""
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    timeout_s: float = 30.0
    rate_limit_share: float = 0.5
    """The share of each Okta rate-limit window a run may spend (Okta's per-token default is 50 %)."""
    ca_bundle: Path | None = None
    """A PEM file of the CA certificates to trust for Okta instead of the system's (a TLS-inspecting proxy)."""
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """An answer larger than this is refused unread."""


@dataclass(frozen=True)
class ScimConfig:
    base_url: str
    token: Secret
    page_size: int = 100
    timeout_s: float = 30.0
    read_concurrency: int = 4
    """SCIM pages fetched at once, once the first page has told how many there are."""
    write_concurrency: int = 4
    """SCIM writes in flight at most; fewer while the platform answers 429."""
    ca_bundle: Path | None = None
    """A PEM file of the CA certificates to trust for the platform instead of the system's (a private CA)."""
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """An answer larger than this is refused unread."""


@dataclass(frozen=True)
class PolicyConfig:
    unmanaged: UnmanagedPolicy = "report"
    """What to do with platform users Okta never managed."""
    suspended: SuspendedPolicy = "keep"
    """What to do with users Okta has SUSPENDED (Okta itself sends nothing)."""


@dataclass(frozen=True)
class StoreConfig:
    url: str = field(default=DEFAULT_STORE_URL, repr=False)
    """An SQLAlchemy database URL; it may hold a database password, hence the masked repr."""

    def __repr__(self) -> str:
        return f"StoreConfig(url={_masked_url(self.url)!r})"


@dataclass(frozen=True)
class KindLimit:
    """A kind of action trips the safety gate above ``count``, or above ``ratio`` of its population."""

    count: int
    ratio: float


DEFAULT_LIMITS: Final[Mapping[str, KindLimit]] = MappingProxyType(
    {
        "create": KindLimit(1000, 0.5),
        "update": KindLimit(1000, 0.5),
        "deactivate": KindLimit(50, 0.1),
        "reactivate": KindLimit(100, 0.1),
        "link": KindLimit(1000, 0.5),
    }
)
"""Safe for 50 to 100,000 users: a routine run stays well below, a mass event trips."""


GROUP_LIMITS: Final[Mapping[str, KindLimit]] = MappingProxyType(
    {
        "create_group": KindLimit(100, 0.5),
        "link_group": KindLimit(100, 0.5),
        "rename_group": KindLimit(100, 0.5),
        "delete_group": KindLimit(10, 0.1),
        "add_members": KindLimit(10_000, 1.0),
        "remove_members": KindLimit(500, 0.1),
    }
)
"""The group kinds' limits. ``add_members`` and ``remove_members`` count members, not
requests: one action can empty a 5,000-member group, and that is what must trip.
Additions have no ratio by default (1.0): a newly pushed group adds all of its members,
every time, and an addition takes nothing from anyone; their count still has a ceiling."""


OnThreshold = Literal["stop", "skip_gated"]


@dataclass(frozen=True)
class ThresholdsConfig:
    limits: Mapping[str, KindLimit] = field(default_factory=lambda: DEFAULT_LIMITS)
    group_limits: Mapping[str, KindLimit] = field(default_factory=lambda: GROUP_LIMITS)
    min_count_for_ratio: int = 10
    """The ``max_<kind>_ratio`` limits apply from this many actions of a kind: in a small
    population a ratio alone would block routine runs (1 leaver of 5 is 20 %)."""
    max_source_drop_ratio: float = 0.2
    """Okta's assignment count may fall by at most this share since the last successful run."""
    on_threshold: OnThreshold = "stop"
    """"stop": apply nothing when a limit trips; "skip_gated": apply the kinds that did not trip."""
    max_error_ratio: float = 0.2
    """Stop sending once more than this share of a run's writes failed (see apply.ApplyResult.check_error_ratio)."""
    quarantine_after: int = 3
    """Consecutive failed runs after which the service slows down to ``quarantine_interval_s``."""
    quarantine_interval_s: float = 6 * 3600.0


@dataclass(frozen=True)
class AlertsConfig:
    urls: tuple[Secret, ...] = ()
    """apprise URLs; they often embed a webhook token or a password, hence Secret."""
    alert_drift: int = 50
    """Alert when a run finds more drift (writes and conflicts) than this in all."""
    alert_drift_by_kind: Mapping[str, int] = field(default_factory=dict)
    """Per-kind drift limits, e.g. ``{"deactivate": 10}``."""
    consecutive_failures: int = 3
    realert_after_s: float = 24 * 3600.0


@dataclass(frozen=True)
class GroupsConfig:
    """Group Push reconciliation: which Okta groups the platform's groups follow."""

    push: tuple[str, ...] = ()
    """Okta groups to push: an id (``00g…``) names any group of the org; a name, one assigned to the app."""
    push_assigned: bool = False
    """Push every group assigned to the app."""
    delete_unpushed: bool = False
    """Delete a platform group Okta pushed once and pushes no more; otherwise it is only reported."""
    member_batch: int = 100
    """Members named in one SCIM PATCH."""

    @property
    def enabled(self) -> bool:
        return bool(self.push) or self.push_assigned


@dataclass(frozen=True)
class ScheduleConfig:
    """When ``reconcile serve`` runs: every ``interval_s``, or on a ``cron`` expression."""

    interval_s: float = 1800.0
    cron: str | None = None
    """A 5-field crontab expression (minute hour day month weekday); replaces the interval."""
    jitter_s: float = 60.0
    """Each run starts up to this much later, so that many deployments do not hit Okta at once."""
    run_at_start: bool = True
    stop_timeout_s: float = 30.0
    """On SIGTERM, in-flight writes get this long to finish before the run is recorded interrupted."""


@dataclass(frozen=True)
class MetricsConfig:
    listen: str | None = "127.0.0.1:9464"
    """host:port of the Prometheus /metrics and /healthz endpoint; None turns it off."""

    @property
    def address(self) -> tuple[str, int] | None:
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Config:
    okta: OktaConfig
    scim: ScimConfig
    mapping: Mapping[str, SourceSpec]
    """``{SCIM attribute path: source path or read-only table}``, the defaults merged with the file's."""
    policy: PolicyConfig
    store: StoreConfig
    source_path: Path | None = None
    thresholds: ThresholdsConfig = field(default_factory=ThresholdsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    groups: GroupsConfig = field(default_factory=GroupsConfig)
    tenant: str | None = None
    """The name of its ``[[tenants]]`` entry; None for a single-tenant file."""


@dataclass(frozen=True)
class ServiceConfig:
    """``[service]``: how one ``reconcile serve`` replica of a multi-tenant file works."""

    concurrency: int = 4
    """Tenant runs one replica does at once (1..64)."""
    tick_s: float = 5.0
    """How often a replica looks for tenants that are due."""
    replica: str | None = None
    """A name for this replica in ``reconcile status``; None: the host name and pid, chosen elsewhere."""


@dataclass(frozen=True)
class FleetConfig:
    """A whole file: its tenants (one, named None, for a single-tenant file) and what they share."""

    tenants: tuple[Config, ...]
    """In file order."""
    store: StoreConfig
    metrics: MetricsConfig
    service: ServiceConfig
    source_path: Path | None
    multi_tenant: bool
    """True when the file has ``[[tenants]]``."""

    def tenant(self, name: str) -> Config:
        """The tenant named ``name``; a ConfigError naming the known tenants if there is none."""
        where = self.source_path or "the configuration"
        if not self.multi_tenant:
            raise ConfigError([no_tenants_problem(where, name)])
        for config in self.tenants:
            if config.tenant == name:
                return config
        raise ConfigError([f'no tenant "{name}" in {where}; its tenants: {tenant_names(self.tenants)}'])


def fingerprint(config: Config) -> str:
    """A sha256 of what identifies the pair being reconciled: no secret goes in.

    Two configurations with the same fingerprint reconcile the same Okta app
    against the same SCIM endpoint, whatever their credentials or tuning.
    """
    identity = [config.okta.org_url, config.okta.app_id, config.scim.base_url]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


def no_tenants_problem(where: object, name: str) -> str:
    return f"{where} has no [[tenants]]: it configures a single Okta app — drop --tenant {name}"


def tenant_names(tenants: tuple[Config, ...], limit: int = 10) -> str:
    """The tenants' names for a message: the first ``limit``, then "…"."""
    names = [str(config.tenant) for config in tenants]
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "")


def _masked_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for a repr (the store URL may hold one)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return "<unparsable URL>"


SECTIONS: Final = (
    "okta", "scim", "mapping", "policy", "store", "thresholds", "alerts", "schedule", "metrics", "groups", "service",
)  # fmt: skip


TENANT_SECTIONS: Final = ("okta", "scim", "mapping", "policy", "thresholds", "alerts", "schedule", "groups")
"""The tables a ``[[tenants]]`` entry may have; at the top level, they are every tenant's defaults."""


SHARED_SECTIONS: Final = ("store", "metrics", "service")
"""The tables every tenant shares: one database, one /metrics endpoint, one way to serve."""


MAX_CONCURRENCY: Final = 64
