"""The store: runs, their actions (the audit trail) and alert state, in SQLite or PostgreSQL;
schema migrations; the per-target run lock."""

from reconciler.store.locks import LockBusy, RunLock
from reconciler.store.schema import SchemaError, SchemaStatus, db_upgrade, schema_status
from reconciler.store.store import Store
from reconciler.store.tables import (
    Acknowledgement,
    ActionRecord,
    AlertState,
    GroupActionRecord,
    LogCursorRecord,
    Run,
    utc_now,
)
from reconciler.store.tenants import TenantState
from reconciler.store.urls import StoreError

__all__ = [
    "Acknowledgement",
    "ActionRecord",
    "AlertState",
    "GroupActionRecord",
    "LockBusy",
    "LogCursorRecord",
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
