"""``reconcile serve``: the scheduler, one target or a fleet of tenants, systemd notify, metrics and health."""
