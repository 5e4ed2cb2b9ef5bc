"""The fields every log record of a run carries: which run, of which tenant.

A run sets them once (:func:`run_log_fields`) and every record logged while it
goes on, by the run or by the clients it calls, gets them: the JSON log
format prints them (:mod:`reconciler.logs` stamps them on each record). A
context variable, not a global: each asyncio task copies the context it was
created in, so a fleet's runs side by side each log their own run and tenant.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

CURRENT_RUN_FIELDS: ContextVar[Mapping[str, object]] = ContextVar("current_run_fields", default={})  # noqa: B039
"""``{"run_id": ..., "tenant": ...}`` while a run goes on in this context; empty otherwise."""


@contextmanager
def run_log_fields(run_id: int, tenant: str | None) -> Iterator[None]:
    """Stamp ``run_id`` and ``tenant`` on every log record made in this context until the block ends."""
    token = CURRENT_RUN_FIELDS.set({"run_id": run_id, "tenant": tenant})
    try:
        yield
    finally:
        CURRENT_RUN_FIELDS.reset(token)
