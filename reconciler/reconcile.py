"""One reconcile run, end to end: read both sides, plan, apply (unless dry-run), record.

This is the only module that wires the stages together::

    okta source ─┐
                 ├─▶ plan (pure) ─▶ safety gate ─▶ apply ─▶ store ─▶ alerts
    scim target ─┘

A dry-run never builds a writer, so it cannot write. Any error while reading
either side fails the whole run before planning: a partial listing never
drives a plan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from reconciler.alerts import alert_after_run
from reconciler.apply import DEFAULT_WRITE_CONCURRENCY, Applier, ApplyResult
from reconciler.config import Config, fingerprint
from reconciler.errors import ReconcileError
from reconciler.gate import GateDecision, Populations, evaluate
from reconciler.okta_source import OktaSource
from reconciler.plan import plan
from reconciler.records import Action, OktaAssignment, Plan, PlatformUser
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


def okta_source(config: Config) -> OktaSource:
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
    )


def scim_reader(config: Config) -> ScimReader:
    return ScimReader(config.scim.base_url, config.scim.token, config.scim.page_size, config.scim.timeout_s)


async def read_both_sides(source: OktaSource, reader: ScimReader) -> tuple[list[OktaAssignment], list[PlatformUser]]:
    """Okta's assignments and the platform's users, read concurrently; either failing fails both.

    The first error cancels the other read, so nothing keeps running on a
    client that is about to be closed.
    """
    await reader.discover()
    okta = asyncio.create_task(source.list_assignments())
    scim = asyncio.create_task(reader.list_users())
    try:
        desired, actual = await asyncio.gather(okta, scim)
    except BaseException:
        for task in (okta, scim):
            task.cancel()
        await asyncio.gather(okta, scim, return_exceptions=True)
        raise
    return desired, actual


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
    except Exception as error:
        log.exception("run %s failed unexpectedly", run_id)
        failure.error = f"unexpected {type(error).__name__}: {error}"
    except BaseException as error:
        store.finish_run(run_id, RunStatus.INTERRUPTED, f"interrupted: {type(error).__name__}")
        raise


async def reconcile(
    config: Config,
    store: Store,
    *,
    dry_run: bool,
    write_concurrency: int = DEFAULT_WRITE_CONCURRENCY,
) -> RunOutcome:
    """Run once. Errors are recorded in the store and returned, not raised."""
    mode = RunMode.DRY_RUN if dry_run else RunMode.APPLY
    run_id = store.start_run(mode, fingerprint(config))
    outcome = RunOutcome(run_id, RunStatus.RUNNING)
    with failures_recorded(store, run_id) as failure:
        async with okta_source(config) as source, scim_reader(config) as reader:
            outcome.desired, outcome.actual = await read_both_sides(source, reader)
            _plan_and_gate(config, store, outcome)
            assert outcome.plan is not None and outcome.gate is not None
            if dry_run:
                store.record_skipped(run_id, outcome.plan.actions)
                outcome.status = _dry_run_status(outcome.plan, outcome.gate)
            else:
                writer = ScimWriter(reader)
                await _apply(config, store, outcome, writer, write_concurrency)
    if failure.error is not None:
        outcome.status, outcome.error = RunStatus.FAILED, failure.error
    if outcome.gate is not None and outcome.gate.blocked:
        blocked = f"blocked by the safety gate: {outcome.gate.reason}"
        outcome.error = blocked if outcome.error is None else f"{blocked}; {outcome.error}"
    store.finish_run(run_id, outcome.status, outcome.error)
    await alert_after_run(store, config, outcome)
    return outcome


def _plan_and_gate(config: Config, store: Store, outcome: RunOutcome) -> None:
    outcome.plan = plan(outcome.desired, outcome.actual, config.mapping, config.policy)
    previous = store.last_trusted_source_count(fingerprint(config), outcome.run_id)
    populations = Populations.of(outcome.desired, outcome.actual, previous)
    store.record_populations(outcome.run_id, populations.assignments, populations.managed)
    store.record_plan_counts(outcome.run_id, outcome.plan.summary())
    outcome.gate = evaluate(outcome.plan, populations, config.thresholds)
    if outcome.gate.blocked:
        log.warning("safety gate: %s", outcome.gate.reason)


async def _apply(config: Config, store: Store, outcome: RunOutcome, writer: ScimWriter, write_concurrency: int) -> None:
    """Send what the gate allows; record the rest as skipped, with why."""
    assert outcome.plan is not None and outcome.gate is not None
    gate = outcome.gate
    allowed = [a for a in outcome.plan.actions if gate.allows(a.kind)]
    held = [a for a in outcome.plan.actions if a.writes and not gate.allows(a.kind)]
    store.record_skipped(outcome.run_id, _report_only(outcome.plan.actions))
    store.record_skipped(outcome.run_id, held, f"not sent: blocked by the safety gate ({gate.reason})")
    applier = Applier(
        writer, store, outcome.run_id, outcome.actual, write_concurrency, config.thresholds.max_error_ratio
    )
    outcome.applied = await applier.apply(allowed)
    outcome.status = _apply_status(outcome.applied, gate)
    outcome.error = _apply_error(outcome.applied)


def _report_only(actions: tuple[Action, ...]) -> list[Action]:
    return [a for a in actions if not a.writes]


def _apply_status(result: ApplyResult, gate: GateDecision) -> RunStatus:
    if result.breaker is not None:
        return RunStatus.FAILED
    if gate.blocked:
        return RunStatus.BLOCKED
    return RunStatus.PARTIAL if result.failed else RunStatus.SUCCEEDED


def _dry_run_status(result: Plan, gate: GateDecision) -> RunStatus:
    if gate.blocked:
        return RunStatus.BLOCKED
    return RunStatus.DRIFT if needs_attention(result) else RunStatus.SUCCEEDED


def needs_attention(result: Plan) -> bool:
    """Drift worth a non-zero exit: something to write, or a conflict for a person to resolve.

    UNMANAGED platform users alone are not drift: with ``policy.unmanaged =
    "report"`` they are expected (service accounts, users of other sources).
    """
    return bool(result.writes) or result.summary()["conflict"] > 0


def _apply_error(result: ApplyResult) -> str | None:
    if result.breaker is not None:
        return f"{result.breaker}; {result.skipped} write(s) not sent"
    if not result.failed:
        return None
    shown = "; ".join(result.errors[:5])
    more = f" (and {result.failed - 5} more)" if result.failed > 5 else ""
    return f"{result.failed} action(s) failed: {shown}{more}"
