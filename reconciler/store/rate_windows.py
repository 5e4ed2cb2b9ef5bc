"""Shared rate budgets: each Okta org's current window per endpoint family (``rate_windows``), claimed from
by every process before a request (see :mod:`reconciler.net.shared_pacing`, whose arithmetic this applies).

Each step is one short transaction that holds the row while it reads and rewrites
it: on PostgreSQL a row lock (``SELECT ... FOR UPDATE``); on SQLite the database's
write lock, taken by the insert that makes sure the row exists.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session, select

from reconciler.net.pacing import RateLimitState
from reconciler.net.shared_pacing import WindowCount, claim_up_to, epoch_now, exhaust, observe, release
from reconciler.store.repository import Repository, upsert_insert
from reconciler.store.tables import RateWindow


class StoreRateLedger:
    """One org's :class:`~reconciler.net.shared_pacing.RateLedger` in the store."""

    def __init__(self, repository: RateWindows, org: str, clock: Callable[[], float] = epoch_now) -> None:
        self.repository, self.org, self.clock = repository, org, clock

    def claim(self, family: str, share: float) -> float:
        return self.claim_up_to(family, share, 1)[1]

    def claim_up_to(self, family: str, share: float, most: int) -> tuple[int, float]:
        granted, wait_s = 0, 0.0

        def step(count: WindowCount) -> WindowCount:
            nonlocal granted, wait_s
            count, granted, wait_s = claim_up_to(count, share, self.clock(), most)
            return count

        self.repository.update_window(self.org, family, step)
        return granted, wait_s

    def observe(self, family: str, state: RateLimitState) -> None:
        self.repository.update_window(self.org, family, lambda count: observe(count, state, self.clock()))

    def exhaust(self, family: str, state: RateLimitState | None, wait_s: float) -> None:
        self.repository.update_window(self.org, family, lambda count: exhaust(count, state, wait_s, self.clock()))

    def release(self, family: str) -> None:
        self.repository.update_window(self.org, family, lambda count: release(count, self.clock()))


class RateWindows(Repository):
    """The Store's part that keeps the shared rate budgets."""

    def rate_ledger(self, org: str) -> StoreRateLedger:
        """The shared budget of the Okta org at ``org`` (its URL), for every process on this store."""
        return StoreRateLedger(self, org)

    def update_window(self, org: str, family: str, step: Callable[[WindowCount], WindowCount]) -> WindowCount:
        """Rewrite the window count of (``org``, ``family``) with ``step``, atomically; the new count."""
        with self._session() as session:
            _ensure_row(session, org, family)
            query = select(RateWindow).where(RateWindow.org == org, RateWindow.family == family).with_for_update()
            row = session.exec(query).one()
            count = step(WindowCount(row.limit, row.used, row.resets_at, row.opened_at))
            row.limit, row.used, row.resets_at, row.opened_at = (
                count.limit,
                count.used,
                count.resets_at,
                count.opened_at,
            )
            session.commit()
            return count

    def rate_window(self, org: str, family: str) -> RateWindow | None:
        with self._session() as session:
            return session.get(RateWindow, (org, family))


def _ensure_row(session: Session, org: str, family: str) -> None:
    """Insert the (org, family) row unless it exists; on SQLite this takes the write lock for the transaction."""
    values = {"org": org, "family": family, "used": 0, "opened_at": 0.0}
    insert = upsert_insert(session, RateWindow)
    session.execute(insert.values(**values).on_conflict_do_nothing(index_elements=["org", "family"]))
