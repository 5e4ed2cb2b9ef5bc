"""The Okta side: the Management API read through the official SDK, paced under its rate limits.

- :mod:`.source`: :class:`~reconciler.okta.source.OktaSource`, the public face (assignments, pushed
  groups, the app's record for ``reconcile check``);
- :mod:`.connection`: one GET paced, retried, capped and masked; paged listings followed by cursor;
- :mod:`.groups`: the pushed groups, their names and members, read and decoded;
- :mod:`.page`: app-user pages decoded straight into compact records;
- :mod:`.answers`: what Okta answers, read (error bodies, ``Link`` cursors, headers, the org URL);
- :mod:`.wording`: what a failed request says to the operator;
- :mod:`.sdk`: the okta SDK set up, its quirks worked around.

Only ``sdk`` imports the SDK (and ``connection``, ``groups`` and ``source`` through it): it takes
seconds to import, so ``answers``, ``wording`` and ``page`` stay free of it.
"""
