"""The store's schema revisions (alembic), shipped with the package: see reconciler.store.db_upgrade."""
