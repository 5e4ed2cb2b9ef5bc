"""The store's tables (SQLModel): runs, the user and group actions of each run, the active alert conditions, the
shared rate windows, acknowledgements and the System Log followers' cursors."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reconciler.models.groups import GroupActionKind
from reconciler.models.records import SUMMARY_KEYS, ActionKind
from reconciler.models.runs import ActionStatus, RunMode, RunStatus


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the store keeps UTC datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _text_enum(enum: type[StrEnum]) -> sa.Enum:
    """Stored as its value in a VARCHAR: readable in SQL, no database enum type to migrate."""
    return sa.Enum(enum, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


def utc_now() -> datetime:
    """Now, in UTC: the store keeps UTC datetimes only."""
    return datetime.now(UTC)


GROUP_SUMMARY_KEYS: Final = (*(kind.value for kind in GroupActionKind), "in_sync")
"""The keys of :meth:`reconciler.models.groups.GroupPlan.summary`, as ``runs.planned_groups`` keeps them."""


TENANT_NAME_LENGTH: Final = 63
REPLICA_NAME_LENGTH: Final = 200
STARTED_BY_LENGTH: Final = 200


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        sa.Index("ix_runs_config_fingerprint_id", "config_fingerprint", "id"),
        sa.Index("ix_runs_started_at", "started_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    mode: RunMode = Field(sa_type=_text_enum(RunMode))
    status: RunStatus = Field(sa_type=_text_enum(RunStatus), index=True)
    config_fingerprint: str = Field(max_length=64)
    """:func:`reconciler.config.fingerprint`: which Okta app and SCIM endpoint the run reconciled."""
    planned_create: int | None = None
    """The plan's counts, one column per kind; None until the plan is computed."""
    planned_update: int | None = None
    planned_deactivate: int | None = None
    planned_reactivate: int | None = None
    planned_link: int | None = None
    planned_conflict: int | None = None
    planned_unmanaged: int | None = None
    planned_in_sync: int | None = None
    source_count: int | None = None
    """How many assignments Okta listed; the baseline of the source-shrink guard."""
    managed_count: int | None = None
    """How many platform users were linked to Okta users when the run read them."""
    applied: int = 0
    """Actions that succeeded, counted when the run ends."""
    failed: int = 0
    """Actions that failed, counted when the run ends."""
    error: str | None = Field(default=None, sa_type=sa.Text)
    planned_groups: dict[str, int] | None = Field(default=None, sa_type=sa.JSON(none_as_null=True))
    """The group plan's counts (``GroupPlan.summary()``, every key of :data:`GROUP_SUMMARY_KEYS`); SQL NULL
    when the run planned no groups (groups not configured, or not reached). Added by revision 0002."""
    tenant: str | None = Field(default=None, max_length=TENANT_NAME_LENGTH)
    """The ``[[tenants]]`` name the run was for; None for a single-tenant config (and every run before 0003)."""
    replica: str | None = Field(default=None, max_length=REPLICA_NAME_LENGTH)
    """Which process ran it (:attr:`Store.replica`); None for every run before revision 0003."""
    started_by: str | None = Field(default=None, max_length=STARTED_BY_LENGTH)
    """The operating-system user who started a one-off command (:attr:`Store.started_by`); None for the service's
    scheduled runs and every run before revision 0007."""
    plan_run_id: int | None = None
    """For an ``apply-plan`` run: the dry-run that wrote the saved plan it applied; a plain pointer (0007)."""

    @property
    def summary(self) -> dict[str, int] | None:
        """The plan summary as :meth:`reconciler.models.records.Plan.summary` gives it; None before planning."""
        if self.planned_in_sync is None:
            return None
        return {key: getattr(self, f"planned_{key}") or 0 for key in SUMMARY_KEYS}

    @property
    def group_summary(self) -> dict[str, int] | None:
        """The group plan summary as :meth:`reconciler.models.groups.GroupPlan.summary` gives it; None if none."""
        if self.planned_groups is None:
            return None
        return {key: int(self.planned_groups.get(key) or 0) for key in GROUP_SUMMARY_KEYS}


class ActionColumns(SQLModel):
    """The columns of every action table: the run, the target's id, why, and the outcome with its times.

    An action is recorded as an intent (``status`` pending, ``created_at``) before its
    request is sent, then completed with its outcome (``status``, ``error``, ``finished_at``).
    """

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    scim_id: str | None = None
    reason: str = Field(sa_type=sa.Text)
    status: ActionStatus = Field(sa_type=_text_enum(ActionStatus), index=True)
    error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ActionRecord(ActionColumns, table=True):
    """A user action of a run (:class:`reconciler.models.records.Action`)."""

    __tablename__ = "actions"
    __table_args__ = (sa.Index("ix_actions_created_at", "created_at"),)

    kind: ActionKind = Field(sa_type=_text_enum(ActionKind))
    user_name: str
    okta_user_id: str | None = None
    changes: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    """``{SCIM path: {"before": ..., "after": ...}}``, as in :meth:`Action.to_json`."""
    okta_changed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """When Okta's state changed for this user, for an incremental run's action: the ``published`` time of the
    System Log event that brought the user in, so that time to repair (or to revoke) is this action's
    ``finished_at`` minus it. None for a full run's actions and every action before revision 0006."""


