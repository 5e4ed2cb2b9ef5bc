"""The store: runs, their actions (the audit trail) and alert state, in SQLite or PostgreSQL;
schema migrations; the per-target run lock."""

from reconciler.store.locks import LockBusy, RunLock
from reconciler.store.store import (
    ActionRecord,
    AlertState,
    GroupActionRecord,
    Run,
    SchemaError,
    SchemaStatus,
    Store,
    TenantState,
    db_upgrade,
    schema_status,
    utc_now,
)
from reconciler.store.urls import StoreError

__all__ = [
    "ActionRecord",
    "AlertState",
    "GroupActionRecord",
    "LockBusy",
    "Run",
    "RunLock",
    "SchemaError",
    "SchemaStatus",
    "Store",
    "StoreError",
    "TenantState",
    "db_upgrade",
    "schema_status",
    "utc_now",
]
