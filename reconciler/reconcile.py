"""One reconcile run, end to end: read both sides, plan, apply (unless dry-run), record.

This is the only module that wires the stages together::

    okta source ─┐
                 ├─▶ plan (pure) ─▶ safety gate ─▶ apply ─▶ store ─▶ alerts
    scim target ─┘

With ``[groups]`` set, each side's groups are read after its users, the group
plan follows the user plan (it names members by the users' links), both pass
the one gate, and group writes are applied after every user write.
A dry-run never builds a writer, so it cannot write. Any error while reading
either side fails the whole run before planning: a partial listing never
drives a plan.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from reconciler.alerts import alert_after_run
from reconciler.apply import Applier, ApplyResult
from reconciler.config import Config, fingerprint
from reconciler.errors import ReconcileError
from reconciler.gate import GateDecision, GroupPopulations, Populations, evaluate
from reconciler.group_apply import GroupApplier
from reconciler.group_plan import GroupPlan, OktaGroup, PlatformGroup, plan_groups
from reconciler.mapping import profile_fields, resource_attributes
from reconciler.okta_source import OktaSource
from reconciler.pacing import AdaptiveLimit, all_or_cancel
from reconciler.plan import PairDecisions, group_member_links, pair_actions, plan
from reconciler.progress import NO_PROGRESS, ProgressListener
from reconciler.records import Action, OktaAssignment, Plan, PlatformUser
from reconciler.scim_groups import ScimGroups
from reconciler.scim_target import ScimReader, ScimWriter
from reconciler.store import RunMode, RunStatus, Store

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    run_id: int
    status: RunStatus
    plan: Plan | None = None
    gate: GateDecision | None = None
    applied: ApplyResult = field(default_factory=ApplyResult)
    error: str | None = None
    desired: list[OktaAssignment] = field(default_factory=list, repr=False)
    """What Okta listed: kept for a saved plan's subject digests."""
    actual: list[PlatformUser] = field(default_factory=list, repr=False)
    okta_429s: int = 0
    """429 answers Okta gave despite the pacing (each waited out)."""
    okta_paced_s: float = 0.0
    """Seconds spent waiting for Okta rate-limit windows to reset."""
    group_plan: GroupPlan | None = None
    """The group plan; None when no group is pushed (``[groups]`` unset)."""
    desired_groups: list[OktaGroup] = field(default_factory=list, repr=False)
    actual_groups: list[PlatformGroup] = field(default_factory=list, repr=False)
    group_links: dict[str, str] = field(default_factory=dict, repr=False)
    """Okta user id → SCIM id of the users a group may name as members."""


def okta_source(
    config: Config,
    progress: ProgressListener = NO_PROGRESS,
    on_page: Callable[[list[OktaAssignment]], None] | None = None,
) -> OktaSource:
    okta = config.okta
    return OktaSource(
        org_url=okta.org_url,
        app_id=okta.app_id,
        auth=okta.auth,
        token=okta.token,
        client_id=okta.client_id,
        private_key=okta.private_key,
        scopes=okta.scopes,
        timeout_s=okta.timeout_s,
        rate_limit_share=okta.rate_limit_share,
        profile_fields=profile_fields(config.mapping),
        progress=progress,
        on_page=on_page,
        ca_bundle=okta.ca_bundle,
        max_response_bytes=okta.max_response_bytes,
    )


def scim_reader(config: Config, progress: ProgressListener = NO_PROGRESS) -> ScimReader:
    scim = config.scim
    return ScimReader(
        scim.base_url,
        scim.token,
        scim.page_size,
        scim.timeout_s,
        read_concurrency=scim.read_concurrency,
        progress=progress,
        keep_attributes=resource_attributes(config.mapping),
        ca_bundle=scim.ca_bundle,
        max_response_bytes=scim.max_response_bytes,
    )


