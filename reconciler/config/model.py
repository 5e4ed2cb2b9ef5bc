"""The configuration's model: one frozen dataclass per TOML table, each field with its keys. Pure: no I/O, no parsing.

A field declares the keys of the file that fill it (:func:`~reconciler.config.keys.setting`): the
loader accepts those keys and no other and reads them with the bounds and defaults declared here, and
the reference (``docs/configuration.md``) describes them with the words written here, for the
operator. A table's docstring introduces it in the reference. The tables of the two connections are
in :mod:`.connections_model`, ``[policy]`` and ``[thresholds]`` in :mod:`.policy_model`, those of
``reconcile serve`` in :mod:`.service_model`, ``[incremental]`` in :mod:`.incremental_model`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from reconciler.config.connections_model import OktaConfig, ScimConfig
from reconciler.config.incremental_model import IncrementalConfig
from reconciler.config.keys import (
    CREDENTIAL,
    SECRET_FILE,
    STRINGS,
    TABLE,
    Key,
    ValueType,
    duration,
    flag,
    integer,
    setting,
    text,
)
from reconciler.config.mapping import SourceSpec
from reconciler.config.policy_model import GROUP_LIMITS, MAX_COUNT, PolicyConfig, ThresholdsConfig
from reconciler.config.service_model import MetricsConfig, ScheduleConfig, ServiceConfig
from reconciler.errors import ConfigError
from reconciler.secret import Secret

DEFAULT_STORE_URL: Final = "sqlite:///reconciler.db"
"""A SQLite file ``reconciler.db`` beside the configuration file (a relative path is relative to it)."""


DRIFT_KINDS: Final = ("create", "update", "deactivate", "reactivate", "link", "conflict", "unmanaged", *GROUP_LIMITS)
"""The kinds ``alert_drift_by_kind`` may name."""


DATABASE_URL: Final = ValueType(
    "database URL",
    'An SQLAlchemy database URL: ``"sqlite:///FILE"`` (a path relative to the configuration file\'s directory; an '
    "absolute one takes four slashes) "
    'or ``"postgresql://USER@HOST/DATABASE"``.',
)
APPRISE_URLS: Final = ValueType(
    "list of URLs", 'An array of apprise URLs: ``["json://alerts.example.com/hook", ...]``.'
)


@dataclass(frozen=True)
class StoreConfig:
    """The run history and the audit trail of every action: a SQLite file, or a PostgreSQL database.

    A database that is behind the code's schema is refused at start-up, with the command to run
    (``reconcile --config F db upgrade``).
    """

    url: str = setting(
        text(
            "url",
            "An SQLAlchemy database URL. The default is a SQLite file beside the configuration file: a relative "
            "path is relative to the file's directory, as token files are; an absolute path takes four slashes. "
            "Under the shipped systemd unit (``StateDirectory=okta-reconciler``): "
            '``"sqlite:////var/lib/okta-reconciler/reconciler.db"``. PostgreSQL: '
            '``"postgresql://reconciler@db.example.com/reconciler"``.',
            DATABASE_URL,
        ),
        default=DEFAULT_STORE_URL,
        repr=False,  # it may hold a database password: see __repr__
    )

    def __repr__(self) -> str:
        return f"StoreConfig(url={_masked_url(self.url)!r})"


@dataclass(frozen=True)
class AlertsConfig:
    """Who hears about drift, blocked and failed runs, through apprise: Slack, Microsoft Teams, e-mail, webhooks.

    Every run alerts the same way, a cron'ed ``reconcile --dry-run`` included. A condition alerts once
    when it starts, again after ``realert_after`` if it persists, and once when it clears; the state
    lives in the store, so restarts do not repeat alerts. Alert URLs are treated as secrets, never logged.
    """

    urls: tuple[Secret, ...] = setting(
        text(
            "urls",
            "apprise URLs (https://github.com/caronc/apprise/wiki), e.g. "
            '``"slack://TokenA/TokenB/TokenC/#security"``, ``"msteams://team/tokenA/tokenB/tokenC"``, '
            '``"mailtos://user:password@smtp.example.com?to=secops@example.com"``, '
            '``"json://alerts.example.com/okta-reconciler"``. They often embed a token: prefer ``urls_file``.',
            APPRISE_URLS,
            default=(),
        ),
        Key(
            "urls_file",
            SECRET_FILE,
            "A file of apprise URLs, one per line (``#`` starts a comment), added to ``urls``.",
        ),
        Key("urls_credential", CREDENTIAL, "Or, under systemd: such a file given by ``LoadCredential=``."),
        default=(),
    )
    alert_drift: int = setting(
        integer(
            "alert_drift",
            1,
            MAX_COUNT,
            "Alert when a run finds more drift than this (writes and conflicts, all kinds); group drift "
            "(group writes and conflicts) is judged against it on its own.",
        ),
        default=50,
    )
    alert_drift_by_kind: Mapping[str, int] = setting(
        Key(
            "alert_drift_by_kind",
            TABLE,
            "... or more than this of one kind, e.g. ``{ deactivate = 10 }`` (group kinds too, e.g. "
            "``remove_members = 100``); each count at least 1.",
            default=MappingProxyType({}),
            choices=DRIFT_KINDS,
        ),
        default_factory=dict,
    )
    consecutive_failures: int = setting(
        integer("consecutive_failures", 1, 1000, "Alert when this many runs in a row failed."), default=3
    )
    realert_after_s: float = setting(
        duration(
            "realert_after",
            "A condition alerts when it starts, again after this long if it persists, and once when it clears.",
        ),
        default=24 * 3600.0,
    )


@dataclass(frozen=True)
class GroupsConfig:
    """Group Push: which Okta groups the platform's groups follow. Off unless a group is pushed.

    Platform groups follow the Okta groups pushed to them: created, linked (by name, then kept by
    ``externalId`` = the Okta group id), renamed, members added and removed in batches. Members are
    the platform users of this app's assignees; a member whose user is missing is created first (users
    go before groups). Two platform groups with one name are a conflict for a person; platform groups
    Okta did not push are reported, never touched.
    """

    push: tuple[str, ...] = setting(
        text(
            "push",
            'Okta groups to push: an id (``"00g..."``) names any group of the org; a name, one assigned to the app.',
            STRINGS,
        ),
        default=(),
    )
    push_assigned: bool = setting(flag("push_assigned", "Push every group assigned to the app as well."), default=False)
    delete_unpushed: bool = setting(
        flag(
            "delete_unpushed",
            "Delete a platform group Okta pushed once (its ``externalId`` is an Okta group id) that is no longer "
            "pushed. Off: such groups are only reported. Needs ``push`` or ``push_assigned``.",
        ),
        default=False,
    )
    member_batch: int = setting(
        integer("member_batch", 1, 1000, "Members named in one SCIM PATCH request."), default=100
    )

    @property
    def enabled(self) -> bool:
        return bool(self.push) or self.push_assigned


@dataclass(frozen=True)
class Config:
    """A tenant: one Okta app reconciled into one SCIM endpoint. A file without ``[[tenants]]`` is one.

    A platform operator can reconcile many customers' Okta orgs, each into its own SCIM tenant, from
    one file of ``[[tenants]]``, with several ``reconcile serve`` replicas sharing one PostgreSQL
    ``[store]``. Each entry has a unique ``name`` and its own tables, written after its
    ``[[tenants]]`` header (``[tenants.okta]``, ``[tenants.scim]``, ...). The top-level tables of
    those names become defaults for every tenant, merged under the tenant's own key by key
    (``[mapping]`` by SCIM path). A tenant that names its own token or private key (or alert URLs, or
    interval or cron) takes none of the defaults' alternatives to it. Problems are named after the
    tenant, e.g. ``tenants[acme].okta.token_env``. Two tenants may not reconcile the same Okta app
    into the same SCIM base URL: they would race.
    """

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
    incremental: IncrementalConfig = field(default_factory=IncrementalConfig)
    tenant: str | None = setting(
        text(
            "name",
            "The tenant's name, unique in the file: up to 63 lower-case letters, digits, ``_``, ``.`` or ``-``, "
            'starting with a letter or digit, e.g. ``"acme"``. Commands that act on one tenant take '
            "``--tenant NAME``.",
            required=True,
        ),
        default=None,
    )
    """The name of its ``[[tenants]]`` entry; None for a single-tenant file."""

    def secrets(self) -> list[Secret]:
        """What no log line, message or record may show: the Okta and SCIM credentials, the alert URLs."""
        credentials = (self.okta.token, self.okta.private_key, self.scim.token)
        return [secret for secret in credentials if secret is not None] + list(self.alerts.urls)


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

    def secrets(self) -> list[Secret]:
        """Every tenant's secrets (see :meth:`Config.secrets`)."""
        return [secret for config in self.tenants for secret in config.secrets()]

    def tenant(self, name: str) -> Config:
        """The tenant named ``name``; a ConfigError naming the known tenants if there is none."""
        where = self.source_path or "the configuration"
        if not self.multi_tenant:
            raise ConfigError([no_tenants_problem(where, name)])
        for config in self.tenants:
            if config.tenant == name:
                return config
        raise ConfigError([f'no tenant "{name}" in {where}; its tenants: {tenant_names(self.tenants)}'])


