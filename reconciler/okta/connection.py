"""One Okta org over HTTP: every GET paced, retried, capped and worded the same way; paged listings
followed by cursor.

Every request of a run, for users or groups, goes through :meth:`OktaConnection.fetch`: the same
pacing (one :class:`~reconciler.net.pacing.RateLimitBudget` per rate-limit family), retries of what
may pass, answer cap, error messages and credential masking. The SDK's own retry stays off: it needs
``Date`` and ``X-Rate-Limit-Reset`` on the answer and fails without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import tenacity

from reconciler.errors import SourceError
from reconciler.hooks import observe_rate_limit
from reconciler.net.bodies import describe_body
from reconciler.net.pacing import (
    BudgetFactory,
    PacingBudget,
    RateLimitBudget,
    header_value,
    parse_retry_after,
    rate_limit_state,
)
from reconciler.net.retries import TRANSIENT_RETRIES, RetryPolicy, is_transient_status
from reconciler.net.transport import ResponseTooLarge, is_json_media_type
from reconciler.okta.answers import (
    APPS_FAMILY,
    is_transient_transport_error,
    json_object_of,
    next_cursor,
    okta_error_detail,
    rate_limit_family,
)
from reconciler.okta.sdk import capped_session, okta_api_error
from reconciler.okta.wording import FailureWording
from reconciler.secret import Secret, redact

if TYPE_CHECKING:
    from okta.request_executor import RequestExecutor

log = logging.getLogger(__name__)

RATE_LIMIT_ATTEMPTS = 3
"""Requests for one page at most when Okta answers 429 (each after waiting for the window to reset)."""
RETRIES: RetryPolicy = TRANSIENT_RETRIES
"""How hard a page is asked for again when Okta fails in a way that may pass: the policy SCIM's side
shares (:mod:`reconciler.net.retries`: a 5xx, a timeout, a refused, dropped or reset connection, an answer
broken off part-way). Read at each request, so that a test can make it fast."""
MAX_EMPTY_PAGES_IN_A_ROW = 10
"""Empty pages that each point to yet another page: a listing that does not end."""

Item = TypeVar("Item")


class TransientSourceError(SourceError):
    """A request that failed in a way that may pass; :meth:`OktaConnection.fetch` retries it."""


class NotFound(SourceError):
    """A 404, with its message for the endpoint; a caller that knows what is missing says it better."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail
        """``HTTP 404 E0000007: Not found: …``"""


class Rejected(SourceError):
    """A 400: Okta refused the request as asked (a bad filter, an expired or unknown cursor)."""


class Forbidden(SourceError):
    """A 403: the credential may not read this endpoint (its message names the scope it needs)."""


@dataclass(frozen=True, slots=True)
class Listing:
    """One paged Okta listing, as :meth:`OktaConnection.page_bodies` follows it."""

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


