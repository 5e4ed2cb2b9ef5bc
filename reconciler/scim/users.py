"""The platform's SCIM 2.0 endpoint (RFC 7643/7644): read its users, and write repairs to it.

Reading and writing are two classes. A :class:`ScimReader` can only issue GET;
writes go through a :class:`ScimWriter` built around a reader, so a dry-run,
which never builds a writer, cannot change the platform.

Every request carries the bearer token, is retried on 429 (honouring
``Retry-After``), on 5xx and on network errors with exponential backoff and
jitter, and ends, when it fails, in a :class:`~reconciler.errors.TargetError`
that names the method, the path and the status, never the token.

scim2-models forbids attributes and extensions it does not know, and real
platforms carry custom extensions, so payloads are validated leniently: the
models check the ServiceProviderConfig flags and Error details; listing pages
and users are read by :mod:`reconciler.scim_page`, and each user's JSON object
is kept as ``PlatformUser.resource`` (in a listing, trimmed to the attributes
the mapping compares).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import logging
import ssl
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote

import httpx
import pydantic
import tenacity
from scim2_models import Error

from reconciler.errors import TargetConflict, TargetError, TargetNotFound
from reconciler.hooks import NO_PROGRESS, ProgressListener, observe_http
from reconciler.models.records import PlatformUser
from reconciler.models.scim_path import CORE_USER_URN, ENTERPRISE_URN, TargetPath, parse_target_path, set_value
from reconciler.net.limits import DEFAULT_MAX_RESPONSE_BYTES, READ_CHUNK_BYTES
from reconciler.net.pacing import parse_retry_after
from reconciler.net.transport import (
    ACCEPT_ENCODING,
    CappedBody,
    JsonError,
    ResponseTooLarge,
    UnreadableBody,
    declared_too_large,
    decode_json,
    is_json_media_type,
    is_loopback_host,
    ssl_context_for,
)
from reconciler.scim.discovery import (
    DEFAULT_CAPABILITIES,
    ScimCapabilities,
    UserSchema,
    capabilities_from,
    schema_attributes,
    user_extensions,
)
from reconciler.scim.page import PageError, page_decoder, to_platform_user
from reconciler.secret import Secret, redact

log = logging.getLogger(__name__)

SCIM_MEDIA_TYPE: Final = "application/scim+json"
PATCH_OP_URN: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ACCEPT: Final = f"{SCIM_MEDIA_TYPE}, application/json"
TOKEN_HINT: Final = "check the token in scim.token_env / scim.token_file"

READ_ONLY_ATTRIBUTES: Final = ("meta", "groups")
"""Dropped from a PUT body: RFC 7643 marks them readOnly (``groups`` is set through Groups),
and some servers refuse a replacement that carries them. ``id`` is kept, as Okta sends it."""

PATCH_OPS: Final = frozenset({"add", "replace", "remove"})
DIRECT_PATHS: Final = frozenset({"active", "externalId"})
"""Top-level attributes the reconciler owns, which the mapping's path parser refuses on purpose."""

LISTING_ATTEMPTS: Final = 3
"""Listings read at most while ``totalResults`` keeps changing between pages."""
PAGE_LOOP_SLACK: Final = 10
"""Pages allowed beyond ``totalResults`` (the worst case, one user per page) before the listing
is declared runaway."""
MAX_LISTED_USERS: Final = 10_000_000
"""A ``totalResults`` above this is not a user count this reconciler can hold: the listing is refused
before its second page (a server answering 10**12 would otherwise be asked for billions of pages)."""
MAX_LISTING_PAGES: Final = 100_000
"""Pages one listing may take at most (100,000 users at one user per page)."""
MAX_RESPONSE_SETTING: Final = "scim.max_response_mb"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to retry a request that may succeed later (429, 5xx, network errors)."""

    attempts: int = 5
    """Requests issued at most, the first one included."""
    backoff_multiplier_s: float = 0.5
    """The first backoff; each next one doubles, up to ``max_backoff_s``."""
    max_backoff_s: float = 30.0
    jitter_s: float = 0.5
    """A random 0..jitter_s added to each backoff, so that workers do not retry in step."""
    retry_after_cap_s: float = 60.0
    """The longest ``Retry-After`` honoured; a longer one is cut to this."""


class _RetryableFailure(TargetError):
    """A failure worth another attempt: a 429, a 5xx or a network error."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        scim_type: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, status, scim_type)
        self.retry_after_s = retry_after_s