SECTIONS: Final = (
    "okta", "scim", "mapping", "policy", "store", "thresholds", "alerts", "schedule", "metrics", "groups",
    "incremental", "service",
)  # fmt: skip
"""The top-level tables of a file, besides ``[[tenants]]``."""


TENANT_SECTIONS: Final = (
    "okta", "scim", "mapping", "policy", "thresholds", "alerts", "schedule", "groups", "incremental",
)  # fmt: skip
"""The tables a ``[[tenants]]`` entry may have; at the top level, they are every tenant's defaults."""


SHARED_SECTIONS: Final = ("store", "metrics", "service")
"""The tables every tenant shares: one database, one /metrics endpoint, one way to serve."""


TABLE_MODELS: Final[Mapping[str, type]] = MappingProxyType(
    {
        "okta": OktaConfig,
        "scim": ScimConfig,
        "policy": PolicyConfig,
        "store": StoreConfig,
        "thresholds": ThresholdsConfig,
        "alerts": AlertsConfig,
        "schedule": ScheduleConfig,
        "metrics": MetricsConfig,
        "groups": GroupsConfig,
        "incremental": IncrementalConfig,
        "service": ServiceConfig,
    }
)
"""The model of each table read key by key: every section but ``[mapping]``, whose keys are SCIM paths."""


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
