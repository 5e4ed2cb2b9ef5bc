"""The connection to the platform's SCIM endpoint: one request sent with the bearer token, retried when it
may pass, read within the size cap, and mapped to a :class:`~reconciler.errors.TargetError` when it fails.

A :class:`ScimConnection` is built once per run and handed to the reader, the writer and the groups
client (the way httpx hands a transport to a client): they share its HTTP client, its retries and
its ``request_counts``. Every request carries the bearer token, is retried on 429 (honouring
``Retry-After``) and on the failures that may pass, by the policy Okta's side shares
(:mod:`reconciler.net.retries`). TLS is verified
(against ``ca_bundle`` alone when given), and each answer is read up to ``max_response_bytes``: what
the platform sends is not trusted.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
import time
from collections import Counter
from collections.abc import Callable, Mapping
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import httpx
import tenacity

from reconciler.errors import TargetError
from reconciler.hooks import observe_http
from reconciler.models.records import PlatformUser
from reconciler.net.limits import DEFAULT_MAX_RESPONSE_BYTES, READ_CHUNK_BYTES
from reconciler.net.retries import TRANSIENT_RETRIES, RetryPolicy
from reconciler.net.transport import (
    ACCEPT_ENCODING,
    CappedBody,
    JsonError,
    ResponseTooLarge,
    UnreadableBody,
    declared_too_large,
    decode_json,
    is_loopback_host,
    ssl_context_for,
)
from reconciler.scim.failures import (
    RetryableFailure,
    certificate_message,
    check_json_media_type,
    failure_for,
    is_certificate_failure,
    is_transient_transport_error,
    transport_failure,
)
from reconciler.scim.page import to_platform_user
from reconciler.secret import Secret

log = logging.getLogger(__name__)

SCIM_MEDIA_TYPE: Final = "application/scim+json"
ACCEPT: Final = f"{SCIM_MEDIA_TYPE}, application/json"
MAX_RESPONSE_SETTING: Final = "scim.max_response_mb"


class ScimConnection:
    """Sends one SCIM request with auth, retries, error mapping and counting (see the module's docstring).

    Use it as an async context manager (or call :meth:`aclose`): it closes the HTTP client it made,
    not one handed in. ``transport`` is httpx's injection point, for tests and recordings.
    """

    def __init__(
        self,
        base_url: str,
        token: Secret,
        timeout_s: float = 30.0,
        *,
        retry: RetryPolicy = TRANSIENT_RETRIES,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        ca_bundle: Path | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.base_url = checked_base_url(base_url)
        self._token = token
        self._retry = retry
        self._max_response_bytes = max_response_bytes
        self._backoff = retry.backoff()
        self._timeout = httpx.Timeout(timeout_s)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=self._timeout, transport=transport, verify=tls_verify(ca_bundle)
        )
        self.request_counts: Counter[str] = Counter()
        self.on_throttled: Callable[[float | None], None] | None = None
        """Told of every 429 (with its Retry-After), so that a caller can send less."""

    @property
    def token(self) -> Secret:
        """The bearer token, still wrapped: for masking it in a message built from an answer."""
        return self._token

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client, unless it was handed in."""
        if self._owns_client:
            await self._client.aclose()

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The 2xx answer to ``method path``, after retries; any other outcome raises TargetError."""
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self._retry.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(RetryableFailure),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return await retrying(self._send_once, method, path, params, body, headers)
        except RetryableFailure as failure:
            raise TargetError(
                f"{failure} (gave up after {self._retry.attempts} attempts)", failure.status, failure.scim_type
            ) from failure

    async def _send_once(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        body: Mapping[str, Any] | None,
        extra_headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self._token.reveal()}",
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,  # what CappedBody inflates, within the size cap
            **(extra_headers or {}),
        }
        content = None
        if body is not None:
            headers["Content-Type"] = SCIM_MEDIA_TYPE
            content = json.dumps(body).encode()
        self.request_counts[method] += 1
        request = self._client.build_request(
            method, self.base_url + path, params=params, content=content, headers=headers, timeout=self._timeout
        )
        started = time.monotonic()
        try:
            response = await self._read_capped(request)
        except (ResponseTooLarge, UnreadableBody) as error:
            observe_http("scim", None, time.monotonic() - started)
            raise TargetError(f"SCIM {method} {path}: {error}") from None
        except httpx.TransportError as error:
            observe_http("scim", None, time.monotonic() - started)
            where = f"{self.base_url}{path}"
            if is_certificate_failure(error):
                raise TargetError(certificate_message(where, error)) from error
            message = transport_failure(method, where, error, self._timeout.read)
            raise (RetryableFailure if is_transient_transport_error(error) else TargetError)(message) from error
        except httpx.HTTPError as error:
            observe_http("scim", None, time.monotonic() - started)
            raise TargetError(f"SCIM {method} {path} failed: {type(error).__name__}: {error}") from error
        observe_http("scim", response.status_code, time.monotonic() - started)
        if not response.is_success:
            failure = failure_for(method, path, response, self._token, self.base_url)
            if response.status_code == HTTPStatus.TOO_MANY_REQUESTS and self.on_throttled is not None:
                self.on_throttled(getattr(failure, "retry_after_s", None))
            raise failure
        return response

    async def _read_capped(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read its answer whole, refusing (unread) any answer over the size cap.

        The body is read in chunks as it is decompressed, so neither a huge body
        nor a compression bomb can take more than the cap in memory.
        """
        response = await self._client.send(request, stream=True)
        limit = self._max_response_bytes
        try:
            if response.is_stream_consumed:  # read whole already (vcrpy replaying or recording a cassette)
                if len(response.content) > limit:
                    raise ResponseTooLarge(limit, MAX_RESPONSE_SETTING)
                return response
            if declared_too_large(response.headers.get("Content-Length"), limit):
                raise ResponseTooLarge(limit, MAX_RESPONSE_SETTING)
            body = CappedBody(response.headers.get("Content-Encoding"), limit, MAX_RESPONSE_SETTING)
            async for raw in response.aiter_raw(READ_CHUNK_BYTES):
                body.feed(raw)
            return with_body(response, body.finish())
        finally:
            await response.aclose()

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """The server's ``Retry-After`` when it gave one (capped), else exponential backoff with jitter."""
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, RetryableFailure) and failure.retry_after_s is not None:
            return min(failure.retry_after_s, self._retry.retry_after_cap_s)
        return self._backoff(state)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        wait_s = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s; retrying in %.2f s (attempt %d of %d)", failure, wait_s, state.attempt_number, self._retry.attempts
        )


