"""Bearer-token authentication in front of django-scim2.

django-scim2's own check (SCIM_SERVICE_PROVIDER["AUTH_CHECK_MIDDLEWARE"], SCIMAuthCheckMiddleware, applied
to every SCIM view) wants ``request.user.is_authenticated``, as a session or auth backend would set it. This
middleware plays that prior auth layer: a valid bearer sets ``request.user`` to a service principal; anything
else is answered 401 here, so django-scim2's check never sees an anonymous request.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

SCIM_ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimClient:
    """The provisioning client (Okta, the reconciler) once its token checks out; not a database user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    username = "scim-client"


def _unauthorized(detail: str) -> HttpResponse:
    body = {"schemas": [SCIM_ERROR_URN], "status": "401", "detail": detail}
    response = HttpResponse(json.dumps(body), status=401, content_type="application/scim+json")
    response["WWW-Authenticate"] = 'Bearer realm="django-peer"'
    return response


class BearerTokenMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.expected = os.environ.get("DJANGO_PEER_TOKEN", "").encode()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _unauthorized("A bearer token is required")
        # Fail closed: with no token configured, nothing matches.
        if not self.expected or not hmac.compare_digest(token.strip().encode(), self.expected):
            return _unauthorized("Invalid bearer token")
        request.user = ScimClient()
        return self.get_response(request)
