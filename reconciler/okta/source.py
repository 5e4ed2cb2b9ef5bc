"""Reads the desired state: the Okta app's assignments and pushed groups, through the official ``okta`` SDK.

:class:`OktaSource` pages ``GET /api/v1/apps/{appId}/users?expand=user&limit=500``
in its own loop, following the ``after`` value of the ``Link: rel="next"``
header, and turns every AppUser into an :class:`OktaAssignment` as soon as the
page arrives. Any failure, on any page, raises one :class:`SourceError` that
says what failed: a partial listing is never returned, because a partial
desired state would drive deactivations.

:meth:`OktaSource.list_pushed_groups` reads the groups Group Push follows (see
:mod:`reconciler.group_plan`): those assigned to the app
(``GET /api/v1/apps/{appId}/groups?expand=group``), and those ``groups.push``
names by id (``GET /api/v1/groups/{groupId}``) or by the name of an assigned
group, each with its members (``GET /api/v1/groups/{groupId}/users``), a few
groups at a time. Every request, for users or groups, goes through one path
(:meth:`OktaSource._fetch`): the same pacing, one budget per rate-limit
family, retries, answer cap, error messages and credential masking.

Things about okta 3.4.6 this module works around (each verified against its source):

- a refused connection or a timeout comes back as an error value that the SDK's
  own API method then trips over (``AttributeError`` on ``None.status``),
  losing the cause: :class:`_RaisingHTTPClient` raises the transport error instead;
- its generated API methods send ``Authorization: SSWS<token>`` without the
  space; its request executor, which this module uses, sends ``SSWS <token>``;
- ``AppUser.to_dict()`` drops the read-only ``externalId`` and ``_embedded``:
  :func:`app_user_as_dict` (for recorded answers and tests) uses
  ``model_dump(by_alias=True)`` instead;
- a JWK private key goes through ``ast.literal_eval`` and per-value string
  stripping, which break on JSON ``true``/``null`` and list members: the key
  is converted to PEM here;
- ``okta.client.Client`` mixes in every API module (~6 s and ~50 MB to import)
  and parses pages into pydantic models (slower than the round trip to Okta):
  :class:`OktaSource` builds the SDK's own request executor the way ``Client``
  does and decodes pages itself (:mod:`reconciler.okta_page`);
- the ``okta-sdk-python`` logger's debug records hold the whole request,
  Authorization header included: it stays disabled, as ``Client`` leaves it,
  and a filter masks credentials should anyone enable it;
- its HTTP client reads every body whole (``response.text()``): the session
  built here reads through :class:`_CappedResponse`, which stops past
  ``max_response_bytes``, and verifies TLS (against ``ca_bundle`` alone when
  given) on its connector, which the OAuth token requests share.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import aiohttp
import msgspec
import tenacity
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
from reconciler.hooks import NO_PROGRESS, ProgressListener, observe_http
from reconciler.models.groups import OktaGroup, looks_like_okta_group_id
from reconciler.models.records import OktaAssignment, ProfileFields
from reconciler.net.limits import DEFAULT_MAX_RESPONSE_BYTES, READ_CHUNK_BYTES
from reconciler.net.pacing import RateLimitBudget, all_or_cancel, header_value, parse_retry_after
from reconciler.net.transport import (
    NESTING_MESSAGE,
    ResponseTooLarge,
    declared_too_large,
    is_json_media_type,
    is_loopback_host,
    ssl_context_for,
)
from reconciler.okta.page import KEEP_ALL, decode_app_users
from reconciler.secret import Secret

log = logging.getLogger(__name__)

AuthMode = Literal["api_token", "private_key"]

DEFAULT_SCOPES = ("okta.apps.read", "okta.users.read")
"""What listing an app's users with ``expand=user`` needs from a service app."""
MAX_PAGE_SIZE = 500
"""Okta's ceiling for ``limit`` on ``/api/v1/apps/{appId}/users``."""
SDK_LOGGER_NAME = "okta-sdk-python"
HTTPS_CHECK_ENV = "OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"
_AUTH_MODES = {"api_token": "SSWS", "private_key": "PrivateKey"}
_LINK = re.compile(r"<(?P<url>[^>]*)>(?P<params>[^,<]*)")
_REL = re.compile(r"""\brel\s*=\s*(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s;,]+))""", re.IGNORECASE)
_MAX_DETAIL = 300
RATE_LIMIT_ATTEMPTS = 3
"""Requests for one page at most when Okta answers 429 (each after waiting for the window to reset)."""
TRANSIENT_ATTEMPTS = 3
"""Requests for one page at most when Okta fails in a way that may pass: a 5xx, a timeout, a dropped
or reset connection, an answer broken off part-way."""
TRANSIENT_BACKOFF_S = 0.5
"""The wait before the second of those attempts; it doubles before each next one."""
MAX_ASSIGNMENTS = 10_000_000
"""More assignments than any app has: a listing that pages past this many is refused as runaway."""
MAX_EMPTY_PAGES_IN_A_ROW = 10
"""Empty pages that each point to yet another page: a listing that does not end."""
MAX_RESPONSE_SETTING = "okta.max_response_mb"
GROUP_PAGE_SIZE = 200
"""Okta's ceiling for ``limit`` on ``/api/v1/apps/{appId}/groups`` (its floor is 20)."""
MEMBER_PAGE_SIZE = 1000
"""Okta's ceiling for ``limit`` on ``/api/v1/groups/{groupId}/users``."""
MAX_GROUPS = 1_000_000
"""More groups than any app is assigned: a group listing that pages past this many is refused as runaway."""
MAX_GROUP_MEMBERS = 10_000_000
"""More members than any group has: a member listing that pages past this many is refused as runaway."""
GROUP_READS_AT_ONCE = 4
"""Groups read at the same time: each member listing is a chain of pages, one in flight at a time,
so a few chains overlap their round trips while staying well inside the rate limit's share."""
GROUPS_FAMILY = "/api/v1/groups"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class OktaAppSummary:
    """The app as Okta describes it (``GET /api/v1/apps/{id}``), for ``reconcile check``."""

    label: str
    name: str
    status: str
    """ACTIVE or INACTIVE: Okta pushes nothing for an inactive app."""
    sign_on_mode: str
    features: tuple[str, ...]
    """Provisioning features turned on, e.g. PUSH_NEW_USERS, PUSH_USER_DEACTIVATION."""
    has_assignments: bool
    rate_limit: int | None
    """``X-Rate-Limit-Limit`` of the app users listing: requests per minute."""