class GroupActionRecord(ActionColumns, table=True):
    """A group action of a run (:class:`reconciler.models.groups.GroupAction`), as :class:`ActionRecord` is a user's.

    Its ``scim_id`` is the platform group's id: the planned one, or the one a CREATE_GROUP learned.
    """

    __tablename__ = "group_actions"

    kind: GroupActionKind = Field(sa_type=_text_enum(GroupActionKind))
    group_name: str
    """The Okta group's name (the platform's displayName for UNMANAGED)."""
    okta_group_id: str | None = None
    members: list[str | dict[str, str | None]] = Field(default_factory=list, sa_type=sa.JSON)
    """The members added or removed: each ``{"user_name", "okta_user_id", "scim_id"}``
    (:meth:`GroupAction.member_entries`) when the plan named them; else, as in every row before names were
    kept, :attr:`GroupAction.members` (Okta user ids to add, or SCIM user ids to remove)."""
    member_count: int = 0
    """``len(members)``, so that a listing need not read the members."""


class AlertState(SQLModel, table=True):
    """An alert condition that was active after the latest run that could judge it (see reconciler.alerts).

    A row exists while its condition holds, and is removed once its clearing has been
    told (or needs no telling: nobody was ever told it started).
    """

    __tablename__ = "alert_states"

    config_fingerprint: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=64)
    """The condition: ``drift``, ``drift:<kind>``, ``blocked``, ``failed`` or ``consecutive_failures``."""
    title: str = Field(sa_type=sa.Text)
    """The condition's one-line title at the latest run that found it: a resolved alert names it."""
    active_since: datetime = Field(sa_type=UtcDateTime)
    last_sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """When an alert about it was last delivered; None while it has never been (no channel, or none answered)."""
    last_run_id: int
    """The latest run that found it; a plain pointer, not a foreign key."""


class RateWindow(SQLModel, table=True):
    """One Okta org's current rate-limit window for one endpoint family, shared by every process (revision 0004).

    See :mod:`reconciler.net.shared_pacing`: each process claims a request here before
    sending it, and every answer's headers refresh it. Times are epoch seconds.
    """

    __tablename__ = "rate_windows"

    org: str = Field(primary_key=True, max_length=255)
    """The Okta org's URL (``https://acme.okta.com``)."""
    family: str = Field(primary_key=True, max_length=64)
    """The endpoint family Okta counts apart: ``/api/v1/apps``, ``/api/v1/groups``…"""
    limit: int | None = None
    used: int = 0
    resets_at: float | None = None
    opened_at: float = 0.0


ACK_KIND_LENGTH: Final = 16
ACK_BY_LENGTH: Final = 200


class Acknowledgement(SQLModel, table=True):
    """A finding (a conflict, an unmanaged user) a person reviewed and acknowledged: who, when and why.

    It holds for that finding as it was (``finding_digest``): once the finding changes (other users, another
    reason), it is shown again. Revoked acknowledgements stay, with who revoked them and when, as the audit
    trail. Added by revision 0005.
    """

    __tablename__ = "acknowledgements"
    __table_args__ = (sa.Index("ix_acknowledgements_config_fingerprint", "config_fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    config_fingerprint: str = Field(max_length=64)
    kind: str = Field(max_length=ACK_KIND_LENGTH)
    """The finding's kind: ``conflict`` or ``unmanaged``."""
    user_name: str = Field(sa_type=sa.Text)
    okta_user_id: str | None = None
    scim_id: str | None = None
    finding: str = Field(sa_type=sa.Text)
    """The finding's reason as the plan gave it when it was acknowledged."""
    finding_digest: str = Field(max_length=64)
    """:func:`reconciler.plan.findings.finding_digest` of the finding acknowledged."""
    reason: str = Field(sa_type=sa.Text)
    """Why the person acknowledged it."""
    acknowledged_by: str = Field(max_length=ACK_BY_LENGTH)
    acknowledged_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    run_id: int | None = None
    """The run whose report the finding was acknowledged from; a plain pointer, not a foreign key."""
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_by: str | None = Field(default=None, max_length=ACK_BY_LENGTH)


class LogCursorRecord(SQLModel, table=True):
    """Where a target's System Log follower stands (:class:`reconciler.models.log.LogCursor`), one row per target,
    rewritten at each checkpoint (revision 0006)."""

    __tablename__ = "log_cursors"

    fingerprint: str = Field(primary_key=True, max_length=64)
    """:func:`reconciler.config.fingerprint`, as runs have it."""
    tenant: str | None = Field(default=None, max_length=TENANT_NAME_LENGTH)
    next_url: str | None = Field(default=None, sa_type=sa.Text)
    high_water: datetime | None = Field(default=None, sa_type=UtcDateTime)
    recent_uuids: str = Field(default="[]", sa_type=sa.Text)
    """A JSON list of event uuids, oldest first, at most :data:`reconciler.models.log.RECENT_UUIDS_KEPT`."""
    updated_at: datetime = Field(sa_type=UtcDateTime)
    last_ok_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