def _is_retryable_status(status: int) -> bool:
    """429 and the 5xx that may pass; 501 Not Implemented and 505 never will."""
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return True
    return 500 <= status < 600 and status not in (HTTPStatus.NOT_IMPLEMENTED, HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)


def _reason(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scim_error_detail(response: httpx.Response, token: Secret) -> tuple[str | None, str | None]:
    """The ``(scimType, detail)`` of an error answer, read leniently; a non-SCIM body gives a snippet.

    Credentials are masked before anything is cut short, so that no prefix of the token survives.
    """
    try:
        payload = decode_json(response.content)
    except JsonError:
        return None, _short(redact(response.text, [token.reveal()])) or None
    if not isinstance(payload, dict):
        return None, _short(redact(str(payload), [token.reveal()]))
    fields = {key: payload[key] for key in ("status", "scimType", "detail") if key in payload}
    try:
        error = Error.model_validate(fields)
    except pydantic.ValidationError:
        return None, _short(redact(str(payload.get("detail") or payload), [token.reveal()]))
    return error.scim_type, redact(error.detail, [token.reveal()]) if error.detail else error.detail


def _failure_for(method: str, path: str, response: httpx.Response, token: Secret) -> TargetError:
    """The error a non-2xx answer stands for.

    The detail is the server's; should a debugging proxy echo the request
    headers in it, the token is masked all the same (as ``********``).
    """
    status = response.status_code
    scim_type, detail = _scim_error_detail(response, token)
    message = f"SCIM {method} {path} answered {_reason(status)}"
    if scim_type:
        message += f" ({scim_type})"
    if detail:
        message += f": {detail}"
    if status == HTTPStatus.UNAUTHORIZED:
        return TargetError(f"{message}; the platform refused the bearer token: {TOKEN_HINT}", status, scim_type)
    if _is_retryable_status(status):
        return _RetryableFailure(message, status, scim_type, parse_retry_after(response.headers.get("Retry-After")))
    if status == HTTPStatus.CONFLICT:
        return TargetConflict(message, status, scim_type)
    if status == HTTPStatus.NOT_FOUND:
        return TargetNotFound(message, status, scim_type)
    return TargetError(message, status, scim_type)


def _check_json_media_type(method: str, path: str, response: httpx.Response) -> None:
    content_type = response.headers.get("Content-Type")
    if not is_json_media_type(content_type):
        raise TargetError(
            f"SCIM {method} {path} answered {response.status_code} with Content-Type {content_type!r} "
            "where SCIM JSON was expected",
            response.status_code,
        )


def _json_object(method: str, path: str, response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx answer, or a TargetError saying why there is none."""
    where = f"SCIM {method} {path} answered {response.status_code}"
    _check_json_media_type(method, path, response)
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


class _ScimHttp:
    """Sends one SCIM request with auth, retries, error mapping and counting. Shared by reader and writer.

    TLS is verified (against ``ca_bundle`` alone when given), and each answer is
    read up to ``max_response_bytes``: what the platform sends is not trusted.
    """

    def __init__(
        self,
        base_url: str,
        token: Secret,
        timeout_s: float,
        retry: RetryPolicy,
        client: httpx.AsyncClient | None,
        transport: httpx.AsyncBaseTransport | None,
        ca_bundle: Path | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.base_url = checked_base_url(base_url)
        self._token = token
        self._retry = retry
        self._max_response_bytes = max_response_bytes
        self._backoff = tenacity.wait_exponential_jitter(
            multiplier=retry.backoff_multiplier_s, max=retry.max_backoff_s, jitter=retry.jitter_s
        )
        self._timeout = httpx.Timeout(timeout_s)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=self._timeout, transport=transport, verify=_verify(ca_bundle)
        )
        self.request_counts: Counter[str] = Counter()
        self.on_throttled: Callable[[float | None], None] | None = None
        """Told of every 429 (with its Retry-After), so that a caller can send less."""

    async def aclose(self) -> None:
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
            retry=tenacity.retry_if_exception_type(_RetryableFailure),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return await retrying(self._send_once, method, path, params, body, headers)
        except _RetryableFailure as failure:
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
        try:
            response = await self._read_capped(request)
        except (ResponseTooLarge, UnreadableBody) as error:
            observe_http("scim", None)
            raise TargetError(f"SCIM {method} {path}: {error}") from None
        except httpx.TransportError as error:
            observe_http("scim", None)
            where = f"{self.base_url}{path}"
            if _is_certificate_failure(error):
                raise TargetError(_certificate_message(where, error)) from error
            raise _RetryableFailure(_transport_failure(method, where, error, self._timeout.read)) from error
        except httpx.HTTPError as error:
            observe_http("scim", None)
            raise TargetError(f"SCIM {method} {path} failed: {type(error).__name__}: {error}") from error
        observe_http("scim", response.status_code)
        if not response.is_success:
            failure = _failure_for(method, path, response, self._token)
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
            return _with_body(response, body.finish())
        finally:
            await response.aclose()

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """The server's ``Retry-After`` when it gave one (capped), else exponential backoff with jitter."""
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _RetryableFailure) and failure.retry_after_s is not None:
            return min(failure.retry_after_s, self._retry.retry_after_cap_s)
        return self._backoff(state)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        wait_s = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s; retrying in %.2f s (attempt %d of %d)", failure, wait_s, state.attempt_number, self._retry.attempts
        )


