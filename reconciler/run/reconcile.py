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

import functools
import gc
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from reconciler.config.model import Config, fingerprint
from reconciler.errors import ReconcileError
from reconciler.hooks import NO_PROGRESS, ProgressListener
from reconciler.models.groups import GroupPlan
from reconciler.models.records import Action
from reconciler.models.runs import RunMode, RunStatus
from reconciler.okta.source import OktaSource
from reconciler.plan.gate import GroupPopulations, Populations, evaluate
from reconciler.plan.groups import member_directory, plan_groups
from reconciler.plan.users import group_member_links, plan
from reconciler.run.apply import Journal
from reconciler.run.log_fields import run_log_fields
from reconciler.run.outcome import (
    ConfirmPlan,
    RunOutcome,
    acknowledged_in,
    allowed_writes,
    apply_error,
    apply_status,
    dry_run_status,
)
from reconciler.run.wiring import (
    Lookahead,
    applier_for,
    group_applier_for,
    okta_source,
    read_both_sides,
    read_groups,
    scim_reader,
)
from reconciler.scim.reader import ScimReader
from reconciler.store import Store

log = logging.getLogger(__name__)

LEFT_OUT_LOGGED = 20
"""Group members left out that the run's log line names; the rest are counted (the plan names them all)."""


NESTED_TOO_DEEP = (
    "an answer from Okta or the platform holds a value nested too deeply to compare (hundreds of levels; "
    "no real user attribute is): the run stops"
)


DECLINED_NOTE = "declined when asked to confirm: nothing was written"


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
def freeze_startup_objects() -> None:
    """Move what is alive before the first run (mostly the SDKs' import-time objects) out of the collector's way.

    A run of 100,000 users allocates millions of objects, which triggers full
    garbage collections, and each one would walk the hundreds of thousands of
    objects the okta SDK, pydantic and SQLAlchemy leave from import time. Done
    once per process (``gc.freeze``, as CPython's documentation suggests for
    long-lived start-up state); later runs' garbage is collected as usual.
    No full collection first: the automatic ones during the imports leave
    nothing to free (measured: 0 unreachable objects), and one would cost
    about 60 ms before the first request.
    """
    gc.freeze()


async def reconcile(
    config: Config,
    store: Store,
    *,
    dry_run: bool,
    progress: ProgressListener = NO_PROGRESS,
    confirm: ConfirmPlan | None = None,
) -> RunOutcome:
    """Run once. Errors are recorded in the store and returned, not raised.

    ``confirm`` (a live run on a terminal) is asked between the gate and the first
    write, with the very plan that is then applied: nothing is read again in
    between. Declined, nothing is sent and the run ends ``declined``.
    The caller alerts (:func:`reconciler.run.alerting.alert_after_run`) once it has the outcome.
    """
    freeze_startup_objects()
    mode = RunMode.DRY_RUN if dry_run else RunMode.APPLY
    run_id = store.start_run(mode, fingerprint(config), tenant=config.tenant)
    outcome = RunOutcome(run_id, RunStatus.RUNNING)
    with run_log_fields(run_id, config.tenant), failures_recorded(store, run_id) as failure:
        lookahead = Lookahead(config)
        async with (
            okta_source(config, progress, lookahead.okta_page, store) as source,
            scim_reader(config, progress) as reader,
        ):
            read_s = await _read(config, outcome, source, reader, lookahead)
            started = time.perf_counter()
            _plan_and_gate(config, store, outcome, lookahead)
            _log_read_and_plan(outcome, read_s, time.perf_counter() - started)
            assert outcome.plan is not None and outcome.gate is not None
            progress.planned(len(outcome.plan.actions) + outcome.plan.in_sync)  # distinct users, whichever side
            if dry_run:
                _finish_dry_run(store, outcome)
            elif confirm is not None and allowed_writes(outcome) and not confirm(outcome):
                _decline(store, outcome)
            else:
                await _apply(config, store, outcome, reader, progress)
    finish_recorded(store, outcome, failure)
    return outcome


async def _read(
    config: Config, outcome: RunOutcome, source: OktaSource, reader: ScimReader, lookahead: Lookahead
) -> float:
    """Both sides' users (and groups, with ``[groups]``) into ``outcome``; the seconds it took."""
    started = time.perf_counter()
    try:
        outcome.desired, outcome.actual = await read_both_sides(source, reader, lookahead)
        if config.groups.enabled:
            outcome.desired_groups, outcome.actual_groups = await read_groups(config, source, reader)
    finally:
        outcome.okta_429s, outcome.okta_paced_s = source.rate_limited, source.rate_limit_waited_s
    return time.perf_counter() - started


def _log_read_and_plan(outcome: RunOutcome, read_s: float, plan_s: float) -> None:
    fields = {
        "assignments": len(outcome.desired),
        "platform_users": len(outcome.actual),
        "read_s": round(read_s, 3),
        "okta_paced_s": round(outcome.okta_paced_s, 3),
        "plan_s": round(plan_s, 3),
        "plan": outcome.plan.summary() if outcome.plan is not None else None,
    }
    log.info(
        "read %d assignments and %d platform users in %.2f s (%.2f s waiting for Okta's rate limit); planned in %.2f s",
        len(outcome.desired),
        len(outcome.actual),
        read_s,
        outcome.okta_paced_s,
        plan_s,
        extra=fields,
    )


def _finish_dry_run(store: Store, outcome: RunOutcome) -> None:
    """Record every action as skipped (a dry-run sends nothing) and decide the dry-run's status."""
    assert outcome.plan is not None and outcome.gate is not None
    store.record_skipped(outcome.run_id, outcome.plan.actions)
    if outcome.group_plan is not None:
        store.record_group_skipped(outcome.run_id, outcome.group_plan.actions)
    outcome.status = dry_run_status(outcome.plan, outcome.gate, outcome.group_plan, outcome.acknowledged)


