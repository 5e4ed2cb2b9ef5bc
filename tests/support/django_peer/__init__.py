"""A minimal Django project serving django-scim2: the second, independently written SCIM peer of the tests.

Run by tests/support/django_peer_server.py (migrate, then waitress on 127.0.0.1); never imported by the reconciler.
"""