def _verify(ca_bundle: Path | None) -> Any:
    """httpx's ``verify``: its default (certifi's CAs) or an SSL context trusting the CA bundle alone."""
    context = ssl_context_for(ca_bundle)
    return _default_tls_context() if context is True else context


@functools.cache
def _default_tls_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process.

    Building it loads certifi's whole CA bundle, about 0.1 s, which every run's
    client (each tick of ``serve``) would otherwise pay again. The context is
    only read once built, so clients can share it.
    """
    return httpx.create_ssl_context()


def _with_body(response: httpx.Response, body: bytes) -> httpx.Response:
    """A complete response with ``body`` (already decoded) as its content, for the readers of answers."""
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code, headers=headers, content=body, request=response.request, extensions=response.extensions
    )


def _transport_failure(method: str, where: str, error: httpx.TransportError, timeout_s: float | None) -> str:
    """What went wrong on the wire, in words: no connection, no answer in time, or an answer broken off.

    httpx's own messages are often empty (``ReadTimeout:``), so the kind is
    spelled out and the cause (``Connection reset by peer``) added.
    """
    if isinstance(error, httpx.TimeoutException):  # its causes say only that a deadline passed
        kind = type(error).__name__
        return f"SCIM {method} {where} timed out: no answer within {timeout_s:g} s (scim.timeout_s) ({kind})"
    cause = next((str(link) for link in _exception_chain(error) if str(link)), "")
    detail = f"{type(error).__name__}: {cause}" if cause else type(error).__name__
    if isinstance(error, httpx.ConnectError):
        return f"cannot reach SCIM at {where} ({method}): {detail}"
    return f"SCIM {method} {where}: the connection broke before the answer was complete ({detail})"


def _exception_chain(error: BaseException, depth: int = 5) -> Iterator[BaseException]:
    """``error``, then what caused it, and so on (``depth`` links at most)."""
    link: BaseException | None = error
    for _ in range(depth):
        if link is None:
            return
        yield link
        link = link.__cause__ or link.__context__


def _is_certificate_failure(error: httpx.TransportError) -> bool:
    """A server certificate that does not verify: retrying will not change it."""
    cause = error.__cause__ or error.__context__
    return isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(error)


def _certificate_message(where: str, error: httpx.TransportError) -> str:
    return (
        f"SCIM at {where}: the server's TLS certificate does not verify ({error}): if the platform uses a "
        "private CA, set scim.ca_bundle to the PEM file of that CA"
    )


def _validation_summary(error: pydantic.ValidationError) -> str:
    """One line per problem, without pydantic's links."""
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'payload'}: {problem['msg']}" for problem in error.errors()
    )


def _user_from_answer(method: str, path: str, payload: Mapping[str, Any]) -> PlatformUser:
    try:
        return to_platform_user(payload)
    except ValueError as error:
        raise TargetError(f"SCIM {method} {path} answered an unusable User: {error}") from error


def filter_string(value: str) -> str:
    """``value`` as a quoted SCIM filter string (RFC 7644 §3.4.2.2 uses JSON string syntax)."""
    return json.dumps(value, ensure_ascii=False)