class OktaConnection:
    """The HTTP side of an Okta source: its SDK executor and session, budgets, retries and messages."""

    def __init__(
        self,
        executor: RequestExecutor,
        wording: FailureWording,
        secrets: tuple[Secret, ...],
        *,
        rate_limit_share: float,
        ca_bundle: Path | None,
        max_response_bytes: int,
        budgets: BudgetFactory | None = None,
    ) -> None:
        """``budgets``: each rate-limit family's budget (default: this connection's own, spending
        ``rate_limit_share`` of each window; a fleet's share one org's windows between its replicas)."""
        self.executor = executor
        self.wording = wording
        self.org_url = wording.org_url
        self._secrets = secrets
        self._new_budget: BudgetFactory = budgets or (lambda _family: RateLimitBudget(rate_limit_share))
        self._budgets: dict[str, PacingBudget] = {APPS_FAMILY: self._new_budget(APPS_FAMILY)}
        """One per rate-limit family (Okta counts ``/api/v1/apps``, ``/api/v1/groups``… in windows of their own)."""
        self._ca_bundle = ca_bundle
        self._max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None
        self.rate_limited = 0
        """429 answers met (each waited out)."""
        self._answered_as_okta = False
        """Whether the org has sent a JSON answer: after one, a web page is a proxy's, not the wrong org URL."""

    @property
    def rate_limit_waited_s(self) -> float:
        """Seconds spent waiting for Okta's rate-limit windows to reset."""
        return sum(budget.waited_s for budget in self._budgets.values())

    @property
    def is_open(self) -> bool:
        return self._session is not None

    def open(self) -> None:
        """One session for the SDK's requests (OAuth token requests included): TLS verified, answers capped."""
        if self._session is None:
            self._session = capped_session(self._ca_bundle, self._max_response_bytes)
            self.executor.set_session(self._session)

    async def close(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- paged listings ------------------------------------------------------

    async def read_listing(
        self,
        listing: Listing,
        decode: Callable[[int, bytes | str], list[Item]],
        on_page: Callable[[list[Item]], None] | None = None,
    ) -> list[Item]:
        """Every item of a paged listing, each page decoded as it arrives; SourceError on any failure."""
        items: list[Item] = []
        empty_in_a_row = 0
        async with contextlib.aclosing(self.page_bodies(listing)) as pages:
            async for page, body in pages:
                self.expect_listing(listing.url, body)
                found = decode(page, body)
                empty_in_a_row = 0 if found else empty_in_a_row + 1
                if empty_in_a_row > MAX_EMPTY_PAGES_IN_A_ROW:
                    raise self.error(
                        f"Okta listing of {listing.name} does not end: {empty_in_a_row} empty pages in a row, "
                        f"each pointing to another (page {page})"
                    )
                items.extend(found)
                if on_page is not None:
                    await asyncio.sleep(0)  # what arrived meanwhile (a platform page) first
                    on_page(found)
        return items

    async def page_bodies(self, listing: Listing) -> AsyncIterator[tuple[int, bytes | str]]:
        """Each page's body in order, the next page already requested while the caller decodes this one.

        Okta pages are chained by cursor, so only one can be in flight; the
        decoding of a page overlaps the round trip of the next.
        """
        seen_cursors: set[str] = set()
        max_pages = -(-listing.max_items // listing.page_size)
        page = 1
        pending = asyncio.ensure_future(self.fetch(listing.page_url(None), listing.where(page)))
        try:
            while True:
                body, headers = await pending
                cursor = next_cursor(headers)
                if cursor is None:
                    yield page, body
                    return
                self._check_next_page(listing, page, cursor, seen_cursors, max_pages)
                pending = asyncio.ensure_future(self.fetch(listing.page_url(cursor), listing.where(page + 1)))
                await _let_run(pending)
                yield page, body
                page += 1
        finally:
            if not pending.done():
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    def _check_next_page(self, listing: Listing, page: int, cursor: str, seen: set[str], max_pages: int) -> None:
        """Refuse a listing that loops back to a cursor it gave, or pages past any real size."""
        if cursor in seen:
            raise self.error(f"Okta listing of {listing.name} loops: page {page} points back to cursor {cursor}")
        seen.add(cursor)
        if page >= max_pages:
            raise self.error(
                f"Okta listing of {listing.name} keeps paging past {page:,} pages of {listing.page_size}: "
                f"more than {listing.max_items:,} {listing.items}, so it is refused as runaway"
            )

    # -- one request ---------------------------------------------------------

    async def fetch(self, url: str, where: str) -> tuple[bytes | str, Mapping[str, Any]]:
        """One GET's raw body and headers, transient failures retried with backoff; SourceError on any failure.

        A GET can be sent again harmlessly. What may pass, and how often it is tried, is the policy both
        sides share (:data:`RETRIES`); an unknown host is final at once.
        """
        policy = RETRIES
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=policy.backoff(),
            retry=tenacity.retry_if_exception_type(TransientSourceError),
            before_sleep=functools.partial(_log_retry, attempts=policy.attempts),
            reraise=True,
        )
        try:
            return await retrying(self._fetch_once, url, where)
        except TransientSourceError as failure:
            raise SourceError(f"{failure} (gave up after {policy.attempts} attempts)") from None

    async def _fetch_once(self, url: str, where: str) -> tuple[bytes | str, Mapping[str, Any]]:
        """One GET's raw body and headers, waiting out the rate limit; SourceError on any failure."""
        status, headers, body = await self._get_within_rate_limit(url, where)
        if not 200 <= status < 300:
            raise self._refusal(url, where, status, headers, body)
        content_type = header_value(headers, "Content-Type")
        if is_json_media_type(content_type):
            self._answered_as_okta = True
            return body, headers
        if not self._answered_as_okta and not _is_json(body):
            raise self.error(self.wording.not_an_org(url, status, describe_body(content_type, body), where))
        raise self.error(
            f"Okta listing failed on {where}: the answer is not JSON (HTTP {status}, Content-Type "
            f"{content_type!r}): a proxy or gateway between here and Okta?"
        )

    def expect_listing(self, url: str, body: bytes | str) -> None:
        """A listing's page is a JSON array on every Okta endpoint read here; anything else is another server."""
        if body.lstrip()[:1] in (b"[", "["):
            return
        try:
            okta_shaped = "errorCode" in json_object_of(body)  # Okta's error body on a 200: said as it is
        except SourceError:
            okta_shaped = False
        if not okta_shaped:
            raise self.error(self.wording.not_an_org(url, 200, describe_body(None, body)))

    def expect_record(self, url: str, body: bytes | str) -> Mapping[str, Any]:
        """A record (an app, a group) is a JSON object with an ``id``; anything else is another server."""
        try:
            record = json_object_of(body)
        except SourceError:
            record = {}
        if not isinstance(record.get("id"), str):
            raise self.error(self.wording.not_an_org(url, 200, describe_body(None, body)))
        return record

    async def _get_within_rate_limit(self, url: str, where: str) -> tuple[int, Mapping[str, Any], str]:
        """The answer, a 429 waited out until its window resets (RATE_LIMIT_ATTEMPTS requests at most)."""
        family = rate_limit_family(url)
        budget = self._budget_for(family)
        for attempt in range(1, RATE_LIMIT_ATTEMPTS + 1):
            await budget.acquire()
            try:
                status, headers, body = await self._send_get(url, where)
            except BaseException:
                budget.unanswered()
                raise
            budget.observe(headers)
            self._report_window(family, headers)
            if status != HTTPStatus.TOO_MANY_REQUESTS or attempt == RATE_LIMIT_ATTEMPTS:
                break
            self.rate_limited += 1
            retry_after = parse_retry_after(header_value(headers, "Retry-After"))
            waited = await budget.after_429(headers, retry_after)
            log.warning("Okta answered 429 on %s; waited %.1f s for its rate limit to reset", where, waited)
        return status, headers, body

    def _refusal(self, url: str, where: str, status: int, headers: Mapping[str, Any], body: str) -> SourceError:
        """The error for a failed answer: NotFound for a 404, transient for a 5xx that may pass."""
        masked = self.masked(body)  # before any cut: no prefix of a credential Okta echoed may survive
        error = okta_api_error(self.org_url, status, headers, masked)
        message = self.wording.refusal(error, where, url)
        if status == HTTPStatus.NOT_FOUND:
            return NotFound(self.masked(message), self.masked(okta_error_detail(error)))
        if status == HTTPStatus.FORBIDDEN:
            return Forbidden(self.masked(message))
        if status == HTTPStatus.BAD_REQUEST:
            return Rejected(self.masked(message))
        return self._transient(message) if is_transient_status(status) else self.error(message)

    def _report_window(self, family: str, headers: Mapping[str, Any]) -> None:
        """What the answer said of the org's window, for the service's metrics (:func:`observe_rate_limit`)."""
        state = rate_limit_state(headers)
        if state is not None:
            observe_rate_limit(self.org_url, family, state.limit, state.remaining)

    def _budget_for(self, family: str) -> PacingBudget:
        """The budget of a rate-limit family: the groups' answers say nothing of the apps' window."""
        budget = self._budgets.get(family)
        if budget is None:
            budget = self._budgets[family] = self._new_budget(family)
        return budget

    async def _send_get(self, url: str, where: str) -> tuple[int, Mapping[str, Any], str]:
        """Send through the SDK's request executor (its auth, OAuth tokens, session) without its model parsing."""
        executor = self.executor
        try:
            request, error = await executor.create_request("GET", url, None, {"Accept": "application/json"})
            if error is not None:
                raise self.error(self.wording.refusal(error, where))
            _, response, body, error = await executor.fire_request_helper(request, 0, time.time())
        except SourceError:
            raise
        except ResponseTooLarge as exc:
            raise self.error(f"Okta's answer to {where}: {exc}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            message = self.wording.transport(exc, where)
            raise (self._transient(message) if is_transient_transport_error(exc) else self.error(message)) from exc
        except Exception as exc:  # the SDK fails in its own code on some answers
            raise self.error(self.wording.sdk(exc, where)) from exc
        if response is None or error is not None:
            raise self.error(self.wording.sdk(error or RuntimeError("no answer"), where))
        return response.status, response.headers, body or ""

    # -- errors --------------------------------------------------------------

    def error(self, message: str) -> SourceError:
        """A SourceError whose message cannot carry a credential, even if Okta echoed one."""
        return SourceError(self.masked(message))

    def _transient(self, message: str) -> TransientSourceError:
        """A failure that may pass (:meth:`fetch` retries it), masked like :meth:`error`."""
        return TransientSourceError(self.masked(message))

    def masked(self, text: str) -> str:
        return mask_secrets(text, self._secrets)


def mask_secrets(text: str, secrets: tuple[Secret, ...]) -> str:
    """``text`` with the value of each secret (and any credential-looking header value) replaced by ``********``."""
    return redact(text, [secret.reveal() for secret in secrets])


def _is_json(body: bytes | str) -> bool:
    """Whether a body parses as JSON: an Okta answer under the wrong Content-Type, not another server's page."""
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


def _log_retry(state: tenacity.RetryCallState, attempts: int) -> None:
    failure = state.outcome.exception() if state.outcome else None
    wait_s = state.next_action.sleep if state.next_action else 0.0
    log.warning("%s; retrying in %.2f s (attempt %d of %d)", failure, wait_s, state.attempt_number, attempts)


async def _let_run(task: asyncio.Future[Any]) -> None:
    """Give a just-created request task the loop until it has sent its request (or finished)."""
    for _ in range(3):
        if task.done():
            return
        await asyncio.sleep(0)
