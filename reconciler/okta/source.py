"""Reads the desired state: the Okta app's assignments and pushed groups, through the official ``okta`` SDK.

:class:`OktaSource` pages ``GET /api/v1/apps/{appId}/users?expand=user&limit=500``
(:class:`~reconciler.okta.connection.OktaConnection` follows the ``after`` value of the
``Link: rel="next"`` header), and turns every AppUser into an :class:`OktaAssignment` as soon as
the page arrives (:mod:`reconciler.okta.page`). Any failure, on any page, raises one
:class:`SourceError` that says what failed: a partial listing is never returned, because a partial
desired state would drive deactivations. :meth:`OktaSource.list_pushed_groups` reads the groups
Group Push follows (:mod:`reconciler.okta.groups`) through the same connection: the same pacing,
retries, answer cap, error messages and credential masking. The SDK is set up, and its quirks worked
around, in :mod:`reconciler.okta.sdk`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote, urlencode

from reconciler.errors import SourceError
from reconciler.hooks import NO_PROGRESS, ProgressListener
from reconciler.models.groups import OktaGroup
from reconciler.models.records import OktaAssignment, ProfileFields
from reconciler.net.limits import DEFAULT_MAX_RESPONSE_BYTES
from reconciler.net.pacing import BudgetFactory
from reconciler.okta.answers import checked_org_url, exception_text, int_header
from reconciler.okta.connection import Listing, NotFound, OktaConnection, mask_secrets
from reconciler.okta.groups import PushedGroupsReader
from reconciler.okta.page import KEEP_ALL, decode_app_users
from reconciler.okta.sdk import AuthMode, credentials_config, request_executor
from reconciler.okta.wording import FailureWording
from reconciler.plan.projection import Projection
from reconciler.secret import Secret

DEFAULT_SCOPES = ("okta.apps.read", "okta.users.read")
"""What listing an app's users with ``expand=user`` needs from a service app."""
MAX_PAGE_SIZE = 500
"""Okta's ceiling for ``limit`` on ``/api/v1/apps/{appId}/users``."""
MAX_ASSIGNMENTS = 10_000_000
"""More assignments than any app has: a listing that pages past this many is refused as runaway."""


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
    """The Okta side of a run: lists one app's assignments and the groups it pushes.

    Use it as an async context manager, so that listings share one HTTP
    session (each listing also works outside, with a session of its own)::

        async with OktaSource(org_url=..., app_id=..., auth="api_token", token=Secret(...)) as source:
            assignments = await source.list_assignments()

    Pacing is the connection's own (:class:`~reconciler.net.pacing.RateLimitBudget`):
    it spends at most ``rate_limit_share`` of each rate-limit window and waits
    out a 429 until the window resets.
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
        projection: Projection | None = None,
        progress: ProgressListener = NO_PROGRESS,
        on_page: Callable[[list[OktaAssignment]], None] | None = None,
        ca_bundle: Path | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        budgets: BudgetFactory | None = None,
    ) -> None:
        """``projection``: the mapping's, so that each assignment carries the values the plan compares
        (``profile_fields`` must include what it reads); ``ca_bundle``: a PEM file of the CAs to trust
        instead of the system's; ``max_response_bytes``: the largest answer read (a larger one fails the
        listing unread); ``budgets``: the pacing of each rate-limit family, when not this source's own
        (see :class:`OktaConnection`)."""
        self.org_url, loopback_http = checked_org_url(org_url)
        _check_settings(app_id, timeout_s, page_size)
        self.app_id = app_id
        self._app_url = f"{self.org_url}/api/v1/apps/{quote(app_id, safe='')}"
        self.auth = auth
        self.timeout_s = timeout_s
        self.page_size = page_size
        wording = FailureWording(self.org_url, app_id, auth, client_id, tuple(scopes), timeout_s)
        secrets = tuple(secret for secret in (token, private_key) if secret is not None)
        credentials = credentials_config(auth, token, client_id, private_key, tuple(scopes), key_id)
        try:
            executor = request_executor(self.org_url, credentials, timeout_s, loopback_http)
        except ValueError as exc:
            message = f"the okta SDK refused its configuration: {exception_text(exc)}"
            raise SourceError(mask_secrets(message, secrets)) from None
        self.connection = OktaConnection(
            executor,
            wording,
            secrets,
            rate_limit_share=rate_limit_share,
            ca_bundle=ca_bundle,
            max_response_bytes=max_response_bytes,
            budgets=budgets,
        )
        self._profile_fields = profile_fields
        self._projection = projection
        self._progress = progress
        self._on_page = on_page

    @property
    def rate_limited(self) -> int:
        """429 answers met (each waited out)."""
        return self.connection.rate_limited

    @property
    def rate_limit_waited_s(self) -> float:
        """Seconds spent waiting for Okta's rate-limit windows to reset."""
        return self.connection.rate_limit_waited_s

    async def __aenter__(self) -> Self:
        self.connection.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent)."""
        await self.connection.close()

    async def list_assignments(self) -> list[OktaAssignment]:
        """Every user assigned to the app, directly or through a group.

        Raises :class:`SourceError` if any page fails: never a partial list.
        Outside ``async with``, a session is opened for this listing only.
        """
        if not self.connection.is_open:
            async with self:
                return await self.list_assignments()
        query = urlencode({"limit": self.page_size, "expand": "user"})
        listing = Listing(
            f"{self._app_url}/users?{query}", f"app {self.app_id}", self.page_size, MAX_ASSIGNMENTS, "assignments"
        )
        return await self.connection.read_listing(listing, self._convert_page, self._assignments_read)

    async def list_pushed_groups(self, push: Sequence[str], push_assigned: bool) -> list[OktaGroup]:
        """The groups Group Push follows, with their members (see :meth:`PushedGroupsReader.read`).

        Outside ``async with``, a session is opened for this listing only.
        """
        if not self.connection.is_open:
            async with self:
                return await self.list_pushed_groups(push, push_assigned)
        return await PushedGroupsReader(self.connection, self.app_id).read(push, push_assigned)

    async def get_assignment(self, okta_user_id: str) -> OktaAssignment | None:
        """One user's assignment as Okta has it now (``GET /api/v1/apps/{appId}/users/{userId}?expand=user``);
        None when the user is not assigned to the app (any more). Inside ``async with`` only."""
        url = f"{self._app_url}/users/{quote(okta_user_id, safe='')}?{urlencode({'expand': 'user'})}"
        where = f"user {okta_user_id} of app {self.app_id}"
        try:
            body, _ = await self.connection.fetch(url, where)
        except NotFound as missing:
            if "AppInstance" in missing.detail:  # the app itself is gone: no user's absence means anything
                raise
            return None
        record = self.connection.expect_record(url, body)
        if record.get("id") != okta_user_id:
            raise self.connection.error(f"Okta answered {where} with app user {record.get('id')!r}")
        text = body if isinstance(body, str) else body.decode()
        return self._convert_page(1, f"[{text}]")[0]

    async def assigned_group_ids(self) -> frozenset[str]:
        """The groups assigned to the app: their members are assigned through them. Inside ``async with`` only."""
        return frozenset(await PushedGroupsReader(self.connection, self.app_id).assigned_groups())

    async def group_member_ids(self, group_id: str) -> frozenset[str]:
        """A group's members' Okta user ids. Inside ``async with`` only."""
        return await PushedGroupsReader(self.connection, self.app_id).member_ids(group_id)

    async def describe_app(self) -> OktaAppSummary:
        """The app's own record and its first assignment: what ``reconcile check`` shows of the Okta side.

        Two requests, the very ones a run depends on (the app, and its users
        with ``expand=user``), so that a credential lacking a scope fails here
        as it would in a run.
        """
        if not self.connection.is_open:
            async with self:
                return await self.describe_app()
        body, _ = await self.connection.fetch(self._app_url, f"the record of app {self.app_id}")
        app = self.connection.expect_record(self._app_url, body)
        first_url = f"{self._app_url}/users?{urlencode({'limit': 1, 'expand': 'user'})}"
        first_page, headers = await self.connection.fetch(first_url, self._where(1))
        self.connection.expect_listing(first_url, first_page)
        return OktaAppSummary(
            label=str(app.get("label") or ""),
            name=str(app.get("name") or ""),
            status=str(app.get("status") or ""),
            sign_on_mode=str(app.get("signOnMode") or ""),
            features=tuple(str(f) for f in app.get("features") or () if isinstance(f, str)),
            has_assignments=bool(self._convert_page(1, first_page)),
            rate_limit=int_header(headers, "X-Rate-Limit-Limit"),
        )

    def _assignments_read(self, found: list[OktaAssignment]) -> None:
        self._progress.okta_page(len(found))
        if self._on_page is not None:
            self._on_page(found)

    def _convert_page(self, page: int, body: bytes | str) -> list[OktaAssignment]:
        try:
            return decode_app_users(body, self._profile_fields, self._projection)
        except SourceError as exc:
            raise self.connection.error(f"Okta listing failed on page {page} of app {self.app_id}: {exc}") from None

    def _where(self, page: int) -> str:
        return f"page {page} of app {self.app_id}"


def _check_settings(app_id: str, timeout_s: float, page_size: int) -> None:
    if not app_id:
        raise SourceError("okta app id is empty")
    if timeout_s <= 0:
        raise SourceError(f"okta timeout must be more than 0 s, not {timeout_s}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise SourceError(f"okta page size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
