"""Reads the platform's users. A :class:`ScimReader` can only issue GET: a dry-run, which never builds a
writer, cannot change the platform.

scim2-models forbids attributes and extensions it does not know, and real platforms carry custom
extensions, so payloads are validated leniently: models of :mod:`reconciler.scim.discovery` check the
ServiceProviderConfig flags, scim2-models an error's details; listing pages and users are read by
:mod:`reconciler.scim.page`, and each user's JSON object is kept as ``PlatformUser.resource`` (in a
listing, trimmed to the attributes the mapping compares).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import pydantic

from reconciler.errors import TargetError
from reconciler.hooks import NO_PROGRESS, ProgressListener
from reconciler.models.records import PlatformUser
from reconciler.net.transport import JsonError, decode_json
from reconciler.plan.projection import Projection
from reconciler.scim.discovery import (
    DEFAULT_CAPABILITIES,
    ScimCapabilities,
    UserSchema,
    capabilities_from,
    schema_attributes,
    user_extensions,
)
from reconciler.scim.failures import refuse_another_kind
from reconciler.scim.http import ScimConnection, json_object, user_from_answer
from reconciler.scim.listing import LISTING_ATTEMPTS, TotalChanged, UserListing, check_page_count
from reconciler.scim.page import PageError, page_decoder

log = logging.getLogger(__name__)


def filter_string(value: str) -> str:
    """``value`` as a quoted SCIM filter string (RFC 7644 §3.4.2.2 uses JSON string syntax)."""
    return json.dumps(value, ensure_ascii=False)


class ScimReader:
    """Reads the platform's users over the run's connection. It can only issue GET: its one request
    method takes no method.

    ``request_counts`` counts every HTTP request issued through the connection (this reader's and any
    writer's), by method, retries included. Closing the reader closes the connection.
    """

    def __init__(
        self,
        connection: ScimConnection,
        page_size: int = 100,
        *,
        read_concurrency: int = 4,
        progress: ProgressListener = NO_PROGRESS,
        keep_attributes: frozenset[str] | None = None,
        projection: Projection | None = None,
    ) -> None:
        """``keep_attributes``: the top-level attributes worth keeping of each listed user (None: all);
        ``projection``: the mapping's, so that each listed user carries the values the plan compares."""
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        if read_concurrency < 1:
            raise ValueError(f"read_concurrency must be at least 1, got {read_concurrency}")
        self.connection = connection
        """The run's connection, which the run hands to its writer and its ScimGroups too."""
        self.page_size = page_size
        self.read_concurrency = read_concurrency
        self._progress = progress
        self._keep = keep_attributes
        self._projection = projection
        self._capabilities: ScimCapabilities | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection (its HTTP client, unless that was handed in)."""
        await self.connection.aclose()

    @property
    def base_url(self) -> str:
        return self.connection.base_url

    @property
    def request_counts(self) -> Counter[str]:
        return self.connection.request_counts

    async def _get(self, path: str, params: Mapping[str, str | int] | None = None) -> dict[str, Any]:
        response = await self.connection.send("GET", path, params=params)
        return json_object("GET", path, response)

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
            log.warning("no usable ServiceProviderConfig (%s); assuming %s", error, DEFAULT_CAPABILITIES.describe())
            capabilities = DEFAULT_CAPABILITIES
        except pydantic.ValidationError as error:
            log.warning(
                "unreadable ServiceProviderConfig (%s); assuming %s",
                validation_summary(error),
                DEFAULT_CAPABILITIES.describe(),
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
            response = await self.connection.send("GET", path)
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
        return user_from_answer("GET", path, await self._get(path))

    async def find_users(self, filter_expression: str) -> list[PlatformUser]:
        """The users a filter selects, every page of them (no fallback: TargetError when it is refused)."""
        return await self._list_users(filter_expression)

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
                found = same_user_name(await self._list_users(f"userName eq {filter_string(user_name)}"), user_name)
            except TargetError as error:
                if error.status not in (HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_IMPLEMENTED):
                    raise
                log.warning("the userName filter was refused (%s); scanning the listing", error)
            else:
                if found:
                    return found
        return same_user_name(await self._list_users(), user_name)

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
            except TotalChanged as change:
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
        really puts in a page: fewer than asked (a cap below what it announces
        as ``filter.maxResults``) or more (``count`` ignored); it may omit
        itemsPerPage. The remaining pages follow from those, each asking for
        just the users it covers, and a page answering more than it asked is
        cut to that (the rest is another page's), so no user is read twice. Any
        range a shorter page left uncovered is then read one page after another,
        from the first user missing, so a server that pages irregularly is still
        read whole. A partial listing must never drive a plan: an empty page
        inside ``totalResults`` raises, and so does a page holding only users
        already listed (a server ignoring startIndex). A page whose
        ``totalResults`` differs from the first page's raises TotalChanged.
        """
        capabilities = await self.capabilities()
        listing = UserListing(min(self.page_size, capabilities.max_results or self.page_size), filter_expression)
        first = await self._listing_page(listing, 1, listing.page_size, whole=True)
        listing.step = max(1, len(first))
        check_page_count(listing.total, len(first), listing.step)
        starts = range(1 + len(first), listing.total + 1, listing.step)
        await self._read_pages_at(listing, [(start, listing.step) for start in starts])
        while (gap := listing.first_gap()) is not None:
            await self._read_pages_at(listing, [gap])
        return listing.users()

    async def _read_pages_at(self, listing: UserListing, pages: Sequence[tuple[int, int]]) -> None:
        """Read ``pages`` (startIndex, count) with ``read_concurrency`` workers; the first failure stops them all."""
        pending = iter(pages)

        async def worker() -> None:
            for start_index, count in pending:
                await self._listing_page(listing, start_index, count)

        workers = [asyncio.ensure_future(worker()) for _ in range(min(self.read_concurrency, len(pages)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise

    async def _listing_page(
        self, listing: UserListing, start_index: int, count: int, *, whole: bool = False
    ) -> list[PlatformUser]:
        """One page of the listing; beyond ``count`` users only when ``whole`` (the first page sets the step)."""
        params: dict[str, str | int] = {"startIndex": start_index, "count": count}
        if listing.filter_expression:
            params["filter"] = listing.filter_expression
        total, page_users = await self._read_page(params)
        kept = page_users if whole else page_users[:count]
        listing.add(start_index, total, kept)
        self._progress.scim_page(len(kept), listing.total)
        return kept

    async def _read_page(self, params: Mapping[str, str | int]) -> tuple[int, list[PlatformUser]]:
        """``(totalResults, users)`` of one ListResponse page."""
        response = await self.connection.send("GET", "/Users", params=params)
        refuse_another_kind(self.base_url, "/Users", response, self.connection.token, must_list=False)
        decoder = page_decoder(self._keep)
        try:
            total, resources = decoder.envelope(response.content)
            users: list[PlatformUser] = []
            for start in range(0, len(resources), DECODE_SLICE):
                if start:
                    await asyncio.sleep(0)  # let an Okta page that arrived meanwhile go on its way
                users += decoder.users(resources[start : start + DECODE_SLICE], self._projection)
            return total, users
        except PageError as error:
            refuse_another_kind(self.base_url, "/Users", response, self.connection.token, must_list=True)
            raise TargetError(f"SCIM GET /Users answered {error}", response.status_code) from None
        except ValueError as error:
            raise TargetError(f"SCIM GET /Users answered an unusable User: {error}") from None


DECODE_SLICE = 200
"""Users read from a page between two turns of the event loop. A 1,000-user page takes milliseconds to
read; in slices, the Okta listing running beside it (whose pages chain, one round trip after another)
sends its next request as soon as its answer is in, rather than after the whole page."""


def same_user_name(users: list[PlatformUser], user_name: str) -> list[PlatformUser]:
    """userName is ``caseExact: false`` (RFC 7643 §4.1.1)."""
    wanted = user_name.casefold()
    return [user for user in users if user.user_name.casefold() == wanted]


def validation_summary(error: pydantic.ValidationError) -> str:
    """One line per problem, without pydantic's links."""
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'payload'}: {problem['msg']}" for problem in error.errors()
    )