class Lookahead:
    """Decides likely pairs (:func:`~reconciler.plan.pair_actions`) while Okta pages are still arriving.

    The platform's listing is done long before Okta's, whose pages come one
    round trip after another: each page that arrives once the platform is
    known is decided in the meantime, so little planning is left at the end.
    """

    def __init__(self, config: Config) -> None:
        self._mapping, self._policy = config.mapping, config.policy
        self._users: dict[str, PlatformUser] | None = None
        self._waiting: list[OktaAssignment] = []
        self.decided: PairDecisions = {}

    def okta_page(self, assignments: list[OktaAssignment]) -> None:
        if self._users is None:
            self._waiting.extend(assignments)
        else:
            self.decided.update(pair_actions(assignments, self._users, self._mapping, self._policy))

    def platform_read(self, users: list[PlatformUser]) -> None:
        self._users = {user.scim_id: user for user in users}
        waiting, self._waiting = self._waiting, []
        self.okta_page(waiting)


async def read_both_sides(
    source: OktaSource, reader: ScimReader, lookahead: Lookahead | None = None
) -> tuple[list[OktaAssignment], list[PlatformUser]]:
    """Okta's assignments and the platform's users, read concurrently; either failing fails both.

    The first error cancels the other read, so nothing keeps running on a
    client that is about to be closed.
    """
    await reader.discover()
    okta = asyncio.create_task(source.list_assignments())
    scim = asyncio.create_task(reader.list_users())
    if lookahead is not None:
        scim.add_done_callback(lambda done: _tell_platform_read(done, lookahead))
    desired, actual = await all_or_cancel(okta, scim)
    return desired, actual


async def read_groups(
    config: Config, source: OktaSource, reader: ScimReader
) -> tuple[list[OktaGroup], list[PlatformGroup]]:
    """Okta's pushed groups with their members, and the platform's groups, read concurrently."""
    groups = config.groups
    okta = asyncio.create_task(source.list_pushed_groups(groups.push, groups.push_assigned))
    scim = asyncio.create_task(ScimGroups(reader, groups.member_batch).list_groups())
    desired, actual = await all_or_cancel(okta, scim)
    return desired, actual


def _tell_platform_read(done: asyncio.Task[list[PlatformUser]], lookahead: Lookahead) -> None:
    if not done.cancelled() and done.exception() is None:
        lookahead.platform_read(done.result())


NESTED_TOO_DEEP = (
    "an answer from Okta or the platform holds a value nested too deeply to compare (hundreds of levels; "
    "no real user attribute is): the run stops"
)


@dataclass
class Failure:
    error: str | None = None


@contextmanager
def failures_recorded(store: Store, run_id: int) -> Iterator[Failure]:
    """Turn what a run raises into its outcome.

    A ReconcileError (a side unreadable, a bad answer) or a bug fails the run,
    with the error kept in ``Failure.error`` (a bug's traceback is logged); a
    cancellation or an interrupt records the run as interrupted and goes on up.
    """
    failure = Failure()
    try:
        yield failure
    except ReconcileError as error:
        failure.error = str(error)
    except RecursionError:
        # Answers are decoded within the recursion limit, but a value nested hundreds deep (no real
        # attribute is) can still be too deep to compare or record: a hostile answer, not a bug.
        failure.error = NESTED_TOO_DEEP
        log.error("run %s failed: %s", run_id, NESTED_TOO_DEEP)
    except Exception as error:
        log.exception("run %s failed unexpectedly", run_id)
        failure.error = f"unexpected {type(error).__name__}: {error}"
    except BaseException as error:
        store.finish_run(run_id, RunStatus.INTERRUPTED, f"interrupted: {type(error).__name__}")
        raise


@functools.cache
def _freeze_startup_objects() -> None:
    """Move what is alive before the first run (mostly the SDKs' import-time objects) out of the collector's way.

    A run of 100,000 users allocates millions of objects, which triggers full
    garbage collections, and each one would walk the hundreds of thousands of
    objects the okta SDK, pydantic and SQLAlchemy leave from import time. Done
    once per process (``gc.freeze``, as CPython's documentation suggests for
    long-lived start-up state); later runs' garbage is collected as usual.
    """
    gc.collect()
    gc.freeze()