def _decline(store: Store, outcome: RunOutcome) -> None:
    """The operator said no: every action recorded as not sent, with why; the run ends declined, not failed."""
    assert outcome.plan is not None
    why = "not sent: the operator declined the plan when asked to confirm it"
    store.record_skipped(outcome.run_id, _report_only(outcome.plan.actions))
    store.record_skipped(outcome.run_id, outcome.plan.writes, why)
    if outcome.group_plan is not None:
        store.record_group_skipped(outcome.run_id, [a for a in outcome.group_plan.actions if not a.writes])
        store.record_group_skipped(outcome.run_id, outcome.group_plan.writes, why)
    outcome.status = RunStatus.DECLINED
    outcome.error = DECLINED_NOTE


def _plan_and_gate(config: Config, store: Store, outcome: RunOutcome, lookahead: Lookahead) -> None:
    outcome.plan = plan(outcome.desired, outcome.actual, config.mapping, config.policy, lookahead.builder)
    outcome.acknowledged = acknowledged_in(outcome.plan, store.acknowledgements(fingerprint(config)))
    previous = store.last_trusted_source_count(fingerprint(config), outcome.run_id)
    populations = Populations.of(outcome.desired, outcome.actual, previous, lookahead.managed_of(outcome.actual))
    store.record_populations(outcome.run_id, populations.assignments, populations.managed)
    store.record_plan_counts(outcome.run_id, outcome.plan.summary())
    groups = _plan_groups(config, store, outcome) if config.groups.enabled else None
    outcome.gate = evaluate(outcome.plan, populations, config.thresholds, groups)
    if outcome.gate.blocked:
        log.warning("safety gate: %s", outcome.gate.reason, extra={"gate": outcome.gate.reason})


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
        directory=member_directory(
            outcome.desired, outcome.actual, outcome.group_links, config.policy, outcome.plan.pairs
        ),
    )
    store.record_group_plan_counts(outcome.run_id, outcome.group_plan.summary())
    left_out = outcome.group_plan.left_out
    if left_out:
        named = "; ".join(f"{e.member.label()} ({e.group}): {e.why}" for e in left_out[:LEFT_OUT_LOGGED])
        more = f"; and {len(left_out) - LEFT_OUT_LOGGED} more" if len(left_out) > LEFT_OUT_LOGGED else ""
        log.info("%d group member(s) left out: %s%s", len(left_out), named, more, extra={"left_out": len(left_out)})
    return outcome.group_plan, GroupPopulations.of(outcome.desired_groups, outcome.actual_groups)


async def _apply(
    config: Config, store: Store, outcome: RunOutcome, reader: ScimReader, progress: ProgressListener
) -> None:
    """The user writes, then the group writes; the run's status from what was sent."""
    await apply_users(config, store, outcome, reader, progress)
    if outcome.group_plan is not None:
        await _apply_groups(config, store, outcome, reader)
    assert outcome.gate is not None
    outcome.status = apply_status(outcome.applied, outcome.gate)
    outcome.error = apply_error(outcome.applied)


async def apply_users(
    config: Config,
    store: Store,
    outcome: RunOutcome,
    reader: ScimReader,
    progress: ProgressListener = NO_PROGRESS,
    journal: Journal | None = None,
) -> None:
    """Send the user writes the gate allows, ``scim.write_concurrency`` at a time at most, into
    ``outcome.applied``; record the rest as skipped, with why. Outcomes go to ``journal`` (default: the store)."""
    assert outcome.plan is not None and outcome.gate is not None
    gate = outcome.gate
    allowed = [a for a in outcome.plan.actions if gate.allows(a.kind)]
    held = [a for a in outcome.plan.actions if a.writes and not gate.allows(a.kind)]
    store.record_skipped(outcome.run_id, _report_only(outcome.plan.actions))
    store.record_skipped(outcome.run_id, held, f"not sent: blocked by the safety gate ({gate.reason})")
    applier = applier_for(config, store, outcome.run_id, reader, outcome.actual, progress, journal)
    outcome.applied = await applier.apply(allowed)


def finish_recorded(store: Store, outcome: RunOutcome, failure: Failure) -> None:
    """End the run in the store: failed with what it raised, the gate's reason first when it blocked."""
    if failure.error is not None:
        outcome.status, outcome.error = RunStatus.FAILED, failure.error
    if outcome.gate is not None and outcome.gate.blocked:
        blocked = f"blocked by the safety gate: {outcome.gate.reason}"
        outcome.error = blocked if outcome.error is None else f"{blocked}; {outcome.error}"
    store.finish_run(outcome.run_id, outcome.status, outcome.error)


async def _apply_groups(config: Config, store: Store, outcome: RunOutcome, reader: ScimReader) -> None:
    """Send the group writes the gate allows, after every user write; members created this run resolve now."""
    assert outcome.group_plan is not None and outcome.gate is not None
    gate, actions = outcome.gate, outcome.group_plan.actions
    store.record_group_skipped(outcome.run_id, [a for a in actions if not a.writes])
    held = [a for a in actions if a.writes and not gate.allows(a.kind)]
    store.record_group_skipped(outcome.run_id, held, f"not sent: blocked by the safety gate ({gate.reason})")
    applier = group_applier_for(config, store, outcome.run_id, reader, outcome.group_links, outcome.applied)
    await applier.apply(a for a in actions if gate.allows(a.kind))


def _report_only(actions: tuple[Action, ...]) -> list[Action]:
    return [a for a in actions if not a.writes]
