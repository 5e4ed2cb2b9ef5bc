"""Settings of the django-scim2 test peer: SQLite at ``DJANGO_PEER_DB``, bearer token ``DJANGO_PEER_TOKEN``.

Only for tests on 127.0.0.1: DEBUG is off so that answers look like a deployment's, not Django's debug pages.
"""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("DJANGO_PEER_SECRET_KEY", "django-peer-test-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django_scim",
    "tests.support.django_peer.accounts",
]

MIDDLEWARE = [
    "tests.support.django_peer.accounts.middleware.BearerTokenMiddleware",
]

ROOT_URLCONF = "tests.support.django_peer.urls"
WSGI_APPLICATION = "tests.support.django_peer.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_PEER_DB", ":memory:"),  # unset: makemigrations, checks
        "OPTIONS": {
            # Up to 4 concurrent reads and 4 concurrent writes from the reconciler, one connection per waitress
            # thread: WAL lets readers go on during a write, IMMEDIATE takes the write lock at BEGIN (a deferred
            # transaction upgrading its lock fails at once with "database is locked"), and writers queue up to 20 s.
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}

AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

SCIM_SERVICE_PROVIDER = {
    "NETLOC": os.environ.get("DJANGO_PEER_NETLOC", "127.0.0.1"),
    "SCHEME": "http",
    "USER_ADAPTER": "tests.support.django_peer.accounts.adapters.PlatformSCIMUser",
    "GROUP_MODEL": "tests.support.django_peer.accounts.models.Group",
    "AUTHENTICATION_SCHEMES": [
        {
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a static bearer token",
            "primary": True,
        }
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django_scim": {"handlers": ["stderr"], "level": "WARNING"}},
}
