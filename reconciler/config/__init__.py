"""The configuration: one typed model per TOML table, read from a file with its secrets, one or many tenants."""

from reconciler.config.load import (
    AlertsConfig,
    Config,
    FleetConfig,
    GroupsConfig,
    KindLimit,
    MetricsConfig,
    OktaConfig,
    PolicyConfig,
    ScheduleConfig,
    ScimConfig,
    ServiceConfig,
    StoreConfig,
    ThresholdsConfig,
    fingerprint,
    load_config,
    load_fleet,
)

__all__ = [
    "AlertsConfig",
    "Config",
    "FleetConfig",
    "GroupsConfig",
    "KindLimit",
    "MetricsConfig",
    "OktaConfig",
    "PolicyConfig",
    "ScheduleConfig",
    "ScimConfig",
    "ServiceConfig",
    "StoreConfig",
    "ThresholdsConfig",
    "fingerprint",
    "load_config",
    "load_fleet",
]
