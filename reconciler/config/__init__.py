"""The configuration: one typed model per TOML table, read from a file with its secrets, for one tenant or many.

The model (:mod:`.model`, :mod:`.connections_model`, :mod:`.policy_model`, :mod:`.service_model`, and
:mod:`.mapping` for ``[mapping]``) declares on each field the keys of the file that fill it
(:mod:`.keys`): the loader (:mod:`.load`) accepts and reads them from there, and the operator's
reference, ``docs/configuration.md``, is written from them (:mod:`.reference`).

The model is pure, so the planner may import it; :func:`load_config` and :func:`load_fleet` are
imported on first use, so that importing the model does not pull in the loader's validators.
"""

from typing import TYPE_CHECKING, Any

from reconciler.config.connections_model import OktaConfig, ScimConfig
from reconciler.config.model import AlertsConfig, Config, FleetConfig, GroupsConfig, StoreConfig, fingerprint
from reconciler.config.policy_model import KindLimit, PolicyConfig, ThresholdsConfig
from reconciler.config.service_model import MetricsConfig, ScheduleConfig, ServiceConfig

if TYPE_CHECKING:
    from reconciler.config.load import load_config, load_fleet

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

_LOADERS = ("load_config", "load_fleet")


def __getattr__(name: str) -> Any:
    if name in _LOADERS:
        from reconciler.config import load

        return getattr(load, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
