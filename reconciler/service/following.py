"""The System Log follower as a task of ``serve``, beside the scheduled full audits.

:class:`FollowerTask` runs one target's :class:`reconciler.run.follower.Follower` until told to stop:

- its full audits (no cursor yet, a gap, the app's configuration changed) are the service's own scheduled
  run, under the service's lock and the target's run lock: the caller's ``full_audit``;
- the follower turning itself off (:class:`FollowerOff`: no ``okta.logs.read``, no SCIM filter) is logged
  once and told once through the alert channel (condition ``follower_off``); it stays off until the service
  is reloaded or restarted, while the full audits go on;
- anything else it raises is logged and the follower started again after a backoff (doubling up to
  ``MAX_BACKOFF_S``): a follower's crash never takes the service down;
- :meth:`stop` ends it after the batch in flight; the daemon drains its task with the runs in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from reconciler.config.model import Config
from reconciler.errors import ReconcileError
from reconciler.run.alerting import alert_follower
from reconciler.run.follower import Follower, FollowerOff, FullAudit, PollResult, wait_or_stop
from reconciler.service.follow_metrics import TargetFollowMetrics
from reconciler.store import Store

log = logging.getLogger(__name__)

FIRST_BACKOFF_S: Final = 1.0
MAX_BACKOFF_S: Final = 300.0


class FollowerTask:
    """One target's follower, started by :meth:`start` and ended by :meth:`stop`."""

    def __init__(
        self,
        config: Config,
        store: Store,
        full_audit: FullAudit,
        metrics: TargetFollowMetrics,
        *,
        on_batch: Callable[[PollResult], None] | None = None,
        lease: str | None = None,
    ) -> None:
        """``lease``: the follow lease to hold while following (None: the caller holds it, as a replica does)."""
        self.config, self.store, self.full_audit, self.metrics = config, store, full_audit, metrics
        self.lease = lease
        self.on_batch = on_batch
        self.off: str | None = None
        """Why the follower turned itself off; None while it follows (or may)."""
        self.task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._told_following: asyncio.Task[object] | None = None

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self._supervise(), name=f"follower-{self.config.tenant or 'target'}")
        return self.task

    def stop(self) -> None:
        """End after the batch in flight (the daemon waits for :attr:`task`, then cancels it)."""
        self._stop.set()

    async def _supervise(self) -> None:
        backoff = FIRST_BACKOFF_S
        while not self._stop.is_set():
            try:
                await self._follow()
                return
            except FollowerOff as off:
                await self._turned_off(str(off))
                return
            except ReconcileError as error:  # an audit that could not run, a lock held: expected, said plainly
                log.warning("System Log follower stopped: %s; starting again in %g s", error, backoff)
            except Exception:
                log.exception("System Log follower crashed; starting again in %g s", backoff)
            finally:
                self.metrics.set_following(False)
            await wait_or_stop(self._stop, backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _follow(self) -> None:
        with self.store.run_lock(self.lease) if self.lease is not None else contextlib.nullcontext():
            async with Follower(self.config, self.store, self.full_audit, listener=self.metrics) as follower:
                await follower.follow(self._stop, self._polled)

    def _polled(self, result: PollResult) -> None:
        self.metrics.set_following(True)
        if self._told_following is None:  # following: a follower_off told before is resolved
            self._told_following = asyncio.create_task(alert_follower(self.store, self.config, None))
        if result.batch is not None:
            self.metrics.batch_finished(result.batch.run.status)
            if self.on_batch is not None:
                self.on_batch(result)

    async def _turned_off(self, why: str) -> None:
        self.off = why
        log.error("System Log follower off: %s", why, extra={"follower": "off"})
        await alert_follower(self.store, self.config, why)
