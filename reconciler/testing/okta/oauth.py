"""Credentials: API tokens (``Authorization: SSWS <token>``) and OAuth 2.0 for service apps.

``POST /oauth2/v1/token`` takes client_credentials with a private_key_jwt client assertion (verified with PyJWT,
as Okta's org authorization server checks it) and issues opaque ``Bearer`` access tokens carrying the scopes
asked for. DPoP is not emulated: a DPoP proof header is ignored and a Bearer token is issued. Every
``/api/v1/`` request is checked here: a known API token (all read scopes) or a live access token with the
scope its path needs.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reconciler.testing.okta.errors import OktaHTTPError, oauth_error, okta_error
from reconciler.testing.okta.org import OktaOrg
from reconciler.testing.okta.paging import base_url
from reconciler.testing.okta.records import AccessToken, ServiceAppCredentials, ServiceClient

TOKEN_PATH = "/oauth2/v1/token"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ACCESS_TOKEN_LIFETIME_S = 3600
MAX_ASSERTION_LIFETIME_S = 3600
SCOPES_BY_FAMILY = {
    "/api/v1/users": "okta.users.read",
    "/api/v1/groups": "okta.groups.read",
    "/api/v1/logs": "okta.logs.read",
}
"""The read scope each endpoint family needs; ``okta.apps.read`` for the others."""


class CredentialAdmin(OktaOrg):
    """What a test does to the org's credentials."""

    def add_api_token(self, token: str) -> None:
        """Accept ``Authorization: SSWS <token>`` (an API token: all read scopes)."""
        with self._lock:
            self._api_tokens.add(token)

    def register_client(self, public_key: Any, scopes: Iterable[str], client_id: str | None = None) -> str:
        """Register a service app that signs its client assertions with the matching private key.

        ``public_key`` is a PEM string/bytes, a ``cryptography`` public key, or a
        JWK dict. Returns the client id (``0oa…`` unless given).
        """
        key = jwt.PyJWK(public_key).key if isinstance(public_key, Mapping) else public_key
        key_id = public_key.get("kid") if isinstance(public_key, Mapping) else None
        with self._lock:
            client_id = client_id or self.new_id("0oa")
            self._clients[client_id] = ServiceClient(client_id, key, frozenset(scopes), key_id)
            return client_id

    def new_service_app(self, scopes: Iterable[str]) -> ServiceAppCredentials:
        """Generate an RSA key pair, register its public half and hand back the client id and private PEM."""
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        client_id = self.register_client(private_key.public_key(), scopes)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return ServiceAppCredentials(client_id, pem.decode())

    def revoke_api_token(self, token: str) -> None:
        """Stop accepting an API token, as when an admin revokes it: its next use answers 401 E0000011."""
        with self._lock:
            self._api_tokens.discard(token)

    def revoke_access_tokens(self) -> None:
        """Forget every issued access token (their next use answers 401)."""
        with self._lock:
            self._access_tokens.clear()

    # -- serving -----------------------------------------------------------

    def _add_token_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(TOKEN_PATH, self._token)

    def _authorize(self, request: web.Request) -> None:
        """Let the request through, or raise 401 E0000011 (unknown or expired) or 403 E0000006 (scope)."""
        scheme, credential = split_authorization(request.headers.get("Authorization", ""))
        with self._lock:
            if scheme == "SSWS" and credential in self._api_tokens:
                return
            token = self._access_tokens.get(credential) if scheme == "Bearer" else None
            if token is None or token.expires_at <= self._clock():
                raise OktaHTTPError(401, okta_error("E0000011", "Invalid token provided"), _www_authenticate(scheme))
        needed = required_scope(request.path)
        if needed not in token.scopes:
            raise OktaHTTPError(
                403,
                okta_error("E0000006", "You do not have permission to perform the requested action"),
                {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
            )

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        with self._lock:
            body = self._issue_token({key: str(value) for key, value in form.items()}, base_url(request) + TOKEN_PATH)
        return web.json_response(body, headers={"Cache-Control": "no-cache, no-store", "Pragma": "no-cache"})

    def _issue_token(self, form: Mapping[str, str], token_url: str) -> dict[str, Any]:
        if form.get("grant_type") != "client_credentials":
            raise oauth_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            )
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE or not form.get("client_assertion"):
            raise oauth_error(401, "invalid_client", "Client authentication failed. A client_assertion is required.")
        client, claims = self._verified_assertion(form["client_assertion"], token_url)
        requested = frozenset(form.get("scope", "").split())
        if not requested:
            raise oauth_error(
                400,
                "invalid_scope",
                "The authorization server resource does not have any configured default scopes, "
                "'scope' must be provided.",
            )
        if not requested <= client.scopes:
            refused = " ".join(sorted(requested - client.scopes))
            raise oauth_error(400, "invalid_scope", f"The following scopes are not allowed: {refused}")
        self._used_assertion_ids.add(claims["jti"])
        access_token = secrets.token_urlsafe(32)
        self._access_tokens[access_token] = AccessToken(
            client.client_id, requested, self._clock() + ACCESS_TOKEN_LIFETIME_S
        )
        return {
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
            "access_token": access_token,
            "scope": " ".join(sorted(requested)),
        }

    def _verified_assertion(self, assertion: str, token_url: str) -> tuple[ServiceClient, dict[str, Any]]:
        """Check the client assertion the way Okta's org authorization server does."""
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise oauth_error(401, "invalid_client", "The client_assertion is not a valid JWT.") from None
        client = self._clients.get(str(unverified.get("iss")))
        if client is None or unverified.get("sub") != client.client_id:
            raise oauth_error(401, "invalid_client", "Invalid value for 'client_id' parameter.")
        named_key = jwt.get_unverified_header(assertion).get("kid")
        if named_key is not None and client.key_id is not None and named_key != client.key_id:
            raise oauth_error(401, "invalid_client", "The client_assertion kid does not match a key of the client.")
        try:
            claims = jwt.decode(
                assertion,
                client.public_key,
                algorithms=["RS256"],
                audience=token_url,
                issuer=client.client_id,
                options={"require": ["exp", "iss", "sub", "aud", "jti"]},
            )
        except jwt.InvalidSignatureError:
            raise oauth_error(401, "invalid_client", "The client_assertion signature is invalid.") from None
        except jwt.InvalidAudienceError:
            raise oauth_error(
                401,
                "invalid_client",
                "The audience claim for client_assertion must be the endpoint invoking the client_assertion.",
            ) from None
        except jwt.ExpiredSignatureError:
            raise oauth_error(401, "invalid_client", "The client_assertion token is expired.") from None
        except jwt.InvalidTokenError as error:
            raise oauth_error(401, "invalid_client", f"The client_assertion is invalid: {error}") from None
        if claims["exp"] > self._clock() + MAX_ASSERTION_LIFETIME_S + 60:
            raise oauth_error(
                401, "invalid_client", "The client_assertion token has an expiration too far into the future."
            )
        if claims["jti"] in self._used_assertion_ids:
            raise oauth_error(401, "invalid_client", "The client_assertion token has already been used.")
        return client, claims


