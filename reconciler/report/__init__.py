"""``reconcile report``: evidence for a period, read from the store, as one HTML page, JSON or CSV.

:func:`reconciler.report.collect.collect_report` reads a target's runs and actions over a
:class:`~reconciler.report.model.Period` into a :class:`~reconciler.report.model.Report`;
:mod:`reconciler.report.html` and :mod:`reconciler.report.export` turn it into the file. It reads the store
only: no Okta or SCIM call, no secret. This package imports nothing itself, so that the command line can parse
a period (:mod:`reconciler.report.period`) without loading the store, jinja2 or pygal.
"""
