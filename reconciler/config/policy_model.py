"""``[policy]`` and ``[thresholds]``: what a run may do beyond mirroring Okta, and how much before the gate stops it.

Pure: the planner and the safety gate read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from reconciler.config.keys import Key, choice, duration, integer, setting, share

UnmanagedPolicy = Literal["report", "deactivate"]


SuspendedPolicy = Literal["deactivate", "keep"]


OnThreshold = Literal["stop", "skip_gated"]


MAX_COUNT: Final = 10_000_000
"""The highest count a limit or an alert threshold may be set to."""


@dataclass(frozen=True)
class PolicyConfig:
    """What the reconciler may do beyond mirroring Okta."""

    unmanaged: UnmanagedPolicy = setting(
        choice(
            "unmanaged",
            UnmanagedPolicy,
            "Platform users Okta never managed (no link, no matching assignment): ``report`` lists them in the "
            "plan and touches nothing; ``deactivate`` deactivates them on the platform.",
        ),
        default="report",
    )
    suspended: SuspendedPolicy = setting(
        choice(
            "suspended",
            SuspendedPolicy,
            "Users assigned to the app but SUSPENDED in Okta (Okta itself sends nothing): ``keep`` leaves them "
            "active on the platform, as Okta does; ``deactivate`` deactivates them until Okta unsuspends them.",
        ),
        default="keep",
    )


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


def _limit_keys(limits: Mapping[str, KindLimit]) -> tuple[Key, ...]:
    """``max_KIND`` and ``max_KIND_ratio`` for each kind of ``limits``, with its values as their defaults."""
    return tuple(
        key
        for kind, limit in limits.items()
        for key in (
            integer(
                f"max_{kind}",
                0,
                MAX_COUNT,
                f"``{kind}``: above this count, the kind trips the gate.",
                default=limit.count,
            ),
            share(
                f"max_{kind}_ratio",
                f"``{kind}``: above this share of its population, the kind trips the gate.",
                default=limit.ratio,
            ),
        )
    )


@dataclass(frozen=True)
class ThresholdsConfig:
    """The safety gate between plan and apply.

    Before anything is written, each kind of write is counted. A kind trips when its count is above
    ``max_KIND``, or (from ``min_count_for_ratio`` actions on) above ``max_KIND_ratio`` of its
    population: Okta's assignments for ``create``, the platform users Okta manages for the others.
    Group kinds (with ``[groups]``): created, linked, renamed and deleted groups are weighed against
    the pushed groups (deletions: the platform's pushed groups); ``add_members`` and
    ``remove_members`` count members, not requests, against the memberships Okta wants and the
    platform holds: emptying one 5,000-member group trips ``max_remove_members``. Additions have no
    ratio by default (1.0): a newly pushed group adds all its members, and an addition takes nothing
    from anyone; the count still caps them.

    A tripped run is recorded as "blocked", alerts, and exits 3; review it with ``reconcile --dry-run
    --save-plan plan.json``, then ``reconcile apply plan.json``. The defaults suit 50 to 100,000
    users: a routine run stays well below them. A first run against an empty platform creates
    everyone: raise ``max_create`` / ``max_create_ratio`` for it, or apply a reviewed saved plan.
    """

    limits: Mapping[str, KindLimit] = setting(*_limit_keys(DEFAULT_LIMITS), default_factory=lambda: DEFAULT_LIMITS)
    group_limits: Mapping[str, KindLimit] = setting(*_limit_keys(GROUP_LIMITS), default_factory=lambda: GROUP_LIMITS)
    min_count_for_ratio: int = setting(
        integer(
            "min_count_for_ratio",
            0,
            MAX_COUNT,
            "The ``max_KIND_ratio`` limits apply from this many actions of a kind: in a small population a "
            "ratio alone would block routine runs (1 leaver of 5 users is 20 %).",
        ),
        default=10,
    )
    max_source_drop_ratio: float = setting(
        share(
            "max_source_drop_ratio",
            "Source-shrink guard: stop before any write when Okta's assignment count fell by more than this share "
            "since the last successful run, or when Okta lists no assignment while the platform has active users "
            'Okta manages. Always "stop", whatever ``on_threshold`` says.',
        ),
        default=0.2,
    )
    on_threshold: OnThreshold = setting(
        choice(
            "on_threshold",
            OnThreshold,
            "When a per-kind limit trips: ``stop`` applies nothing; ``skip_gated`` applies the kinds that did not "
            "trip and holds the others.",
        ),
        default="stop",
    )
    # Checked as the writes go: apply.ApplyResult.check_error_ratio.
    max_error_ratio: float = setting(
        share(
            "max_error_ratio",
            "Error-rate breaker: once at least 10 writes were attempted and more than this share failed (after "
            'retries), send no more; the run is recorded "failed".',
        ),
        default=0.2,
    )
    quarantine_after: int = setting(
        integer(
            "quarantine_after",
            1,
            1000,
            "Quarantine: after this many failed runs in a row the service slows down to ``quarantine_interval`` "
            "until a run succeeds (``reconcile history`` says so).",
        ),
        default=3,
    )
    quarantine_interval_s: float = setting(
        duration("quarantine_interval", "How often a quarantined service runs."), default=6 * 3600.0
    )
    max_plan_age_s: float = setting(
        duration(
            "max_plan_age",
            "A saved plan older than this is refused by ``reconcile apply PLAN_FILE`` unless ``--yes`` is given: "
            "live state has moved on since it was reviewed. Make a new plan instead.",
        ),
        default=24 * 3600.0,
    )
    quarantine_after_interrupted: int = setting(
        integer(
            "quarantine_after_interrupted",
            1,
            1000,
            "Fleet: after this many runs in a row that died with their replica (a crash, an OOM kill; found "
            "running with no holder), the tenant is quarantined: alerted once, run every ``quarantine_interval``, "
            "and alone on its replica, until a run of it ends on its own.",
        ),
        default=3,
    )