async def reconcile(
    config: Config,
    store: Store,
    *,
    dry_run: bool,
    progress: ProgressListener = NO_PROGRESS,
) -> RunOutcome:
    """Run once. Errors are recorded in the store and returned, not raised."""
    _freeze_startup_objects()
    mode = RunMode.DRY_RUN if dry_run else RunMode.APPLY
    run_id = store.start_run(mode, fingerprint(config), tenant=config.tenant)
    outcome = RunOutcome(run_id, RunStatus.RUNNING)
    with failures_recorded(store, run_id) as failure:
        lookahead = Lookahead(config)
        async with (
            okta_source(config, progress, lookahead.okta_page) as source,
            scim_reader(config, progress) as reader,
        ):
            started = time.perf_counter()
            try:
                outcome.desired, outcome.actual = await read_both_sides(source, reader, lookahead)
                if config.groups.enabled:
                    outcome.desired_groups, outcome.actual_groups = await read_groups(config, source, reader)
            finally:
                outcome.okta_429s, outcome.okta_paced_s = source.rate_limited, source.rate_limit_waited_s
            read_s = time.perf_counter() - started
            _plan_and_gate(config, store, outcome, lookahead.decided)
            log.info(
                "read %d assignments and %d platform users in %.2f s (%.2f s waiting for Okta's rate limit); "
                "planned in %.2f s",
                len(outcome.desired),
                len(outcome.actual),
                read_s,
                outcome.okta_paced_s,
                time.perf_counter() - started - read_s,
            )
            assert outcome.plan is not None and outcome.gate is not None
            progress.planned(len(outcome.plan.actions) + outcome.plan.in_sync)  # distinct users, whichever side
            if dry_run:
                store.record_skipped(run_id, outcome.plan.actions)
                if outcome.group_plan is not None:
                    store.record_group_skipped(run_id, outcome.group_plan.actions)
                outcome.status = _dry_run_status(outcome.plan, outcome.gate, outcome.group_plan)
            else:
                await _apply(config, store, outcome, reader, progress)
    if failure.error is not None:
        outcome.status, outcome.error = RunStatus.FAILED, failure.error
    if outcome.gate is not None and outcome.gate.blocked:
        blocked = f"blocked by the safety gate: {outcome.gate.reason}"
        outcome.error = blocked if outcome.error is None else f"{blocked}; {outcome.error}"
    store.finish_run(run_id, outcome.status, outcome.error)
    await alert_after_run(store, config, outcome)
    return outcome


def _plan_and_gate(config: Config, store: Store, outcome: RunOutcome, ahead: PairDecisions) -> None:
    outcome.plan = plan(outcome.desired, outcome.actual, config.mapping, config.policy, ahead)
    previous = store.last_trusted_source_count(fingerprint(config), outcome.run_id)
    populations = Populations.of(outcome.desired, outcome.actual, previous)
    store.record_populations(outcome.run_id, populations.assignments, populations.managed)
    store.record_plan_counts(outcome.run_id, outcome.plan.summary())
    groups = _plan_groups(config, store, outcome) if config.groups.enabled else None
    outcome.gate = evaluate(outcome.plan, populations, config.thresholds, groups)
    if outcome.gate.blocked:
        log.warning("safety gate: %s", outcome.gate.reason)


def _plan_groups(config: Config, store: Store, outcome: RunOutcome) -> tuple[GroupPlan, GroupPopulations]:
    """The group plan, from the user plan's links; its counts are kept on the run."""
    assert outcome.plan is not None
    outcome.group_links, created = group_member_links(outcome.plan, outcome.desired, config.policy)
    outcome.group_plan = plan_groups(
        outcome.desired_groups,
        outcome.actual_groups,
        outcome.group_links,
        created,
        delete_unpushed=config.groups.delete_unpushed,
    )
    store.record_group_plan_counts(outcome.run_id, outcome.group_plan.summary())
    if outcome.group_plan.unresolved_members:
        left_out = sum(len(m) for m in outcome.group_plan.unresolved_members.values())
        log.info("%d group member(s) left out: their users are not provisioned by this app", left_out)
    return outcome.group_plan, GroupPopulations.of(outcome.desired_groups, outcome.actual_groups)