def json_object(method: str, path: str, response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx answer, or a TargetError saying why there is none."""
    where = f"SCIM {method} {path} answered {response.status_code}"
    check_json_media_type(method, path, response)
    try:
        payload = decode_json(response.content)
    except JsonError as error:
        raise TargetError(f"{where} with {error}", response.status_code) from None
    if not isinstance(payload, dict):
        raise TargetError(f"{where} with JSON that is not an object", response.status_code)
    return payload


def checked_base_url(base_url: str) -> str:
    """The base URL without trailing slash; TargetError for plain http to anything but a loopback host."""
    url = base_url.rstrip("/")
    try:
        parts = httpx.URL(url)
    except httpx.InvalidURL:
        raise TargetError(f"scim.base_url {base_url!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.host:
        raise TargetError(f"scim.base_url {base_url!r} is not an http(s) URL such as https://scim.example.com/scim")
    if parts.scheme == "http" and not is_loopback_host(parts.host):
        raise TargetError(
            f"refusing plain http:// for SCIM at {url}: the bearer token would travel unencrypted; use https:// "
            "in scim.base_url (http is allowed only for a loopback host such as a local test server)"
        )
    return url


def user_from_answer(method: str, path: str, payload: Mapping[str, Any]) -> PlatformUser:
    try:
        return to_platform_user(payload)
    except ValueError as error:
        raise TargetError(f"SCIM {method} {path} answered an unusable User: {error}") from error


def tls_verify(ca_bundle: Path | None) -> Any:
    """httpx's ``verify``: its default (certifi's CAs) or an SSL context trusting the CA bundle alone."""
    context = ssl_context_for(ca_bundle)
    return default_tls_context() if context is True else context


@functools.cache
def default_tls_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process.

    Building it loads certifi's whole CA bundle, about 0.1 s, which every run's
    client (each tick of ``serve``) would otherwise pay again. The context is
    only read once built, so clients can share it.
    """
    return httpx.create_ssl_context()


def with_body(response: httpx.Response, body: bytes) -> httpx.Response:
    """A complete response with ``body`` (already decoded) as its content, for the readers of answers."""
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code, headers=headers, content=body, request=response.request, extensions=response.extensions
    )
