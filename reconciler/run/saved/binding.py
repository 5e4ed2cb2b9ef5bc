"""What a saved plan is bound to: the settings that shaped it, and its age.

A plan is what one configuration made of one moment's live state. Applied under
another mapping it would write values that mapping no longer produces; under
another ``[policy]`` it would deactivate (or keep) users the current policy
treats otherwise; under other ``[groups]`` settings it would push groups that are
no longer pushed. So, as Terraform refuses a stale plan, ``reconcile apply``
refuses a plan whose shaping settings differ from the config's, naming each
setting that changed.

Bound (they decide what the plan contains): ``[mapping]``, every ``[policy]``
key, and the ``[groups]`` keys but ``member_batch``. The target (Okta org, app,
SCIM URL) is bound through the fingerprint (:func:`reconciler.config.model.fingerprint`).
Not bound: credentials (they sign the plan instead), timeouts, concurrency,
page sizes, batch sizes, alerts and the schedule, which change how a plan is
read or sent, not what it says; ``[thresholds]`` neither: the gate is asked
again, with today's limits, when the plan is applied.

No secret is in the binding: the mapping names Okta attributes, never their values.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from reconciler.config.model import Config
from reconciler.run.saved.digest import plain_json

GROUPS_TUNING: Final = frozenset({"member_batch"})
"""``[groups]`` keys that change how group writes are sent, not which ones are planned."""


NOT_SET: Final = object()


def plan_binding(config: Config) -> dict[str, dict[str, Any]]:
    """The settings that shaped a plan made with ``config``, by section and key, as plain JSON."""
    groups = {
        field.name: getattr(config.groups, field.name)
        for field in dataclasses.fields(config.groups)
        if field.name not in GROUPS_TUNING
    }
    return {
        "mapping": plain_json(dict(config.mapping)),
        "policy": plain_json(dataclasses.asdict(config.policy)),
        "groups": plain_json(groups),
    }


def binding_changes(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Each ``section.key`` whose value differs between the saved binding and the current one, with both values."""
    changes = []
    for section in sorted(saved.keys() | current.keys()):
        before, after = saved.get(section, {}), current.get(section, {})
        if not isinstance(before, Mapping):
            before = {}
        for key in sorted(before.keys() | after.keys()):
            was, now = before.get(key, NOT_SET), after.get(key, NOT_SET)
            if was != now:
                changes.append(f"{section}.{_key(key)}: {_value(was, section)} in the plan, {_value(now, section)} now")
    return changes


def _key(key: str) -> str:
    """A key as TOML spells it: quoted when it is not a bare key (a mapping path such as ``name.givenName``)."""
    return key if key.replace("_", "a").replace("-", "a").isalnum() else json.dumps(key, ensure_ascii=False)


def _value(value: Any, section: str) -> str:
    if value is NOT_SET:
        return "not mapped" if section == "mapping" else "not set"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def plan_age_s(created_at: datetime, now: datetime) -> float:
    """How old a plan is, in seconds; a plan from the future (a clock behind) is taken as new."""
    return max(0.0, (now - created_at).total_seconds())


def describe_age(seconds: float) -> str:
    """``3 d 4 h``, ``26 h 5 min``, ``12 min``: for a message about an old plan."""
    minutes = int(seconds // 60)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"