class ScimReader:
    """Reads the platform's users. It can only issue GET: its one request method takes no method.

    ``request_counts`` counts every HTTP request issued through this reader and
    any writer built on it, by method, retries included.
    """

    def __init__(
        self,
        base_url: str,
        token: Secret,
        page_size: int = 100,
        timeout_s: float = 30.0,
        *,
        retry: RetryPolicy = RetryPolicy(),
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        read_concurrency: int = 4,
        progress: ProgressListener = NO_PROGRESS,
        keep_attributes: frozenset[str] | None = None,
        ca_bundle: Path | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        """``keep_attributes``: the top-level attributes worth keeping of each listed user (None: all).

        ``ca_bundle``: a PEM file of the CAs to trust instead of the default ones; ``max_response_bytes``:
        the largest answer read (a larger one fails the request unread).
        """
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        if read_concurrency < 1:
            raise ValueError(f"read_concurrency must be at least 1, got {read_concurrency}")
        self.page_size = page_size
        self.read_concurrency = read_concurrency
        self._progress = progress
        self._keep = keep_attributes
        self._http = _ScimHttp(base_url, token, timeout_s, retry, client, transport, ca_bundle, max_response_bytes)
        self._capabilities: ScimCapabilities | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client, unless it was handed in."""
        await self._http.aclose()

    @property
    def base_url(self) -> str:
        return self._http.base_url

    @property
    def request_counts(self) -> Counter[str]:
        return self._http.request_counts

    async def _get(self, path: str, params: Mapping[str, str | int] | None = None) -> dict[str, Any]:
        response = await self._http.send("GET", path, params=params)
        return _json_object("GET", path, response)

    async def discover(self) -> ScimCapabilities:
        """Read ``/ServiceProviderConfig``; a server without a usable one gets DEFAULT_CAPABILITIES.

        A refused token (401/403) and an unreachable server still raise: they are
        not a missing configuration, and every later request would fail the same way.
        """
        try:
            payload = await self._get("/ServiceProviderConfig")
            capabilities = capabilities_from(payload)
        except TargetError as error:
            if error.status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN) or error.status is None:
                raise
            log.warning("no usable ServiceProviderConfig (%s); assuming %s", error, DEFAULT_CAPABILITIES)
            capabilities = DEFAULT_CAPABILITIES
        except pydantic.ValidationError as error:
            log.warning(
                "unreadable ServiceProviderConfig (%s); assuming %s", _validation_summary(error), DEFAULT_CAPABILITIES
            )
            capabilities = DEFAULT_CAPABILITIES
        self._capabilities = capabilities
        return capabilities

    async def discover_user_schema(self) -> UserSchema:
        """Read ``/ResourceTypes`` and ``/Schemas`` (for ``reconcile check``; a run does not need them).

        Either one missing or unreadable leaves its part unknown (None); a
        refused token or an unreachable server raises, as in :meth:`discover`.
        """
        resource_types, schemas = await asyncio.gather(
            self._optional_document("/ResourceTypes"), self._optional_document("/Schemas")
        )
        return UserSchema(
            extensions=None if resource_types is None else user_extensions(resource_types),
            attributes=None if schemas is None else schema_attributes(schemas) or None,
        )

    async def count_users(self) -> int:
        """``totalResults`` of the user listing, from a one-user page."""
        total, _ = await self._read_page({"startIndex": 1, "count": 1})
        return total

    async def filter_works(self) -> bool:
        """Whether a ``userName eq`` filter is answered (a nobody's name, so nothing is listed).

        False when the server refuses it (400/501): lookups then scan the listing.
        """
        params = {"filter": f"userName eq {filter_string(f'okta-reconciler-check-{uuid.uuid4().hex}')}", "count": 1}
        try:
            await self._read_page(params)
        except TargetError as error:
            if error.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_IMPLEMENTED):
                return False
            raise
        return True

    async def _optional_document(self, path: str) -> Any:
        """A discovery document's JSON (object or array), or None when the server has no usable one."""
        try:
            response = await self._http.send("GET", path)
            return decode_json(response.content)
        except TargetError as error:
            if error.status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN) or error.status is None:
                raise
            log.info("no %s (%s)", path, error)
        except JsonError as error:
            log.info("unreadable %s (%s)", path, error)
        return None

    async def capabilities(self) -> ScimCapabilities:
        """The discovered capabilities, discovering them on first use."""
        if self._capabilities is None:
            return await self.discover()
        return self._capabilities

    async def list_users(self) -> list[PlatformUser]:
        """Every user, page by page; a listing that cannot be read whole raises TargetError."""
        return await self._list_users()

    async def get_user(self, scim_id: str) -> PlatformUser:
        """One user, whole, as the platform has it now. A 404 raises TargetNotFound."""
        path = f"/Users/{quote(scim_id, safe='')}"
        return _user_from_answer("GET", path, await self._get(path))

    async def find_by_user_name(self, user_name: str) -> list[PlatformUser]:
        """The users whose userName equals ``user_name`` regardless of case (for linking after a 409).

        Uses a filter where the server supports one, and scans the whole listing
        where it does not, refuses the filter (400/501), or finds nobody: some
        servers compare ``eq`` case-sensitively, which would hide the very user
        a 409 spoke of. Matches are checked here too, so a server that ignores
        the filter cannot return strangers.
        """
        if (await self.capabilities()).filter_supported:
            try:
                found = _same_user_name(await self._list_users(f"userName eq {filter_string(user_name)}"), user_name)
            except TargetError as error:
                if error.status not in (HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_IMPLEMENTED):
                    raise
                log.warning("the userName filter was refused (%s); scanning the listing", error)
            else:
                if found:
                    return found
        return _same_user_name(await self._list_users(), user_name)

    async def _list_users(self, filter_expression: str | None = None) -> list[PlatformUser]:
        """Every user, read again from the start while ``totalResults`` changes between pages.

        A user added or removed while the pages are read shifts the users after
        it by one position: a removal can move a user from a page not read yet
        into one already read, and the listing would miss that user (who would
        then be planned as missing). So only a listing whose pages all agree on
        ``totalResults`` is used; after LISTING_ATTEMPTS that do not, TargetError.
        """
        for attempt in range(1, LISTING_ATTEMPTS + 1):
            try:
                return await self._read_listing(filter_expression)
            except _TotalChanged as change:
                if attempt == LISTING_ATTEMPTS:
                    raise TargetError(
                        f"SCIM GET /Users: totalResults changed between pages ({change}) in {attempt} listings in "
                        "a row: users are being added or removed on the platform while it is read, and a listing "
                        "read across such changes can miss users, so none is used"
                    ) from None
                log.warning(
                    "SCIM GET /Users: totalResults changed between pages (%s): users were added or removed on the "
                    "platform meanwhile; reading the listing again (attempt %d of %d)",
                    change,
                    attempt + 1,
                    LISTING_ATTEMPTS,
                )
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _read_listing(self, filter_expression: str | None) -> list[PlatformUser]:
        """Every user, the first page alone and then the rest ``read_concurrency`` pages at a time.

        The first page tells ``totalResults`` and how many users the server
        really puts in a page (it may give fewer than asked, and may omit
        itemsPerPage); the remaining start indexes follow from those. Any range
        a short page left uncovered is then read one page after another, so a
        server that pages irregularly is still read whole. A partial listing
        must never drive a plan: an empty page inside ``totalResults`` raises,
        and so does a page holding only users already listed (a server ignoring
        startIndex). A page whose ``totalResults`` differs from the first
        page's raises _TotalChanged.
        """
        capabilities = await self.capabilities()
        listing = _Listing(min(self.page_size, capabilities.max_results or self.page_size), filter_expression)
        first = await self._listing_page(listing, 1)
        step = listing.page_size if len(first) >= listing.page_size else max(1, len(first))
        _check_page_count(listing.total, len(first), step)
        await self._read_pages_at(listing, range(1 + len(first), listing.total + 1, step))
        while (gap := listing.first_gap()) is not None:
            await self._read_pages_at(listing, [gap])
        return listing.users()

    async def _read_pages_at(self, listing: _Listing, start_indexes: Sequence[int]) -> None:
        """Read the pages at ``start_indexes`` with ``read_concurrency`` workers; the first failure stops them all."""
        pending = iter(start_indexes)

        async def worker() -> None:
            for start_index in pending:
                await self._listing_page(listing, start_index)

        workers = [asyncio.ensure_future(worker()) for _ in range(min(self.read_concurrency, len(start_indexes)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise

    async def _listing_page(self, listing: _Listing, start_index: int) -> list[PlatformUser]:
        params: dict[str, str | int] = {"startIndex": start_index, "count": listing.page_size}
        if listing.filter_expression:
            params["filter"] = listing.filter_expression
        total, page_users = await self._read_page(params)
        listing.add(start_index, total, page_users)
        self._progress.scim_page(len(page_users), listing.total)
        return page_users

    async def _read_page(self, params: Mapping[str, str | int]) -> tuple[int, list[PlatformUser]]:
        """``(totalResults, users)`` of one ListResponse page."""
        response = await self._http.send("GET", "/Users", params=params)
        _check_json_media_type("GET", "/Users", response)
        try:
            return page_decoder(self._keep).decode(response.content)
        except PageError as error:
            raise TargetError(f"SCIM GET /Users answered {error}", response.status_code) from None
        except ValueError as error:
            raise TargetError(f"SCIM GET /Users answered an unusable User: {error}") from None


def _check_page_count(total: int, first_page: int, step: int) -> None:
    """Refuse, before the second request, a listing that would take more than MAX_LISTING_PAGES pages."""
    pages = 1 + -(-max(0, total - first_page) // step)
    if pages > MAX_LISTING_PAGES:
        raise TargetError(
            f"SCIM GET /Users announces totalResults={total} in pages of {step}: {pages:,} requests, more than "
            f"the {MAX_LISTING_PAGES:,} one listing may take; check the server (or raise scim.page_size)"
        )


class _TotalChanged(Exception):
    """A listing page's ``totalResults`` differs from the first page's: the listing is read again."""


class _Listing:
    """The pages of one listing as they arrive, in any order, and what they leave uncovered."""

    def __init__(self, page_size: int, filter_expression: str | None) -> None:
        self.page_size = page_size
        self.filter_expression = filter_expression
        self.total = 0
        self._pages: dict[int, list[PlatformUser]] = {}
        self._seen: set[str] = set()

    def add(self, start_index: int, total: int, users: list[PlatformUser]) -> None:
        if total > MAX_LISTED_USERS:
            raise TargetError(
                f"SCIM GET /Users answered totalResults={total} at startIndex={start_index}: more than the "
                f"{MAX_LISTED_USERS:,} users a listing may hold, so it is not read"
            )
        if len(self._pages) >= MAX_LISTING_PAGES:
            raise TargetError(f"SCIM GET /Users kept paging past {MAX_LISTING_PAGES:,} pages: the listing is refused")
        if self._pages and total != self.total:
            raise _TotalChanged(f"{self.total} on the first page, {total} at startIndex={start_index}")
        if not users and start_index <= total:
            raise TargetError(
                f"SCIM GET /Users answered an empty page at startIndex={start_index} although totalResults "
                f"is {total}: the listing would be partial"
            )
        if users and self._pages and all(user.scim_id in self._seen for user in users):
            raise TargetError(
                f"SCIM GET /Users answered at startIndex={start_index} only users it had already listed: "
                "the server seems to ignore startIndex, and the listing would be partial"
            )
        if len(self._pages) > self.total + PAGE_LOOP_SLACK and self._pages:
            raise TargetError(f"SCIM GET /Users kept paging past {len(self._pages)} pages for {self.total} users")
        self.total = total
        self._pages[start_index] = users
        self._seen.update(user.scim_id for user in users)

    def first_gap(self) -> int | None:
        """The first start index not covered by a page read so far, up to ``total``; None when all is read."""
        covered = 1
        for start_index in sorted(self._pages):
            if start_index > covered:
                return covered
            covered = max(covered, start_index + len(self._pages[start_index]))
        return covered if covered <= self.total else None

    def users(self) -> list[PlatformUser]:
        unique: dict[str, PlatformUser] = {}
        for start_index in sorted(self._pages):
            for user in self._pages[start_index]:
                unique.setdefault(user.scim_id, user)
        return list(unique.values())


def _same_user_name(users: list[PlatformUser], user_name: str) -> list[PlatformUser]:
    """userName is ``caseExact: false`` (RFC 7643 §4.1.1)."""
    wanted = user_name.casefold()
    return [user for user in users if user.user_name.casefold() == wanted]


class ScimWriter:
    """Writes to the platform through a reader's connection: the only way to change it.

    The writer shares the reader's client, retries and ``request_counts``.
    """

    def __init__(self, reader: ScimReader, *, on_throttled: Callable[[float | None], None] | None = None) -> None:
        """``on_throttled`` hears of each 429 the platform answers (with its Retry-After, if any)."""
        self._reader = reader
        self._http = reader._http  # the reader exposes no writing request; the writer lends it one
        self._http.on_throttled = on_throttled

    @property
    def request_counts(self) -> Counter[str]:
        return self._http.request_counts

    async def find_by_user_name(self, user_name: str) -> list[PlatformUser]:
        """The reader's lookup, here so that a 409 can be followed by a link with the writer alone."""
        return await self._reader.find_by_user_name(user_name)

    async def create_user(self, resource: Mapping[str, Any]) -> PlatformUser:
        """POST /Users; a 409 (the user is already there) raises TargetConflict.

        A create that failed ambiguously (5xx, timeout) is retried like any request;
        if the first attempt had landed, the retry answers 409 and the caller links
        the user as for any conflict, so no duplicate is made.
        """
        response = await self._http.send("POST", "/Users", body=resource)
        return _user_from_answer("POST", "/Users", _json_object("POST", "/Users", response))

    async def patch_user(self, user: PlatformUser, operations: Sequence[Mapping[str, Any]]) -> PlatformUser | None:
        """Apply PATCH operations; where the server does not support PATCH, PUT the patched resource.

        Where the server has ETags, the write carries ``If-Match`` the version
        read, so a concurrent edit on the platform is not overwritten blindly
        (see :meth:`_over_current_version`). Returns the updated user when the
        server answers with it (200), None when it answers 204 No Content (or
        200 with no body). A 404 raises TargetNotFound.
        """
        _check_operations(operations)
        capabilities = await self._reader.capabilities()
        if capabilities.patch_supported:
            return await self._over_current_version(user, functools.partial(self._patch_over, operations=operations))
        if user.partial:  # a PUT replaces every attribute: those the listing left out must be sent back as they are
            user = await self._reader.get_user(user.scim_id)
        return await self._over_current_version(user, functools.partial(self._put_over, operations=operations))

    async def _over_current_version(
        self, user: PlatformUser, write: Callable[[PlatformUser], Awaitable[PlatformUser | None]]
    ) -> PlatformUser | None:
        """``write(user)``; on 412 (the user changed since it was read) read it again and write once more.

        The operations set only attributes Okta owns, so they are still right
        over the newer version: the platform's change is kept where it does not
        touch them. A second 412 raises TargetError.
        """
        try:
            return await write(user)
        except TargetError as error:
            if error.status != HTTPStatus.PRECONDITION_FAILED:
                raise
            log.info("%s: platform user %s changed since it was read; reading it again", error, user.scim_id)
        fresh = await self._reader.get_user(user.scim_id)
        try:
            return await write(fresh)
        except TargetError as error:
            if error.status != HTTPStatus.PRECONDITION_FAILED:
                raise
            raise TargetError(
                f"{error}: platform user {user.scim_id} changed on the platform again after it was read a second "
                "time; not retried further",
                error.status,
                error.scim_type,
            ) from error

    async def _patch_over(self, user: PlatformUser, operations: Sequence[Mapping[str, Any]]) -> PlatformUser | None:
        path = _user_path(user)
        body = {"schemas": [PATCH_OP_URN], "Operations": [dict(op) for op in operations]}
        response = await self._http.send("PATCH", path, body=body, headers=await self._if_match(user))
        return self._user_or_none("PATCH", path, response)

    async def _put_over(self, user: PlatformUser, operations: Sequence[Mapping[str, Any]]) -> PlatformUser | None:
        """PUT ``user`` with ``operations`` applied over it."""
        resource = apply_operations(user.resource, operations)
        path = _user_path(user)
        response = await self._http.send("PUT", path, body=resource, headers=await self._if_match(user))
        return self._user_or_none("PUT", path, response)

    async def _if_match(self, user: PlatformUser) -> dict[str, str] | None:
        """``If-Match`` the version read, where the server has ETags and the user carried one."""
        if user.version and (await self._reader.capabilities()).etag_supported:
            return {"If-Match": user.version}
        return None

    @staticmethod
    def _user_or_none(method: str, path: str, response: httpx.Response) -> PlatformUser | None:
        if response.status_code == HTTPStatus.NO_CONTENT or not response.content.strip():
            return None
        return _user_from_answer(method, path, _json_object(method, path, response))


def _user_path(user: PlatformUser) -> str:
    return f"/Users/{quote(user.scim_id, safe='')}"


def _check_operations(operations: Sequence[Mapping[str, Any]]) -> None:
    """Refuse malformed operations before anything is sent: they are a caller's bug, not a target failure."""
    if not operations:
        raise ValueError("a PATCH needs at least one operation")
    for operation in operations:
        op = str(operation.get("op", "")).lower()
        if op not in PATCH_OPS:
            raise ValueError(f"PATCH op must be one of add, replace, remove: {operation}")
        if op == "remove" and not operation.get("path"):
            raise ValueError(f"a remove operation needs a path: {operation}")
        if op != "remove" and "value" not in operation:
            raise ValueError(f"an {op} operation needs a value: {operation}")
        if not operation.get("path") and not isinstance(operation.get("value"), Mapping):
            raise ValueError(f"an operation without a path needs an object value: {operation}")


def apply_operations(resource: Mapping[str, Any], operations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The resource as the PATCH operations would leave it, ready for a PUT (RFC 7644 §3.5.2).

    Attributes the operations do not name are kept, so the PUT does not wipe
    what the platform owns. A value object merges into an existing complex
    attribute (sub-attributes not named are kept); ``add`` of a list extends a
    multi-valued attribute; a null value or ``remove`` unassigns. Read-only
    attributes (``meta``, ``groups``) are dropped. Paths are those of
    :func:`reconciler.mapping.parse_target_path`, plus ``active`` and
    ``externalId``; raises ValueError for any other.
    """
    _check_operations(operations)
    replacement = copy.deepcopy(dict(resource))
    for operation in operations:
        op = str(operation["op"]).lower()
        path = operation.get("path")
        if path:
            _apply_at_path(replacement, path, None if op == "remove" else operation["value"], op)
        else:
            for key, value in operation["value"].items():
                _apply_at_path(replacement, key, value, op)
    for attribute in READ_ONLY_ATTRIBUTES:
        replacement.pop(attribute, None)
    return replacement


def _apply_at_path(resource: dict[str, Any], path: str, value: Any, op: str) -> None:
    if path in DIRECT_PATHS or _is_schema_key(resource, path):
        _apply_top_level(resource, path, value, op)
        return
    try:
        target = parse_target_path(path)
    except ValueError as error:
        raise ValueError(f"cannot replay PATCH path {path!r} as a PUT: {error}") from error
    if target.schema is None and target.sub_attribute is None and target.entry_type is None:
        _apply_top_level(resource, target.attribute, value, op)
    elif value is None:
        _remove(resource, target)
    else:
        set_value(resource, target, value)


def _is_schema_key(resource: Mapping[str, Any], key: str) -> bool:
    """``urn:...:enterprise:2.0:User`` and other extension objects, as opposed to ``urn:...:User:department``."""
    schemas = resource.get("schemas")
    if not key.startswith("urn:") or key == CORE_USER_URN:
        return False
    return key == ENTERPRISE_URN or (isinstance(schemas, list) and key in schemas)


def _apply_top_level(resource: dict[str, Any], key: str, value: Any, op: str) -> None:
    """Set, merge into, extend or unassign a top-level attribute or an extension object."""
    if value is None:
        _remove_top_level(resource, key)
        return
    current = resource.get(key)
    if isinstance(value, Mapping) and isinstance(current, Mapping):
        merged = {**current, **copy.deepcopy(dict(value))}
        resource[key] = {name: part for name, part in merged.items() if part is not None}
    elif op == "add" and isinstance(value, list) and isinstance(current, list):
        resource[key] = current + [entry for entry in copy.deepcopy(value) if entry not in current]
    else:
        resource[key] = copy.deepcopy(value)
    if key.startswith("urn:") and key != CORE_USER_URN:
        schemas = resource.setdefault("schemas", [CORE_USER_URN])
        if key not in schemas:
            schemas.append(key)


def _remove_top_level(resource: dict[str, Any], key: str) -> None:
    resource.pop(key, None)
    schemas = resource.get("schemas")
    if key.startswith("urn:") and isinstance(schemas, list) and key in schemas:
        schemas.remove(key)


def _remove(resource: dict[str, Any], target: TargetPath) -> None:
    """Unassign the value at ``target``: a typed entry goes whole, a sub-attribute alone."""
    if target.entry_type is not None:
        set_value(resource, target, None)
        return
    container = resource.get(target.schema) if target.schema and target.schema != CORE_USER_URN else resource
    if not isinstance(container, dict):
        return
    if target.sub_attribute is None:
        container.pop(target.attribute, None)
    elif isinstance(complex_value := container.get(target.attribute), dict):
        complex_value.pop(target.sub_attribute, None)
