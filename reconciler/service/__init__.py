"""``reconcile serve``: the scheduler, one target or a fleet of tenants, systemd notify, metrics and health.

- :mod:`.daemon`: the life cycle both share (endpoint, scheduler, READY, watchdog, stop, reload);
- :mod:`.single`: one target (:class:`~.single.Service`); :mod:`.fleet`: a fleet replica (:class:`~.fleet.Replica`);
- :mod:`.process`: the process around them: event loop, signals, secrets masked across reloads;
- :mod:`.schedule`: when runs happen (triggers, quarantine, when a tenant is due);
- :mod:`.metrics`, :mod:`.fleet_metrics`: Prometheus metrics; :mod:`.health`: ``/healthz``;
  :mod:`.endpoint`: the HTTP endpoint serving both;
- :mod:`.notify`: systemd's notify protocol; :mod:`.wording`: times and the one-line run summary.
"""
