"""One incremental batch: the users a batch of System Log events touched, repaired like a run would.

::

    affected users ─▶ read each (Okta: its app user; the platform: by stored SCIM id, externalId, userName)
                    ─▶ plan (the same pure planner, on these users only) ─▶ gate (per-kind limits over a
                       sliding window) ─▶ apply ─▶ journal, as a run of mode ``incremental``

The caller checkpoints the log's cursor only after this returns: a crash before that re-reads the
events, and the plan, made against the state both sides have *then*, finds nothing left to do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from reconciler.config.model import Config, fingerprint
from reconciler.errors import TargetError, TargetNotFound
from reconciler.models.records import Action, OktaAssignment, PlatformUser
from reconciler.models.runs import RunMode, RunStatus
from reconciler.okta.groups import gather_bounded
from reconciler.okta.source import OktaSource
from reconciler.plan.events import Affected, plan_affected, wanted_user_name
from reconciler.plan.gate import GateDecision, Populations, evaluate_window
from reconciler.run.log_fields import run_log_fields
from reconciler.run.outcome import RunOutcome, apply_error, apply_status, dry_run_status
from reconciler.run.reconcile import apply_users, failures_recorded, finish_recorded
from reconciler.scim.reader import ScimReader, filter_string, same_user_name
from reconciler.store import Store

log = logging.getLogger(__name__)

READS_AT_ONCE = 8
"""Affected users read at the same time, on each side."""


@dataclass
class BatchOutcome:
    """What one batch did: its run, whom it looked at, and when each repair was confirmed."""

    run: RunOutcome
    looked_at: int = 0
    confirmed: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    """Okta user id → (the event's ``published``, when the platform confirmed the write), for each
    write that succeeded: its time to repair."""


class IncrementalUnsupported(TargetError):
    """The platform cannot find one user (no SCIM filter): only full audits can keep it in line."""


async def repair_affected(
    config: Config,
    store: Store,
    source: OktaSource,
    reader: ScimReader,
    affected: Affected,
    *,
    dry_run: bool = False,
) -> BatchOutcome:
    """Read, plan, gate and apply for the users ``affected`` names (group members expanded); recorded as a
    run of mode ``incremental``. Errors are recorded and returned, not raised."""
    run_id = store.start_run(RunMode.INCREMENTAL, fingerprint(config), tenant=config.tenant)
    batch = BatchOutcome(RunOutcome(run_id, RunStatus.RUNNING))
    outcome = batch.run
    with run_log_fields(run_id, config.tenant), failures_recorded(store, run_id) as failure:
        changed_at = await _affected_users(source, affected)
        batch.looked_at = len(changed_at)
        outcome.desired, outcome.actual = await read_users(config, source, reader, sorted(changed_at))
        outcome.plan = plan_affected(changed_at, outcome.desired, outcome.actual, config.mapping, config.policy)
        store.record_plan_counts(run_id, outcome.plan.summary())
        outcome.gate = _gate(config, store, outcome)
        if outcome.gate.blocked:
            log.warning("safety gate: %s", outcome.gate.reason, extra={"gate": outcome.gate.reason})
        if dry_run:
            store.record_skipped(run_id, outcome.plan.actions)
            outcome.status = dry_run_status(outcome.plan, outcome.gate)
        else:
            journal = ConfirmingJournal(store)
            await apply_users(config, store, outcome, reader, journal=journal)
            outcome.status, outcome.error = apply_status(outcome.applied, outcome.gate), apply_error(outcome.applied)
            batch.confirmed = {u: (changed_at[u], at) for u, at in journal.confirmed.items() if u in changed_at}
        store.mark_okta_changes(run_id, {u: changed_at[u] for u in _users_of(outcome.plan.actions) if u in changed_at})
    finish_recorded(store, outcome, failure)
    return batch


async def _affected_users(source: OktaSource, affected: Affected) -> dict[str, datetime]:
    """Okta user id → when its change was published: the users named, and the members of each group
    (un)assigned (a group's event time stands for its members)."""
    users = dict(affected.users)
    groups = sorted(affected.groups)
    members = await gather_bounded(source.group_member_ids, groups, READS_AT_ONCE)
    for group_id, member_ids in zip(groups, members, strict=True):
        for user_id in member_ids:
            published = affected.groups[group_id]
            users[user_id] = min(users.get(user_id, published), published)
    return users


async def read_users(
    config: Config, source: OktaSource, reader: ScimReader, user_ids: Sequence[str]
) -> tuple[list[OktaAssignment], list[PlatformUser]]:
    """Each user's assignment as Okta has it now (none when unassigned), and the platform users that
    could be theirs; the platform must be able to filter (:class:`IncrementalUnsupported` otherwise)."""
    await require_filters(reader)
    found = await gather_bounded(source.get_assignment, user_ids, READS_AT_ONCE)
    assignments = [a for a in found if a is not None]
    by_user = dict(zip(user_ids, found, strict=True))

    async def candidates(user_id: str) -> list[PlatformUser]:
        return await platform_candidates(reader, user_id, by_user[user_id], config)

    users: dict[str, PlatformUser] = {}
    for found_users in await gather_bounded(candidates, user_ids, READS_AT_ONCE):
        users.update((u.scim_id, u) for u in found_users)
    return assignments, list(users.values())


async def require_filters(reader: ScimReader) -> None:
    """:class:`IncrementalUnsupported` unless the platform can filter users (one user found without a listing)."""
    if not (await reader.capabilities()).filter_supported:
        raise IncrementalUnsupported(
            f"the platform at {reader.base_url} does not support SCIM filters, so one user cannot be looked up "
            "without reading them all: incremental repair is off for it (set incremental.enabled = false); "
            "the scheduled full audits keep it in line"
        )


async def platform_candidates(
    reader: ScimReader, okta_user_id: str, assignment: OktaAssignment | None, config: Config
) -> list[PlatformUser]:
    """The platform users the planner's three matching passes could pair with this Okta user, in as few
    requests as the common case allows: the SCIM id Okta stored, the externalId, then the userName."""
    found: dict[str, PlatformUser] = {}
    if assignment is not None and assignment.scim_id:
        try:
            user = await reader.get_user(assignment.scim_id)
        except TargetNotFound:
            pass
        else:
            found[user.scim_id] = user
            if user.external_id == okta_user_id:
                return [user]  # the pair the first pass makes: nothing else can claim this Okta user first
    linked = await reader.find_users(f"externalId eq {filter_string(okta_user_id)}")
    found.update((u.scim_id, u) for u in linked if u.external_id == okta_user_id)
    name = wanted_user_name(assignment, config.mapping) if assignment is not None else None
    if name is not None and not any(u.external_id == okta_user_id for u in found.values()):
        named = same_user_name(await reader.find_users(f"userName eq {filter_string(name)}"), name)
        found.update((u.scim_id, u) for u in named)
    return list(found.values())


def _gate(config: Config, store: Store, outcome: RunOutcome) -> GateDecision:
    assert outcome.plan is not None
    incremental = config.incremental
    since = datetime.now(UTC) - timedelta(seconds=incremental.window_s)
    recent = store.writes_since(fingerprint(config), since)
    audit = store.last_full_audit(fingerprint(config))
    populations = None
    if audit is not None and audit.source_count is not None and audit.managed_count is not None:
        populations = Populations(audit.source_count, audit.managed_count, audit.managed_count)
    return evaluate_window(outcome.plan, recent, populations, config.thresholds, incremental.window_text)


class ConfirmingJournal:
    """The store's journal, noting when each successful write of an Okta user was confirmed."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._users: dict[int, str | None] = {}
        self.confirmed: dict[str, datetime] = {}

    def record_intent(self, run_id: int, action: Action) -> int:
        action_id = self._store.record_intent(run_id, action)
        self._users[action_id] = action.okta_user_id
        return action_id

    def record_outcome(self, action_id: int, succeeded: bool, error: str | None, scim_id: str | None = None) -> None:
        self._store.record_outcome(action_id, succeeded, error, scim_id)
        user = self._users.get(action_id)
        if succeeded and user is not None:
            self.confirmed[user] = datetime.now(UTC)

    def record_skipped(self, run_id: int, actions: Iterable[Action], why: str | None = None) -> None:
        self._store.record_skipped(run_id, actions, why)


def _users_of(actions: Iterable[Action]) -> set[str]:
    return {a.okta_user_id for a in actions if a.okta_user_id is not None}
