"""Where each target stands: its latest run, its last success, its failure streak, in a few queries for all.

A target is a config fingerprint (one Okta app into one SCIM endpoint); several
tenants served by several replicas share one store, and every replica asks these
questions every few seconds: the index on ``runs (config_fingerprint, id)``
(revision 0003) serves each query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_
from sqlmodel import Session, col, func, select

from reconciler.models.runs import FULL_AUDIT_MODES, SUCCESSFUL, RunMode, RunStatus
from reconciler.store.repository import Repository
from reconciler.store.runs import INTERRUPTED_RUN_ERROR
from reconciler.store.tables import Run


@dataclass(frozen=True)
class TenantState:
    """Where a target (a config fingerprint) stands in the store: see :meth:`Store.tenant_states`.

    ``TenantState()``: a target never run.
    """

    latest: Run | None = None
    """Its run with the highest id, whatever its status (running included) and mode (an incremental one
    included, unless ``modes`` leaves it out); None if it never ran."""
    last_success_at: datetime | None = None
    """When its latest full run (not an incremental one) whose status is in :data:`SUCCESSFUL` finished; None if
    none did."""
    consecutive_failures: int = 0
    """How many of its latest finished full runs failed, counting back to the last that did not (running and
    incremental ones skipped)."""
    consecutive_crashes: int = 0
    """How many of its latest runs died with their process (found 'running' with no holder: a crash, an OOM
    kill, a SIGKILL), counting back to its latest run that ended on its own; runs interrupted by a clean stop
    or a lost lease are skipped, as are running ones. See :func:`_crash_streaks`."""


def _failure_streaks(session: Session, fingerprints: list[str]) -> dict[str, int]:
    """Each target's failure streak, in one query: its failed runs newer than its newest finished run that did not fail.

    The targets without one (no failed run since the last that did not fail) are left out.
    """
    counted = Run.status == RunStatus.FAILED
    return _streaks(session, fingerprints, counted, not_barriers=(RunStatus.RUNNING, RunStatus.FAILED))


def _crash_streaks(session: Session, fingerprints: list[str]) -> dict[str, int]:
    """Each target's crash streak, in one query: its runs abandoned by a dead process since its newest run that
    ended on its own (whatever its outcome, in any mode).

    An abandoned run is one :meth:`RunRecords.mark_interrupted` marked (its error says so); a run cancelled by a
    stop or a lost lease records another error and is neither counted nor a barrier. Targets without a
    crash since are left out.
    """
    counted = and_(Run.status == RunStatus.INTERRUPTED, Run.error == INTERRUPTED_RUN_ERROR)
    return _streaks(session, fingerprints, counted, not_barriers=(RunStatus.RUNNING, RunStatus.INTERRUPTED))


def _streaks(
    session: Session, fingerprints: list[str], counted: ColumnElement[bool], not_barriers: tuple[RunStatus, ...]
) -> dict[str, int]:
    """Per target, its full runs that match ``counted`` newer than its newest full run whose status is not in
    ``not_barriers``. Incremental runs are neither counted nor barriers: a burst of failed batches (retried at
    each poll) must not quarantine the audits, nor one repaired batch hide a streak of failed audits."""
    fingerprint, full = col(Run.config_fingerprint), col(Run.mode).in_(FULL_AUDIT_MODES)
    barrier = (
        select(fingerprint, func.max(Run.id).label("id"))
        .where(fingerprint.in_(fingerprints), full, col(Run.status).not_in(not_barriers))
        .group_by(fingerprint)
        .subquery()
    )
    query = (
        select(fingerprint, func.count())
        .select_from(Run)
        .outerjoin(barrier, barrier.c.config_fingerprint == fingerprint)
        .where(fingerprint.in_(fingerprints), full, counted, col(Run.id) > func.coalesce(barrier.c.id, 0))
        .group_by(fingerprint)
    )
    return {fp: int(count) for fp, count in session.execute(query)}


class TenantQueries(Repository):
    """The Store's part that says where targets stand, from their runs."""

    def consecutive_failures(self, fingerprint: str) -> int:
        """How many of the latest finished full runs for this target failed, counting back to the last that did not
        (incremental runs are left out: see :func:`_streaks`)."""
        with self._session() as session:
            return _failure_streaks(session, [fingerprint]).get(fingerprint, 0)

    def last_success_at(self, fingerprint: str) -> datetime | None:
        """When the target's latest successful full run (its status in :data:`SUCCESSFUL`) ended; None if none did.
        An incremental run does not count: ``/healthz`` and the ``last_success`` metric are about the audits."""
        query = (
            select(Run.finished_at)
            .where(
                Run.config_fingerprint == fingerprint,
                col(Run.mode).in_(FULL_AUDIT_MODES),
                col(Run.status).in_(SUCCESSFUL),
                col(Run.finished_at).is_not(None),
            )
            .order_by(col(Run.id).desc())
            .limit(1)
        )
        with self._session() as session:
            return session.exec(query).first()

    def tenant_states(
        self, fingerprints: Iterable[str], modes: Iterable[RunMode] | None = None
    ) -> dict[str, TenantState]:
        """Every target of ``fingerprints`` (each one a key, run or not) and where it stands (:class:`TenantState`).

        Four queries in one transaction whatever the number of targets (none when
        none is asked for): the latest run of each, its latest successful run's
        end, its failure streak, its crash streak. Each uses the index on ``(config_fingerprint, id)``.
        With ``modes``, ``latest`` is the latest run of those modes (the service's
        schedule counts its own applies, not an operator's dry-run).
        """
        wanted = list(dict.fromkeys(fingerprints))
        if not wanted:
            return {}
        fingerprint = col(Run.config_fingerprint)
        newest_query = select(fingerprint, func.max(Run.id).label("id")).where(fingerprint.in_(wanted))
        if modes is not None:
            newest_query = newest_query.where(col(Run.mode).in_(list(modes)))
        newest = newest_query.group_by(fingerprint).subquery()
        succeeded = (
            select(fingerprint, func.max(Run.id).label("id"))
            .where(fingerprint.in_(wanted), col(Run.mode).in_(FULL_AUDIT_MODES), col(Run.status).in_(SUCCESSFUL))
            .group_by(fingerprint)
            .subquery()
        )
        with self._session() as session:
            latest = {
                run.config_fingerprint: run for run in session.exec(select(Run).join(newest, Run.id == newest.c.id))
            }
            success_query = select(fingerprint, Run.finished_at).join(succeeded, Run.id == succeeded.c.id)
            last_success = {fp: finished for fp, finished in session.execute(success_query)}
            streaks = _failure_streaks(session, wanted)
            crashes = _crash_streaks(session, wanted)
        return {
            fp: TenantState(latest.get(fp), last_success.get(fp), streaks.get(fp, 0), crashes.get(fp, 0))
            for fp in wanted
        }
