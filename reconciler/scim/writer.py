"""Writes repairs to the platform: the only way to change it. A dry-run never builds a writer.

Creates are POSTs (a 409 means the user is already there: the caller finds and links it); updates
are PATCHes, or a PUT of the patched resource where the server does not support PATCH; both carry
``If-Match`` where the server has ETags, and a 412 reads the user again and writes once more.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from reconciler.errors import TargetError
from reconciler.models.records import PlatformUser
from reconciler.scim.http import ScimConnection, json_object, user_from_answer
from reconciler.scim.patch import apply_operations, check_operations, patch_message
from reconciler.scim.reader import ScimReader

log = logging.getLogger(__name__)


class ScimWriter:
    """Writes to the platform over the run's connection; reads what it needs (capabilities, a user again)
    through the run's reader. It shares the connection's client, retries and ``request_counts``.
    """

    def __init__(
        self,
        connection: ScimConnection,
        reader: ScimReader,
        *,
        on_throttled: Callable[[float | None], None] | None = None,
    ) -> None:
        """``on_throttled`` hears of each 429 the platform answers (with its Retry-After, if any)."""
        self._reader = reader
        self._connection = connection
        self._connection.on_throttled = on_throttled

    @property
    def request_counts(self) -> Counter[str]:
        return self._connection.request_counts

    async def find_by_user_name(self, user_name: str) -> list[PlatformUser]:
        """The reader's lookup, here so that a 409 can be followed by a link with the writer alone."""
        return await self._reader.find_by_user_name(user_name)

    async def create_user(self, resource: Mapping[str, Any]) -> PlatformUser:
        """POST /Users; a 409 (the user is already there) raises TargetConflict.

        A create that failed ambiguously (5xx, timeout) is retried like any request;
        if the first attempt had landed, the retry answers 409 and the caller links
        the user as for any conflict, so no duplicate is made.
        """
        response = await self._connection.send("POST", "/Users", body=resource)
        return user_from_answer("POST", "/Users", json_object("POST", "/Users", response))

    async def patch_user(self, user: PlatformUser, operations: Sequence[Mapping[str, Any]]) -> PlatformUser | None:
        """Apply PATCH operations; where the server does not support PATCH, PUT the patched resource.

        Where the server has ETags, the write carries ``If-Match`` the version
        read, so a concurrent edit on the platform is not overwritten blindly
        (see :meth:`_over_current_version`). Returns the updated user when the
        server answers with it (200), None when it answers 204 No Content (or
        200 with no body). A 404 raises TargetNotFound.
        """
        check_operations(operations)
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
        path = user_path(user)
        response = await self._connection.send(
            "PATCH", path, body=patch_message(operations), headers=await self._if_match(user)
        )
        return self._user_or_none("PATCH", path, response)

    async def _put_over(self, user: PlatformUser, operations: Sequence[Mapping[str, Any]]) -> PlatformUser | None:
        """PUT ``user`` with ``operations`` applied over it."""
        resource = apply_operations(user.resource, operations)
        path = user_path(user)
        response = await self._connection.send("PUT", path, body=resource, headers=await self._if_match(user))
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
        return user_from_answer(method, path, json_object(method, path, response))


def user_path(user: PlatformUser) -> str:
    return f"/Users/{quote(user.scim_id, safe='')}"
