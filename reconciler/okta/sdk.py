"""The okta SDK, set up for the reconciler: its request executor, session and logging, with its quirks worked around.

Things about okta 3.4.6 this module works around (each verified against its source):

- a refused connection or a timeout comes back as an error value that the SDK's
  own API method then trips over (``AttributeError`` on ``None.status``),
  losing the cause: :class:`RaisingHTTPClient` raises the transport error instead;
- its generated API methods send ``Authorization: SSWS<token>`` without the
  space; its request executor, which the reconciler uses, sends ``SSWS <token>``;
- a JWK private key goes through ``ast.literal_eval`` and per-value string
  stripping, which break on JSON ``true``/``null`` and list members: the key
  is converted to PEM here (:func:`private_key_pem`);
- ``okta.client.Client`` mixes in every API module (~6 s and ~50 MB to import)
  and parses pages into pydantic models (slower than the round trip to Okta):
  :func:`request_executor` builds the SDK's own request executor the way ``Client``
  does, and pages are decoded by :mod:`reconciler.okta.page`;
- the ``okta-sdk-python`` logger's debug records hold the whole request,
  Authorization header included: it stays disabled, as ``Client`` leaves it,
  and a filter masks credentials should anyone enable it;
- its HTTP client reads every body whole (``response.text()``): the session
  built here reads through :class:`CappedResponse`, which stops past
  ``max_response_bytes``, and verifies TLS (against ``ca_bundle`` alone when
  given) on its connector, which the OAuth token requests share.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import RSAAlgorithm
from jwt.exceptions import InvalidKeyError
from okta.cache.no_op_cache import NoOpCache
from okta.config.config_setter import ConfigSetter
from okta.config.config_validator import ConfigValidator
from okta.errors.http_error import HTTPError
from okta.errors.okta_api_error import OktaAPIError
from okta.http_client import HTTPClient
from okta.request_executor import RequestExecutor

from reconciler.errors import SourceError
from reconciler.hooks import observe_http
from reconciler.net.limits import DEFAULT_MAX_RESPONSE_BYTES, READ_CHUNK_BYTES
from reconciler.net.transport import ResponseTooLarge, declared_too_large, ssl_context_for
from reconciler.secret import Secret

AuthMode = Literal["api_token", "private_key"]
AUTH_MODES = {"api_token": "SSWS", "private_key": "PrivateKey"}
"""The configuration's ``okta.auth`` → the SDK's ``authorizationMode``."""
SDK_LOGGER_NAME = "okta-sdk-python"
HTTPS_CHECK_ENV = "OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"
MAX_RESPONSE_SETTING = "okta.max_response_mb"


def request_executor(
    org_url: str, credentials: dict[str, Any], timeout_s: float, loopback_http: bool
) -> RequestExecutor:
    """The SDK's request executor, configured and validated as ``okta.client.Client`` does it.

    ``Client`` itself mixes in every API module of the SDK: importing it
    costs ~6 s and ~50 MB, and the listing needs none of them. Raises
    ValueError when the SDK refuses its configuration.
    """
    user_config = {
        "orgUrl": org_url,
        **credentials,
        "requestTimeout": timeout_s,
        "rateLimit": {"maxRetries": 0},
        "cache": {"enabled": False},
        "logging": {"enabled": False},
    }
    with https_check_disabled(loopback_http), sdk_handlers_removed():
        setter = ConfigSetter()
        setter._apply_config({"client": user_config})
        config = setter._prune_config(setter.get_config())
        ConfigValidator(config)
        executor = RequestExecutor(config, NoOpCache(), RaisingHTTPClient)
    logging.getLogger(SDK_LOGGER_NAME).disabled = True  # as Client() leaves it with logging off
    return executor


def capped_session(ca_bundle: Path | None, max_response_bytes: int) -> aiohttp.ClientSession:
    """A session for the SDK's requests (OAuth token requests included): TLS verified, answers capped."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ssl_context_for(ca_bundle)),
        response_class=capped_response_class(max_response_bytes),
    )


