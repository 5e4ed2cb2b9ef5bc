"""The runs: each started, given its plan's counts, finished; runs left 'running' by a dead process interrupted."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from reconciler.models.records import SUMMARY_KEYS
from reconciler.models.runs import FULL_AUDIT_MODES, SOURCE_READ_WHOLE, RunMode, RunStatus
from reconciler.store.journal import count_outcomes, interrupt_pending_actions
from reconciler.store.repository import Repository, existing_row
from reconciler.store.tables import GROUP_SUMMARY_KEYS, Run, utc_now

INTERRUPTED_RUN_ERROR: Final = "interrupted: the process stopped before the run finished"


def _trusted_full_audit(fingerprint: str) -> tuple[ColumnElement[bool], ...]:
    """The target's full runs that listed Okta whole and were not blocked: trusted baselines."""
    return (
        Run.config_fingerprint == fingerprint,
        col(Run.mode).in_(FULL_AUDIT_MODES),
        col(Run.status).in_(SOURCE_READ_WHOLE),
        col(Run.source_count).is_not(None),
    )


def _interrupt(session: Session, run: Run) -> None:
    run.status, run.error = RunStatus.INTERRUPTED, INTERRUPTED_RUN_ERROR
    interrupt_pending_actions(session, run)
    count_outcomes(session, run)


class RunRecords(Repository):
    """The Store's part that records runs (``runs``); ``replica`` names this process in each."""

    replica: str
    started_by: str | None

    def start_run(
        self, mode: RunMode | str, fingerprint: str, tenant: str | None = None, *, plan_run_id: int | None = None
    ) -> int:
        """Record a run of the target ``fingerprint`` (of the ``[[tenants]]`` entry ``tenant``, if any) as running;
        ``plan_run_id``: the dry-run whose saved plan an ``apply-plan`` run applies."""
        run = Run(
            started_at=utc_now(),
            mode=RunMode(mode),
            status=RunStatus.RUNNING,
            config_fingerprint=fingerprint,
            tenant=tenant,
            replica=self.replica,
            started_by=self.started_by,
            plan_run_id=plan_run_id,
        )
        with self._session() as session:
            session.add(run)
            session.commit()
            assert run.id is not None
            return run.id

    def record_plan_counts(self, run_id: int, summary: dict[str, int]) -> None:
        """Keep the plan's counts (``Plan.summary()``) on the run."""
        unknown = set(summary) - set(SUMMARY_KEYS)
        if unknown:
            raise ValueError(f"unknown summary keys: {sorted(unknown)}")
        with self._session() as session:
            run = existing_row(session, Run, run_id)
            for key in SUMMARY_KEYS:
                setattr(run, f"planned_{key}", summary.get(key, 0))
            session.commit()

    def record_group_plan_counts(self, run_id: int, summary: dict[str, int]) -> None:
        """Keep the group plan's counts (``GroupPlan.summary()``) on the run; a kind not given counts 0."""
        unknown = set(summary) - set(GROUP_SUMMARY_KEYS)
        if unknown:
            raise ValueError(f"unknown group summary keys: {sorted(unknown)}")
        with self._session() as session:
            run = existing_row(session, Run, run_id)
            run.planned_groups = {key: int(summary.get(key, 0)) for key in GROUP_SUMMARY_KEYS}
            session.commit()

    def record_populations(self, run_id: int, source_count: int, managed_count: int) -> None:
        """Keep how many assignments Okta listed and how many platform users Okta manages."""
        with self._session() as session:
            run = existing_row(session, Run, run_id)
            run.source_count, run.managed_count = source_count, managed_count
            session.commit()

    def last_trusted_source_count(self, fingerprint: str, before_run_id: int) -> int | None:
        """Okta's assignment count at the latest full run before ``before_run_id`` that read it whole and wasn't
        blocked (an incremental run, which reads a few users, never is that baseline)."""
        query = (
            select(Run.source_count)
            .where(*_trusted_full_audit(fingerprint), col(Run.id) < before_run_id)
            .order_by(col(Run.id).desc())
            .limit(1)
        )
        with self._session() as session:
            return session.exec(query).first()

    def last_full_audit(self, fingerprint: str) -> Run | None:
        """The target's latest finished full run (dry-run, apply or apply-plan) that read both sides whole with a
        trusted status (:data:`SOURCE_READ_WHOLE`): the populations an incremental batch's gate weighs its
        ratios against, and the audit the follower's cursor starts after. None before any."""
        query = (
            select(Run)
            .where(*_trusted_full_audit(fingerprint), col(Run.managed_count).is_not(None))
            .order_by(col(Run.id).desc())
            .limit(1)
        )
        with self._session() as session:
            return session.exec(query).first()

    def finish_run(self, run_id: int, status: RunStatus | str, error: str | None = None) -> None:
        """End the run with ``status`` and count its actions' outcomes.

        Actions still pending have no outcome and never will: they become interrupted.
        """
        status = RunStatus(status)
        if status is RunStatus.RUNNING:
            raise ValueError("a run finishes with a final status, not 'running'")
        with self._session() as session:
            run = existing_row(session, Run, run_id)
            run.status, run.error, run.finished_at = status, error, utc_now()
            interrupt_pending_actions(session, run)
            count_outcomes(session, run)
            session.commit()

    def mark_interrupted(self, started_before: datetime | None = None, fingerprint: str | None = None) -> list[int]:
        """Mark runs left 'running' by a stopped process, and their pending actions, interrupted.

        Call it when a process starts, before its own run: every run still
        'running' that started before ``started_before`` (default: now) is
        taken as abandoned. Returns the ids of the runs marked.

        With ``fingerprint``, only that target's runs: call it so while holding
        the target's run lock (:meth:`Store.run_lock`), and a run that another process
        is doing right now, for this target or another, is never taken for
        abandoned. Without it, every target's: right only when no other process
        shares the store.
        """
        cutoff = started_before or utc_now()
        query = select(Run).where(Run.status == RunStatus.RUNNING, col(Run.started_at) < cutoff)
        if fingerprint is not None:
            query = query.where(Run.config_fingerprint == fingerprint)
        with self._session() as session:
            runs = session.exec(query).all()
            for run in runs:
                _interrupt(session, run)
            session.commit()
            return [run.id for run in runs if run.id is not None]

    def recent_runs(self, limit: int = 20, fingerprints: Iterable[str] | None = None) -> list[Run]:
        """The latest runs first; with ``fingerprints``, only those targets' runs."""
        query = select(Run).order_by(col(Run.id).desc()).limit(limit)
        if fingerprints is not None:
            query = query.where(col(Run.config_fingerprint).in_(list(fingerprints)))
        with self._session() as session:
            return list(session.exec(query).all())

    def get_run(self, run_id: int) -> Run | None:
        with self._session() as session:
            return session.get(Run, run_id)