def required_scope(path: str) -> str:
    """The OAuth scope a read of this path needs."""
    for family, scope in SCOPES_BY_FAMILY.items():
        if path == family or path.startswith(family + "/"):
            return scope
    return "okta.apps.read"


def split_authorization(header: str) -> tuple[str, str]:
    """``(scheme, credential)`` from an Authorization header.

    ``SSWS`` may be glued to the token: okta 3.4.6's generated API methods send
    ``SSWS<token>`` (its ``Configuration.auth_settings`` concatenates without a
    space) and the design notes record that SSWS works against Okta with this
    SDK, so the emulator accepts both forms. Other schemes need the space.
    """
    scheme, _, credential = header.strip().partition(" ")
    if scheme.startswith("SSWS") and scheme != "SSWS":
        return "SSWS", scheme.removeprefix("SSWS")
    return scheme, credential.strip()


def authorization_scheme(header: str) -> str | None:
    """The scheme for the request log, never the credential (``SSWS (no space)`` for the glued form)."""
    if not header:
        return None
    scheme, _, _ = header.strip().partition(" ")
    if scheme.startswith("SSWS") and scheme != "SSWS":
        return "SSWS (no space)"
    return scheme if scheme in {"SSWS", "Bearer", "DPoP", "Basic"} else "unknown"


def _www_authenticate(scheme: str) -> dict[str, str]:
    if scheme != "Bearer":
        return {}
    return {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="The access token is invalid."'}
