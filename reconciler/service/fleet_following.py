"""The System Log followers of a fleet's replica: one follow lease per tenant, held by the replica that follows it.

A tenant with ``incremental.enabled`` is followed by exactly one replica: the one holding its **follow lease**,
a lock of the run-lock machinery (:mod:`reconciler.store.locks`) under the name ``follow:<fingerprint>``
(:func:`follow_lease_name`), distinct from the tenant's run lock. The database (PostgreSQL) or the kernel
(SQLite) releases it when its holder dies, so a replica killed outright loses its leases with its process.

Every dispatch tick (:meth:`FleetFollowers.tick`) a replica:

1. lets go of the tenants it should no longer follow: dropped from the file, ``incremental.enabled = false``,
   changed (taken again, with the new settings, at a later tick), or whose lease was lost under it (its
   database session ended). The follower stops after its batch in flight, then the lease is released;
2. counts the live replicas: each holds a **presence slot** (``replica-slot:<n>``, the first free of
   :data:`PRESENCE_SLOTS`, released with its process too), and its **share** is
   ``ceil(followable tenants / live replicas)``;
3. above its share (a replica joined), releases one tenant; below it, tries the follow leases of the tenants
   nobody follows, without waiting, in an order of its own (a hash of its name and the tenant's, so that
   replicas starting together rarely try the same one first), until it holds its share.

A replica that takes a lease resumes the tenant from the stored cursor (:class:`reconciler.run.follower.Follower`):
no full audit while the cursor is fresh, whoever checkpointed it. Each follower is a
:class:`reconciler.service.following.FollowerTask`: its batches take the tenant's run lock, and its full audits
go through the replica's own run path (the ``audit`` it is given). A follower that turns itself off (no
``okta.logs.read``) keeps its lease, so that no other replica tries and alerts again; a reload that changes
the tenant gives it another try.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Final

from reconciler.config.model import Config, fingerprint
from reconciler.run.follower import FullAudit, follow_lease_name
from reconciler.service.follow_metrics import FollowMetrics
from reconciler.service.following import FollowerTask
from reconciler.service.schedule import tenant_name
from reconciler.store import Store
from reconciler.store.locks import LockBusy, RunLock

log = logging.getLogger(__name__)

PRESENCE_SLOTS: Final = 64
"""How many replicas are counted exactly; more than this are counted as this many plus one (each then takes a
larger share than its due, never a smaller one: no tenant is left unfollowed)."""


def presence_slot_name(slot: int) -> str:
    return f"replica-slot:{slot}"


@dataclass
class Followed:
    """A tenant this replica follows: its follower and the follow lease it holds."""

    config: Config
    follower: FollowerTask
    lease: ExitStack
    held: RunLock
    leaving: bool = field(default=False)
    """Told to stop: the lease goes once its follower has ended."""


class FleetFollowers:
    """The followers of one replica (see the module's docstring)."""

    def __init__(
        self,
        store: Store,
        metrics: FollowMetrics,
        audit_for: Callable[[Config], FullAudit],
        replica: str,
        on_lease_lost: Callable[[str], None] = lambda _tenant: None,
    ) -> None:
        """``on_lease_lost``: told the tenant's name when a follow lease is lost under its follower (a metric)."""
        self.store, self.metrics, self.audit_for, self.replica = store, metrics, audit_for, replica
        self.on_lease_lost = on_lease_lost
        self.followed: dict[str, Followed] = {}
        """Fingerprint → the tenant followed here (or leaving)."""
        self._presence: ExitStack | None = None

    @property
    def following(self) -> list[str]:
        """The names of the tenants followed here (not those leaving)."""
        return sorted(tenant_name(f.config) for f in self.followed.values() if not f.leaving)

    def tasks(self) -> list[asyncio.Task[None]]:
        """The followers' tasks, which a stop waits for."""
        return [f.follower.task for f in self.followed.values() if f.follower.task is not None]

    def tick(self, tenants: Sequence[Config]) -> list[str]:
        """Let go of what should not be followed here, then take up to this replica's share; the names taken."""
        wanted = {fingerprint(t): t for t in tenants if t.incremental.enabled}
        for target, followed in list(self.followed.items()):
            self._let_go_if_unwanted(target, followed, wanted.get(target))
        mine = [t for t, f in self.followed.items() if not f.leaving]
        share = math.ceil(len(wanted) / self._live_replicas()) if wanted else 0
        if len(mine) > share:
            self._leave(self.followed[mine[-1]], f"this replica follows more than its share ({share})")
            return []
        return self._take(wanted, share - len(mine))

    def stop(self) -> None:
        """Stop every follower (each lease goes once its follower has ended) and leave the count of replicas."""
        for followed in self.followed.values():
            followed.leaving = True
            followed.follower.stop()
        if self._presence is not None:
            self._presence.close()
            self._presence = None

    # --- letting go ------------------------------------------------------------------------------

    def _let_go_if_unwanted(self, target: str, followed: Followed, config: Config | None) -> None:
        if followed.leaving:
            return
        if config is None:
            self._leave(followed, "no longer in the file, or its incremental.enabled is false")
        elif config != followed.config:
            self._leave(followed, "its configuration changed: followed again with it from a later tick")
        elif not followed.held.still_held():
            self.on_lease_lost(tenant_name(followed.config))
            self._leave(followed, "lost its follow lease (the lock's database session ended)", level=logging.ERROR)

    def _leave(self, followed: Followed, why: str, level: int = logging.INFO) -> None:
        log.log(level, "tenant %s: no longer followed here: %s", tenant_name(followed.config), why)
        followed.leaving = True
        followed.follower.stop()
        task = followed.follower.task
        if task is None or task.done():
            self._release(followed)

    def _ended(self, followed: Followed) -> None:
        """A follower's task ended: stopped (its lease goes) or turned off (the lease stays, see the module)."""
        if followed.leaving:
            self._release(followed)

    def _release(self, followed: Followed) -> None:
        target = fingerprint(followed.config)
        followed.lease.close()
        followed.follower.metrics.set_following(False)
        if self.followed.get(target) is followed:
            del self.followed[target]

    # --- taking ----------------------------------------------------------------------------------

    def _take(self, wanted: dict[str, Config], room: int) -> list[str]:
        if room <= 0:
            return []
        free = [t for t in wanted if t not in self.followed]
        held = self.store.lock_holders([follow_lease_name(t) for t in free]) if free else {}
        taken: list[str] = []
        for target in sorted(free, key=self._preference):
            if len(taken) >= room:
                break
            if follow_lease_name(target) not in held and self._follow(wanted[target]):
                taken.append(tenant_name(wanted[target]))
        return taken

    def _preference(self, target: str) -> bytes:
        return hashlib.sha256(f"{self.replica}\0{target}".encode()).digest()

    def _follow(self, config: Config) -> bool:
        """Take the tenant's follow lease and start its follower; False when another replica has it."""
        target, lease = fingerprint(config), ExitStack()
        try:
            held = lease.enter_context(self.store.run_lock(follow_lease_name(target)))
        except LockBusy:
            return False
        name = tenant_name(config)
        follower = FollowerTask(config, self.store, self.audit_for(config), self.metrics.listener(name))
        followed = Followed(config, follower, lease, held)
        self.followed[target] = followed
        follower.start().add_done_callback(lambda _: self._ended(followed))
        log.info("tenant %s: following its System Log here (its follow lease taken)", name)
        return True

    # --- counting the replicas -------------------------------------------------------------------

    def _live_replicas(self) -> int:
        """How many replicas hold a presence slot (this one takes its own first); at least 1."""
        names = [presence_slot_name(slot) for slot in range(PRESENCE_SLOTS)]
        if self._presence is None:
            self._presence = self._take_slot(names)
        live = len(self.store.lock_holders(names))
        return max(1, live if self._presence is not None else live + 1)

    def _take_slot(self, names: list[str]) -> ExitStack | None:
        taken = self.store.lock_holders(names)
        for name in names:
            if name in taken:
                continue
            slot = ExitStack()
            try:
                slot.enter_context(self.store.run_lock(name))
            except LockBusy:
                continue
            return slot
        log.warning("more than %d replicas: this one counts itself without a presence slot", PRESENCE_SLOTS)
        return None