class OktaSource:
    """The Okta side of a run: lists one app's assignments.

    Use it as an async context manager, so that listings share one HTTP
    session (``list_assignments`` also works outside, with a session of its own)::

        async with OktaSource(org_url=..., app_id=..., auth="api_token", token=Secret(...)) as source:
            assignments = await source.list_assignments()

    Pacing is the source's own (:class:`~reconciler.pacing.RateLimitBudget`):
    it spends at most ``rate_limit_share`` of each rate-limit window and waits
    out a 429 until the window resets. The SDK's own retry stays off: it needs
    ``Date`` and ``X-Rate-Limit-Reset`` on the answer and fails without them.
    """

    def __init__(
        self,
        *,
        org_url: str,
        app_id: str,
        auth: AuthMode,
        token: Secret | None = None,
        client_id: str | None = None,
        private_key: Secret | None = None,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        timeout_s: float = 30.0,
        key_id: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        rate_limit_share: float = 0.5,
        profile_fields: ProfileFields = KEEP_ALL,
        progress: ProgressListener = NO_PROGRESS,
        on_page: Callable[[list[OktaAssignment]], None] | None = None,
        ca_bundle: Path | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        """``ca_bundle``: a PEM file of the CAs to trust instead of the system's; ``max_response_bytes``:
        the largest answer read (a larger one fails the listing unread)."""
        self.org_url, loopback_http = checked_org_url(org_url)
        if not app_id:
            raise SourceError("okta app id is empty")
        if timeout_s <= 0:
            raise SourceError(f"okta timeout must be more than 0 s, not {timeout_s}")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise SourceError(f"okta page size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
        self.app_id = app_id
        self._app_url = f"{self.org_url}/api/v1/apps/{quote(app_id, safe='')}"
        self.auth = auth
        self.timeout_s = timeout_s
        self.page_size = page_size
        self._scopes = tuple(scopes)
        self._client_id = client_id
        self._secrets = tuple(secret for secret in (token, private_key) if secret is not None)
        credentials = _credentials_config(auth, token, client_id, private_key, self._scopes, key_id)
        self._executor = self._build_executor(credentials, loopback_http)
        self._session: aiohttp.ClientSession | None = None
        self._rate_limit_share = rate_limit_share
        self._budgets = {"/api/v1/apps": RateLimitBudget(rate_limit_share)}
        """One per rate-limit family (Okta counts ``/api/v1/apps``, ``/api/v1/groups``… in windows of their own)."""
        self._profile_fields = profile_fields
        self._progress = progress
        self._on_page = on_page
        self._ca_bundle = ca_bundle
        self._max_response_bytes = max_response_bytes
        self.rate_limited = 0
        """429 answers met (each waited out)."""

    @property
    def rate_limit_waited_s(self) -> float:
        """Seconds spent waiting for Okta's rate-limit windows to reset."""
        return sum(budget.waited_s for budget in self._budgets.values())

    async def __aenter__(self) -> Self:
        self._open_session()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def list_assignments(self) -> list[OktaAssignment]:
        """Every user assigned to the app, directly or through a group.

        Raises :class:`SourceError` if any page fails: never a partial list.
        Outside ``async with``, a session is opened for this listing only.
        """
        if self._session is not None:
            return await self._list_pages()
        async with self:
            return await self._list_pages()

    async def describe_app(self) -> OktaAppSummary:
        """The app's own record and its first assignment: what ``reconcile check`` shows of the Okta side.

        Two requests, the very ones a run depends on (the app, and its users
        with ``expand=user``), so that a credential lacking a scope fails here
        as it would in a run.
        """
        if self._session is None:
            async with self:
                return await self.describe_app()
        body, _ = await self._fetch(self._app_url, f"the record of app {self.app_id}")
        app = _json_object_of(body)
        query = urlencode({"limit": 1, "expand": "user"})
        first_page, headers = await self._fetch(f"{self._app_url}/users?{query}", self._where(1))
        return OktaAppSummary(
            label=str(app.get("label") or ""),
            name=str(app.get("name") or ""),
            status=str(app.get("status") or ""),
            sign_on_mode=str(app.get("signOnMode") or ""),
            features=tuple(str(f) for f in app.get("features") or () if isinstance(f, str)),
            has_assignments=bool(self._convert_page(1, first_page)),
            rate_limit=_int_header(headers, "X-Rate-Limit-Limit"),
        )

    async def _list_pages(self) -> list[OktaAssignment]:
        query = urlencode({"limit": self.page_size, "expand": "user"})
        listing = _Listing(
            f"{self._app_url}/users?{query}", f"app {self.app_id}", self.page_size, MAX_ASSIGNMENTS, "assignments"
        )
        return await self._read_listing(listing, self._convert_page, self._assignments_read)

    def _assignments_read(self, found: list[OktaAssignment]) -> None:
        self._progress.okta_page(len(found))
        if self._on_page is not None:
            self._on_page(found)

    async def _read_listing(
        self,
        listing: _Listing,
        decode: Callable[[int, bytes | str], list[_T]],
        on_page: Callable[[list[_T]], None] | None = None,
    ) -> list[_T]:
        """Every item of a paged listing, each page decoded as it arrives; SourceError on any failure."""
        items: list[_T] = []
        empty_in_a_row = 0
        async with contextlib.aclosing(self._page_bodies(listing)) as pages:
            async for page, body in pages:
                found = decode(page, body)
                empty_in_a_row = 0 if found else empty_in_a_row + 1
                if empty_in_a_row > MAX_EMPTY_PAGES_IN_A_ROW:
                    raise self._error(
                        f"Okta listing of {listing.name} does not end: {empty_in_a_row} empty pages in a row, "
                        f"each pointing to another (page {page})"
                    )
                items.extend(found)
                if on_page is not None:
                    on_page(found)
        return items

    async def _page_bodies(self, listing: _Listing) -> AsyncIterator[tuple[int, bytes | str]]:
        """Each page's body in order, the next page already requested while the caller decodes this one.

        Okta pages are chained by cursor, so only one can be in flight; the
        decoding of a page overlaps the round trip of the next.
        """
        seen_cursors: set[str] = set()
        max_pages = -(-listing.max_items // listing.page_size)
        page = 1
        pending = asyncio.ensure_future(self._fetch(listing.page_url(None), listing.where(page)))
        try:
            while True:
                body, headers = await pending
                cursor = next_cursor(headers)
                if cursor is None:
                    yield page, body
                    return
                if cursor in seen_cursors:
                    raise self._error(
                        f"Okta listing of {listing.name} loops: page {page} points back to cursor {cursor}"
                    )
                seen_cursors.add(cursor)
                if page >= max_pages:
                    raise self._error(
                        f"Okta listing of {listing.name} keeps paging past {page:,} pages of {listing.page_size}: "
                        f"more than {listing.max_items:,} {listing.items}, so it is refused as runaway"
                    )
                pending = asyncio.ensure_future(self._fetch(listing.page_url(cursor), listing.where(page + 1)))
                await _let_run(pending)
                yield page, body
                page += 1
        finally:
            if not pending.done():
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    # -- groups --------------------------------------------------------------

    async def list_pushed_groups(self, push: Sequence[str], push_assigned: bool) -> list[OktaGroup]:
        """The groups Group Push follows, each once, sorted by id, with their members' Okta user ids.

        ``push`` holds group ids (``00g…``: any group of the org, assigned to
        the app or not) and names (of groups assigned to the app: exactly, else
        the one matching without regard to case); ``push_assigned`` adds every
        group assigned to the app. Raises :class:`SourceError` if any read
        fails or an entry of ``push`` names no group: never a partial list.
        Outside ``async with``, a session is opened for this listing only.
        """
        if self._session is None:
            async with self:
                return await self.list_pushed_groups(push, push_assigned)
        ids = [entry for entry in push if looks_like_okta_group_id(entry)]
        names = [entry for entry in push if not looks_like_okta_group_id(entry)]
        assigned = await self._assigned_groups() if push_assigned or names else {}
        pushed = dict(assigned) if push_assigned else {}
        for name in names:
            group_id = group_named(name, assigned, self.app_id)
            pushed[group_id] = assigned[group_id]
        pushed.update({group_id: assigned[group_id] for group_id in ids if group_id in assigned})
        unread = sorted({group_id for group_id in ids if group_id not in pushed})
        pushed.update(zip(unread, await _gather_bounded(self._group_name, unread, GROUP_READS_AT_ONCE), strict=True))
        group_ids = sorted(pushed)
        members = await _gather_bounded(self._member_ids, group_ids, GROUP_READS_AT_ONCE)
        return [
            OktaGroup(group_id, pushed[group_id], member_ids)
            for group_id, member_ids in zip(group_ids, members, strict=True)
        ]

    async def _assigned_groups(self) -> dict[str, str]:
        """The id and name of every group assigned to the app."""
        query = urlencode({"limit": GROUP_PAGE_SIZE, "expand": "group"})
        path = f"/api/v1/apps/{self.app_id}/groups"
        listing = _Listing(f"{self._app_url}/groups?{query}", path, GROUP_PAGE_SIZE, MAX_GROUPS, "groups")
        decode = self._decoder(listing, decode_app_groups)
        return dict(await self._read_listing(listing, decode))

    async def _group_name(self, group_id: str) -> str:
        """The name of a group ``groups.push`` lists by id (``GET /api/v1/groups/{groupId}``)."""
        path = f"{GROUPS_FAMILY}/{group_id}"
        try:
            body, _ = await self._fetch(f"{self.org_url}{GROUPS_FAMILY}/{quote(group_id, safe='')}", path)
        except _NotFound as missing:
            raise self._error(
                f"groups.push lists Okta group {group_id}, which Okta does not have ({missing.detail}): "
                "check the id in groups.push"
            ) from None
        try:
            return decode_group_name(body, group_id)
        except SourceError as exc:
            raise self._error(f"Okta listing failed on {path}: {exc}") from None

    async def _member_ids(self, group_id: str) -> frozenset[str]:
        """The Okta user ids of a group's members (``GET /api/v1/groups/{groupId}/users``)."""
        query = urlencode({"limit": MEMBER_PAGE_SIZE})
        path = f"{GROUPS_FAMILY}/{group_id}/users"
        url = f"{self.org_url}{GROUPS_FAMILY}/{quote(group_id, safe='')}/users?{query}"
        listing = _Listing(url, path, MEMBER_PAGE_SIZE, MAX_GROUP_MEMBERS, "members")
        return frozenset(await self._read_listing(listing, self._decoder(listing, decode_group_members)))

    def _decoder(
        self, listing: _Listing, decode: Callable[[bytes | str], list[_T]]
    ) -> Callable[[int, bytes | str], list[_T]]:
        """``decode`` for :meth:`_read_listing`: a malformed page fails naming the page and the endpoint."""

        def decode_page(page: int, body: bytes | str) -> list[_T]:
            try:
                return decode(body)
            except SourceError as exc:
                raise self._error(f"Okta listing failed on {listing.where(page)}: {exc}") from None

        return decode_page

    # -- one request ---------------------------------------------------------

    async def _fetch(self, url: str, where: str) -> tuple[bytes | str, Mapping[str, Any]]:
        """One GET's raw body and headers, transient failures retried with backoff; SourceError on any failure.

        A GET can be sent again harmlessly. A refused connection or an unknown
        host is not retried: it is a wrong ``okta.org_url`` far more often than
        a blip, and the next run tries again anyway.
        """
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(TRANSIENT_ATTEMPTS),
            wait=tenacity.wait_exponential_jitter(multiplier=TRANSIENT_BACKOFF_S, jitter=TRANSIENT_BACKOFF_S / 2),
            retry=tenacity.retry_if_exception_type(_TransientSourceError),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            return await retrying(self._fetch_once, url, where)
        except _TransientSourceError as failure:
            raise SourceError(f"{failure} (gave up after {TRANSIENT_ATTEMPTS} attempts)") from None

    async def _fetch_once(self, url: str, where: str) -> tuple[bytes | str, Mapping[str, Any]]:
        """One GET's raw body and headers, waiting out the rate limit; SourceError on any failure."""
        budget = self._budget_for(url)
        for attempt in range(1, RATE_LIMIT_ATTEMPTS + 1):
            await budget.acquire()
            status, headers, body = await self._send_get(url, where)
            budget.observe(headers)
            if status != HTTPStatus.TOO_MANY_REQUESTS or attempt == RATE_LIMIT_ATTEMPTS:
                break
            self.rate_limited += 1
            retry_after = parse_retry_after(header_value(headers, "Retry-After"))
            waited = await budget.after_429(headers, retry_after)
            log.warning("Okta answered 429 on %s; waited %.1f s for its rate limit to reset", where, waited)
        if not 200 <= status < 300:
            masked = self._masked(body)  # before any cut: no prefix of a credential Okta echoed may survive
            error = okta_api_error(self.org_url, status, headers, masked)
            message = self._okta_failure(error, where, url)
            if status == HTTPStatus.NOT_FOUND:
                raise _NotFound(self._masked(message), self._masked(_okta_error_detail(error)))
            raise self._transient(message) if _is_transient_status(status) else self._error(message)
        content_type = header_value(headers, "Content-Type")
        if not is_json_media_type(content_type):
            raise self._error(
                f"Okta listing failed on {where}: the answer is not JSON (HTTP {status}, Content-Type "
                f"{content_type!r}): is okta.org_url the Okta org, not a sign-in page or a proxy?"
            )
        return body, headers

    def _budget_for(self, url: str) -> RateLimitBudget:
        """The budget of the URL's rate-limit family: the groups' answers say nothing of the apps' window."""
        family = _rate_limit_family(url)
        budget = self._budgets.get(family)
        if budget is None:
            budget = self._budgets[family] = RateLimitBudget(self._rate_limit_share)
        return budget

    async def _send_get(self, url: str, where: str) -> tuple[int, Mapping[str, Any], str]:
        """Send through the SDK's request executor (its auth, OAuth tokens, session) without its model parsing."""
        executor = self._executor
        try:
            request, error = await executor.create_request("GET", url, None, {"Accept": "application/json"})
            if error is not None:
                raise self._error(self._okta_failure(error, where))
            _, response, body, error = await executor.fire_request_helper(request, 0, time.time())
        except SourceError:
            raise
        except ResponseTooLarge as exc:
            raise self._error(f"Okta's answer to {where}: {exc}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            message = self._transport_failure(exc, where)
            raise (self._transient(message) if _is_transient_transport_error(exc) else self._error(message)) from exc
        except Exception as exc:  # the SDK fails in its own code on some answers
            raise self._error(self._sdk_failure(exc, where)) from exc
        if response is None or error is not None:
            raise self._error(self._sdk_failure(error or RuntimeError("no answer"), where))
        return response.status, response.headers, body or ""

    def _convert_page(self, page: int, body: bytes | str) -> list[OktaAssignment]:
        try:
            return decode_app_users(body, self._profile_fields)
        except SourceError as exc:
            raise self._error(f"Okta listing failed on page {page} of app {self.app_id}: {exc}") from None

    # -- messages ------------------------------------------------------------

    def _where(self, page: int) -> str:
        return f"page {page} of app {self.app_id}"

    def _transport_failure(self, exc: BaseException, where: str) -> str:
        if isinstance(exc, TimeoutError):
            return f"Okta at {self.org_url} did not answer within {self.timeout_s:g} s ({where})"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return (
                f"Okta at {self.org_url}: its TLS certificate does not verify ({exc.certificate_error}) "
                f"({where}): if a private CA or a TLS-inspecting proxy signed it, set okta.ca_bundle "
                "to the PEM file of that CA"
            )
        if isinstance(exc, aiohttp.ClientConnectorError):
            refused = isinstance(exc.os_error, ConnectionRefusedError) or exc.os_error.errno == errno.ECONNREFUSED
            reason = "connection refused" if refused else (exc.os_error.strerror or str(exc.os_error))
            return f"cannot reach Okta at {self.org_url}: {reason} ({where})"
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return f"Okta at {self.org_url} closed the connection without answering ({where})"
        if isinstance(exc, aiohttp.ClientPayloadError):
            return f"Okta at {self.org_url} broke off its answer part-way: {_exception_text(exc)} ({where})"
        return f"cannot talk to Okta at {self.org_url}: {_exception_text(exc)} ({where})"

    def _sdk_failure(self, exc: Exception, where: str) -> str:
        return f"Okta listing failed on {where}: the okta SDK failed: {_exception_text(exc)}"

    def _okta_failure(self, error: Exception, where: str, url: str = "") -> str:
        status = getattr(error, "status", None)
        code = getattr(error, "error_code", None)
        detail = _okta_error_detail(error)
        if code == "invalid_client":
            return (
                f"Okta refused service app {self._client_id}'s client assertion ({detail}): "
                "check okta.client_id, and that okta.private_key_file matches the public key registered in Okta"
            )
        if code == "invalid_scope":
            scopes = " ".join(self._scopes)
            return (
                f"Okta refused the scopes {scopes} ({detail}): "
                f"grant them to service app {self._client_id} in Okta, or change okta.scopes"
            )
        if status == 401 and self.auth == "api_token":
            return f"Okta rejected the API token ({detail}): check okta.token_env (or okta.token_file)"
        if status == 401:
            return f"Okta rejected service app {self._client_id}'s access token ({detail})"
        reads_groups = _rate_limit_family(url) == GROUPS_FAMILY
        if status == 403 and reads_groups:
            return f"Okta denied reading {where} ({detail}): the credential needs okta.groups.read"
        if status == 403:
            return (
                f"Okta denied reading app {self.app_id}'s assignments ({detail}): the credential needs okta.apps.read"
            )
        if status == 404 and reads_groups:
            return f"Okta answered {detail} on {where}: was the group deleted while the run read it?"
        if status == 404:
            return f"Okta has no app {self.app_id} ({detail}): check okta.app_id"
        return f"Okta listing failed on {where}: {detail}"

    def _error(self, message: str) -> SourceError:
        """A SourceError whose message cannot carry a credential, even if Okta echoed one."""
        return SourceError(self._masked(message))

    def _transient(self, message: str) -> _TransientSourceError:
        """A failure that may pass (:meth:`_fetch_page` retries it), masked like :meth:`_error`."""
        return _TransientSourceError(self._masked(message))

    def _masked(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret.reveal(), "********")
        return text

    # -- setup ---------------------------------------------------------------

    def _build_executor(self, credentials: dict[str, Any], loopback_http: bool) -> RequestExecutor:
        """The SDK's request executor, configured and validated as ``okta.client.Client`` does it.

        ``Client`` itself mixes in every API module of the SDK: importing it
        costs ~6 s and ~50 MB, and the listing needs none of them.
        """
        user_config = {
            "orgUrl": self.org_url,
            **credentials,
            "requestTimeout": self.timeout_s,
            "rateLimit": {"maxRetries": 0},
            "cache": {"enabled": False},
            "logging": {"enabled": False},
        }
        try:
            with _https_check_disabled(loopback_http), _sdk_handlers_removed():
                setter = ConfigSetter()
                setter._apply_config({"client": user_config})
                config = setter._prune_config(setter.get_config())
                ConfigValidator(config)
                executor = RequestExecutor(config, NoOpCache(), _RaisingHTTPClient)
            logging.getLogger(SDK_LOGGER_NAME).disabled = True  # as Client() leaves it with logging off
            return executor
        except ValueError as exc:
            raise self._error(f"the okta SDK refused its configuration: {_exception_text(exc)}") from None

    def _open_session(self) -> None:
        """One session for the SDK's requests (OAuth token requests included): TLS verified, answers capped."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=ssl_context_for(self._ca_bundle)),
                response_class=_capped_response_class(self._max_response_bytes),
            )
            self._executor.set_session(self._session)


class _CappedResponse(aiohttp.ClientResponse):
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


def _capped_response_class(limit_bytes: int) -> type[aiohttp.ClientResponse]:
    return type("CappedResponse", (_CappedResponse,), {"limit_bytes": limit_bytes})


class _TransientSourceError(SourceError):
    """A request that failed in a way that may pass; :meth:`OktaSource._fetch` retries it."""


class _NotFound(SourceError):
    """A 404, with its message for the endpoint; a caller that knows what is missing says it better."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail
        """``HTTP 404 E0000007: Not found: …``"""


@dataclass(frozen=True, slots=True)
class _Listing:
    """One paged Okta listing, as :meth:`OktaSource._page_bodies` follows it."""

    url: str
    """The first page; each next one adds the ``after`` cursor of the previous page's ``rel="next"`` link."""
    name: str
    """What messages call it: ``app 0oa…``, ``/api/v1/groups/00g…/users``."""
    page_size: int
    max_items: int
    """More than any real listing holds: one that pages past this many is refused as runaway."""
    items: str
    """What it lists, for the runaway message: ``assignments``, ``members``."""

    def page_url(self, cursor: str | None) -> str:
        return self.url if cursor is None else f"{self.url}&{urlencode({'after': cursor})}"

    def where(self, page: int) -> str:
        return f"page {page} of {self.name}"


def _log_retry(state: tenacity.RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome else None
    wait_s = state.next_action.sleep if state.next_action else 0.0
    log.warning("%s; retrying in %.2f s (attempt %d of %d)", failure, wait_s, state.attempt_number, TRANSIENT_ATTEMPTS)


def _is_transient_status(status: int) -> bool:
    """The 5xx that may pass; 501 Not Implemented and 505 never will. (429 is paced separately.)"""
    return 500 <= status < 600 and status not in (HTTPStatus.NOT_IMPLEMENTED, HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)


def _is_transient_transport_error(exc: BaseException) -> bool:
    """A timeout, or a connection made and then lost (dropped, reset, answer broken off); not a refused one."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return False
    return isinstance(
        exc,
        TimeoutError
        | aiohttp.ServerDisconnectedError
        | aiohttp.ClientPayloadError
        | aiohttp.ClientOSError
        | ConnectionResetError,
    )


class _RaisingHTTPClient(HTTPClient):
    """The SDK's HTTP client, except that a transport failure raises instead of returning.

    okta 3.4.6 returns a connection error as a value, and its API methods then
    read ``.status`` of the missing response: the cause (refused, timeout,
    reset) would be lost behind an ``AttributeError``.
    """

    async def send_request(self, request: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
        request_info, response, body, error = await super().send_request(request)
        observe_http("okta", getattr(response, "status", None))
        if error is not None:
            raise error
        return request_info, response, body, error


# ---------------------------------------------------------------------------
# Pure helpers: parsing what Okta sends
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    """What the SDK's error classes read of an answer."""

    status: int
    headers: Mapping[str, Any]


def okta_api_error(url: str, status: int, headers: Mapping[str, Any], body: str) -> Exception:
    """The SDK's error object for a failed answer: an OktaAPIError for an Okta error body, else an HTTPError."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        payload = None
    answer = _Answer(status, headers)
    if isinstance(payload, dict) and payload.get("errorCode"):
        return OktaAPIError(url, answer, payload)
    return HTTPError(url, answer, body)


def assignment_from_app_user(data: Mapping[str, Any]) -> OktaAssignment:
    """One AppUser, as Okta sends it (camelCase JSON keys), as an :class:`OktaAssignment`.

    Takes the JSON object of a recorded response, or :func:`app_user_as_dict`
    of an SDK model, and reads it exactly as a listing page is read
    (:func:`~reconciler.okta_page.decode_app_users`); an empty ``externalId``
    counts as none.
    """
    return decode_app_users(json.dumps([data]))[0]


def app_user_as_dict(app_user: Any) -> Mapping[str, Any]:
    """The camelCase dict of an SDK ``AppUser`` (or a dict, passed through).

    ``AppUser.to_dict()`` would drop ``externalId`` and ``_embedded`` (read-only
    in the spec), so this dumps the pydantic model by alias instead.
    """
    if isinstance(app_user, Mapping):
        return app_user
    dumped: dict[str, Any] = app_user.model_dump(by_alias=True, mode="json")
    return dumped


class _GroupProfile(msgspec.Struct):
    name: str | None = None


class _Group(msgspec.Struct):
    """A Group as ``GET /api/v1/groups/{groupId}`` and ``_embedded.group`` hold it: only what is read."""

    id: str | None = None
    profile: _GroupProfile | None = None


class _AppGroupEmbedded(msgspec.Struct):
    group: _Group | None = None


class _AppGroup(msgspec.Struct):
    """An ApplicationGroupAssignment with ``expand=group``: its id is the group's."""

    id: str | None = None
    embedded: _AppGroupEmbedded | None = msgspec.field(default=None, name="_embedded")


class _GroupMember(msgspec.Struct):
    id: str | None = None


_APP_GROUPS_DECODER = msgspec.json.Decoder(list[_AppGroup])
_GROUP_DECODER = msgspec.json.Decoder(_Group)
_GROUP_MEMBERS_DECODER = msgspec.json.Decoder(list[_GroupMember])


def decode_app_groups(body: bytes | str) -> list[tuple[str, str]]:
    """The group id and name of each assignment on a page of ``GET /api/v1/apps/{appId}/groups?expand=group``."""
    groups: list[_AppGroup] = _decoded(_APP_GROUPS_DECODER, body, "application group assignments")
    return [_id_and_name(group) for group in groups]


def _id_and_name(group: _AppGroup) -> tuple[str, str]:
    if not group.id:
        raise SourceError("an application group assignment has no id")
    embedded = group.embedded.group if group.embedded else None
    name = embedded.profile.name if embedded and embedded.profile else None
    if not name:
        raise SourceError(f"Okta group {group.id} has no _embedded.group.profile.name")
    return group.id, name


def decode_group_name(body: bytes | str, group_id: str) -> str:
    """The ``profile.name`` of ``GET /api/v1/groups/{groupId}``."""
    group: _Group = _decoded(_GROUP_DECODER, body, "a group")
    if group.id != group_id:
        raise SourceError(f"the answer is group {group.id!r}, not {group_id}")
    if not group.profile or not group.profile.name:
        raise SourceError(f"Okta group {group_id} has no profile.name")
    return group.profile.name


def decode_group_members(body: bytes | str) -> list[str]:
    """The Okta user ids on a page of ``GET /api/v1/groups/{groupId}/users``."""
    members: list[_GroupMember] = _decoded(_GROUP_MEMBERS_DECODER, body, "group members")
    ids: list[str] = []
    for member in members:
        if not member.id:
            raise SourceError("a group member has no id")
        ids.append(member.id)
    return ids


def _decoded(decoder: msgspec.json.Decoder[Any], body: bytes | str, what: str) -> Any:
    """``decoder.decode(body)``; SourceError says what does not parse, as :func:`decode_app_users` does."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as error:
        raise SourceError(f"the answer does not parse as {what} ({error})") from None
    except msgspec.DecodeError as error:
        raise SourceError(f"the answer is not JSON ({error})") from None
    except RecursionError:
        raise SourceError(f"the answer is {NESTING_MESSAGE}") from None


def group_named(name: str, assigned: Mapping[str, str], app_id: str) -> str:
    """The id of the assigned group ``groups.push`` names: its exact name, else the one equal without regard to case.

    ``assigned`` maps each group assigned to the app to its name. Okta keeps
    its own groups' names unique, but not those of imported (AD, LDAP)
    groups, and ``Engineering`` and ``engineering`` may both exist: a name
    that does not pick one group is refused rather than guessed.
    """
    for how, matches in (
        ("", sorted(group_id for group_id, group_name in assigned.items() if group_name == name)),
        (
            " without regard to case",
            sorted(group_id for group_id, group_name in assigned.items() if group_name.casefold() == name.casefold()),
        ),
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            listed = ", ".join(f"{group_id} ({assigned[group_id]!r})" for group_id in matches)
            raise SourceError(
                f"groups.push names Okta group {name!r}, but {len(matches)} groups assigned to app {app_id} "
                f"have that name{how}: {listed}; list the one meant by its id (00g…)"
            )
    raise SourceError(
        f"groups.push names Okta group {name!r}, but no group assigned to app {app_id} has that name: "
        "assign the group to the app, or list it by its id (00g…)"
    )


async def _gather_bounded(read: Callable[[str], Awaitable[_T]], keys: Sequence[str], at_once: int) -> list[_T]:
    """``read`` of each key, at most ``at_once`` at a time, in the keys' order; the first failure cancels the rest."""
    gate = asyncio.Semaphore(at_once)

    async def gated(key: str) -> _T:
        async with gate:
            return await read(key)

    return await all_or_cancel(*(asyncio.ensure_future(gated(key)) for key in keys))


def _rate_limit_family(url: str) -> str:
    """``/api/v1/apps``, ``/api/v1/groups``…: the endpoint family whose window Okta counts a request in."""
    parts = urlsplit(url).path.split("/")
    return "/".join(parts[:4]) if len(parts) >= 4 and parts[1:3] == ["api", "v1"] else "/api/v1"


def next_cursor(headers: Mapping[str, Any]) -> str | None:
    """The ``after`` value of the ``rel="next"`` link, or None on the last page.

    Accepts any mapping (header names matched case-insensitively) whose
    ``Link`` values are strings, possibly several links joined by commas, or
    lists of them. okta 3.4.6 hands headers over as a plain dict in which a
    repeated header keeps its last value; Okta sends ``rel="self"`` first and
    ``rel="next"`` last, so the next link survives.
    """
    for url in _links_with_rel(headers, "next"):
        values = parse_qs(urlsplit(url).query).get("after")
        if not values or not values[0]:
            raise SourceError(f"Okta's next-page link has no after cursor: {url}")
        return values[0]
    return None


def checked_org_url(org_url: str) -> tuple[str, bool]:
    """The org URL without trailing slash, and whether it is plain http to a loopback host.

    Plain http is refused for any other host: the API token or client
    assertion would cross the network in clear.
    """
    url = org_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError(f"okta org URL {org_url!r} is not an http(s) URL such as https://example.okta.com")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise SourceError(f"okta org URL {org_url!r} must be the bare org URL, such as https://example.okta.com")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise SourceError(
            f"refusing plain http:// for Okta at {url}: credentials would travel unencrypted; "
            "use https:// (http is allowed only for a loopback host such as a local emulator)"
        )
    return url, parts.scheme == "http"


def _json_object_of(body: bytes | str) -> Mapping[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as error:
        raise SourceError(f"Okta answered JSON it cannot parse: {error}") from None
    if not isinstance(value, dict):
        raise SourceError(f"Okta answered a JSON {type(value).__name__} where an object was expected")
    return value


def _int_header(headers: Mapping[str, Any], name: str) -> int | None:
    value = header_value(headers, name)
    return int(value) if value is not None and value.strip().isdigit() else None


def _links_with_rel(headers: Mapping[str, Any], rel: str) -> Iterator[str]:
    for name, value in headers.items():
        if str(name).lower() != "link":
            continue
        for link_header in [value] if isinstance(value, str) else list(value):
            for link in _LINK.finditer(str(link_header)):
                rel_match = _REL.search(link.group("params"))
                rels = (rel_match.group("quoted") or rel_match.group("bare") or "").split() if rel_match else []
                if rel in (r.lower() for r in rels):
                    yield link.group("url").strip()


async def _let_run(task: asyncio.Future[Any]) -> None:
    """Give a just-created request task the loop until it has sent its request (or finished)."""
    for _ in range(3):
        if task.done():
            return
        await asyncio.sleep(0)


def _exception_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _okta_error_detail(error: Exception) -> str:
    """``HTTP 401 E0000011: Invalid token provided``, or the status and the start of a non-Okta body."""
    status = getattr(error, "status", None)
    code = getattr(error, "error_code", None)
    if code:
        summary = " ".join(str(getattr(error, "error_summary", "")).split())
        return f"HTTP {status} {code}: {summary}".rstrip(": ")
    text = " ".join(str(getattr(error, "message", error)).split())
    prefix = f"HTTP {status} "
    text = text.removeprefix(prefix) if status is not None else text
    body = text[:_MAX_DETAIL] + ("…" if len(text) > _MAX_DETAIL else "")
    return f"HTTP {status}: {body}" if status is not None else body


# ---------------------------------------------------------------------------
# SDK configuration
# ---------------------------------------------------------------------------


def _credentials_config(
    auth: str,
    token: Secret | None,
    client_id: str | None,
    private_key: Secret | None,
    scopes: Sequence[str],
    key_id: str | None,
) -> dict[str, Any]:
    """The SDK config keys for the credentials, checked here so that problems read clearly."""
    if auth not in _AUTH_MODES:
        raise SourceError(f"okta auth must be one of {sorted(_AUTH_MODES)}, not {auth!r}")
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
def _https_check_disabled(disable: bool) -> Iterator[None]:
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


class _CredentialMask(logging.Filter):
    """Masks Authorization values and client assertions in the SDK's log records."""

    _PATTERN = re.compile(r"""((?:SSWS|Bearer|DPoP)\s*)[^\s'",}]+|('client_assertion':\s*')[^']+""")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self._PATTERN.sub(lambda m: (m.group(1) or m.group(2)) + "********", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


@contextmanager
def _sdk_handlers_removed() -> Iterator[None]:
    """Undo any stream handler the SDK adds to its logger, and mask credentials there."""
    logger = logging.getLogger(SDK_LOGGER_NAME)
    before = list(logger.handlers)
    try:
        yield
    finally:
        for handler in logger.handlers[:]:
            if handler not in before:
                logger.removeHandler(handler)
        if not any(isinstance(f, _CredentialMask) for f in logger.filters):
            logger.addFilter(_CredentialMask())