class CappedResponse(aiohttp.ClientResponse):
    """An answer whose body is read in chunks and refused past ``limit_bytes`` (set by a subclass).

    The okta SDK reads each body whole with ``response.text()``, which reads
    through :meth:`read`: without this, a huge (or endless) answer would be held
    in memory entire. The chunks are decompressed ones, so a compression bomb
    stops at the cap too.
    """

    limit_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    async def read(self) -> bytes:
        if self._body is None:
            try:
                self._body = await self._read_capped()
            except BaseException:
                self.close()
                raise
        return await super().read()

    async def _read_capped(self) -> bytes:
        limit = self.limit_bytes
        if declared_too_large(self.headers.get("Content-Length"), limit):
            raise ResponseTooLarge(limit, MAX_RESPONSE_SETTING)
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.content.iter_chunked(READ_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(limit, MAX_RESPONSE_SETTING)
            chunks.append(chunk)
        return b"".join(chunks)


def capped_response_class(limit_bytes: int) -> type[aiohttp.ClientResponse]:
    return type("CappedResponse", (CappedResponse,), {"limit_bytes": limit_bytes})


class RaisingHTTPClient(HTTPClient):
    """The SDK's HTTP client, except that a transport failure raises instead of returning.

    okta 3.4.6 returns a connection error as a value, and its API methods then
    read ``.status`` of the missing response: the cause (refused, timeout,
    reset) would be lost behind an ``AttributeError``.
    """

    async def send_request(self, request: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
        started = time.monotonic()
        request_info, response, body, error = await super().send_request(request)
        observe_http("okta", getattr(response, "status", None), time.monotonic() - started)
        if error is not None:
            raise error
        return request_info, response, body, error


@dataclass(frozen=True, slots=True)
class OktaAnswer:
    """What the SDK's error classes read of an answer."""

    status: int
    headers: Mapping[str, Any]


def okta_api_error(url: str, status: int, headers: Mapping[str, Any], body: str) -> Exception:
    """The SDK's error object for a failed answer: an OktaAPIError for an Okta error body, else an HTTPError.

    The SDK hands back the same objects when it fails before sending (an OAuth token refused), so one
    wording (:meth:`~reconciler.okta.wording.FailureWording.refusal`) reads both.
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        payload = None
    answer = OktaAnswer(status, headers)
    if isinstance(payload, dict) and payload.get("errorCode"):
        return OktaAPIError(url, answer, payload)
    return HTTPError(url, answer, body)


def credentials_config(
    auth: str,
    token: Secret | None,
    client_id: str | None,
    private_key: Secret | None,
    scopes: Sequence[str],
    key_id: str | None,
) -> dict[str, Any]:
    """The SDK config keys for the credentials, checked here so that problems read clearly."""
    if auth not in AUTH_MODES:
        raise SourceError(f"okta auth must be one of {sorted(AUTH_MODES)}, not {auth!r}")
    if auth == "api_token":
        if token is None or not token.reveal().strip():
            raise SourceError("okta auth is api_token but no API token was given")
        return {"authorizationMode": "SSWS", "token": token.reveal().strip()}
    if not client_id:
        raise SourceError("okta auth is private_key but no client id was given")
    if private_key is None:
        raise SourceError("okta auth is private_key but no private key was given")
    if not scopes:
        raise SourceError("okta auth is private_key but no scopes were given")
    pem, jwk_key_id = private_key_pem(private_key)
    config: dict[str, Any] = {
        "authorizationMode": "PrivateKey",
        "clientId": client_id,
        "scopes": list(scopes),
        "privateKey": pem,
        "dpopEnabled": False,
    }
    if key_id or jwk_key_id:
        config["kid"] = key_id or jwk_key_id
    return config


def private_key_pem(private_key: Secret) -> tuple[str, str | None]:
    """An RSA private key given as PEM or as JWK JSON, as PKCS#8 PEM text, plus the JWK's ``kid``."""
    text = private_key.reveal().strip()
    key_id = None
    try:
        if text.startswith("{"):
            jwk = json.loads(text)
            key_id = jwk.get("kid") if isinstance(jwk, dict) else None
            key = RSAAlgorithm.from_jwk(jwk)
        else:
            key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError, KeyError, InvalidKeyError):
        raise SourceError("okta private key is neither an unencrypted PEM nor a JWK RSA private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise SourceError("okta private key must be an RSA private key (Okta signs client assertions with RS256)")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode(), key_id


@contextmanager
def https_check_disabled(disable: bool) -> Iterator[None]:
    """Let the SDK accept an http:// org URL while the client is built (it reads the variable only then)."""
    if not disable:
        yield
        return
    previous = os.environ.get(HTTPS_CHECK_ENV)
    os.environ[HTTPS_CHECK_ENV] = "true"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(HTTPS_CHECK_ENV, None)
        else:
            os.environ[HTTPS_CHECK_ENV] = previous


class CredentialMask(logging.Filter):
    """Masks Authorization values and client assertions in the SDK's log records."""

    _PATTERN = re.compile(r"""((?:SSWS|Bearer|DPoP)\s*)[^\s'",}]+|('client_assertion':\s*')[^']+""")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self._PATTERN.sub(lambda m: (m.group(1) or m.group(2)) + "********", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


@contextmanager
def sdk_handlers_removed() -> Iterator[None]:
    """Undo any stream handler the SDK adds to its logger, and mask credentials there."""
    logger = logging.getLogger(SDK_LOGGER_NAME)
    before = list(logger.handlers)
    try:
        yield
    finally:
        for handler in logger.handlers[:]:
            if handler not in before:
                logger.removeHandler(handler)
        if not any(isinstance(f, CredentialMask) for f in logger.filters):
            logger.addFilter(CredentialMask())