async def _apply(
    config: Config, store: Store, outcome: RunOutcome, reader: ScimReader, progress: ProgressListener
) -> None:
    """Send what the gate allows, ``scim.write_concurrency`` at a time at most; record the rest as skipped, with why."""
    assert outcome.plan is not None and outcome.gate is not None
    gate = outcome.gate
    allowed = [a for a in outcome.plan.actions if gate.allows(a.kind)]
    held = [a for a in outcome.plan.actions if a.writes and not gate.allows(a.kind)]
    store.record_skipped(outcome.run_id, _report_only(outcome.plan.actions))
    store.record_skipped(outcome.run_id, held, f"not sent: blocked by the safety gate ({gate.reason})")
    applier = applier_for(config, store, outcome.run_id, reader, outcome.actual, progress)
    outcome.applied = await applier.apply(allowed)
    if outcome.group_plan is not None:
        await _apply_groups(config, store, outcome, reader)
    outcome.status = _apply_status(outcome.applied, gate)
    outcome.error = _apply_error(outcome.applied)


async def _apply_groups(config: Config, store: Store, outcome: RunOutcome, reader: ScimReader) -> None:
    """Send the group writes the gate allows, after every user write; members created this run resolve now."""
    assert outcome.group_plan is not None and outcome.gate is not None
    gate, actions = outcome.gate, outcome.group_plan.actions
    store.record_group_skipped(outcome.run_id, [a for a in actions if not a.writes])
    held = [a for a in actions if a.writes and not gate.allows(a.kind)]
    store.record_group_skipped(outcome.run_id, held, f"not sent: blocked by the safety gate ({gate.reason})")
    applier = group_applier_for(config, store, outcome.run_id, reader, outcome.group_links, outcome.applied)
    await applier.apply(a for a in actions if gate.allows(a.kind))


def group_applier_for(
    config: Config, store: Store, run_id: int, reader: ScimReader, links: dict[str, str], result: ApplyResult
) -> GroupApplier:
    """The GroupApplier of a run, after its users: members resolve through ``links`` and the users just created."""
    return GroupApplier(
        ScimGroups(reader, config.groups.member_batch),
        store,
        run_id,
        links | result.created,
        limit=AdaptiveLimit(config.scim.write_concurrency),
        result=result,
        max_error_ratio=config.thresholds.max_error_ratio,
    )


def applier_for(
    config: Config,
    store: Store,
    run_id: int,
    reader: ScimReader,
    actual: list[PlatformUser],
    progress: ProgressListener = NO_PROGRESS,
) -> Applier:
    """The Applier of a run: ``scim.write_concurrency`` writes at most, fewer while the platform answers 429."""
    limit = AdaptiveLimit(config.scim.write_concurrency)
    writer = ScimWriter(reader, on_throttled=limit.throttled)
    return Applier(
        writer,
        store,
        run_id,
        actual,
        max_error_ratio=config.thresholds.max_error_ratio,
        limit=limit,
        progress=progress,
    )


def _report_only(actions: tuple[Action, ...]) -> list[Action]:
    return [a for a in actions if not a.writes]


def _apply_status(result: ApplyResult, gate: GateDecision) -> RunStatus:
    if result.breaker is not None:
        return RunStatus.FAILED
    if gate.blocked:
        return RunStatus.BLOCKED
    return RunStatus.PARTIAL if result.failed else RunStatus.SUCCEEDED


def _dry_run_status(result: Plan, gate: GateDecision, groups: GroupPlan | None = None) -> RunStatus:
    if gate.blocked:
        return RunStatus.BLOCKED
    return RunStatus.DRIFT if needs_attention(result, groups) else RunStatus.SUCCEEDED


def needs_attention(result: Plan, groups: GroupPlan | None = None) -> bool:
    """Drift worth a non-zero exit: something to write, or a conflict for a person to resolve.

    UNMANAGED platform users alone are not drift: with ``policy.unmanaged =
    "report"`` they are expected (service accounts, users of other sources);
    the same holds for unmanaged platform groups.
    """
    if groups is not None and (groups.writes or groups.summary()["conflict"] > 0):
        return True
    return bool(result.writes) or result.summary()["conflict"] > 0


def _apply_error(result: ApplyResult) -> str | None:
    if result.breaker is not None:
        return f"{result.breaker}; {result.skipped} write(s) not sent"
    if not result.failed:
        return None
    shown = "; ".join(result.errors[:5])
    more = f" (and {result.failed - 5} more)" if result.failed > 5 else ""
    return f"{result.failed} action(s) failed: {shown}{more}"
