"""okta-reconciler: keeps a SCIM 2.0 user store in line with an Okta app's assignments.

The ``reconcile`` command is :mod:`reconciler.cli`. For a script, the public face is small::

    import asyncio
    from reconciler import Store, load_config, reconcile

    config = load_config("config.toml")
    with Store(config.store.url) as store:
        outcome = asyncio.run(reconcile(config, store, dry_run=True))
    print(outcome.status, outcome.plan.summary())

Each name is imported on first use, so ``import reconciler`` stays cheap (the okta SDK alone takes a
second to import). docs/architecture.md shows where everything else lives.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "load_config": "reconciler.config.load",
    "load_fleet": "reconciler.config.load",
    "Config": "reconciler.config.model",
    "FleetConfig": "reconciler.config.model",
    "reconcile": "reconciler.run.reconcile",
    "reconcile_and_alert": "reconciler.run.alerting",
    "RunOutcome": "reconciler.run.outcome",
    "Store": "reconciler.store",
    "RunStatus": "reconciler.models.runs",
    "Plan": "reconciler.models.records",
    "Action": "reconciler.models.records",
    "ActionKind": "reconciler.models.records",
}
"""Name → the module that defines it."""

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'reconciler' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
