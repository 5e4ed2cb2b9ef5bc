"""An Okta Management API emulator on aiohttp.web, for the tests and ``reconcile demo``.

No public Okta emulator is faithful enough for the parts the reconciler relies
on, so this one implements exactly those, shaped like real Okta answers (see
``../shared/okta-recorded`` and Okta's OpenAPI spec). One module per resource,
each with what a test does to it and the endpoints that serve it:

- :mod:`~reconciler.testing.okta.app_users`: ``GET /api/v1/apps/{appId}``,
  ``GET /api/v1/apps/{appId}/users`` (``limit`` 1..500, default 50, the
  ``after`` cursor, ``expand=user``, ``Link`` headers) and
  ``GET /api/v1/apps/{appId}/users/{userId}``;
- :mod:`~reconciler.testing.okta.users`: ``GET /api/v1/users/{idOrLogin}``;
- :mod:`~reconciler.testing.okta.app_groups`: ``GET /api/v1/apps/{appId}/groups``
  (``limit`` 20..200, default 20, ``after``, ``expand=group``);
- :mod:`~reconciler.testing.okta.groups`: ``GET /api/v1/groups/{groupId}`` and
  ``GET /api/v1/groups/{groupId}/users`` (``limit`` 1..1000, default 1000, ``after``);
- :mod:`~reconciler.testing.okta.oauth`: ``Authorization: SSWS <api token>``, and
  ``POST /oauth2/v1/token`` for service apps (client_credentials + private_key_jwt)
  issuing opaque ``Bearer`` access tokens;

and around every request (:mod:`~reconciler.testing.okta.front_door`): ``X-Rate-Limit-*``
headers and 429 ``E0000047`` (:mod:`~reconciler.testing.okta.rate_limits`), latency,
fault injection (:mod:`~reconciler.testing.okta.faults`) and a request log, driven from Python.

The state lives in memory (:mod:`~reconciler.testing.okta.org`) and is changed
through the Python API of :class:`OktaEmulator` (thread-safe, so a test can change
it while the thread-backed runner serves). The app-user listing serves 100,000
users at a few milliseconds of CPU per 500-user page because what it shows is
kept (:mod:`~reconciler.testing.okta.cache`) and every method that changes state
drops what it makes stale. So change the state through those methods, not by
assigning to the records they return.
"""

from reconciler.testing.okta.app_users import SCIM_TEST_APP_LABEL
from reconciler.testing.okta.emulator import OktaEmulator
from reconciler.testing.okta.faults import FaultKind, FaultRule, reset_connection
from reconciler.testing.okta.front_door import RequestRecord
from reconciler.testing.okta.oauth import TOKEN_PATH
from reconciler.testing.okta.rate_limits import DEFAULT_RATE_LIMIT, RATE_LIMIT_WINDOW_S
from reconciler.testing.okta.records import (
    AppUserState,
    EmulatedApp,
    EmulatedGroup,
    EmulatedUser,
    ServiceAppCredentials,
)
from reconciler.testing.okta.server import okta_emulator_in_thread, run_okta_emulator

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "RATE_LIMIT_WINDOW_S",
    "SCIM_TEST_APP_LABEL",
    "TOKEN_PATH",
    "AppUserState",
    "EmulatedApp",
    "EmulatedGroup",
    "EmulatedUser",
    "FaultKind",
    "FaultRule",
    "OktaEmulator",
    "RequestRecord",
    "ServiceAppCredentials",
    "okta_emulator_in_thread",
    "reset_connection",
    "run_okta_emulator",
]
