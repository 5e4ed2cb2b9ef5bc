"""The System Log follower: polls Okta's log, repairs the users each page's events touched, then
checkpoints the cursor. Used by ``serve`` (per tenant, under its lease) and ``reconcile follow``.

At least once, never twice: the cursor (the ``next`` link, the highest ``published`` seen, the latest
event uuids) is saved only after a page's repairs are recorded, and a repair is planned against both
sides' state at that moment, so events read again (after a crash, or in the overlap window) find
nothing left to do. A full audit comes first when there is no cursor, when the stored one is older
than the log keeps, when the log's cursor is refused and the last event seen is gone too, when polling
has failed for longer than ``incremental.max_gap``, and when the app's own configuration changed;
polling then restarts ``incremental.overlap`` before the audit began (so a skewed clock loses nothing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from reconciler.config.model import Config, fingerprint
from reconciler.errors import ReconcileError, SourceError
from reconciler.hooks import NO_FOLLOW_LISTENER, FollowListener
from reconciler.models.events import LogEvent
from reconciler.models.log import RECENT_UUIDS_KEPT, LogCursor
from reconciler.models.runs import RunStatus
from reconciler.okta.connection import Rejected
from reconciler.okta.log import LOG_SCOPE, LogAccessDenied, LogPage, SystemLogReader
from reconciler.okta.source import OktaSource
from reconciler.plan.events import Affected, AppScope, affected_by
from reconciler.run.incremental import BatchOutcome, IncrementalUnsupported, repair_affected, require_filters
from reconciler.run.outcome import RunOutcome
from reconciler.run.wiring import okta_source, scim_reader
from reconciler.scim.reader import ScimReader
from reconciler.store import Store
from reconciler.store.locks import LockBusy

log = logging.getLogger(__name__)

RETENTION = timedelta(days=90)
"""How long Okta keeps its System Log: a cursor older than this points at events that are gone."""
BATCH_LOCK_WAIT_S = 0.0
"""How long a batch waits for the target's run lock, which a full run holds for its whole length: not at all
(waiting would block the event loop); the page is polled again next time, its cursor not saved."""

FullAudit = Callable[[], Awaitable[RunOutcome]]
"""A full run of both sides (with its alerts): the caller's, so that it runs under the caller's lease."""


def follow_lease_name(target: str) -> str:
    """The lock that one follower of the target whose fingerprint is ``target`` holds for as long as it follows
    (a replica, ``serve``, ``reconcile follow``): a second one on the same log would only repeat its reads."""
    return f"follow:{target}"


class FollowerOff(ReconcileError):
    """The follower cannot go on (no log access, no SCIM filter): it stops; full audits go on."""


@dataclass(frozen=True, slots=True)
class PollResult:
    caught_up: bool
    events: int = 0
    batch: BatchOutcome | None = None
    audited: bool = False


class Follower:
    """One tenant's follower. ``async with Follower(...) as follower: await follower.follow(stop)``."""

    def __init__(
        self,
        config: Config,
        store: Store,
        full_audit: FullAudit,
        *,
        listener: FollowListener = NO_FOLLOW_LISTENER,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        dry_run: bool = False,
    ) -> None:
        self.config, self.store, self._full_audit = config, store, full_audit
        self.dry_run = dry_run
        """Plan and record each batch, send nothing, and keep the stored cursor where it is (``follow --dry-run``)."""
        self.listener, self.clock = listener, clock
        self.settings = config.incremental
        self.fingerprint = fingerprint(config)
        self._exits = AsyncExitStack()
        self.log_source: OktaSource | None = None
        self.source: OktaSource | None = None
        self.reader: ScimReader | None = None
        self.log_reader: SystemLogReader | None = None
        self.url: str | None = None
        self.high_water: datetime | None = None
        self.recent: OrderedDict[str, None] = OrderedDict()
        self.rechecks: dict[str, datetime] = {}
        """Okta user id → when to look at it once more (Okta's group fan-out and pushes are asynchronous)."""
        self.failing_since: float | None = None
        self.scope = AppScope(config.okta.app_id)

    async def __aenter__(self) -> Self:
        self.source = await self._exits.enter_async_context(okta_source(self.config, store=self.store))
        self.log_source = await self._exits.enter_async_context(self._log_source())
        self.reader = await self._exits.enter_async_context(scim_reader(self.config))
        self.log_reader = SystemLogReader(self.log_source.connection, limit=self.settings.batch_limit)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._exits.aclose()

    def _log_source(self) -> OktaSource:
        """A source whose credential may read the log: a service app asks for ``okta.logs.read`` in a token of
        its own, so a grant that lacks it turns only the follower off, never the listings."""
        okta = self.config.okta
        if okta.auth != "oauth" or LOG_SCOPE in okta.scopes:
            return okta_source(self.config, store=self.store)
        widened = replace(self.config, okta=replace(okta, scopes=(*okta.scopes, LOG_SCOPE)))
        return okta_source(widened, store=self.store)

    # -- the loop --------------------------------------------------------------

    async def follow(self, stop: asyncio.Event, on_poll: Callable[[PollResult], None] | None = None) -> None:
        """Poll until ``stop`` is set: at once while pages come full, every ``incremental.poll`` once caught up.
        Raises :class:`FollowerOff` when it cannot go on. ``on_poll`` is told each poll's result."""
        await self.start()
        while not stop.is_set():
            result = await self.poll_safely()
            if on_poll is not None:
                on_poll(result)
            if result.caught_up:
                await wait_or_stop(stop, self.settings.poll_s)

    async def start(self) -> None:
        """Resume from the stored cursor, or audit first (no cursor, or one older than the log keeps)."""
        assert self.source is not None and self.reader is not None
        try:
            await require_filters(self.reader)
        except IncrementalUnsupported as unsupported:
            self.listener.stopped(str(unsupported))
            raise FollowerOff(str(unsupported)) from None
        self.scope = AppScope(self.config.okta.app_id, await self._group_ids())
        cursor = self.store.log_cursor(self.fingerprint)
        if cursor is None:
            await self.audit_then_restart("no cursor yet: a full audit first, then the log from its start")
        elif cursor.high_water is not None and self.clock() - cursor.high_water > RETENTION - timedelta(days=1):
            await self.audit_then_restart("the stored cursor is older than the 90 days Okta keeps its log")
        elif self.clock() - (cursor.last_ok_at or cursor.updated_at) > timedelta(seconds=self.settings.max_gap_s):
            self.recent = OrderedDict.fromkeys(cursor.recent_uuids)
            await self.audit_then_restart(f"the log was last read more than {self.settings.max_gap} ago")
        else:
            self.url, self.high_water = cursor.next_url, cursor.high_water
            self.recent = OrderedDict.fromkeys(cursor.recent_uuids)
            if self.url is None:
                self.url = self._restart_url()

    async def _group_ids(self) -> frozenset[str]:
        assert self.source is not None
        return await self.source.assigned_group_ids()

    async def poll_safely(self) -> PollResult:
        """:meth:`poll`; a failure is logged and retried next time, and a long one brings a full audit."""
        try:
            result = await self.poll()
        except (LogAccessDenied, IncrementalUnsupported) as off:
            self.listener.stopped(str(off))
            raise FollowerOff(str(off)) from None
        except Rejected as refused:
            if self.url is not None and "after=" not in self.url:  # a restart refused too: not the cursor's fault
                return await self._failed(str(refused))
            log.warning("Okta refused the System Log cursor (%s); restarting from the last event seen", refused)
            self.url = self._restart_url()
            return PollResult(caught_up=False)
        except SourceError as error:
            return await self._failed(str(error))
        self.failing_since = None
        return result

    async def _failed(self, error: str) -> PollResult:
        now = time.monotonic()
        self.failing_since = self.failing_since or now
        log.warning("System Log follower: %s", error)
        if now - self.failing_since > self.settings.max_gap_s:
            self.failing_since = None
            await self.audit_then_restart(f"polling has failed for more than {self.settings.max_gap}: {error}")
            return PollResult(caught_up=True, audited=True)
        return PollResult(caught_up=True)

    async def poll(self) -> PollResult:
        """One page: its new events → affected users → one batch repaired → the cursor checkpointed."""
        assert self.log_reader is not None and self.url is not None
        page = await self.log_reader.page(self.url)
        fresh = [e for e in page.events if e.uuid not in self.recent]
        affected = affected_by(fresh, self.scope)
        if affected.full_audit:
            self._remember(fresh)  # read again from before the audit, they are not to call for another
            await self.audit_then_restart("; ".join(affected.full_audit))
            return PollResult(caught_up=False, events=len(fresh), audited=True)
        if affected.push_failures:
            log.info(
                "System Log: Okta reports %d failed push(es) to the app; their users are repaired now",
                affected.push_failures,
                extra={"push_failures": affected.push_failures},
            )
        self._follow_groups(affected)
        self._add_due_rechecks(affected)
        batch = await self._repair(affected) if not affected.nothing else None
        if batch is not None and batch.run.status in (RunStatus.FAILED, RunStatus.INTERRUPTED):
            raise SourceError(f"incremental run {batch.run.run_id} failed: {batch.run.error}")
        self._checkpoint(page, fresh)
        lag = 0.0 if page.caught_up or not fresh else (self.clock() - max(e.published for e in fresh)).total_seconds()
        self.listener.polled(len(fresh), affected.ignored, affected.acted, len(page.malformed), max(0.0, lag))
        for line in page.malformed:
            log.warning("System Log: skipped an event that cannot be read: %s", line)
        return PollResult(page.caught_up, len(fresh), batch)

    async def _repair(self, affected: Affected) -> BatchOutcome:
        """One batch, under the target's run lock: a full run and a batch never write at once, and a run left
        'running' by a dead process (a batch killed mid-write) is marked interrupted first, as every run does."""
        assert self.source is not None and self.reader is not None
        try:
            with self.store.run_lock(self.fingerprint, wait_s=BATCH_LOCK_WAIT_S):
                self.store.mark_interrupted(fingerprint=self.fingerprint)  # the lock held: what runs is abandoned
                batch = await repair_affected(
                    self.config, self.store, self.source, self.reader, affected, dry_run=self.dry_run
                )
        except LockBusy as busy:
            raise SourceError(f"a batch waits for the run in progress ({busy})") from None
        for published, confirmed in batch.confirmed.values():
            self.listener.repaired(max(0.0, (confirmed - published).total_seconds()))
        if self.settings.recheck_after_s > 0:
            due = self.clock() + timedelta(seconds=self.settings.recheck_after_s)
            for user_id in affected.users:
                self.rechecks.setdefault(user_id, due)
        return batch

    def _add_due_rechecks(self, affected: Affected) -> None:
        """Users whose second look is due join this batch (their time to repair starts now: a second look
        finds what the first could not yet see)."""
        now = self.clock()
        for user_id, due in list(self.rechecks.items()):
            if due <= now and user_id not in affected.users:
                del self.rechecks[user_id]
                affected.add_user(user_id, now)

    def _follow_groups(self, affected: Affected) -> None:
        groups = (self.scope.group_ids | affected.groups_assigned) - affected.groups_unassigned
        self.scope = AppScope(self.scope.app_id, frozenset(groups), self.scope.known_users)

    def _remember(self, fresh: list[LogEvent]) -> None:
        for event in fresh:
            self.recent[event.uuid] = None
            if self.high_water is None or event.published > self.high_water:
                self.high_water = event.published
        while len(self.recent) > RECENT_UUIDS_KEPT:
            self.recent.popitem(last=False)

    def _checkpoint(self, page: LogPage, fresh: list[LogEvent]) -> None:
        self._remember(fresh)
        self.url = page.next_url
        now = self.clock()
        self._save(LogCursor(page.next_url, self.high_water, tuple(self.recent), now, now))

    def _save(self, cursor: LogCursor) -> None:
        if not self.dry_run:  # a dry run repaired nothing: the events stay ahead of the stored cursor
            self.store.save_log_cursor(self.fingerprint, cursor, tenant=self.config.tenant)

    # -- full audits and restarts ------------------------------------------------

    async def audit_then_restart(self, why: str) -> None:
        """A full run of both sides, then polling from ``overlap`` before it began."""
        log.info("System Log follower: %s", why)
        began = self.clock()
        outcome = await self._full_audit()
        if outcome.status not in (RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.DRIFT, RunStatus.BLOCKED):
            raise SourceError(f"the full audit the follower needs failed: {outcome.error}")
        self.high_water = began
        self.rechecks.clear()
        self.url = self._restart_url()
        self._save(LogCursor(self.url, self.high_water, tuple(self.recent), began, began))

    def _restart_url(self) -> str:
        """Polling from ``overlap`` before the last event seen (or now): events read again are dropped by uuid."""
        assert self.log_reader is not None
        since = (self.high_water or self.clock()) - timedelta(seconds=self.settings.overlap_s)
        return self.log_reader.start_url(since)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
